"""Press -> GB/T 28181 Alarm MESSAGE at the city platform, beside a district's load (issue 19).

The district is bench/district_load.py's (real mosquitto, the hub as a process, virtual nodes many per
process); the hub here also networks with a city platform: a small SIP receiver in this process (UDP,
answers REGISTER and every MESSAGE 200 and notes when each Alarm arrived). A press is matched to its
Alarm by the pole's one-key-button channel ID (from the hub's gb_ids table) and the order of arrival;
latency is the simulator's press time to the Alarm's arrival here. Also printed: the hub's own figure
(commit -> the platform's 200, pingan_hub_gb28181_alarm_seconds) and the console's press -> WebSocket,
measured in the same run, so the two paths can be compared under the same load.

Target (issue 19): p99 <= 500 ms under a 2,000-node district. Shared 2-core machine:

    .venv/bin/python bench/gb_alarm_latency.py --seconds 90
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import district_load  # noqa: E402
from bench.alarm_latency import pct  # noqa: E402
from hub.gb28181.sip import SipParseError, parse_datagram, response_to  # noqa: E402
from hub.transport.broker import free_port  # noqa: E402
from tests.conftest import HubProc  # noqa: E402

HUB_ID = "35020300002000000001"
PLATFORM_ID = "35020000002000000001"


class CityPlatform:
    """The upper platform, as small as the bench needs: 200 to everything, Alarm arrivals noted."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.alarms: list[tuple[float, str]] = []  # (arrived, DeviceID)
        self.registers = 0
        self.keepalives = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            at = time.time()
            try:
                msg = parse_datagram(data)
            except SipParseError:
                continue
            if not msg.is_request:
                continue
            resp = response_to(msg, 200)
            if msg.method == "REGISTER":
                self.registers += 1
                resp.add("Expires", "3600")
            elif msg.method == "MESSAGE":
                body = msg.body.decode("gb18030", errors="replace")
                if "<CmdType>Alarm</CmdType>" in body:
                    start = body.index("<DeviceID>") + len("<DeviceID>")
                    self.alarms.append((at, body[start:start + 20]))
                elif "<CmdType>Keepalive</CmdType>" in body:
                    self.keepalives += 1
            self.sock.sendto(resp.encode(), addr)

    def stop(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--poles", type=int, default=200)
    ap.add_argument("--doors", type=int, default=1600)
    ap.add_argument("--cameras", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=90)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--press-every", type=float, default=30, help="mean seconds between presses per pole")
    args = ap.parse_args()

    city = CityPlatform()
    hubs: list[HubProc] = []

    def hub_with_city(tmp: Path, broker_url: str, **settings: str) -> HubProc:
        hub = HubProc(tmp, broker_url, **settings, gb_id=HUB_ID, gb_password="bench-city-password",
                      gb_upstream=f"sip:{PLATFORM_ID}@127.0.0.1:{city.port};transport=udp",
                      gb_sip_port=str(free_port()), gb_sip_host="127.0.0.1", gb_keepalive_s="10")
        hubs.append(hub)
        return hub

    district_load.HubProc = hub_with_city  # type: ignore[assignment, misc]
    captured: dict[str, Any] = {}
    real_metrics = HubProc.metrics

    def metrics_and_keep(self: HubProc) -> str:
        text = real_metrics(self)
        captured["metrics"] = text
        return text

    HubProc.metrics = metrics_and_keep  # type: ignore[method-assign]
    try:
        r = district_load.run(args.poles, args.doors, args.seconds, args.procs, args.press_every,
                              cameras=args.cameras)
    finally:
        city.stop()
    hub = hubs[0]
    con = sqlite3.connect(hub.data_dir / "hub.db")
    node_of = dict(con.execute("SELECT id, node FROM events WHERE kind = 'alarm.pressed'").fetchall())
    button_of = {n: g[:10] + "134" + g[13:] for n, g in con.execute("SELECT node, gb_id FROM gb_ids")}
    con.close()
    made: list[tuple[str, float]] = []
    for f in sorted(hub.data_dir.parent.glob("sim-*.json")):
        made += [(a[0], a[1]) for a in json.loads(f.read_bytes() or b"{}").get("alarms", [])]
    arrivals: dict[str, list[float]] = defaultdict(list)
    for at, device in city.alarms:
        arrivals[device].append(at)
    presses: dict[str, list[float]] = defaultdict(list)
    for event_id, at in sorted(made, key=lambda a: a[1]):
        node = node_of.get(event_id)
        if node is not None and node in button_of:
            presses[button_of[node]].append(at)
    latencies: list[float] = []
    steady: list[float] = []  # presses after the first 30 s (the start-up connection storm excluded)
    first = min((at for _, at in made), default=0.0)
    missing = 0
    for device, times in presses.items():
        got = sorted(arrivals.get(device, []))
        for i, at in enumerate(times):  # the i-th press of a pole -> its i-th Alarm
            if i < len(got) and got[i] >= at:
                latencies.append(got[i] - at)
                if at - first > 30:
                    steady.append(got[i] - at)
            else:
                missing += 1
    hub_p99 = district_load.hist_quantile(captured.get("metrics", ""), "pingan_hub_gb28181_alarm_seconds", 0.99)
    hub_p50 = district_load.hist_quantile(captured.get("metrics", ""), "pingan_hub_gb28181_alarm_seconds", 0.5)
    print(f"bench/gb_alarm_latency: {r['nodes']} nodes ({args.poles} poles, {args.doors} doors, {args.cameras} "
          f"cameras) for {r['seconds']:.0f} s, a press every {args.press_every:.0f} s per pole; city platform over UDP")
    print(f"  events made / stored       : {r['made']} / {r['stored']}   lost {r['lost']}")
    print(f"  presses                    : {len(made)} made, {sum(len(v) for v in presses.values())} stored with a "
          f"GB ID; Alarm MESSAGEs at the platform {len(city.alarms)} (all kinds); registrations {city.registers}, "
          f"keepalives {city.keepalives}")
    if latencies:
        print(f"  press -> Alarm at the city : n {len(latencies)}  p50 {pct(latencies, 50) * 1000:.1f} ms  "
              f"p99 {pct(latencies, 99) * 1000:.1f} ms  max {max(latencies) * 1000:.1f} ms   unmatched {missing}")
    if steady:
        print(f"  after the first 30 s       : n {len(steady)}  p50 {pct(steady, 50) * 1000:.1f} ms  "
              f"p99 {pct(steady, 99) * 1000:.1f} ms  max {max(steady) * 1000:.1f} ms")
    if r["to_hub_p99_ms"] is not None:
        print(f"  of which press -> hub      : p50 {r['to_hub_p50_ms']:.1f} ms  p99 {r['to_hub_p99_ms']:.1f} ms "
              "(simulators and broker, before the hub has the press)")
    if hub_p99 is not None:
        print(f"  hub: queued -> platform 200: p50 <= {hub_p50 * 1000 if hub_p50 else 0:.0f} ms  "
              f"p99 <= {hub_p99 * 1000:.0f} ms (the hub's histogram buckets)")
    p99c = f"{r['p99_ms']:.1f}" if r["p99_ms"] is not None else "-"
    print(f"  same run, press -> console : p99 {p99c} ms; hub CPU {r['hub_cpu'] * 100:.0f} % of a core, peak RSS "
          f"{r['hub_peak_rss_mb']:.0f} MB")
    every_up = bool(latencies) and missing == 0
    ok = every_up and pct(latencies, 99) <= 0.5
    ok_steady = every_up and bool(steady) and pct(steady, 99) <= 0.5
    print(f"  target p99 <= 500 ms, every press up: whole run {'MET' if ok else 'NOT MET'}; after the first 30 s "
          f"{'MET' if ok_steady else 'NOT MET'}")


if __name__ == "__main__":
    main()
