"""desired values are delivered when a device reconnects (their state per key); the fleet security audit's tables

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 11:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
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
    op.create_table(
        "security_connects",
        sa.Column("did", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=64), nullable=False),
        sa.Column("hour_ms", sa.BigInteger(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("did", "host", "hour_ms", "allowed"),
    )
    op.create_index("ix_security_connects_hour", "security_connects", ["hour_ms"])
    op.create_table(
        "security_findings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("check_id", sa.String(length=48), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("first_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
        sa.Column("resolved_ms", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_ms", sa.BigInteger(), nullable=True),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_security_findings_check_subject", "security_findings", ["check_id", "subject"])
    op.create_index("ix_security_findings_status_severity", "security_findings", ["status", "severity"])
    op.create_table(
        "security_vulnerable_firmware",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("marked_by", sa.String(length=128), nullable=False),
        sa.Column("marked_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model", "version"),
    )
    op.create_table(
        "security_firmware_seen",
        sa.Column("did", sa.String(length=64), nullable=False),
        sa.Column("first_version", sa.String(length=64), nullable=False),
        sa.Column("first_ms", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("changed_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("did"),
    )


def downgrade() -> None:
    op.drop_table("security_firmware_seen")
    op.drop_table("security_vulnerable_firmware")
    op.drop_index("ix_security_findings_status_severity", table_name="security_findings")
    op.drop_index("ix_security_findings_check_subject", table_name="security_findings")
    op.drop_table("security_findings")
    op.drop_index("ix_security_connects_hour", table_name="security_connects")
    op.drop_table("security_connects")
    with op.batch_alter_table("twin_properties", schema=None) as batch_op:
        for column in ("desired_sent_ms", "desired_seq", "desired_cmd", "desired_code", "desired_state"):
            batch_op.drop_column(column)
