"""receiver answers kept per device: topic and policyApplied

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('provisioning_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('topic', sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column('policy_applied', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('provisioning_record', schema=None) as batch_op:
        batch_op.drop_column('policy_applied')
        batch_op.drop_column('topic')
