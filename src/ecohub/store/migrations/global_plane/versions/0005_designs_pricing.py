"""industrial-design versions and pricing policies

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('design_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('uploaded_by', sa.String(length=128), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=128), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['model'], ['products.model'], name=op.f('fk_design_versions_model_products'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_design_versions')),
    sa.UniqueConstraint('model', 'version', name=op.f('uq_design_versions_model_version'))
    )
    with op.batch_alter_table('design_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_design_versions_model'), ['model'], unique=False)
        batch_op.create_index(batch_op.f('ix_design_versions_status'), ['status'], unique=False)
    op.create_table('pricing_policies',
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('market', sa.String(length=2), nullable=False),
    sa.Column('margin_floor', sa.Numeric(precision=7, scale=4), nullable=True),
    sa.Column('margin_ceiling', sa.Numeric(precision=7, scale=4), nullable=True),
    sa.Column('band', sa.Numeric(precision=7, scale=4), nullable=True),
    sa.Column('other_cost_rate', sa.Numeric(precision=7, scale=4), nullable=True),
    sa.Column('other_cost_fixed', sa.Numeric(precision=14, scale=4), nullable=True),
    sa.Column('tax_rate', sa.Numeric(precision=7, scale=4), nullable=True),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('model', 'market', name=op.f('pk_pricing_policies'))
    )


def downgrade() -> None:
    op.drop_table('pricing_policies')
    with op.batch_alter_table('design_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_design_versions_status'))
        batch_op.drop_index(batch_op.f('ix_design_versions_model'))
    op.drop_table('design_versions')
