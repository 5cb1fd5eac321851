"""webhooks choose batched delivery: up to `batch_max` queued messages of a subscription in one signed POST;
delivered messages leave the queue (no `delivered_ms` kept)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_webhooks", schema=None) as batch_op:  # existing webhooks: one message per POST
        batch_op.add_column(sa.Column("batch_max", sa.Integer(), server_default="1", nullable=False))
    op.execute("DELETE FROM app_webhook_deliveries WHERE status = 'delivered'")  # sent: their device data goes
    with op.batch_alter_table("app_webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_column("delivered_ms")


def downgrade() -> None:
    with op.batch_alter_table("app_webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivered_ms", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("app_webhooks", schema=None) as batch_op:
        batch_op.drop_column("batch_max")
