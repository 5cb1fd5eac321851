"""privacy: audit chain, subject keys, consent ledger, data-subject requests, partner disclosures (cell plane)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 07:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
BIGID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=True),
    sa.Column('detail', JSON, nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_action'), 'audit_log', ['action'], unique=False)
    op.create_index(op.f('ix_audit_log_subject'), 'audit_log', ['subject'], unique=False)
    op.create_table('subject_keys',
    sa.Column('subject_id', sa.String(length=32), nullable=False),
    sa.Column('wrapped', sa.LargeBinary(), nullable=True),
    sa.Column('kek_version', sa.Integer(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('destroyed_at', TS, nullable=True),
    sa.PrimaryKeyConstraint('subject_id', name=op.f('pk_subject_keys'))
    )
    op.create_table('consents',
    sa.Column('id', BIGID, autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('given', sa.Boolean(), nullable=False),
    sa.Column('text_version', sa.String(length=32), nullable=False),
    sa.Column('at', TS, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents'))
    )
    op.create_index('ix_consents_user_purpose', 'consents', ['user_id', 'purpose', 'id'], unique=False)
    op.create_table('dsr_requests',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('received_at', TS, nullable=False),
    sa.Column('due_at', TS, nullable=False),
    sa.Column('extended_reason', sa.Text(), nullable=True),
    sa.Column('completed_at', TS, nullable=True),
    sa.Column('receipt', JSON, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dsr_requests'))
    )
    op.create_index(op.f('ix_dsr_requests_subject_id'), 'dsr_requests', ['subject_id'], unique=False)
    op.create_table('dsr_steps',
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('store', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', JSON, nullable=False),
    sa.Column('at', TS, nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['dsr_requests.id'], name=op.f('fk_dsr_steps_request_id_dsr_requests'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('request_id', 'store', name=op.f('pk_dsr_steps'))
    )
    op.create_table('partner_recipients',
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('partner_id', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('first_at', TS, nullable=False),
    sa.Column('last_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'partner_id', name=op.f('pk_partner_recipients'))
    )
    op.create_table('partner_acks',
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('partner_id', sa.String(length=64), nullable=False),
    sa.Column('pseudonyms', JSON, nullable=False),
    sa.Column('notified_at', TS, nullable=False),
    sa.Column('acked_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['dsr_requests.id'], name=op.f('fk_partner_acks_request_id_dsr_requests'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('request_id', 'partner_id', name=op.f('pk_partner_acks'))
    )


def downgrade() -> None:
    op.drop_table('partner_acks')
    op.drop_table('partner_recipients')
    op.drop_table('dsr_steps')
    op.drop_index(op.f('ix_dsr_requests_subject_id'), table_name='dsr_requests')
    op.drop_table('dsr_requests')
    op.drop_index('ix_consents_user_purpose', table_name='consents')
    op.drop_table('consents')
    op.drop_table('subject_keys')
    op.drop_index(op.f('ix_audit_log_subject'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_action'), table_name='audit_log')
    op.drop_table('audit_log')
