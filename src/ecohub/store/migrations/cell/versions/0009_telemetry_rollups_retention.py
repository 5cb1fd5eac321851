"""telemetry rollups (hourly and daily aggregates), retention policies per product/property, job marks

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "telemetry_rollups",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("did", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=16), nullable=False),
        sa.Column("res", sa.BigInteger(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("stats", JSON, nullable=True),
        sa.Column("subject", sa.String(length=32), nullable=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_rollups")),
    )
    with op.batch_alter_table("telemetry_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_telemetry_rollups_did_key_res_bucket", ["did", "key", "res", "bucket"], unique=False)
    op.create_table(
        "telemetry_retention",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=16), nullable=False),
        sa.Column("raw_days", sa.Integer(), nullable=True),
        sa.Column("rollup_days", sa.Integer(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("model", "key", name=op.f("pk_telemetry_retention")),
    )
    op.create_table(
        "telemetry_marks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_telemetry_marks")),
    )
    # retention deletes by time across devices: an index on ts alone (the did/key/ts index serves reads)
    with op.batch_alter_table("telemetry", schema=None) as batch_op:
        batch_op.create_index("ix_telemetry_ts", ["ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("telemetry", schema=None) as batch_op:
        batch_op.drop_index("ix_telemetry_ts")
    op.drop_table("telemetry_marks")
    op.drop_table("telemetry_retention")
    with op.batch_alter_table("telemetry_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_telemetry_rollups_did_key_res_bucket")
    op.drop_table("telemetry_rollups")
