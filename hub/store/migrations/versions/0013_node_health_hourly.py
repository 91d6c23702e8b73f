"""Fleet health over time (issue 21): each node's heartbeats rolled up per hour (hub/nodes/health.py), since
``nodes.heartbeat`` keeps only the newest one.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('node_health_hourly',
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('hour', sa.DateTime(), nullable=False),
    sa.Column('heartbeats', sa.Integer(), nullable=False),
    sa.Column('outbox_max', sa.Integer(), nullable=False),
    sa.Column('restarted', sa.Integer(), nullable=False),
    sa.Column('cpu_temp_max', sa.Float(), nullable=True),
    sa.Column('fps_min', sa.Float(), nullable=True),
    sa.Column('disk_free_min', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('node', 'hour'),
    if_not_exists=True,
    )
    op.create_index('node_health_hourly_hour', 'node_health_hourly', ['hour'], unique=False, if_not_exists=True)


def downgrade() -> None:
    op.drop_index('node_health_hourly_hour', table_name='node_health_hourly')
    op.drop_table('node_health_hourly')
