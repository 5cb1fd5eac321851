"""devices know whether they are bound to a user (partners see only unbound units by id)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bound", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE devices SET bound = (did IN (SELECT did FROM bindings))")


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("bound")
