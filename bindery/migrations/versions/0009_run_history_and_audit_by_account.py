"""run history (drift reports kept with reconcile runs) and audit events by account

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bindery.models.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('run',
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('bid', sa.String(length=128), nullable=False),
    sa.Column('cloud_api', sa.String(length=128), nullable=False),
    sa.Column('started_by', sa.String(length=320), nullable=False),
    sa.Column('started_via', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', bindery.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', bindery.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('message', sa.String(length=512), nullable=True),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('flow_run_url', sa.String(length=512), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('cloud_api_id', sa.Integer(), nullable=False),
    sa.Column('counts', sa.Text(), server_default='{}', nullable=False),
    sa.Column('findings', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_bid'), ['bid'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_started_at'), ['started_at'], unique=False)

    with op.batch_alter_table('provisioning_record', schema=None) as batch_op:  # a batch's devices, paged in order
        batch_op.create_index('ix_record_batch_device_target', ['batch_id', 'device_id', 'cloud_api_id'], unique=False)

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_audit_event_account_id'), ['account_id'], unique=False)
        batch_op.create_foreign_key('fk_audit_event_account_id', 'account', ['account_id'], ['id'])
    # earlier events: the account of the user who acted (the operator's catalog work has none)
    op.execute("UPDATE audit_event SET account_id = (SELECT app_user.account_id FROM app_user "
               "WHERE app_user.email = audit_event.actor)")



def downgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_constraint('fk_audit_event_account_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_audit_event_account_id'))
        batch_op.drop_column('account_id')

    with op.batch_alter_table('provisioning_record', schema=None) as batch_op:
        batch_op.drop_index('ix_record_batch_device_target')

    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_started_at'))
        batch_op.drop_index(batch_op.f('ix_run_kind'))
        batch_op.drop_index(batch_op.f('ix_run_bid'))
        batch_op.drop_index(batch_op.f('ix_run_batch_id'))
        batch_op.drop_index(batch_op.f('ix_run_account_id'))

    op.drop_table('run')
