"""twin properties remember the device's message id (its send order)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 07:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("twin_properties", schema=None) as batch_op:
        batch_op.add_column(sa.Column("msg_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("twin_properties", schema=None) as batch_op:
        batch_op.drop_column("msg_id")
