"""Node client certificates (issue 6) and the live view's session audit (issue 10).

Like 0001 it runs over a database whose tables were already made by the modules' own
``create_all`` (a development database from before this revision): what exists is skipped.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('live_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('started', sa.DateTime(), nullable=False),
    sa.Column('ended', sa.DateTime(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('end_reason', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('live_sessions_node_started', 'live_sessions', ['node', 'started'], unique=False,
                    if_not_exists=True)
    op.create_index('live_sessions_open', 'live_sessions', ['ended'], unique=False, if_not_exists=True)
    op.create_table('node_certs',
    sa.Column('serial', sa.String(length=64), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('serial'),
    if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table('node_certs')
    op.drop_index('live_sessions_open', table_name='live_sessions')
    op.drop_index('live_sessions_node_started', table_name='live_sessions')
    op.drop_table('live_sessions')
