"""District load: virtual nodes against one hub, with presses meanwhile. Prints events made/stored/lost,
alarm press→WebSocket p50/p99 (target p99 ≤ 200 ms), the hub's CPU (% of one core) and its RSS over the
run (flat?), mosquitto's CPU (it is one thread), and the database size. Where a slow press spent its time:
press → hub received, press → out of the broker (``--tap``), the hub's own share alarm by alarm, and the
simulators' event-loop lag (a press waits for its simulator's loop before it is published).

Two profiles:

- ``stress`` (the default, the bench's behaviour before the city profile): a press every 30 s per pole
  (8,640 a day: no street sees that), door events at 100x the real 50 a day, a detection a minute.
- ``city``: a city of the seeds' size (issue 21): 2,000 poles, 16,000 doors and 2,000 camera points
  (``--nodes`` scales the three together), heartbeats every 10 s, 5 presses per pole a day plus a
  burst of 50 presses within 10 s (a street incident; again every ``--burst-every`` s), door events at
  the real 50 per door a day, a detection every 2 minutes per camera point (a tracked person or vehicle
  entering the zone; the node's tracker reports each once).

Virtual nodes run many per process (edge/sim/fleet.py); the hub, broker and simulators are
separate processes on loopback, stopped at the end even on failure.

    .venv/bin/python bench/district_load.py [--poles 200] [--doors 1600] [--seconds 120] [--procs 2]
    .venv/bin/python bench/district_load.py --profile city --nodes 10000 --seconds 1800 --procs 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.alarm_latency import pct  # noqa: E402
from edge.protocol import ROOT  # noqa: E402
from hub.transport.broker import Broker  # noqa: E402
from tests.conftest import HubProc  # noqa: E402


async def watch_alarms(hub: HubProc, until: float, arrivals: dict[str, float]) -> None:
    """Like the console: reconnect with ?since=<cursor> when the hub drops a slow client."""
    cursor: int | None = None
    while time.time() < until:
        try:  # a fresh single-use ticket per connection (asked off the loop: the loop is busy here)
            url = await asyncio.to_thread(hub.ws_url, "/api/live" if cursor is None else f"/api/live?since={cursor}")
            async with websockets.connect(url, max_size=None) as ws:
                while time.time() < until:
                    try:
                        raw = await asyncio.wait_for(ws.recv(), timeout=1)
                    except TimeoutError:
                        continue
                    msg = json.loads(raw)
                    if msg.get("cursor"):
                        cursor = max(cursor or 0, msg["cursor"])
                    if msg.get("type") == "event" and msg["event"]["kind"] == "alarm.pressed":
                        made = datetime.fromisoformat(msg["event"]["ts"]).timestamp()
                        arrivals.setdefault(msg["event"]["id"], time.time() - made)
        except (websockets.ConnectionClosed, OSError, httpx.HTTPError):
            await asyncio.sleep(0.5)


class BrokerTap:
    """A clean-session subscriber to every node's events that notes when each alarm first came out of the
    broker: a slow alarm then shows whether it was late reaching the broker or late leaving it for the hub."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.first: dict[str, float] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-tap", protocol=mqtt.MQTTv311)
        self.client.on_connect = lambda c, *_: c.subscribe(f"{ROOT}/nodes/+/events", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        if b'"alarm.pressed"' in msg.payload:
            self.first.setdefault(json.loads(msg.payload)["id"], time.time())

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def rss_curve(samples: list[tuple[float, int]], every_s: float = 300) -> list[tuple[int, float]]:
    """The hub's RSS at each whole 5 minutes of the run: the soak's memory line."""
    out, mark = [], 0.0
    for t, rss in samples:
        if t >= mark:
            out.append((int(t), rss / 2**20))
            mark += every_s
    return out


def rss_at(samples: list[tuple[float, int]], t: float) -> float | None:
    """The hub's RSS (MB) at the first sample from ``t`` seconds into the run."""
    return next((rss / 2**20 for at, rss in samples if at >= t), samples[-1][1] / 2**20 if samples else None)


def rss_slope(samples: list[tuple[float, int]]) -> float | None:
    """Least-squares slope of RSS over the second half of the run, in MB per hour (flat is ~0)."""
    half = [(t, r / 2**20) for t, r in samples if t >= samples[-1][0] / 2] if samples else []
    if len(half) < 10:
        return None
    n = len(half)
    mt = sum(t for t, _ in half) / n
    mr = sum(r for _, r in half) / n
    var = sum((t - mt) ** 2 for t, _ in half)
    return sum((t - mt) * (r - mr) for t, r in half) / var * 3600 if var else None


def hist_quantile(text: str, name: str, q: float, labels: dict[str, str] | None = None) -> float | None:
    """A quantile's upper bound from a Prometheus histogram's buckets (what a dashboard would show)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        wanted = (labels or {}).items()
        buckets = sorted(((float(s.labels["le"]), s.value) for s in family.samples
                          if s.name.endswith("_bucket") and all(s.labels.get(k) == v for k, v in wanted)),
                         key=lambda b: b[0])
        if not buckets or buckets[-1][1] == 0:
            return None
        total = buckets[-1][1]
        return next(le for le, count in buckets if count >= q * total)
    return None


def counter_value(text: str, name: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        if family.name == name.removesuffix("_total"):
            return sum(s.value for s in family.samples if s.name == name)
    return None


PROFILES: dict[str, dict[str, float]] = {
    # the bench's behaviour before issue 21: far more presses and door events than a street makes
    "stress": {"press_every": 30, "speedup": 100, "camera_every": 60, "burst": 0, "burst_every": 0},
    # a real city (issue 21): 5 presses per pole a day plus bursts, door events 50 a day, a detection every 2 min
    "city": {"press_every": 86400 / 5, "speedup": 1, "camera_every": 120, "burst": 50, "burst_every": 600},
}
CITY = {"poles": 2000, "doors": 16000, "cameras": 2000}


def city_mix(nodes: int) -> tuple[int, int, int]:
    """Poles, doors and cameras for ``nodes`` nodes in the city's proportions (1 : 8 : 1)."""
    total = sum(CITY.values())
    poles, cameras = nodes * CITY["poles"] // total, nodes * CITY["cameras"] // total
    return poles, nodes - poles - cameras, cameras


def run(poles: int, doors: int, seconds: float, procs: int, press_every: float,
        restart_broker_every: float = 0, cameras: int = 0, tap: bool = False, *, speedup: float = 100,
        camera_every: float = 60, burst: int = 0, burst_at: float = 60, burst_every: float = 0,
        py_spy: str | None = None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="pingan-district-"))
    broker = Broker(tmp / "broker").start()
    hub = HubProc(tmp, broker.url, offline_after_s="60").start()
    sims: list[subprocess.Popen] = []
    hub_ps = psutil.Process(hub.proc.pid)
    broker_tap = BrokerTap(broker.port) if tap else None
    try:
        cpu0 = hub_ps.cpu_times()
        t0 = time.time()
        for i in range(procs):
            share = burst // procs + (1 if i < burst % procs else 0)  # the burst's presses split over processes
            sims.append(subprocess.Popen(
                [sys.executable, "-m", "edge.sim.fleet", "--broker", broker.url, "--prefix", f"s{i}-",
                 "--poles", str(poles // procs), "--doors", str(doors // procs), "--cameras", str(cameras // procs),
                 "--seconds", str(seconds), "--speedup", str(speedup), "--camera-every", str(camera_every),
                 "--burst", str(share), "--burst-at", str(burst_at), "--burst-every", str(burst_every),
                 "--press-every", str(press_every)],
                # a file, not a pipe: a simulator's result (every alarm it made) can exceed a pipe's buffer, and
                # one blocked writing it at exit would never exit while the bench waits for it to
                stdout=(tmp / f"sim-{i}.json").open("wb"), stderr=(tmp / f"sim-{i}.err").open("wb")))
        sim_ps = [psutil.Process(p.pid) for p in sims]
        spy = None
        if py_spy:  # where the hub's CPU goes: samples only threads holding the GIL, collapsed stacks
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(hub.proc.pid),
                                    "--gil", "--threads", "--nonblocking", "--rate", "100", "--format", "raw",
                                    "--duration", str(int(seconds)), "--output", py_spy],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        broker_cpu: dict[int, float] = {}  # per broker process (a restart makes a new one): its CPU seconds
        arrivals: dict[str, float] = {}
        sim_cpu: dict[int, float] = {}
        peak_rss = 0
        rss_samples: list[tuple[float, int]] = []
        restarts = 0
        outages: list[tuple[float, float]] = []  # (broker down, broker back), wall clock

        async def watch() -> None:
            nonlocal peak_rss, restarts
            # watched until the simulators exit (below): their connect phase before the ``seconds`` of load grows
            # with the node count and the machine's load, and their drain after it takes up to 30 s
            task = asyncio.create_task(watch_alarms(hub, t0 + seconds + 40 + max(600.0, seconds), arrivals))
            next_restart = t0 + restart_broker_every if restart_broker_every else float("inf")
            while not task.done():
                if broker.proc is not None and broker.proc.poll() is None:
                    try:
                        t = psutil.Process(broker.proc.pid).cpu_times()
                        broker_cpu[broker.proc.pid] = t.user + t.system
                    except psutil.Error:
                        pass
                for p in sim_ps:  # read before they exit (a finished child's times are gone)
                    try:
                        t = p.cpu_times()
                        sim_cpu[p.pid] = t.user + t.system
                    except psutil.Error:
                        pass
                rss = hub_ps.memory_info().rss
                peak_rss = max(peak_rss, rss)
                rss_samples.append((time.time() - t0, rss))
                if len(rss_samples) % 300 == 0:  # a line every ~5 min, so a long soak shows its memory as it goes
                    print(f"  ... {time.time() - t0:5.0f} s: hub RSS {rss / 2**20:.0f} MB, broker restarts {restarts}",
                          flush=True)
                if time.time() >= next_restart and time.time() < t0 + seconds - 30:
                    down = time.time()
                    broker.stop()  # the broker restarts (persistence on): nodes and hub reconnect and resend
                    await asyncio.sleep(3)
                    broker.start()
                    outages.append((down, time.time()))
                    restarts += 1
                    next_restart = time.time() + restart_broker_every
                if all(p.poll() is not None for p in sims):
                    await asyncio.sleep(1)
                    task.cancel()
                    break
                await asyncio.sleep(1)

        asyncio.run(watch())
        try:  # where the time went, stage by stage, as the hub itself measured it
            scraped = hub.metrics()
        except Exception as exc:  # noqa: BLE001 - a slow scrape must not throw away a 30-minute run
            print(f"  (the hub's /metrics did not answer: {exc!r}; stage figures missing)", flush=True)
            scraped = ""
        stages = {"alarm receive->commit": hist_quantile(scraped, "pingan_hub_alarm_ingest_lag_seconds", 0.99),
                  "commit->WebSocket (alarms)": hist_quantile(scraped, "pingan_hub_live_wait_seconds", 0.99,
                                                              {"lane": "urgent"}),
                  "one commit": hist_quantile(scraped, "pingan_hub_batch_seconds", 0.99),
                  "event loop lag": hist_quantile(scraped, "pingan_hub_loop_lag_seconds", 0.99)}
        superseded = counter_value(scraped, "pingan_hub_heartbeats_superseded_total")
        for p in sims:
            p.wait(timeout=300)
        results = [json.loads((tmp / f"sim-{i}.json").read_bytes() or b"{}") for i in range(len(sims))]
        if spy is not None:
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
        wall = time.time() - t0
        cpu1 = hub_ps.cpu_times()
        hub_cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall
        time.sleep(1)
        con = sqlite3.connect(hub.data_dir / "hub.db")
        # what the simulators made (each event's data says so), not what the hub made of it: the offline alarms
        # and their summary when a simulator exits before the other one has drained
        stored = con.execute("SELECT COUNT(*) FROM events WHERE json_extract(data, '$.sim')").fetchone()[0]
        nodes_seen = con.execute("SELECT COUNT(*) FROM nodes").fetchone()[0]
        con.close()
        db_bytes = sum(p.stat().st_size for p in hub.data_dir.glob("hub.db*"))
        made = sum(r.get("made", 0) for r in results)
        alarms_made = [a for r in results for a in r.get("alarms", [])]
        latencies = [arrivals[a[0]] for a in alarms_made if a[0] in arrivals]
        steady = [arrivals[a[0]] for a in alarms_made if a[0] in arrivals and a[1] - t0 > 30]
        rss_steady = [r for t, r in rss_samples if t > 60]  # after start-up
        # an alarm "crossed an outage" when the broker was down at some moment between its press and its arrival:
        # its delay is mostly the outage's; report how soon after the broker came back it arrived instead
        crossed, clear, slow = [], [], []
        con = sqlite3.connect(hub.data_dir / "hub.db")
        received = {row[0]: (datetime.fromisoformat(row[1]).timestamp() if "+" in row[1]
                             else datetime.fromisoformat(row[1] + "+00:00").timestamp())
                    for row in con.execute("SELECT id, received_at FROM events WHERE kind = 'alarm.pressed'")}
        con.close()
        for event_id, made_at in alarms_made:
            if event_id not in arrivals:
                continue
            lat = arrivals[event_id]
            hit = next(((d, u) for d, u in outages if made_at <= u and made_at + lat >= d), None)
            if hit:
                crossed.append(made_at + lat - hit[1])
            elif made_at - t0 > 30:
                clear.append(lat)
                if lat > 0.2:  # why was it slow: before the hub had it, or between the hub and the console?
                    since_up = min((made_at - u for _, u in outages if made_at >= u), default=None)
                    out_of_broker = broker_tap.first.get(event_id) if broker_tap else None
                    slow.append((lat, made_at - t0, received.get(event_id, made_at) - made_at, since_up,
                                 out_of_broker - made_at if out_of_broker else None))
        to_hub = [received[a[0]] - a[1] for a in alarms_made if a[0] in received]  # press -> hub receive
        # the hub's own share, alarm by alarm: its paho thread had the press -> the console had it (same clock)
        in_hub = [a[1] + arrivals[a[0]] - received[a[0]] for a in alarms_made if a[0] in received and a[0] in arrivals]
        to_tap = ([broker_tap.first[a[0]] - a[1] for a in alarms_made if a[0] in broker_tap.first]
                  if broker_tap else [])
        sim_lags = [x for r in results for x in r.get("loop_lags", [])]
        sim_gc = [d for r in results for g, d in r.get("gc_pauses", []) if g == 2]
        return {"restarts": restarts,
                "sim_lag_p99_ms": pct(sim_lags, 99) * 1000 if sim_lags else None,
                "sim_lag_max_ms": max(sim_lags) * 1000 if sim_lags else None,
                "sim_gc2_n": len(sim_gc), "sim_gc2_max_ms": max(sim_gc) * 1000 if sim_gc else None,
                "to_hub_p50_ms": pct(to_hub, 50) * 1000 if to_hub else None,
                "to_hub_p99_ms": pct(to_hub, 99) * 1000 if to_hub else None,
                "in_hub_p50_ms": pct(in_hub, 50) * 1000 if in_hub else None,
                "in_hub_p99_ms": pct(in_hub, 99) * 1000 if in_hub else None,
                "in_hub_max_ms": max(in_hub) * 1000 if in_hub else None,
                "to_tap_p99_ms": pct(to_tap, 99) * 1000 if to_tap else None,
                "rss_first_mb": rss_steady[0] / 2**20 if rss_steady else None,
                "rss_last_mb": rss_steady[-1] / 2**20 if rss_steady else None,
                "nodes": poles + doors + cameras, "nodes_seen": nodes_seen, "seconds": seconds, "made": made,
                "stored": stored,
                "lost": made - stored, "resent": sum(r.get("resent", 0) for r in results),
                "alarms": len(alarms_made), "alarms_seen_live": len(latencies),
                "p50_ms": pct(latencies, 50) * 1000 if latencies else None,
                "p99_ms": pct(latencies, 99) * 1000 if latencies else None,
                "steady_p50_ms": pct(steady, 50) * 1000 if steady else None,
                "steady_p99_ms": pct(steady, 99) * 1000 if steady else None,
                "slow": sorted(slow, reverse=True)[:12], "stages": stages, "superseded": superseded,
                "clear_n": len(clear), "clear_p50_ms": pct(clear, 50) * 1000 if clear else None,
                "clear_p99_ms": pct(clear, 99) * 1000 if clear else None,
                "crossed_n": len(crossed), "crossed_p99_s": pct(crossed, 99) if crossed else None,
                "crossed_max_s": max(crossed) if crossed else None,
                "rss_curve": rss_curve(rss_samples), "rss_slope_mb_h": rss_slope(rss_samples),
                "rss_half_mb": rss_at(rss_samples, seconds / 2), "rss_end_mb": rss_at(rss_samples, seconds),
                "hub_cpu": hub_cpu, "hub_peak_rss_mb": peak_rss / 2**20, "db_mb": db_bytes / 2**20,
                "broker_cpu": sum(broker_cpu.values()) / wall, "sims_cpu": sum(sim_cpu.values()) / wall,
                "rss_samples": rss_samples,
                "heartbeats_per_s": (poles + doors + cameras) / 10}
    finally:
        if broker_tap:
            broker_tap.stop()
        for p in sims:
            if p.poll() is None:
                p.kill()
        hub.stop()
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="stress",
                    help="stress: the old bench's press/door rates; city: a real city's (see above)")
    ap.add_argument("--nodes", type=int, default=None,
                    help="city profile: total nodes, split 1:8:1 into poles, doors, cameras (default 20,000)")
    ap.add_argument("--poles", type=int, default=None, help="default 200 (stress) or from --nodes (city)")
    ap.add_argument("--doors", type=int, default=None, help="default 1600 (stress) or from --nodes (city)")
    ap.add_argument("--cameras", type=int, default=None, help="default 200 (stress) or from --nodes (city)")
    ap.add_argument("--seconds", type=float, default=120, help="how long the nodes send (the goal: 1800)")
    ap.add_argument("--procs", type=int, default=2,
                    help="simulator processes (one carries ~10,000 nodes on about a third of a core)")
    ap.add_argument("--press-every", type=float, default=None,
                    help="mean seconds between presses per pole (stress 30; city 17,280 = 5 a day)")
    ap.add_argument("--burst", type=int, default=None, help="presses in a burst within 10 s (city 50, stress 0)")
    ap.add_argument("--burst-at", type=float, default=60, help="seconds into the run of the first burst")
    ap.add_argument("--burst-every", type=float, default=None, help="seconds between bursts (city 600; 0: one)")
    ap.add_argument("--rss-every", type=float, default=None,
                    help="seconds between the lines of the hub's RSS curve (default: 300, or an eighth of a short run)")
    ap.add_argument("--restart-broker-every", type=float, default=0,
                    help="soak: stop and start the broker this often (seconds); 0 = never")
    ap.add_argument("--py-spy", metavar="FILE", default=None,
                    help="record the hub with py-spy (dev extra) into FILE as collapsed stacks (flamegraph input)")
    ap.add_argument("--tap", action="store_true",
                    help="also subscribe to every node's events, to tell for each slow alarm when it left the broker")
    args = ap.parse_args()
    prof = PROFILES[args.profile]
    if args.profile == "city":
        mix = city_mix(args.nodes if args.nodes is not None else sum(CITY.values()))
    else:
        mix = (200, 1600, 200) if args.nodes is None else city_mix(args.nodes)
    poles, doors, cameras = (given if given is not None else d
                             for given, d in zip((args.poles, args.doors, args.cameras), mix, strict=True))
    press_every = args.press_every if args.press_every is not None else prof["press_every"]
    burst = args.burst if args.burst is not None else int(prof["burst"])
    burst_every = args.burst_every if args.burst_every is not None else prof["burst_every"]
    r = run(poles, doors, args.seconds, args.procs, press_every, args.restart_broker_every, cameras, args.tap,
            speedup=prof["speedup"], camera_every=prof["camera_every"], burst=burst, burst_at=args.burst_at,
            burst_every=burst_every, py_spy=args.py_spy)
    print(f"bench/district_load --profile {args.profile}: {r['nodes']} nodes ({poles} poles, {doors} doors, "
          f"{cameras} cameras) in {args.procs} simulator processes for {r['seconds']:.0f} s")
    print(f"  load                  : heartbeats every 10 s ({r['heartbeats_per_s']:.0f}/s); a press every "
          f"{press_every:.0f} s per pole, bursts of {burst} presses in 10 s (first at {args.burst_at:.0f} s"
          f"{f', every {burst_every:.0f} s' if burst and burst_every else ''}); door events "
          f"{50 * prof['speedup']:.0f}/door/day; a detection every {prof['camera_every']:.0f} s per camera")
    print(f"  nodes seen by the hub : {r['nodes_seen']}")
    print(f"  events made / stored  : {r['made']} / {r['stored']}   lost {r['lost']}   resent {r['resent']}"
          f"   ({'nothing lost' if r['lost'] == 0 else 'EVENTS LOST'})")
    p50 = f"{r['p50_ms']:.1f}" if r["p50_ms"] is not None else "-"
    p99 = f"{r['p99_ms']:.1f}" if r["p99_ms"] is not None else "-"
    print(f"  alarms                : {r['alarms']} pressed, {r['alarms_seen_live']} seen live; "
          f"press->WebSocket p50 {p50} ms  p99 {p99} ms")
    if r["to_hub_p99_ms"] is not None:  # what of it was before the hub had the press (simulator, broker)
        print(f"  press->hub received   : p50 {r['to_hub_p50_ms']:.1f} ms  p99 {r['to_hub_p99_ms']:.1f} ms (the "
              f"simulators' and the broker's share; a starved simulator publishes late)")
    if r["to_tap_p99_ms"] is not None:  # the tap: another subscriber of the same broker
        print(f"  press->out of broker  : p99 {r['to_tap_p99_ms']:.1f} ms (as a second subscriber saw it: late here "
              f"means late reaching the broker, not late leaving it for the hub)")
    if r["in_hub_p99_ms"] is not None:
        print(f"  hub received->console : p50 {r['in_hub_p50_ms']:.1f} ms  p99 {r['in_hub_p99_ms']:.1f} ms  "
              f"max {r['in_hub_max_ms']:.1f} ms (the hub's own share, alarm by alarm: store, commit, fan-out, "
              f"WebSocket)")
    if r["sim_lag_p99_ms"] is not None:  # a press waits for its simulator's loop before it is published
        gc2 = (f"; full collections {r['sim_gc2_n']}, longest {r['sim_gc2_max_ms']:.0f} ms" if r["sim_gc2_n"]
               else "; no full collection")
        print(f"  simulators' loop lag  : p99 {r['sim_lag_p99_ms']:.1f} ms  max {r['sim_lag_max_ms']:.0f} ms{gc2}")
    if r["steady_p99_ms"] is not None:
        print(f"  after the first 30 s  : press->WebSocket p50 {r['steady_p50_ms']:.1f} ms  "
              f"p99 {r['steady_p99_ms']:.1f} ms (the start-up connection storm excluded)")
    print(f"  hub                   : CPU {r['hub_cpu'] * 100:.0f} % of a core, peak RSS {r['hub_peak_rss_mb']:.0f} MB,"
          f" database {r['db_mb']:.1f} MB")
    print(f"  mosquitto             : CPU {r['broker_cpu'] * 100:.0f} % of a core (one thread: 100 % is its ceiling);"
          f" simulators {r['sims_cpu'] * 100:.0f} % of a core in all")
    every = args.rss_every or (300 if args.seconds >= 2400 else max(10, args.seconds / 8))
    curve = "  ".join(f"{t // 60}m{t % 60:02d}s {mb:.0f}" for t, mb in rss_curve(r["rss_samples"], every))
    print(f"  hub RSS over the run  : {curve} (MB)")
    if r["rss_slope_mb_h"] is not None:
        print(f"  hub RSS trend         : {r['rss_slope_mb_h']:+.1f} MB/hour over the second half of the run")
    print("  hub stages p99 (<=)   : " + ", ".join(f"{k} {v * 1000:.0f} ms" if v is not None else f"{k} -"
                                                 for k, v in r["stages"].items()))
    if r["superseded"]:
        print(f"  heartbeats superseded : {r['superseded']:.0f} (the writer was behind; each node's newest was kept)")
    if r["restarts"]:
        print(f"  soak                  : broker restarted {r['restarts']} times (down 3 s each); hub RSS after "
              f"start-up {r['rss_first_mb']:.0f} MB -> {r['rss_last_mb']:.0f} MB at the end")
        if r["clear_p99_ms"] is not None:
            print(f"  alarms clear of outages: {r['clear_n']}, press->WebSocket p50 {r['clear_p50_ms']:.1f} ms  "
                  f"p99 {r['clear_p99_ms']:.1f} ms")
        if r["crossed_max_s"] is not None:
            print(f"  alarms across outages : {r['crossed_n']}, arrived after the broker came back: "
                  f"p99 {r['crossed_p99_s']:.1f} s, max {r['crossed_max_s']:.1f} s")
    for lat, at, to_hub, since_up, out_of_broker in r["slow"]:  # the 12 slowest over 200 ms, clear of outages
        up = (f", {since_up:.1f} s after the broker came back" if since_up is not None
              else ", before any restart" if r["restarts"] else "")
        tapped = f", out of the broker after {out_of_broker:.2f} s" if out_of_broker is not None else ""
        print(f"    slow alarm          : {lat:.2f} s (hub stored it after {to_hub:.2f} s{tapped}), pressed at "
              f"{at:.0f} s{up}")
    p99_judged = r["clear_p99_ms"] if r["restarts"] else r["p99_ms"]  # a soak judges alarms clear of outages
    ok = r["lost"] == 0 and p99_judged is not None and p99_judged <= 200
    print(f"  target p99 <= 200 ms and nothing lost: {'MET' if ok else 'NOT MET'}")
    print(f"  target hub <= 60 % of one core: {'MET' if r['hub_cpu'] <= 0.6 else 'NOT MET'} "
          f"({r['hub_cpu'] * 100:.0f} %)")
    if r["rss_half_mb"] and r["rss_end_mb"]:
        # flat: the second half of the run (start-up and warm caches behind it) adds at most 5 % to the RSS
        grew = r["rss_end_mb"] - r["rss_half_mb"]
        flat = grew <= 0.05 * r["rss_half_mb"]
        print(f"  memory flat (second half adds <= 5 %): {'MET' if flat else 'NOT MET'} "
              f"({r['rss_half_mb']:.1f} MB at half time -> {r['rss_end_mb']:.1f} MB at the end, {grew:+.1f} MB)")


if __name__ == "__main__":
    main()
