"""the twin's online state and firmware version follow the broker's arrival order; the stream that numbers it

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01 21:20:00

- twins.state_seq: the arrival sequence of the state message the twin shows. A state message redelivered after a
  newer one (JetStream's ack_wait passed while the hub was busy) or written late by another worker no longer puts
  a device back on its old firmware version.
- broker_streams: the stream (and when it was created) whose sequence numbers the twin stores; a stream created
  anew restarts at 1, and the ingest worker then clears the stored order instead of ignoring every new message.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("twins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state_seq", sa.BigInteger(), nullable=True))
    op.create_table(
        "broker_streams",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_broker_streams")),
    )


def downgrade() -> None:
    op.drop_table("broker_streams")
    with op.batch_alter_table("twins", schema=None) as batch_op:
        batch_op.drop_column("state_seq")
