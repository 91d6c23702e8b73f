"""What checking each answer against its response model costs: the console's biggest lists, in-process.

Every JSON route validates what its service returns against its model (hub/api/models) before it
is sent; a list of 1,000 events is 1,000 models built and dumped. This stores ``--events`` events
(half of them alarms) and times GET /api/events?limit=1000, GET /api/alarms?state=all&limit=1000
and GET /api/doors/audit over the ASGI app (Starlette's TestClient: no network), the service's
own work (its rows, json.dumps'd), and the models' part alone (the rows validated against the
route's model and dumped to JSON, as FastAPI does). Median of ``--repeat``.

    .venv/bin/python bench/api_bodies.py [--events 1000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import TypeAdapter  # noqa: E402
from sqlalchemy import select  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from edge.protocol import Event, Topics, utcnow  # noqa: E402
from hub.alarms.escalation import annotate  # noqa: E402
from hub.api.models.doors import AuditEntry  # noqa: E402
from hub.api.models.routes import AlarmListed, EventOut  # noqa: E402
from hub.app import create_app  # noqa: E402
from hub.config import load_settings  # noqa: E402
from hub.ingest.writer import BatchResult, Incoming, Processor  # noqa: E402
from hub.store.engine import jsonable  # noqa: E402
from hub.store.schema import events  # noqa: E402


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    app = create_app(load_settings(data_dir=Path(tempfile.mkdtemp(prefix="pingan-bench-")), mqtt_enabled=False))
    state = app.state.hub
    state.auth.add_user("bench", "bench password 1", "admin")
    state.service.register_node("door-01", kind="rental_door")
    state.doors.add_block("b1", units_=["101"], actor="bench")
    state.doors.add_door("door-01", "b1", actor="bench")
    items = []
    for i in range(args.events):
        node = "door-01" if i % 4 == 3 else f"pole-{i % 50:02d}"
        kind = "door.denied" if node == "door-01" else ("alarm.pressed" if i % 2 else "detection.person")
        ev = Event.make(node, kind, {"reason": "unknown finger"} if kind == "door.denied" else {})
        items.append((ev, Incoming(Topics.events(node), ev.to_bytes(), 1, 1, utcnow())))
    with state.engine.begin() as conn:
        Processor(state.settings).store_events(conn, items, BatchResult())
    client = TestClient(app)
    token = client.post("/api/login", json={"username": "bench", "password": "bench password 1"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}

    def event_rows() -> list[dict[str, Any]]:
        with state.engine.connect() as conn:
            return [jsonable(r) for r in conn.execute(select(events).order_by(events.c.seq.desc()).limit(1000))]

    cases: list[tuple[str, Callable[[], list[dict[str, Any]]], Any]] = [
        ("/api/events?limit=1000", event_rows, EventOut),
        ("/api/alarms?state=all&limit=1000", lambda: annotate(state.engine, state.service.list_alarms("all", 1000)),
         AlarmListed),
        ("/api/doors/audit", lambda: state.doors.audit_log(), AuditEntry),
    ]
    print(f"{args.events} events stored; median of {args.repeat}")
    print(f"{'route':34} {'rows':>5} {'API ms':>7} {'service ms':>10} {'models ms':>9} {'models us/row':>13}")
    for url, service, model in cases:
        rows = service()
        adapter = TypeAdapter(list[model])  # type: ignore[valid-type]
        api = median_ms(lambda u=url: client.get(u, headers=headers), args.repeat)
        bare = median_ms(lambda s=service: json.dumps(s()).encode(), args.repeat)
        models = median_ms(lambda a=adapter, r=rows: a.dump_json(a.validate_python(r), exclude_unset=True),
                           args.repeat)
        per_row = models * 1000 / len(rows) if rows else 0.0
        print(f"{url:34} {len(rows):5d} {api:7.1f} {bare:10.1f} {models:9.1f} {per_row:13.1f}")


if __name__ == "__main__":
    main()
