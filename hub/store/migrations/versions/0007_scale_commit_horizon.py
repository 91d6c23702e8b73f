"""Events remember their transaction and its snapshot's horizon (issue 21): ``/api/live?since=`` across
replicas replays an event that committed after a later one.

On PostgreSQL each replica's writer takes ``events.seq`` values inside its own transaction, so an event
can commit after one with a higher ``seq`` that a console has already seen; ``seq > since`` skipped it.
``xact`` is the inserting transaction's id and ``horizon`` the oldest transaction still running when the
row was inserted (``pg_snapshot_xmin``): every event with a lower ``seq`` that was not committed yet then
has ``xact >= horizon``, and the replay takes those too (hub/live/replay.py). Both are filled by the
server's column defaults, so every writer gets them (rows from before stay NULL: a replay from such a
cursor is the plain ``seq > since``); SQLite has one writer, whose commits follow ``seq``,
and leaves them NULL.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("events")}  # create_all made them?
    for name in ("xact", "horizon"):
        if name not in columns:
            op.add_column("events", sa.Column(name, sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE events ALTER COLUMN xact SET DEFAULT (pg_current_xact_id()::text::bigint)")
        op.execute("ALTER TABLE events ALTER COLUMN horizon SET DEFAULT "
                   "(pg_snapshot_xmin(pg_current_snapshot())::text::bigint)")


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("horizon")
        batch.drop_column("xact")
