"""developer platform: grants, codes, tokens, push queue

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0015'
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('app_grants',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('scopes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_app_grants_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_grants'))
    )
    with op.batch_alter_table('app_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_app_grants_app_id'), ['app_id'], unique=False)
        batch_op.create_index('ix_app_grants_user_app', ['user_id', 'app_id'], unique=False)

    op.create_table('app_auth_codes',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('grant_id', sa.String(length=32), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('redirect_uri', sa.String(length=500), nullable=False),
    sa.Column('scope', sa.String(length=200), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=False),
    sa.Column('code_challenge_method', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['grant_id'], ['app_grants.id'], name=op.f('fk_app_auth_codes_grant_id_app_grants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_auth_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_app_auth_codes_code_hash'))
    )
    with op.batch_alter_table('app_auth_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_app_auth_codes_grant_id'), ['grant_id'], unique=False)

    op.create_table('app_grant_devices',
    sa.Column('grant_id', sa.String(length=32), nullable=False),
    sa.Column('did', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['app_grants.id'], name=op.f('fk_app_grant_devices_grant_id_app_grants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('grant_id', 'did', name=op.f('pk_app_grant_devices'))
    )
    with op.batch_alter_table('app_grant_devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_app_grant_devices_did'), ['did'], unique=False)

    op.create_table('app_tokens',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('access_hash', sa.String(length=64), nullable=False),
    sa.Column('refresh_hash', sa.String(length=64), nullable=True),
    sa.Column('grant_id', sa.String(length=32), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('family', sa.String(length=32), nullable=False),
    sa.Column('scope', sa.String(length=200), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('access_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('refresh_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['grant_id'], ['app_grants.id'], name=op.f('fk_app_tokens_grant_id_app_grants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_tokens')),
    sa.UniqueConstraint('access_hash', name=op.f('uq_app_tokens_access_hash')),
    sa.UniqueConstraint('refresh_hash', name=op.f('uq_app_tokens_refresh_hash'))
    )
    with op.batch_alter_table('app_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_app_tokens_family'), ['family'], unique=False)
        batch_op.create_index(batch_op.f('ix_app_tokens_grant_id'), ['grant_id'], unique=False)

    op.create_table('app_webhooks',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('grant_id', sa.String(length=32), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('events', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('failing_since_ms', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['grant_id'], ['app_grants.id'], name=op.f('fk_app_webhooks_grant_id_app_grants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_webhooks'))
    )
    with op.batch_alter_table('app_webhooks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_app_webhooks_app_id'), ['app_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_app_webhooks_grant_id'), ['grant_id'], unique=False)

    op.create_table('app_webhook_deliveries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('webhook_id', sa.String(length=32), nullable=False),
    sa.Column('did', sa.String(length=40), nullable=False),
    sa.Column('event_type', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_at', sa.BigInteger(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('delivered_ms', sa.BigInteger(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['webhook_id'], ['app_webhooks.id'], name=op.f('fk_app_webhook_deliveries_webhook_id_app_webhooks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_webhook_deliveries'))
    )
    with op.batch_alter_table('app_webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_app_webhook_deliveries_due', ['status', 'next_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_app_webhook_deliveries_webhook_id'), ['webhook_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('app_webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_app_webhook_deliveries_webhook_id'))
        batch_op.drop_index('ix_app_webhook_deliveries_due')

    op.drop_table('app_webhook_deliveries')
    with op.batch_alter_table('app_webhooks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_app_webhooks_grant_id'))
        batch_op.drop_index(batch_op.f('ix_app_webhooks_app_id'))

    op.drop_table('app_webhooks')
    with op.batch_alter_table('app_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_app_tokens_grant_id'))
        batch_op.drop_index(batch_op.f('ix_app_tokens_family'))

    op.drop_table('app_tokens')
    with op.batch_alter_table('app_grant_devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_app_grant_devices_did'))

    op.drop_table('app_grant_devices')
    with op.batch_alter_table('app_auth_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_app_auth_codes_grant_id'))

    op.drop_table('app_auth_codes')
    with op.batch_alter_table('app_grants', schema=None) as batch_op:
        batch_op.drop_index('ix_app_grants_user_app')
        batch_op.drop_index(batch_op.f('ix_app_grants_app_id'))

    op.drop_table('app_grants')
