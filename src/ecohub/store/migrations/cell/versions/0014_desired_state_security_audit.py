"""desired values are delivered when a device reconnects (their state per key); the fleet security audit's tables

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-01 11:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("twin_properties", schema=None) as batch_op:
        batch_op.add_column(sa.Column("desired_state", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("desired_code", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("desired_cmd", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("desired_seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("desired_sent_ms", sa.BigInteger(), nullable=True))
    # desired values recorded before keep no state: they went to a connected device then, and are not resent


def downgrade() -> None:
    with op.batch_alter_table("twin_properties", schema=None) as batch_op:
        for column in ("desired_sent_ms", "desired_seq", "desired_cmd", "desired_code", "desired_state"):
            batch_op.drop_column(column)
