"""the twin orders a device's values by arrival at the broker; dedup tells a redelivery from a reused message id

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 08:30:00

- twin_properties.seq: the broker's arrival sequence of the message that set the value (a device's messages
  reach the broker in the order it sent them, also across a reboot that restarts its message ids).
- inbox gets `digest` (a hash of the payload) in its key: the same message again is a duplicate, a new message
  that reuses an id after a reboot is not. The dedup window starts afresh: the old rows are keyed without it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("twin_properties", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    op.drop_table("inbox")
    op.create_table(
        "inbox",
        sa.Column("did", sa.String(length=40), nullable=False),
        sa.Column("msg_id", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("did", "msg_id", "digest", name=op.f("pk_inbox")),
    )


def downgrade() -> None:
    op.drop_table("inbox")
    op.create_table(
        "inbox",
        sa.Column("did", sa.String(length=40), nullable=False),
        sa.Column("msg_id", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("did", "msg_id", name=op.f("pk_inbox")),
    )
    with op.batch_alter_table("twin_properties", schema=None) as batch_op:
        batch_op.drop_column("seq")
