"""City networking without lost alarms: which alarm events the city platform has settled, and from where
the uplink reads the store (hub/gb28181/uplink.py).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('gb_alarm_uplink',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('event_id'),
    if_not_exists=True,
    )
    op.create_index('gb_alarm_uplink_at', 'gb_alarm_uplink', ['at'], unique=False, if_not_exists=True)
    op.create_table('gb_uplink_mark',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('settled_before', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table('gb_uplink_mark')
    op.drop_index('gb_alarm_uplink_at', table_name='gb_alarm_uplink')
    op.drop_table('gb_alarm_uplink')
