"""Outage incidents (design.md: many nodes going offline at once is one incident, not thousands):
``alarms.incident`` names the ``nodes.offline`` incident a node's ``node.offline`` joined.

Like 0001 it runs over a database whose tables were already made by the modules' own
``create_all``: a column or index that exists is skipped.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("alarms")}
    if "incident" not in columns:
        op.add_column("alarms", sa.Column("incident", sa.String(length=36), nullable=True))
    op.create_index("alarms_incident", "alarms", ["incident"], unique=False, if_not_exists=True)


def downgrade() -> None:
    op.drop_index("alarms_incident", table_name="alarms")
    with op.batch_alter_table("alarms") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("incident")
