"""ota: per-device progress of firmware campaigns; twins know the firmware version a device runs

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ota_device_updates",
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("did", sa.String(length=40), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(length=200), nullable=False),
        sa.Column("from_version", sa.String(length=32), nullable=True),
        sa.Column("offers", sa.Integer(), nullable=False),
        sa.Column("offered_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "did", name=op.f("pk_ota_device_updates")),
    )
    op.create_index("ix_ota_device_updates_did", "ota_device_updates", ["did"])
    op.create_index("ix_ota_device_updates_campaign_state", "ota_device_updates", ["campaign_id", "state"])
    with op.batch_alter_table("twins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("firmware_version", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("twins", schema=None) as batch_op:
        batch_op.drop_column("firmware_version")
    op.drop_table("ota_device_updates")
