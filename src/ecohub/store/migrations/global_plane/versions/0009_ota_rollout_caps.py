"""ota: rollout caps per campaign (devices updating at once, offers per minute)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ota_campaigns') as batch_op:
        batch_op.add_column(sa.Column('max_in_flight', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('max_per_minute', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('ota_campaigns') as batch_op:
        batch_op.drop_column('max_per_minute')
        batch_op.drop_column('max_in_flight')
