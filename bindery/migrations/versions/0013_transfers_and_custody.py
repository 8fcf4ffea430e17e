"""batch transfers between accounts, the custody chain, and split batches' parent

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 18:45:00

Every batch bound before this revision gets its first custody entry from its binding (the account,
when and by whom it was bound), so its chain starts where its history does.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bindery.models.types

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('batch_transfer',
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('expires_at', bindery.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('from_account_id', sa.Integer(), nullable=False),
    sa.Column('to_account_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('code_sha256', sa.String(length=64), nullable=False),
    sa.Column('offered_by', sa.String(length=320), nullable=False),
    sa.Column('offered_at', bindery.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_by', sa.String(length=320), nullable=True),
    sa.Column('closed_at', bindery.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], ),
    sa.ForeignKeyConstraint(['from_account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['to_account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('batch_transfer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batch_transfer_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_batch_transfer_code_sha256'), ['code_sha256'], unique=True)
        batch_op.create_index(batch_op.f('ix_batch_transfer_from_account_id'), ['from_account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_batch_transfer_to_account_id'), ['to_account_id'], unique=False)
        batch_op.create_index('uq_transfer_open_offer', ['batch_id'], unique=True,
                              sqlite_where=sa.text("state = 'offered'"), postgresql_where=sa.text("state = 'offered'"))

    op.create_table('custody',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('held_as', sa.String(length=64), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('since', bindery.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('until', bindery.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('offered_by', sa.String(length=320), nullable=True),
    sa.Column('accepted_by', sa.String(length=320), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('custody', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_custody_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_custody_batch_id'), ['batch_id'], unique=False)

    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('split_from_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_batch_split_from_id', 'batch', ['split_from_id'], ['id'])

    op.execute("INSERT INTO custody (batch_id, account_id, held_as, via, since, accepted_by) "
               "SELECT binding.batch_id, binding.account_id, batch.bid, 'bind', binding.bound_at, app_user.email "
               "FROM binding JOIN batch ON batch.id = binding.batch_id "
               "JOIN app_user ON app_user.id = binding.bound_by_user_id")


def downgrade() -> None:
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.drop_constraint('fk_batch_split_from_id', type_='foreignkey')
        batch_op.drop_column('split_from_id')
    with op.batch_alter_table('custody', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_custody_batch_id'))
        batch_op.drop_index(batch_op.f('ix_custody_account_id'))
    op.drop_table('custody')
    with op.batch_alter_table('batch_transfer', schema=None) as batch_op:
        batch_op.drop_index('uq_transfer_open_offer')
        batch_op.drop_index(batch_op.f('ix_batch_transfer_to_account_id'))
        batch_op.drop_index(batch_op.f('ix_batch_transfer_from_account_id'))
        batch_op.drop_index(batch_op.f('ix_batch_transfer_code_sha256'))
        batch_op.drop_index(batch_op.f('ix_batch_transfer_batch_id'))
    op.drop_table('batch_transfer')
