"""Report query time on SQLite with 1 million events (target: ≤ 1 s per report).

A district-sized month (seeds: 200 poles, 1,600 fingerprint doors, 534 grids; assumed 5 presses per
pole per day and 20–50 unlocks per door per day): 1,000,000 events over 30 days, mostly door
events, and the alarms of 200 poles over those days. Times the door query straight from events (what the
daily roll-up avoids), the roll-up itself, then /api/reports/summary's work for today, this week and
the whole month (median of 3).

    .venv/bin/python bench/report_query.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.alarms.escalation import Escalator  # noqa: E402
from hub.reports.service import Reports, parse_range  # noqa: E402
from hub.store.engine import init_db, make_engine  # noqa: E402

TZ = "Asia/Shanghai"
DAYS = 30
POLES, DOORS, GRIDS = 200, 1600, 534
EVENT_MIX = [("door.granted", 0.86), ("door.denied", 0.06), ("detection.person", 0.05), ("door.forced", 0.001),
             ("door.held_open", 0.009), ("detection.vehicle", 0.02)]


def fmt(dt: datetime) -> str:  # how SQLAlchemy's DateTime stores a (naive UTC) value in SQLite
    return dt.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def build(db: Path, n_events: int, end: datetime) -> None:
    engine = make_engine(f"sqlite:///{db}")
    init_db(engine)
    Escalator(engine)  # its table, as the hub makes it
    engine.dispose()
    rnd = random.Random(7)
    start = end - timedelta(days=DAYS)
    span = (end - start).total_seconds()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    created = fmt(start - timedelta(days=60))
    node_rows = [(f"pole-{i:03d}", "alarm_post", f"street {i}", f"G{i % GRIDS:03d}", created, "online")
                 for i in range(POLES)]
    node_rows += [(f"door-{i:04d}", "rental_door", f"block {i // 4}", f"G{i % GRIDS:03d}", created, "online")
                  for i in range(DOORS)]
    con.executemany("INSERT INTO nodes (id, kind, place, grid, created, state) VALUES (?,?,?,?,?,?)", node_rows)
    kinds, weights = zip(*EVENT_MIX, strict=True)
    batch = []
    for _ in range(n_events):
        kind = rnd.choices(kinds, weights)[0]
        node = f"door-{rnd.randrange(DOORS):04d}" if kind.startswith("door") else f"pole-{rnd.randrange(POLES):03d}"
        at = fmt(start + timedelta(seconds=rnd.random() * span))
        batch.append((str(uuid.UUID(int=rnd.getrandbits(128))), node, kind, at, at, "{}", 0, 0))
        if len(batch) == 50_000:
            con.executemany("INSERT INTO events (id, node, kind, ts, received_at, data, snapshot, delayed) "
                            "VALUES (?,?,?,?,?,?,?,?)", batch)
            batch.clear()
    if batch:
        con.executemany("INSERT INTO events (id, node, kind, ts, received_at, data, snapshot, delayed) "
                        "VALUES (?,?,?,?,?,?,?,?)", batch)
    alarm_rows = []
    for _ in range(POLES * 5 * DAYS):
        raised = start + timedelta(seconds=rnd.random() * span)
        kind = rnd.choices(["alarm.pressed", "tamper.opened", "node.offline", "detection.loitering"], [6, 1, 1, 2])[0]
        ack = raised + timedelta(seconds=rnd.uniform(5, 120))
        res = ack + timedelta(seconds=rnd.uniform(60, 1800))
        alarm_rows.append((str(uuid.uuid4()), f"pole-{rnd.randrange(POLES):03d}", kind, "resolved", 1, fmt(raised),
                           fmt(raised), fmt(ack), "op", fmt(res), "system" if kind == "node.offline" else "op",
                           rnd.choice(["assisted", "false_alarm", "other"])))
    con.executemany("INSERT INTO alarms (id, node, kind, state, count, node_ts, raised_at, acked_at, acked_by, "
                    "resolved_at, resolved_by, outcome) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", alarm_rows)
    con.commit()
    con.execute("ANALYZE")
    con.close()


def time_reports(db: Path, now: datetime) -> dict[str, float]:
    engine = make_engine(f"sqlite:///{db}")
    reports = Reports(engine, TZ)
    out = {}
    for label, kw in (("today", {"period": "today"}), ("week", {"period": "week"}),
                      ("30 days", {"start": (now - timedelta(days=DAYS - 1)).date().isoformat(),
                                   "end": now.date().isoformat()})):
        s, e, _ = parse_range(TZ, now=now, **kw)
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            r = reports.summary(s, e, now=now)
            runs.append(time.perf_counter() - t0)
        out[label] = sorted(runs)[1]
        out[label + " events"] = sum(r["doors"].values())
    engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, help="reuse a database this bench built before")
    args = ap.parse_args()
    now = datetime.now(ZoneInfo(TZ)).replace(hour=21, minute=0, second=0, microsecond=0)
    if args.db:
        db = args.db
    else:
        db = Path(tempfile.mkdtemp(prefix="pingan-report-")) / "hub.db"
        t0 = time.perf_counter()
        build(db, args.events, now)
        print(f"built {args.events:,} events, {POLES * 5 * DAYS:,} alarms, {POLES + DOORS} nodes in "
              f"{time.perf_counter() - t0:.1f} s ({db.stat().st_size / 1e6:.0f} MB): {db}")
    engine = make_engine(f"sqlite:///{db}")
    reports = Reports(engine, TZ)
    s, e, _ = parse_range(TZ, start=(now - timedelta(days=DAYS - 1)).date().isoformat(), end=now.date().isoformat(),
                          now=now)
    t0 = time.perf_counter()
    straight = reports._door_query(s, e)
    with engine.connect() as conn:
        n = sum(r.n for r in conn.execute(straight))
    print(f"door counts straight from events, 30 days: {(time.perf_counter() - t0) * 1000:8.1f} ms "
          f"({n:,} door events) - why closed days are rolled up")
    t0 = time.perf_counter()
    days = reports.roll_up(now=now.astimezone(UTC))
    print(f"roll-up of {days} closed days (the hub does this in the background): "
          f"{(time.perf_counter() - t0) * 1000:8.1f} ms")
    engine.dispose()
    times = time_reports(db, now)
    for label in ("today", "week", "30 days"):
        ok = "ok" if times[label] <= 1.0 else "OVER 1 s"
        print(f"  /api/reports/summary {label:<8} {times[label] * 1000:8.1f} ms "
              f"({times[label + ' events']:>9,} door events)  {ok}")


if __name__ == "__main__":
    main()
