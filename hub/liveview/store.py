"""The audit of live and talk sessions: who watched or talked to which pole, when, how long, why it ended.

The table is on the store's shared ``metadata`` (created with the others by ``init_db``); a
migration revision for it is added where the migrations live.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, String, Table

from hub.store import UTCDateTime, metadata

live_sessions = Table(
    "live_sessions", metadata,
    Column("id", String(64), primary_key=True),  # the session id the node knows too
    Column("node", String(64), nullable=False),
    Column("username", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # live | talk | mjpeg
    Column("started", UTCDateTime(), nullable=False),
    Column("ended", UTCDateTime()),
    Column("duration_s", Float),
    Column("end_reason", String(200)),
    Index("live_sessions_node_started", "node", "started"),
    Index("live_sessions_open", "ended"),
)
