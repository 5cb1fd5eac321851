"""ota: partners' firmware signing keys, firmware images, campaigns

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "firmware_signing_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_firmware_signing_keys")),
    )
    op.create_index(op.f("ix_firmware_signing_keys_partner_id"), "firmware_signing_keys", ["partner_id"])
    op.create_table(
        "firmware_images",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("partner_key_id", sa.String(length=16), nullable=False),
        sa.Column("partner_sig", sa.String(length=100), nullable=False),
        sa.Column("brand_key_id", sa.String(length=16), nullable=True),
        sa.Column("brand_sig", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=128), nullable=False),
        sa.Column("approved_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firmware_images")),
        sa.UniqueConstraint("model", "version", name="uq_firmware_images_model_version"),
    )
    op.create_index(op.f("ix_firmware_images_model"), "firmware_images", ["model"])
    op.create_index(op.f("ix_firmware_images_partner_id"), "firmware_images", ["partner_id"])
    op.create_index(op.f("ix_firmware_images_sha256"), "firmware_images", ["sha256"])
    op.create_table(
        "ota_campaigns",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("image_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("rollback", sa.Boolean(), nullable=False),
        sa.Column("market", sa.String(length=8), nullable=True),
        sa.Column("cell", sa.String(length=16), nullable=True),
        sa.Column("stages", JSON, nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("device_timeout_s", sa.Integer(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("targets", sa.Integer(), nullable=False),
        sa.Column("accepted_failed", sa.Integer(), nullable=False),
        sa.Column("accepted_finished", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ota_campaigns")),
    )
    op.create_index(op.f("ix_ota_campaigns_model"), "ota_campaigns", ["model"])
    op.create_index(op.f("ix_ota_campaigns_partner_id"), "ota_campaigns", ["partner_id"])
    op.create_index(op.f("ix_ota_campaigns_status"), "ota_campaigns", ["status"])


def downgrade() -> None:
    op.drop_table("ota_campaigns")
    op.drop_table("firmware_images")
    op.drop_table("firmware_signing_keys")
