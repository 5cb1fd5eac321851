"""accounts, homes, rooms, sharing, bindings and one-time bind codes (cell plane)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 06:19:37.536265
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bind_codes',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('did', sa.String(length=40), nullable=False),
    sa.Column('code_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bind_codes'))
    )
    with op.batch_alter_table('bind_codes', schema=None) as batch_op:
        batch_op.create_index('ix_bind_codes_did_hash', ['did', 'code_hash'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('email_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('email', sa.Text(), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('cell', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email_hash', name=op.f('uq_users_email_hash'))
    )
    op.create_table('homes',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_homes_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_homes'))
    )
    with op.batch_alter_table('homes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_homes_owner_id'), ['owner_id'], unique=False)

    op.create_table('user_tokens',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_tokens_token_hash'))
    )
    with op.batch_alter_table('user_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('home_members',
    sa.Column('home_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('invited_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['home_id'], ['homes.id'], name=op.f('fk_home_members_home_id_homes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_home_members_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('home_id', 'user_id', name=op.f('pk_home_members'))
    )
    with op.batch_alter_table('home_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_home_members_user_id'), ['user_id'], unique=False)

    op.create_table('rooms',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('home_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['home_id'], ['homes.id'], name=op.f('fk_rooms_home_id_homes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rooms'))
    )
    with op.batch_alter_table('rooms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rooms_home_id'), ['home_id'], unique=False)

    op.create_table('bindings',
    sa.Column('did', sa.String(length=40), nullable=False),
    sa.Column('home_id', sa.String(length=32), nullable=False),
    sa.Column('room_id', sa.String(length=32), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('bound_by', sa.String(length=32), nullable=False),
    sa.Column('bound_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['home_id'], ['homes.id'], name=op.f('fk_bindings_home_id_homes')),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_bindings_room_id_rooms'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('did', name=op.f('pk_bindings'))
    )
    with op.batch_alter_table('bindings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bindings_home_id'), ['home_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bindings_home_id'))

    op.drop_table('bindings')
    with op.batch_alter_table('rooms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rooms_home_id'))

    op.drop_table('rooms')
    with op.batch_alter_table('home_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_home_members_user_id'))

    op.drop_table('home_members')
    with op.batch_alter_table('user_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_tokens_user_id'))

    op.drop_table('user_tokens')
    with op.batch_alter_table('homes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_homes_owner_id'))

    op.drop_table('homes')
    op.drop_table('users')
    with op.batch_alter_table('bind_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_bind_codes_did_hash')

    op.drop_table('bind_codes')
