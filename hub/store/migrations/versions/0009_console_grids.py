"""The console (issue 17): the district's grid boundaries for the map (``pingan-hub grids import FILE``), and
when an open alarm was last pressed again (a press while a pole's alarm is open folds into it: one card).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
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
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("alarms")}
    if "last_press_at" not in have:  # 0001 runs over tables create_all may already have made
        with op.batch_alter_table("alarms") as batch:
            batch.add_column(sa.Column("last_press_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.drop_column("last_press_at")
    op.drop_table('grids')
