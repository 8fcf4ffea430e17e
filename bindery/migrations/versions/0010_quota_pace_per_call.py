"""quota pace per call kind: a target's paced call and, while processes share it, its follow-up calls

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 16:15:00

The table only holds where each schedule stands right now (next free slot, a Retry-After pause), so it
is made anew rather than altered: a schedule that starts empty is correct.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table('quota_pace')
    op.create_table('quota_pace',
    sa.Column('cloud_api_id', sa.Integer(), nullable=False),
    sa.Column('api_call', sa.String(length=64), nullable=False),
    sa.Column('next_at', sa.Float(), nullable=False),
    sa.Column('paused_until', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['cloud_api_id'], ['cloud_api.id'], ),
    sa.PrimaryKeyConstraint('cloud_api_id', 'api_call')
    )


def downgrade() -> None:
    op.drop_table('quota_pace')
    op.create_table('quota_pace',
    sa.Column('cloud_api_id', sa.Integer(), nullable=False),
    sa.Column('next_at', sa.Float(), nullable=False),
    sa.Column('paused_until', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['cloud_api_id'], ['cloud_api.id'], ),
    sa.PrimaryKeyConstraint('cloud_api_id')
    )
