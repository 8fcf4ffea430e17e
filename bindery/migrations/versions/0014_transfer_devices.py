"""batch transfers: the batch's device count as offered (a later split by its owner is not the other side's)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 07:00:00

Offers made before this revision take the batch's count now: the best that is known of them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('batch_transfer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('devices', sa.Integer(), nullable=True))
    op.execute("UPDATE batch_transfer SET devices = (SELECT batch.device_count FROM batch "
               "WHERE batch.id = batch_transfer.batch_id)")
    with op.batch_alter_table('batch_transfer', schema=None) as batch_op:
        batch_op.alter_column('devices', existing_type=sa.Integer(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('batch_transfer', schema=None) as batch_op:
        batch_op.drop_column('devices')
