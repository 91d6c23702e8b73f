"""What a console missed since its cursor (``/api/live?since=``, ``/api/events?after=``), late commits included.

A cursor is an event's ``seq``. With one writer (SQLite) events commit in ``seq`` order, so "after the
cursor" is ``seq > cursor``. Replicas on PostgreSQL each take ``seq`` values inside their own transaction:
replica A takes 100, replica B takes 101 and commits first, a console sees 101 and reconnects with
``since=101`` after A has committed; ``seq > 101`` never shows it 100. So each event row also keeps its
transaction (``xact``) and the oldest transaction still running when it was inserted (``horizon``,
migration 0005). Any event with a lower ``seq`` than the cursor's that was not yet committed when the
cursor's event was inserted belongs to a transaction at least as new as that horizon, so the replay adds
the rows below the cursor with ``xact >= horizon``. A few of those the console has already seen come
again (marked ``replay``; consoles key events by id); none is skipped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from hub.store.schema import events

# the columns an API shows (the transaction bookkeeping is the replay's own)
EVENT_COLUMNS = [c for c in events.c if c.name not in ("xact", "horizon")]
# how far below a cursor a late commit is looked for: far more than replicas x MAX_BATCH rows in flight
LATE_WINDOW = 100_000


def after_cursor(conn: Connection, cursor: int) -> Any:
    """The WHERE clause for "every event a client that has seen ``cursor`` may not have seen"."""
    newer = events.c.seq > cursor
    if conn.dialect.name != "postgresql":
        return newer
    horizon = conn.execute(select(events.c.horizon).where(events.c.seq <= cursor, events.c.seq > cursor - LATE_WINDOW)
                           .order_by(events.c.seq.desc()).limit(1)).scalar()
    if horizon is None:
        return newer
    late = (events.c.seq > cursor - LATE_WINDOW) & (events.c.seq < cursor) & (events.c.xact >= horizon)
    return or_(newer, late)
