"""device payloads sealed with the owner's subject key: telemetry, device events, twin reported values

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 10:00:00
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


def upgrade() -> None:
    with op.batch_alter_table("telemetry", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=JSON, nullable=True)
        batch_op.add_column(sa.Column("subject", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("device_events", schema=None) as batch_op:
        batch_op.alter_column("arguments", existing_type=JSON, nullable=True)
        batch_op.add_column(sa.Column("subject", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("twin_properties", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("twin_properties", schema=None) as batch_op:
        batch_op.drop_column("sealed")
        batch_op.drop_column("subject")
    for table, column in (("device_events", "arguments"), ("telemetry", "value")):
        op.execute(sa.text(f"DELETE FROM {table} WHERE {column} IS NULL"))  # sealed rows cannot be unsealed here
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("sealed")
            batch_op.drop_column("subject")
            batch_op.alter_column(column, existing_type=JSON, nullable=False)
