"""The events table at city size on PostgreSQL: the console's "last day" queries on a generated table.

The table is the migrations' own (``pingan-hub db upgrade``), filled with generate_series: a
year of events from 20,000 nodes, evenly spread in time (seq grows with received_at, as ingest
makes it), 10 % door events. The secondary indexes are dropped for the load and built after
it (as a restore would), then each query runs warm with EXPLAIN (ANALYZE, BUFFERS); the plans
are printed so the reader can see how they scale with the table (index range scans touch the
last day's rows only, whatever the table's size).

Indexed, not partitioned: the hub stores events idempotently by the node-made ``id`` (a unique
index), and PostgreSQL cannot enforce uniqueness across partitions unless the partition key is
part of the unique key. See docs/scale.md.

    .venv/bin/python bench/events_index.py [--rows 10000000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from hub.store import migrate as db  # noqa: E402
from hub.store.engine import make_engine  # noqa: E402
from tests.pg import PgServer, find_pg_bin  # noqa: E402

NODES = 20_000
DOOR_KINDS = "('door.granted', 'door.denied')"
QUERIES = {
    "console: newest 100 events of the last day":
        "SELECT * FROM events WHERE received_at >= :since ORDER BY seq DESC LIMIT 100",
    "console: one node's last day (node page)":
        "SELECT * FROM events WHERE node = 'pole-00042' AND received_at >= :since ORDER BY seq DESC LIMIT 100",
    "count of the last day's events":
        "SELECT count(*) FROM events WHERE received_at >= :since",
    "report: today's door events by node and kind":
        f"SELECT node, kind, count(*) FROM events WHERE kind IN {DOOR_KINDS} AND received_at >= :since "
        "GROUP BY node, kind",
    "reconnecting console: ?since=<cursor> replay (5,000 rows)":
        "SELECT * FROM events WHERE seq > :cursor ORDER BY seq LIMIT 5000",
}
INDEXES = {
    "events_id_key": "ALTER TABLE events ADD CONSTRAINT events_id_key UNIQUE (id)",
    "events_node_received": "CREATE INDEX events_node_received ON events (node, received_at)",
    "events_received": "CREATE INDEX events_received ON events (received_at)",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--plans", action="store_true", help="print the full EXPLAIN ANALYZE plans")
    args = ap.parse_args()
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed: apt-get install -y postgresql (scripts/bootstrap.sh)")
    pg = PgServer(bin_dir).start("shared_buffers=1GB", "maintenance_work_mem=1GB", "max_wal_size=16GB",
                                 "synchronous_commit=off", "work_mem=64MB")
    out: list[str] = []
    try:
        engine = make_engine(pg.create_database("city"))
        db.upgrade(engine)
        with engine.begin() as conn:
            for name in INDEXES:
                if name == "events_id_key":
                    conn.execute(text("ALTER TABLE events DROP CONSTRAINT events_id_key"))
                else:
                    conn.execute(text(f"DROP INDEX {name}"))
        t0 = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text(f"""
                INSERT INTO events (id, node, kind, ts, received_at, data, snapshot, delayed, clock_synced)
                SELECT md5(i::text)::uuid::text,
                       'pole-' || lpad((i % {NODES})::text, 5, '0'),
                       CASE WHEN i % 10 = 0 THEN 'door.granted' WHEN i % 97 = 0 THEN 'alarm.pressed'
                            ELSE 'detection.person' END,
                       t, t + interval '200 milliseconds', '{{"zone": "lane", "score": 0.8}}'::json,
                       false, false, true
                FROM (SELECT i, timestamp '2025-11-23 00:00' + (i * (interval '365 days' / :n)) AS t
                      FROM generate_series(1, :n) AS i) AS g"""), {"n": args.rows})
        load_s = time.perf_counter() - t0
        out.append(f"  generated {args.rows:,} rows (a year, {NODES:,} nodes) in {load_s:.0f} s "
                   f"({args.rows / load_s:,.0f} rows/s, indexes dropped)")
        with engine.begin() as conn:
            for name, ddl in INDEXES.items():
                t = time.perf_counter()
                conn.execute(text(ddl))
                out.append(f"  index {name:<22} built in {time.perf_counter() - t:5.0f} s")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE events"))
            sizes = conn.execute(text(
                "SELECT pg_size_pretty(pg_relation_size('events')), pg_size_pretty(pg_indexes_size('events')), "
                "pg_size_pretty(pg_relation_size('events_received')), "
                "pg_size_pretty(pg_relation_size('events_node_received')), "
                "pg_size_pretty(pg_relation_size('events_id_key'))")).one()
            out.append(f"  table {sizes[0]}, all indexes {sizes[1]} (received_at {sizes[2]}, node+received_at "
                       f"{sizes[3]}, unique id {sizes[4]})")
            since = conn.execute(text("SELECT max(received_at) - interval '1 day' FROM events")).scalar()
            last_day = conn.execute(text("SELECT count(*) FROM events WHERE received_at >= :s"), {"s": since}).scalar()
            cursor = conn.execute(text("SELECT max(seq) - 5000 FROM events")).scalar()
            out.append(f"  the last day holds {last_day:,} events ({last_day / args.rows * 100:.2f} % of the table)")
            for label, sql in QUERIES.items():
                params = {"since": since, "cursor": cursor}
                conn.execute(text(sql), params).all()  # warm
                times = []
                plan: list[str] = []
                for _ in range(3):
                    plan = [r[0] for r in conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql), params)]
                    times.append(float(plan[-1].split(":")[1].strip().split()[0]))
                access = [line.strip() for line in plan if "Scan" in line]
                out.append(f"  {label:<58} {min(times):8.2f} ms (best of 3)  plan: "
                           + " / ".join(a.split("  (")[0] for a in access))
                if args.plans:
                    out.extend("      " + line for line in plan)
    finally:
        pg.stop()
    print(f"bench/events_index: events table on PostgreSQL with {args.rows:,} generated rows")
    for line in out:
        print(line)


if __name__ == "__main__":
    main()
