"""The hub's storage (SQLAlchemy Core): SQLite by default, any SQLAlchemy URL otherwise.

Events are stored idempotently by the node-made id, so a resend never makes a duplicate. On
SQLite every ``engine.begin()`` (a writing transaction) starts with BEGIN IMMEDIATE: in WAL mode a
read transaction that later writes would fail with SQLITE_BUSY at once, whatever busy_timeout
says. Reads (``engine.connect()``) start a plain BEGIN and read their WAL snapshot without the
write lock: when every read took it too, a console's query or a Prometheus scrape queued behind
the ingest writer, which re-takes the lock after each commit, and the soak saw /metrics time out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Table,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection, Engine, make_url

from edge.shared.securefs import private_sqlite
from hub.store.schema import UTCDateTime, audit, nodes

WRITE_OPTION = "pingan_write"  # on a Connection: its transaction will write (SQLite: BEGIN IMMEDIATE)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            private_sqlite(path)  # 0600 in a 0700 folder, its -wal/-shm too (edge/shared/securefs.py)
        # a small pool: reopening SQLite (and its pragmas) per batch costs more than the batch
        engine = create_engine(url, pool_size=8, max_overflow=8,
                               connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")

        @contextmanager
        def begin_for_writing() -> Iterator[Connection]:
            with engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn

        engine.begin = begin_for_writing  # type: ignore[method-assign]
        return engine
    return create_engine(url, pool_pre_ping=True)


def init_db(engine: Engine) -> None:
    """The schema at start: SQLite is migrated to the newest revision, PostgreSQL must already be (store/migrate.py)."""
    from hub.store.migrate import ensure_schema

    ensure_schema(engine)


def has_rows(engine: Engine, query: Any) -> bool:
    """Whether ``query`` finds anything, read without the write lock. Jobs that poll every second look
    first: on SQLite a write transaction would stop the ingest writer (and every alarm behind it) for the
    length of a query that mostly finds nothing."""
    with engine.connect() as conn:
        return conn.execute(query.limit(1)).first() is not None


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any], key: str) -> int:
    """INSERT that skips a row whose ``key`` exists; returns 1 when the row was new.

    Counted with RETURNING (SQLite >= 3.35 and PostgreSQL): psycopg reports no rowcount for it."""
    return len(conn.execute(insert_ignore_stmt(conn, table, key).returning(table.c[key]), values).all())


def insert_ignore_stmt(conn: Connection, table: Table, key: str) -> Any:
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    else:  # pragma: no cover - other engines are not supported yet
        raise NotImplementedError(f"database {name} is not supported")
    return insert(table).on_conflict_do_nothing(index_elements=[key])


def now_utc() -> datetime:
    return datetime.now(UTC)


def jsonable(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in dict(row._mapping).items():
        if isinstance(v, datetime):
            out[k] = v.isoformat()
        elif isinstance(v, bytes):
            continue
        else:
            out[k] = v
    return out


def add_audit(conn: Connection, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    conn.execute(audit.insert().values(at=now_utc(), actor=actor, action=action, target=target,
                                       detail=json.loads(json.dumps(detail or {}, default=str))))


def insert_new(conn: Connection, table: Table, rows: list[dict[str, Any]], key: str,
               returning: tuple[str, ...]) -> list[Any]:
    """Insert the rows whose ``key`` is new, skipping the others; returns ``returning`` of the new ones.

    PostgreSQL gets one ``INSERT ... SELECT FROM unnest(<one array per column>)``: ten parameters
    instead of ten per row, because psycopg parses a many-row VALUES statement in Python (measured:
    ~0.2 s for 455 events, most of a batch). SQLite keeps SQLAlchemy's multi-row insert.
    """
    if not rows:
        return []
    if conn.dialect.name != "postgresql":
        stmt = insert_ignore_stmt(conn, table, key).returning(*(table.c[c] for c in returning))
        return list(conn.execute(stmt, rows).all())
    names, casts, arrays = _unnest(conn, table, rows)
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({', '.join(casts)}) "
           f"ON CONFLICT ({key}) DO NOTHING RETURNING {', '.join(returning)}")
    from sqlalchemy import text

    return list(conn.execute(text(sql), arrays).all())


def _unnest(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> tuple[list[str], list[str], dict[str, Any]]:
    """Column names, ``CAST(:col AS type[])`` expressions and one array per column, for ``unnest``."""
    names = list(rows[0])
    defaults = {c.name: c.default.arg for c in table.columns  # type: ignore[attr-defined]  # a ScalarElementColumnDefault
                if c.name not in names and c.default is not None and c.default.is_scalar}
    if defaults:
        rows = [{**r, **defaults} for r in rows]
        names += list(defaults)
    arrays: dict[str, list[Any]] = {}
    casts = []
    for name in names:
        col = table.c[name]
        values = [r.get(name) for r in rows]
        if isinstance(col.type, JSON):
            values = [_json_text(v) for v in values]
            casts.append(f"CAST(:{name} AS TEXT[])::JSON[]")
        else:
            if isinstance(col.type, UTCDateTime):
                values = [col.type.process_bind_param(v, conn.dialect) for v in values]
            casts.append(f"CAST(:{name} AS {col.type.compile(dialect=conn.dialect)}[])")
        arrays[name] = values
    return names, casts, arrays


class JsonText(str):
    """A JSON column's value already encoded (pydantic's ``model_dump_json``): stored as it is."""


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, JsonText):
        return value
    return json.dumps(value, default=str)


def _sqlite_value(col: Any, value: Any) -> Any:
    """What SQLAlchemy would bind for ``value`` in ``col`` on SQLite (the same text, so comparisons agree)."""
    if value is None:
        return None
    if isinstance(col.type, JSON):
        return _json_text(value)
    if isinstance(col.type, UTCDateTime):
        return _sqlite_time(value)
    return value


def _sqlite_time(value: datetime) -> str:
    """SQLAlchemy's SQLite text for a datetime (naive UTC, always with microseconds), without its overhead."""
    if value.tzinfo is not None:
        if value.utcoffset():
            value = value.astimezone(UTC)
        value = value.replace(tzinfo=None)
    text = value.isoformat(sep=" ")
    return text if value.microsecond else text + ".000000"


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], key: str, update: dict[str, str]) -> None:
    """One statement for many rows: insert the new ones, and on ``key``'s conflict set each column of
    ``update`` to its SQL expression (``excluded.<col>`` is the row offered, ``<table>.<col>`` the stored one).

    Every row must have the same keys. The ingest writer upserts a whole batch's heartbeats and statuses
    this way: a row at a time they cost ~0.75 ms each and saturated the writer at a city's 2,000 a second.
    PostgreSQL gets ``unnest`` arrays (see insert_new), SQLite one prepared statement run for every row.
    """
    from sqlalchemy import text

    if not rows:
        return
    sets = ", ".join(f"{col} = {expr}" for col, expr in update.items())
    if conn.dialect.name == "postgresql":
        names, casts, arrays = _unnest(conn, table, rows)
        conn.execute(text(f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({', '.join(casts)}) "
                          f"ON CONFLICT ({key}) DO UPDATE SET {sets}"), arrays)
        return
    # the driver's executemany with values converted here: SQLAlchemy's per-row bind processing was half the
    # cost of a heartbeat (bench/writer_cost.py --profile)
    names = list(rows[0])
    defaults = {c.name: c.default.arg for c in table.columns  # type: ignore[attr-defined]
                if c.name not in names and c.default is not None and c.default.is_scalar}
    cols = [table.c[n] for n in names]
    params = [tuple(_sqlite_value(c, r.get(c.name)) for c in cols) + tuple(defaults.values()) for r in rows]
    all_names = names + list(defaults)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(all_names)}) "
                         f"VALUES ({', '.join('?' * len(all_names))}) ON CONFLICT ({key}) DO UPDATE SET {sets}", params)


def ids_in(conn: Connection, column: Any, ids: list[str]) -> Any:
    """``column IN ids`` as one array parameter on PostgreSQL (``= ANY``), for the same reason as insert_new."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy import String, any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, ids, type_=ARRAY(String)))
    from sqlalchemy import bindparam as bp

    # one expanding parameter: the statement's compiled form is cached, not rebuilt for every id (py-spy: building
    # a 500-id IN was as costly as the heartbeat upsert itself)
    return column.in_(bp(None, ids, expanding=True))


def set_last_seen(conn: Connection, seen: list[tuple[str, datetime]], slack_s: float = 0) -> None:
    """``nodes.last_seen`` for many nodes at once (one array statement on PostgreSQL, see insert_new).

    A row whose ``last_seen`` is less than ``slack_s`` older is left alone, unwritten and unlocked: with
    replicas on PostgreSQL every replica's batch named the same busy nodes, and their row locks made the
    replicas' transactions wait for each other's commits (issue 21: 8 replicas slower than 4).
    """
    from datetime import timedelta

    from sqlalchemy import bindparam, or_, text, update

    slack = timedelta(seconds=slack_s)
    if conn.dialect.name == "postgresql":
        conn.execute(text("UPDATE nodes SET last_seen = v.at FROM unnest(CAST(:ids AS VARCHAR[]), "
                          "CAST(:ats AS TIMESTAMP[]), CAST(:stale AS TIMESTAMP[])) AS v(id, at, stale) "
                          "WHERE nodes.id = v.id AND (nodes.last_seen IS NULL OR nodes.last_seen < v.stale)"),
                     {"ids": [n for n, _ in seen],
                      "ats": [UTCDateTime().process_bind_param(at, conn.dialect) for _, at in seen],
                      "stale": [UTCDateTime().process_bind_param(at - slack, conn.dialect) for _, at in seen]})
        return
    conn.execute(update(nodes).where(nodes.c.id == bindparam("node_id"),
                                     or_(nodes.c.last_seen.is_(None), nodes.c.last_seen < bindparam("stale")))
                 .values(last_seen=bindparam("at")),
                 [{"node_id": n, "at": at, "stale": at - slack} for n, at in seen])
