"""Notify deliveries, Web Push subscriptions, contacts and patrol check-ins (issue 18, items 4 and 5).

Like 0004 it runs over a database whose tables the modules' own ``create_all`` may already have made:
what exists is skipped.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notify_deliveries",
        sa.Column("seq", Seq, autoincrement=True, nullable=False),
        sa.Column("notice", sa.String(length=36), nullable=False),
        sa.Column("alarm", sa.String(length=36), nullable=True),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("why", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        if_not_exists=True,
    )
    op.create_index("notify_deliveries_alarm", "notify_deliveries", ["alarm"], if_not_exists=True)
    op.create_index("notify_deliveries_notice", "notify_deliveries", ["notice"], if_not_exists=True)
    op.create_table(
        "push_subscriptions",
        sa.Column("endpoint", sa.String(length=1024), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("p256dh", sa.String(length=200), nullable=False),
        sa.Column("auth", sa.String(length=100), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("last_ok", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("endpoint"),
        if_not_exists=True,
    )
    op.create_index("push_subscriptions_username", "push_subscriptions", ["username"], if_not_exists=True)
    op.create_table(
        "notify_contacts",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("username"),
        if_not_exists=True,
    )
    op.create_table(
        "patrol_checkins",
        sa.Column("seq", Seq, autoincrement=True, nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("token_key", sa.String(length=16), nullable=False),
        sa.Column("token_issued", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        if_not_exists=True,
    )
    op.create_index("patrol_checkins_node_at", "patrol_checkins", ["node", "at"], if_not_exists=True)
    op.create_index("patrol_checkins_at", "patrol_checkins", ["at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("patrol_checkins_at", table_name="patrol_checkins")
    op.drop_index("patrol_checkins_node_at", table_name="patrol_checkins")
    op.drop_table("patrol_checkins")
    op.drop_table("notify_contacts")
    op.drop_index("push_subscriptions_username", table_name="push_subscriptions")
    op.drop_table("push_subscriptions")
    op.drop_index("notify_deliveries_notice", table_name="notify_deliveries")
    op.drop_index("notify_deliveries_alarm", table_name="notify_deliveries")
    op.drop_table("notify_deliveries")
