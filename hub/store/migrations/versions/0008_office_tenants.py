"""The community office (issue 17): where a tenant's registration came from (the form or an imported sheet),
when the lease was last renewed, and indexes for the per-unit duplicate check and the leases ending soon.

Like 0003 it runs over a database whose tables were already made by the modules' own ``create_all``:
a column or index that exists is skipped.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("tenants")}
    if "source" not in columns:
        op.add_column("tenants", sa.Column("source", sa.String(length=64), nullable=True))
    if "renewed_at" not in columns:
        op.add_column("tenants", sa.Column("renewed_at", sa.DateTime(), nullable=True))
    op.create_index("tenants_unit", "tenants", ["block", "unit"], unique=False, if_not_exists=True)
    op.create_index("tenants_lease_end", "tenants", ["lease_end"], unique=False, if_not_exists=True)


def downgrade() -> None:
    op.drop_index("tenants_lease_end", table_name="tenants")
    op.drop_index("tenants_unit", table_name="tenants")
    with op.batch_alter_table("tenants") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("renewed_at")
        batch.drop_column("source")
