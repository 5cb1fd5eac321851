"""certification reports

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 06:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('certification_reports',
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('spec_hash', sa.String(length=64), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('markets_passed', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
              nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('document', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
              nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('report_id', name=op.f('pk_certification_reports'))
    )
    with op.batch_alter_table('certification_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certification_reports_model'), ['model'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('certification_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certification_reports_model'))
    op.drop_table('certification_reports')
