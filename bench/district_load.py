"""District load: the seeds' district (200 poles + 1,600 doors + heartbeats every 10 s) against one
hub, with presses meanwhile. Prints alarm press→WebSocket p50/p99 (target p99 ≤ 200 ms), events
made/stored/lost, the hub's CPU and memory, and the database size.

Virtual nodes run many per process (edge/sim/fleet.py); the hub, broker and simulators are
separate processes on loopback, stopped at the end even on failure.

    .venv/bin/python bench/district_load.py [--poles 200] [--doors 1600] [--seconds 120] [--procs 2]
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

import psutil
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.alarm_latency import pct  # noqa: E402
from hub.broker import Broker  # noqa: E402
from tests.conftest import HubProc  # noqa: E402


async def watch_alarms(hub: HubProc, until: float, arrivals: dict[str, float]) -> None:
    """Like the console: reconnect with ?since=<cursor> when the hub drops a slow client."""
    cursor: int | None = None
    while time.time() < until:
        url = hub.ws_url() if cursor is None else hub.ws_url(f"/api/live?since={cursor}")
        try:
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
        except (websockets.ConnectionClosed, OSError):
            await asyncio.sleep(0.5)


def run(poles: int, doors: int, seconds: float, procs: int, press_every: float,
        restart_broker_every: float = 0, cameras: int = 0) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="pingan-district-"))
    broker = Broker(tmp / "broker").start()
    hub = HubProc(tmp, broker.url, offline_after_s="60").start()
    sims: list[subprocess.Popen] = []
    hub_ps = psutil.Process(hub.proc.pid)
    try:
        cpu0 = hub_ps.cpu_times()
        t0 = time.time()
        for i in range(procs):
            sims.append(subprocess.Popen(
                [sys.executable, "-m", "edge.sim.fleet", "--broker", broker.url, "--prefix", f"s{i}-",
                 "--poles", str(poles // procs), "--doors", str(doors // procs), "--cameras", str(cameras // procs),
                 "--seconds", str(seconds),
                 "--press-every", str(press_every)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
        arrivals: dict[str, float] = {}
        peak_rss = 0
        rss_samples: list[tuple[float, int]] = []
        restarts = 0

        async def watch() -> None:
            nonlocal peak_rss, restarts
            task = asyncio.create_task(watch_alarms(hub, t0 + seconds + 40, arrivals))
            next_restart = t0 + restart_broker_every if restart_broker_every else float("inf")
            while not task.done():
                rss = hub_ps.memory_info().rss
                peak_rss = max(peak_rss, rss)
                rss_samples.append((time.time() - t0, rss))
                if time.time() >= next_restart and time.time() < t0 + seconds - 30:
                    broker.stop()  # the broker restarts (persistence on): nodes and hub reconnect and resend
                    await asyncio.sleep(3)
                    broker.start()
                    restarts += 1
                    next_restart = time.time() + restart_broker_every
                if all(p.poll() is not None for p in sims):
                    await asyncio.sleep(1)
                    task.cancel()
                    break
                await asyncio.sleep(1)

        asyncio.run(watch())
        results = [json.loads(p.communicate(timeout=120)[0] or b"{}") for p in sims]
        wall = time.time() - t0
        cpu1 = hub_ps.cpu_times()
        hub_cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall
        time.sleep(1)
        con = sqlite3.connect(hub.data_dir / "hub.db")
        stored = con.execute("SELECT COUNT(*) FROM events WHERE kind != 'node.offline'").fetchone()[0]
        nodes_seen = con.execute("SELECT COUNT(*) FROM nodes").fetchone()[0]
        con.close()
        db_bytes = sum(p.stat().st_size for p in hub.data_dir.glob("hub.db*"))
        made = sum(r.get("made", 0) for r in results)
        alarms_made = [a for r in results for a in r.get("alarms", [])]
        latencies = [arrivals[a[0]] for a in alarms_made if a[0] in arrivals]
        steady = [arrivals[a[0]] for a in alarms_made if a[0] in arrivals and a[1] - t0 > 30]
        rss_steady = [r for t, r in rss_samples if t > 60]  # after start-up
        return {"restarts": restarts,
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
                "hub_cpu": hub_cpu, "hub_peak_rss_mb": peak_rss / 2**20, "db_mb": db_bytes / 2**20}
    finally:
        for p in sims:
            if p.poll() is None:
                p.kill()
        hub.stop()
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--poles", type=int, default=200)
    ap.add_argument("--doors", type=int, default=1600)
    ap.add_argument("--cameras", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--press-every", type=float, default=30, help="mean seconds between presses per pole")
    ap.add_argument("--restart-broker-every", type=float, default=0,
                    help="soak: stop and start the broker this often (seconds); 0 = never")
    args = ap.parse_args()
    r = run(args.poles, args.doors, args.seconds, args.procs, args.press_every, args.restart_broker_every,
            args.cameras)
    print(f"bench/district_load: {r['nodes']} nodes ({args.poles} poles, {args.doors} doors, {args.cameras} cameras)"
          f" in {args.procs} "
          f"simulator processes for {r['seconds']:.0f} s; heartbeats every 10 s; door events 50/day x100")
    print(f"  nodes seen by the hub : {r['nodes_seen']}")
    print(f"  events made / stored  : {r['made']} / {r['stored']}   lost {r['lost']}   resent {r['resent']}")
    p50 = f"{r['p50_ms']:.1f}" if r["p50_ms"] is not None else "-"
    p99 = f"{r['p99_ms']:.1f}" if r["p99_ms"] is not None else "-"
    print(f"  alarms                : {r['alarms']} pressed, {r['alarms_seen_live']} seen live; "
          f"press->WebSocket p50 {p50} ms  p99 {p99} ms")
    if r["steady_p99_ms"] is not None:
        print(f"  after the first 30 s  : press->WebSocket p50 {r['steady_p50_ms']:.1f} ms  "
              f"p99 {r['steady_p99_ms']:.1f} ms (the start-up connection storm excluded)")
    print(f"  hub                   : CPU {r['hub_cpu'] * 100:.0f} % of a core, peak RSS {r['hub_peak_rss_mb']:.0f} MB,"
          f" database {r['db_mb']:.1f} MB")
    if r["restarts"]:
        print(f"  soak                  : broker restarted {r['restarts']} times; hub RSS after start-up "
              f"{r['rss_first_mb']:.0f} MB -> {r['rss_last_mb']:.0f} MB at the end")
    ok = r["lost"] == 0 and r["p99_ms"] is not None and r["p99_ms"] <= 200
    print(f"  target p99 <= 200 ms and nothing lost: {'MET' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
