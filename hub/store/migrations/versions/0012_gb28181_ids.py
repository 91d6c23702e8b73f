"""City networking (issue 19): each node's 20-digit GB/T 28181 ID (given with ``nodes add --gb-id`` or made
from PINGAN_GB_CIVIL_CODE), in its own table so the nodes table and its writers stay as they are.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('gb_ids',
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('gb_id', sa.String(length=20), nullable=False),
    sa.Column('serial_key', sa.String(length=17), nullable=False),
    sa.Column('assigned_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('node'),
    sa.UniqueConstraint('gb_id'),
    sa.UniqueConstraint('serial_key'),
    if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table('gb_ids')
