"""Login failures in the database (issue 16): the login limits hold across replicas and restarts.

One row per failed (or in-flight) login, purged after the window (hub/auth/service.py). Like 0001 it runs
over a database whose tables were already made by the modules' own ``create_all``: what exists is
skipped.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_failures',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    if_not_exists=True,
    )
    op.create_index('login_failures_at', 'login_failures', ['at'], unique=False, if_not_exists=True)
    op.create_index('login_failures_ip_at', 'login_failures', ['ip', 'at'], unique=False, if_not_exists=True)


def downgrade() -> None:
    op.drop_index('login_failures_ip_at', table_name='login_failures')
    op.drop_index('login_failures_at', table_name='login_failures')
    op.drop_table('login_failures')
