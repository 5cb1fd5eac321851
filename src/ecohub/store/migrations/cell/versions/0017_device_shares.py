"""device shares: one device shared by its owner with another person (by e-mail), member or guest, with expiry

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_shares",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("did", sa.String(length=40), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("email_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_device_shares_owner_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_device_shares_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_shares")),
    )
    with op.batch_alter_table("device_shares", schema=None) as batch_op:
        batch_op.create_index("ix_device_shares_did_email_hash", ["did", "email_hash"], unique=True)
        batch_op.create_index(batch_op.f("ix_device_shares_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_device_shares_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_device_shares_email_hash"), ["email_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("device_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_shares_email_hash"))
        batch_op.drop_index(batch_op.f("ix_device_shares_user_id"))
        batch_op.drop_index(batch_op.f("ix_device_shares_owner_id"))
        batch_op.drop_index("ix_device_shares_did_email_hash")
    op.drop_table("device_shares")
