"""settle stranded pending records: a device an ended run tried and could not provision is failed

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 17:30:00

Before this revision a device whose transient retries were used up stayed ``pending`` with its last
error, so counters, filters and pages said pending for devices no run was on. A run now settles its
devices when it ends (bindery.provisioning.status.settle); this turns the records earlier runs left
into ``failed``, where no live run holds the batch and target (its lease is gone or expired). Records
never tried (no error) stay pending. Data only: the downgrade leaves them failed, which is true.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import bindery.models.types

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

record = sa.table('provisioning_record', sa.column('batch_id', sa.Integer()), sa.column('cloud_api_id', sa.Integer()),
                  sa.column('status', sa.String()), sa.column('last_error', sa.Text()))
run_lease = sa.table('run_lease', sa.column('batch_id', sa.Integer()), sa.column('cloud_api_id', sa.Integer()),
                     sa.column('expires_at', bindery.models.types.UTCDateTime(timezone=True)))


def upgrade() -> None:
    connection = op.get_bind()
    now = datetime.now(UTC)
    live = [(batch_id, api_id) for batch_id, api_id, expires_at in connection.execute(
        sa.select(run_lease.c.batch_id, run_lease.c.cloud_api_id, run_lease.c.expires_at)) if expires_at > now]
    held = [sa.not_(sa.and_(record.c.batch_id == batch_id, record.c.cloud_api_id == api_id))
            for batch_id, api_id in live]
    connection.execute(record.update().where(record.c.status == 'pending', record.c.last_error.is_not(None), *held)
                       .values(status='failed'))


def downgrade() -> None:
    pass
