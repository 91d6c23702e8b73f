"""Sensitive periods (issue 20, part 3): the raised alert level's windows, the profile pushes to the poles
(apply at the start, revert at the end) and the daily reports with their delivery outcomes (hub/sensitive).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sensitive_periods',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('grids', sa.JSON(), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('escalate_after_s', sa.Float(), nullable=False),
    sa.Column('profile', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('activated_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('cancelled_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('sensitive_periods_state', 'sensitive_periods', ['state'], unique=False, if_not_exists=True)
    op.create_table('sensitive_pushes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('period_id', sa.String(length=32), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('phase', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('base_command', sa.String(length=64), nullable=True),
    sa.Column('command_id', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('sensitive_pushes_one', 'sensitive_pushes', ['period_id', 'node', 'phase'], unique=True,
                    if_not_exists=True)
    op.create_table('sensitive_reports',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('period_id', sa.String(length=32), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('generated_at', sa.DateTime(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('webhook_status', sa.Integer(), nullable=True),
    sa.Column('webhook_error', sa.Text(), nullable=True),
    sa.Column('notified', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('sensitive_reports_one', 'sensitive_reports', ['period_id', 'day'], unique=True,
                    if_not_exists=True)


def downgrade() -> None:
    op.drop_index('sensitive_reports_one', table_name='sensitive_reports')
    op.drop_table('sensitive_reports')
    op.drop_index('sensitive_pushes_one', table_name='sensitive_pushes')
    op.drop_table('sensitive_pushes')
    op.drop_index('sensitive_periods_state', table_name='sensitive_periods')
    op.drop_table('sensitive_periods')
