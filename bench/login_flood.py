"""A login flood against a real hub: does an operator's alarm list stay fast, and the hub's memory flat?

A broker and ``pingan-hub serve`` run as processes; an operator is logged in. First the operator's
``GET /api/alarms`` is timed back to back while nothing else happens (idle), then again while
``--concurrency`` clients send logins as fast as the hub answers them for ``--seconds``: unknown
random usernames, the operator's name with wrong passwords, and now and then the right one. The
hub's RSS is sampled from /proc throughout.

By default the hub runs with the failure limits raised out of reach (``--limits off``): every
login then costs a password hash, as when the flood comes from many addresses. ``--limits on``
keeps the defaults, where one address is refused (429) after a few failures.

    .venv/bin/python bench/login_flood.py [--seconds 15] [--concurrency 30] [--limits off|on]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.transport.broker import Broker  # noqa: E402
from tests.conftest import HubProc, ensure_user  # noqa: E402

OPERATOR = ("bench", "bench-operator-pw")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def watch(url: str, token: str, pid: int, stop: threading.Event) -> tuple[list[float], list[float]]:
    """Time the operator's alarm list back to back and sample RSS, until ``stop``."""
    lat: list[float] = []
    rss: list[float] = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            r = client.get("/api/alarms")
            lat.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.text
            rss.append(rss_mib(pid))
            time.sleep(0.02)
    return lat, rss


def phase(url: str, token: str, pid: int, seconds: float, flood: int) -> tuple[list[float], list[float], dict]:
    stop = threading.Event()
    out: dict[str, tuple[list[float], list[float]]] = {}
    t = threading.Thread(target=lambda: out.setdefault("r", watch(url, token, pid, stop)))
    t.start()
    codes: collections.Counter[int] = collections.Counter()
    if flood:
        asyncio.run(_flood(url, seconds, flood, codes))
    else:
        time.sleep(seconds)
    stop.set()
    t.join()
    lat, rss = out["r"]
    return lat, rss, dict(codes)


async def _flood(url: str, seconds: float, concurrency: int, codes: collections.Counter[int]) -> None:
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(client: httpx.AsyncClient, i: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            if i % 3 == 0:
                body = {"username": f"nobody-{uuid.uuid4().hex[:10]}", "password": "guess"}
            elif n % 10 == 0:
                body = {"username": OPERATOR[0], "password": OPERATOR[1]}
            else:
                body = {"username": OPERATOR[0], "password": f"guess-{n}"}
            try:
                r = await client.post("/api/login", json=body)
                codes[r.status_code] += 1
            except httpx.HTTPError:
                codes[0] += 1

    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(one(client, i) for i in range(concurrency)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--concurrency", type=int, default=30)
    ap.add_argument("--limits", choices=("off", "on"), default="off")
    ap.add_argument("--hash-concurrency", type=int, default=None,
                    help="PINGAN_LOGIN_HASH_CONCURRENCY (default: the hub's)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pingan-login-flood-"))
    settings = {} if args.limits == "on" else {"login_max_failures": "1000000",
                                               "login_max_failures_per_ip": "1000000"}
    if args.hash_concurrency:
        settings["login_hash_concurrency"] = str(args.hash_concurrency)
    broker = Broker(tmp / "broker").start()
    hub = HubProc(tmp, broker.url, **settings).start()
    try:
        ensure_user(hub.data_dir, *OPERATOR, "operator")
        token = hub.login(*OPERATOR)
        pid = hub.proc.pid  # type: ignore[union-attr]
        idle_lat, idle_rss, _ = phase(hub.url, token, pid, min(args.seconds, 5), 0)
        flood_lat, flood_rss, codes = phase(hub.url, token, pid, args.seconds, args.concurrency)
        time.sleep(2)
        after = rss_mib(pid)
    finally:
        hub.stop()
        broker.stop()
    logins = sum(codes.values())
    print(f"login flood: {args.concurrency} clients for {args.seconds:.0f} s, limits {args.limits}, "
          f"hash concurrency {args.hash_concurrency or 'default'}; "
          f"{logins} logins ({logins / args.seconds:.0f}/s): "
          + ", ".join(f"{k}: {v}" for k, v in sorted(codes.items())))
    print(f"GET /api/alarms idle : p50 {pct(idle_lat, 50):7.1f} ms  p99 {pct(idle_lat, 99):7.1f} ms  "
          f"({len(idle_lat)} requests)")
    print(f"GET /api/alarms flood: p50 {pct(flood_lat, 50):7.1f} ms  p99 {pct(flood_lat, 99):7.1f} ms  "
          f"max {max(flood_lat):7.1f} ms  ({len(flood_lat)} requests)")
    print(f"hub RSS: idle {max(idle_rss):.0f} MiB, flood peak {max(flood_rss):.0f} MiB, 2 s after {after:.0f} MiB")


if __name__ == "__main__":
    main()
