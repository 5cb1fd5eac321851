"""names of homes, rooms and bound devices are sealed with the home owner's key: text, not varchar(100)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("homes", "rooms", "bindings")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("name", existing_type=sa.String(length=100), type_=sa.Text(),
                                  existing_nullable=False)


def downgrade() -> None:
    # sealed names do not fit 100 characters: the downgrade keeps them as text rather than truncate ciphertext
    pass
