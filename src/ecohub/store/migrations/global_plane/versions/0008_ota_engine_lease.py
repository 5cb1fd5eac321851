"""ota: the engine's leader lease (one OTA engine per set of cells, whatever the number of API processes)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ota_engine_leases',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('expires_ms', sa.BigInteger(), nullable=False),
    sa.Column('acquired_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_ota_engine_leases'))
    )


def downgrade() -> None:
    op.drop_table('ota_engine_leases')
