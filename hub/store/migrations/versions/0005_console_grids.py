"""The district's grid boundaries for the console's map (issue 17; ``pingan-hub grids import FILE``).

Revision ID: console_grids
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "console_grids"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('grids',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('geometry', sa.JSON(), nullable=False),
    sa.Column('properties', sa.JSON(), nullable=True),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name'),
    if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table('grids')
