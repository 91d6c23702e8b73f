"""Sensitive-period figures (issue 20 part 3), in process over a SQLite file and a fake transport.

1. The start of a district period over N poles whose configs the hub knows: the round that makes the apply
   rows (and sends the first pushes), each later round of paced pushes, and how long until every pole's
   push is out (rounds x PINGAN_SENSITIVE_TICK_S).
2. A round with nothing to do during a period (the job runs every 5 s): its cost.
3. The escalator's check with M open alarms, with and without a period in force (it runs every second).

    .venv/bin/python bench/sensitive.py [--nodes 500] [--alarms 500]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from edge.protocol import Event, Topics, utcnow  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--alarms", type=int, default=500)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # the escalations' and pushes' own log lines are not the figures
    from hub.app import HubState
    from hub.config import load_settings
    from hub.ingest.writer import Incoming
    from hub.nodes.config_push import push_config
    from hub.store.schema import nodes
    from tests.fake_transport import FakeTransport

    with tempfile.TemporaryDirectory() as tmp:
        fake = FakeTransport()
        fake.connected = True
        state = HubState(load_settings(data_dir=Path(tmp), mqtt_enabled=True), transport=fake)
        assert state.ingest is not None
        mid = iter(range(1, 10**9))
        t0 = time.perf_counter()
        for i in range(args.nodes):
            node = f"pole-{i:04d}"
            state.service.register_node(node, grid=f"G{i % 20:02d}")
            text = yaml.safe_dump({"node": {"id": node, "kind": "alarm_post", "grid": f"G{i % 20:02d}"},
                                   "vision": {"zones": [{"name": "lane", "points": [[0, 0], [1, 0], [1, 1]],
                                                         "schedule": ["22:00-06:00"], "loiter_s": 120}]}})
            sent = push_config(state.service, node, text, "bench")
            ev = Event.make(node, "config.applied", {"command_id": sent["command_id"], "boots": 1})
            state.ingest.handle_batch([Incoming(Topics.events(node), ev.to_bytes(), next(mid), 1, utcnow())])
        with state.engine.begin() as conn:
            conn.execute(nodes.update().values(state="online"))
        print(f"setup: {args.nodes} poles with an applied config in {time.perf_counter() - t0:.1f} s")

        state.periods.create(start=None, end=(utcnow() + timedelta(days=2)).isoformat(), grids=None,
                             reason="bench", actor="bench", profile=__import__(
                                 "hub.sensitive.profile", fromlist=["DetectionProfile"]).DetectionProfile(loiter_s=20))
        before = len(fake.published)
        t = time.perf_counter()
        state.sensitive.tick()
        first = time.perf_counter() - t
        rounds, later = 1, []
        while len(fake.published) - before < args.nodes and rounds < 10_000:
            t = time.perf_counter()
            state.sensitive.tick()
            later.append(time.perf_counter() - t)
            rounds += 1
        print(f"start of a district period over {args.nodes} poles: first round {first * 1000:.0f} ms "
              f"(apply rows for every pole + {state.sensitive.max_pushes} pushes)")
        if later:
            print(f"  later rounds ({state.sensitive.max_pushes} pushes each): median "
                  f"{statistics.median(later) * 1000:.0f} ms, max {max(later) * 1000:.0f} ms")
        print(f"  every push out after {rounds} rounds = {rounds * state.settings.sensitive_tick_s:.0f} s at "
              f"PINGAN_SENSITIVE_TICK_S={state.settings.sensitive_tick_s:g}")
        idle = []
        for _ in range(20):
            t = time.perf_counter()
            state.sensitive.tick()
            idle.append(time.perf_counter() - t)
        print(f"a round with nothing to do during the period: median {statistics.median(idle) * 1000:.1f} ms")

        events = [Event.make(f"pole-{i % args.nodes:04d}", "alarm.pressed", {}) for i in range(args.alarms)]
        for chunk in range(0, len(events), 200):
            state.ingest.handle_batch([Incoming(Topics.events(e.node), e.to_bytes(), next(mid), 1, utcnow())
                                       for e in events[chunk:chunk + 200]])
        soon = utcnow() + timedelta(seconds=10)  # open, not yet due either way: the check's steady cost
        with_p = []
        for _ in range(20):
            t = time.perf_counter()
            state.escalator.check(soon)
            with_p.append(time.perf_counter() - t)
        state.escalator.overrides = None
        without = []
        for _ in range(20):
            t = time.perf_counter()
            state.escalator.check(soon)
            without.append(time.perf_counter() - t)
        print(f"escalator check, {args.alarms} open alarms none due: {statistics.median(without) * 1000:.2f} ms "
              f"without periods, {statistics.median(with_p) * 1000:.2f} ms with a period in force")
        state.escalator.overrides = state.periods.escalation_overrides
        t = time.perf_counter()
        escalated = state.escalator.check(utcnow() + timedelta(seconds=31))
        print(f"escalating {len(escalated)} alarms at 30 s under the period: {(time.perf_counter() - t) * 1000:.0f} ms")
        state.engine.dispose()


if __name__ == "__main__":
    main()
