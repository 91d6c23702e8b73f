"""Self-test figures (issue 20).

1. One self-test on a simulated pole: the real checks over MockFactory pins, the simulated acoustic loop
   and the synthetic camera; wall time and CPU time (process_time) per run. On a Pi the tone check adds
   its playing time (0.5 s a try, up to 3 tries) and the camera check waits for a fresh frame.
2. A district's nightly window: each node's slot in the window (edge/selftest/schedule.py) for N nodes,
   the busiest minute and second.
3. The hub's load for those results: N ``selftest.result`` events through the real ingest (SQLite file,
   fake transport), in batches as they arrive in the busiest minute; CPU per result.
4. A press during the self-tests: alarm.pressed events fed between the result batches, the time each
   press batch takes from handle_batch to the alarm being on the live stream, against the same presses
   on an idle hub (the spine's latency; bench/alarm_latency.py measures it end to end over MQTT).
5. A door's self-test over real servers: mosquitto, ``pingan-hub serve`` and a ``pingan-edge run`` door
   (mock pins, reader simulator on a pty), the nightly run triggered over the control socket: the run's
   duration, the uplink probe's round trip and the clock skew it measured; then the hub stopped: how long
   the run takes when no receipt comes (bounded by ``selftest.uplink_limit_s``).

    .venv/bin/python bench/selftest.py [--nodes 2000] [--runs 20] [--presses 40] [--door-runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.protocol import Event, Topics, utcnow  # noqa: E402
from edge.selftest.checks import run_checks  # noqa: E402
from edge.selftest.schedule import offset, parse_window  # noqa: E402


def _timed_runs(checks: Any, runs: int) -> tuple[list[float], list[float], Any]:
    """Wall and CPU time of each whole run of the check list, and the last run's result."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        result = asyncio.run(run_checks(checks))
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    assert result is not None
    return walls, cpus, result


def one_pole(runs: int) -> None:
    from tests.edge.test_selftest import _pole

    with tempfile.TemporaryDirectory() as tmp:
        pole = _pole(Path(tmp), button_test_drive=5, siren_feedback=6)
        try:
            walls, cpus, result = _timed_runs(pole.checks, runs)
        finally:
            pole.close()
    print(f"one self-test, simulated pole ({runs} runs, {len(result.checks)} checks): "
          f"wall median {statistics.median(walls) * 1000:.0f} ms (max {max(walls) * 1000:.0f}), "
          f"CPU median {statistics.median(cpus) * 1000:.0f} ms")
    print("  " + ", ".join(f"{c.name}={c.status}" for c in result.checks))


def one_door(runs: int) -> None:
    """The door's check list in-process (MockFactory pins, the real driver over the pty simulator)."""
    from tests.edge.test_selftest_door import _door

    with tempfile.TemporaryDirectory() as tmp:
        rig = _door(Path(tmp))
        try:
            walls, cpus, result = _timed_runs(rig.checks, runs)
        finally:
            rig.close()
    print(f"one self-test, simulated door ({runs} runs, {len(result.checks)} checks, probe answered after 20 ms "
          f"in-process): wall median {statistics.median(walls) * 1000:.0f} ms (max {max(walls) * 1000:.0f}), "
          f"CPU median {statistics.median(cpus) * 1000:.0f} ms; relay touched {len(rig.relay_calls)} times")
    print("  " + ", ".join(f"{c.name}={c.status}" for c in result.checks))


def door_over_real_servers(runs: int) -> None:
    import shutil
    import subprocess

    import yaml

    from hub.transport.broker import Broker
    from tests.conftest import HubProc, NodeProc, wait_for

    tmp = Path(tempfile.mkdtemp(prefix="bench-selftest-"))
    sim = Path(tempfile.mkdtemp(prefix="pingan-sim-"))
    broker = Broker(tmp / "broker", kind="mosquitto").start()
    hub = door = None
    try:
        hub = HubProc(tmp, broker.url).start()
        node = "door-bench1"
        key = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "add", node, "--kind", "rental_door",
                              "--grid", "G01", "--place", "Bench", "--out", str(tmp / "bundles"),
                              "--block-key-file", str(tmp / "block.key")], env=hub.env, capture_output=True,
                             text=True, check=True).stdout.strip().splitlines()[-1]
        door = NodeProc(tmp, node, broker.url, sim, key, door={"unlock_s": 3}, reader={"port": "sim", "timeout": 0.5},
                        selftest={"uplink_limit_s": 5, "check_timeout_s": 10})
        cfg = yaml.safe_load(door.config_path.read_text())
        cfg["node"]["kind"] = "rental_door"
        door.config_path.write_text(yaml.safe_dump(cfg))
        door.start()
        hub.wait_online(node)
        durations, rtts, skews = [], [], []
        for _ in range(runs):
            w0 = time.perf_counter()
            result = door.control(cmd="selftest")["result"]
            durations.append(time.perf_counter() - w0)
            checks = {c["name"]: c for c in result["checks"]}
            if checks["uplink"]["status"] == "pass":
                rtts.append(float(checks["uplink"]["value"]))
            if checks["clock_skew"]["status"] != "skipped":
                skews.append(float(checks["clock_skew"]["value"]))
        wait_for(lambda: len(hub.get(f"/api/nodes/{node}/selftests")) >= runs, 30, 0.2, "results at the hub")
        print(f"door self-test over mosquitto + hub ({runs} runs, trigger schedule): run median "
              f"{statistics.median(durations) * 1000:.0f} ms (max {max(durations) * 1000:.0f}); uplink probe "
              f"round trip median {statistics.median(rtts) * 1000:.0f} ms (max {max(rtts) * 1000:.0f}, "
              f"{len(rtts)}/{runs} passed); clock skew median {statistics.median(skews) * 1000:+.1f} ms "
              f"(min {min(skews) * 1000:+.1f}, max {max(skews) * 1000:+.1f}); "
              f"probes stored at the hub: {len(hub.get('/api/events', node=node, kind='selftest.probe'))}")
        hub.stop()
        w0 = time.perf_counter()
        down = door.control(cmd="selftest")["result"]
        took = time.perf_counter() - w0
        checks = {c["name"]: c for c in down["checks"]}
        print(f"  hub stopped: the run took {took:.2f} s (uplink_limit_s 5); uplink={checks['uplink']['status']} "
              f"({checks['uplink']['detail']}), clock_skew={checks['clock_skew']['status']}")
    finally:
        for proc in (door, hub):
            if proc is not None:
                proc.stop()
        broker.stop()
        shutil.rmtree(sim, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def window(nodes: int) -> Counter[int]:
    _, span = parse_window("03:00", 60)
    secs = [int(offset(f"pole-{i:05d}", span).total_seconds()) for i in range(nodes)]
    per_min = Counter(s // 60 for s in secs)
    per_sec = Counter(secs)
    print(f"nightly window for {nodes} nodes (03:00 + 60 min): busiest minute {max(per_min.values())} nodes, "
          f"mean {nodes / 60:.1f}/min; busiest second {max(per_sec.values())} nodes")
    return per_min


def hub_load(nodes: int, presses: int, busiest_minute: int) -> None:
    from hub.app import create_app
    from hub.config import load_settings
    from hub.ingest.writer import Incoming
    from tests.fake_transport import FakeTransport

    def result(node: str, i: int) -> Event:
        checks = [{"name": n, "status": "pass", "value": 1.0, "limit": 2.0, "unit": "s"} for n in
                  ("button_loop", "audio_loop", "siren_feedback", "led", "enclosure", "camera", "uplink", "outbox",
                   "disk", "clock_skew", "cpu_temp", "power", "sd_wear")]
        if i % 50 == 0:
            checks[1] = {"name": "audio_loop", "status": "fail", "value": -80.0, "limit": -40.0, "unit": "dBFS"}
        return Event.make(node, "selftest.result", {"ok": i % 50 != 0, "trigger": "schedule", "duration_s": 2.1,
                                                    "checks": checks, "grid": f"G{i % 40:02d}"})

    mid = iter(range(1, 10_000_000))
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(load_settings(data_dir=Path(tmp), mqtt_enabled=True), transport=FakeTransport())
        ingest = app.state.hub.ingest
        seen: list[float] = []

        def notify(msgs: list[dict]) -> None:
            if any(m.get("type") == "event" and m.get("alarm") for m in msgs):
                seen.append(time.perf_counter())
        ingest.notify = notify

        def faults() -> int:
            from sqlalchemy import func, select

            from hub.store.schema import events
            with app.state.hub.engine.connect() as conn:
                return int(conn.execute(select(func.count()).where(events.c.kind == "node.fault")).scalar() or 0)

        def press_latency(label: str, between: list[list[Event]]) -> list[float]:
            lat = []
            for k in range(presses):
                if between:
                    batch = between[k % len(between)]
                    ingest.handle_batch([Incoming(Topics.events(e.node), e.to_bytes(), next(mid), 1, utcnow())
                                         for e in batch])
                ev = Event.make(f"pole-p{k:03d}", "alarm.pressed", {"count": 1})
                seen.clear()
                t0 = time.perf_counter()
                ingest.handle_batch([Incoming(Topics.events(ev.node), ev.to_bytes(), next(mid), 1, utcnow())])
                lat.append(((seen[0] if seen else time.perf_counter()) - t0) * 1000)
            lat.sort()
            print(f"  press → live stream, {label}: median {statistics.median(lat):.1f} ms, "
                  f"p95 {lat[int(0.95 * (len(lat) - 1))]:.1f} ms ({presses} presses)")
            return lat

        press_latency("idle hub", [])
        results = []
        for i in range(nodes):  # each node's uplink probe (receipted, not stored), then its result
            results += [Event.make(f"pole-{i:05d}", "selftest.probe", {"sent_at": utcnow().isoformat()}),
                        result(f"pole-{i:05d}", i)]
        per_batch = max(1, busiest_minute // 6)  # results arriving within ~10 s of the busiest minute
        batches = [results[i:i + 2 * per_batch] for i in range(0, 2 * nodes, 2 * per_batch)]
        c0, w0 = time.process_time(), time.perf_counter()
        for b in batches:
            ingest.handle_batch([Incoming(Topics.events(e.node), e.to_bytes(), next(mid), 1, utcnow())
                                 for e in b])
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        print(f"hub: {nodes} selftest.probe + selftest.result pairs in batches of {per_batch}: {wall:.2f} s wall, "
              f"{cpu / nodes * 1000:.2f} ms CPU per node (probe + result); the busiest minute ({busiest_minute} nodes) "
              f"costs {cpu / nodes * busiest_minute:.2f} s CPU of 60 s; "
              f"{faults()} hub node.faults raised for {(nodes + 49) // 50} failing poles")
        again = [[result(f"pole-{i:05d}", i + 1) for i in range(j, j + per_batch)] for j in range(0, 400, per_batch)]
        press_latency(f"between result batches of {per_batch}", again)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--presses", type=int, default=40)
    ap.add_argument("--door-runs", type=int, default=10)
    a = ap.parse_args()
    one_pole(a.runs)
    one_door(a.runs)
    door_over_real_servers(a.door_runs)
    per_min = window(a.nodes)
    hub_load(a.nodes, a.presses, max(per_min.values()))


if __name__ == "__main__":
    main()
