"""The console under a district's load, in a real browser (Playwright + Chromium): 2,000 nodes and 1,000
open alarms in the hub's store, as its ingest would leave them.

Measured: first paint and the time until the queue is drawn (a fresh page with a session, N loads); the
map's first draw of every node (Leaflet + markercluster); a new alarm's arrival, from the moment its
event is published to the broker to the moment its card is inserted into the page (a MutationObserver;
browser and bench share the machine's clock), p50/p99; and the page weight (what the browser fetched for
the console, the map's scripts separately, raw and gzipped).

    .venv/bin/python bench/console_load.py [--nodes 2000] [--open 1000] [--alarms 30] [--loads 3]
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.protocol import Event, Topics  # noqa: E402
from hub.store.engine import make_engine  # noqa: E402
from hub.store.schema import alarms, nodes  # noqa: E402
from hub.transport.broker import Broker  # noqa: E402
from tests.conftest import HubProc, ensure_user, wait_for  # noqa: E402
from tests.mqtt_client import close, mqtt_connect  # noqa: E402

OBSERVER = """() => { window.__seen = {}; window.__heard = {};
  new MutationObserver((muts) => { for (const m of muts) for (const n of m.addedNodes)
    if (n.dataset && n.dataset.id && !(n.dataset.id in window.__seen)) window.__seen[n.dataset.id] = Date.now(); })
  .observe(document.getElementById('alarms'), {childList: true});
  // when the live stream brought the event: splits the arrival into the hub's part and the page's part
  window.addEventListener('pingan:live', (e) => { const id = e.detail && e.detail.event && e.detail.event.id;
    if (id && !(id in window.__heard)) window.__heard[id] = Date.now(); }); }"""
# a worked shift: most open alarms are being handled; the unacknowledged ones are the quieter kinds
KINDS = ["detection.loitering", "tamper.camera", "door.held_open", "node.offline", "door.lockout"]
STATES = ["acknowledged"] * 5 + ["dispatched"] * 3 + ["on_scene", "open"]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def seed(data_dir: Path, n_nodes: int, n_open: int) -> list[str]:
    rng = random.Random(17)
    now = datetime.now(UTC)
    engine = make_engine(f"sqlite:///{(data_dir / 'hub.db').resolve()}")
    ids = [f"door-{i:04d}" if i % 4 else f"pole-{i:04d}" for i in range(n_nodes)]
    try:
        with engine.begin() as conn:
            conn.execute(nodes.insert(), [{
                "id": n, "kind": "rental_door" if n.startswith("door") else "alarm_post", "place": f"{n} 路口",
                "grid": f"G{rng.randrange(534):03d}", "state": "online" if rng.random() > 0.02 else "offline",
                "lat": None if rng.random() < 0.03 else 24.40 + rng.random() * 0.2,
                "lon": None if rng.random() < 0.03 else 118.00 + rng.random() * 0.25,
                "created": now, "last_seen": now} for n in ids])
            rows = []
            for i in range(n_open):
                at = now - timedelta(seconds=rng.randrange(60, 6 * 3600))
                state = STATES[i % len(STATES)]
                row = {"id": str(uuid.uuid4()), "node": ids[rng.randrange(n_nodes)], "kind": KINDS[i % len(KINDS)],
                       "state": state, "count": 1, "node_ts": at, "raised_at": at, "acked_at": None,
                       "acked_by": None, "dispatched_at": None, "dispatched_to": None}
                if state != "open":
                    row |= {"acked_at": at + timedelta(seconds=30), "acked_by": "bench"}
                if state in ("dispatched", "on_scene"):
                    row |= {"dispatched_at": at + timedelta(seconds=60), "dispatched_to": "巡逻队"}
                rows.append(row)
            conn.execute(alarms.insert(), rows)
    finally:
        engine.dispose()
    return [n for n in ids if n.startswith("pole")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--open", type=int, default=1000)
    ap.add_argument("--alarms", type=int, default=30, help="new alarms published while the console is open")
    ap.add_argument("--loads", type=int, default=3, help="page loads for first paint")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="pingan-console-load-"))
    broker = Broker(tmp / "broker").start()
    hub = HubProc(tmp, broker.url, offline_after_s="86400")
    hub.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_user(hub.data_dir, "bench", "bench-operator-pw", "operator")
    poles = seed(hub.data_dir, args.nodes, args.open)
    hub.start()
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run"])
        ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
        r = ctx.request.post(hub.url + "/api/login", data={"username": "bench", "password": "bench-operator-pw"})
        assert r.ok, r.text()
        page = ctx.new_page()
        fcp: list[float] = []
        queue: list[float] = []
        drawn: list[int] = []
        api_at: list[dict] = []
        for _ in range(args.loads):
            page.goto(hub.url + "/", wait_until="commit")
            # drawn: the queue knows every open alarm (its count) and has drawn its first page of cards (the
            # rest are counted below them and drawn as the operator scrolls; screens/alarms.js)
            page.wait_for_function(f"""() => {{ const l = document.getElementById('alarms');
                return l && Number(l.dataset.total) >= {min(args.open, 1000)}
                  && l.querySelectorAll('article').length === Number(l.dataset.drawn); }}""",
                                   timeout=120_000, polling=20)
            queue.append(page.evaluate("performance.now()"))
            drawn.append(page.evaluate("document.querySelectorAll('#alarms article').length"))
            # per kind of request (one card's dispatches stand for all of them): how many, first start, last end
            api_at.append(page.evaluate("""() => { const out = {};
                for (const e of performance.getEntriesByType('resource')) {
                  if (!e.name.includes('/api/')) continue;
                  const p = new URL(e.name).pathname.replace(/\\/api\\/alarms\\/[^/]+\\//, '/api/alarms/{id}/');
                  const o = out[p] || (out[p] = [0, Infinity, 0]);
                  o[0]++; o[1] = Math.min(o[1], Math.round(e.requestStart));
                  o[2] = Math.max(o[2], Math.round(e.responseEnd));
                } return out; }"""))
            fcp.append(page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN"))
        weight = page.evaluate("""() => [performance.getEntriesByType('navigation')[0],
            ...performance.getEntriesByType('resource')].map((e) => [e.name, e.encodedBodySize || 0])""")
        page.wait_for_function("() => document.getElementById('conn').className === ''")
        # the operator scrolls to the end of what is drawn: the next cards are drawn (and their dispatches asked)
        more_ms: list[float] = []
        for _ in range(3):
            n = page.evaluate("document.querySelectorAll('#alarms article').length")
            if n >= args.open:
                break
            t0 = page.evaluate("performance.now()")
            page.evaluate("document.getElementById('queue-more').scrollIntoView()")
            page.wait_for_function(f"() => document.querySelectorAll('#alarms article').length > {n}", polling=10)
            more_ms.append(page.evaluate("performance.now()") - t0)
        page.evaluate("window.scrollTo(0, 0)")
        t0 = page.evaluate("performance.now()")
        page.click('.tab[data-tab="map"]')
        page.wait_for_selector("#map .leaflet-marker-icon", timeout=120_000)
        page.wait_for_function("() => document.querySelectorAll('#map .leaflet-marker-icon').length > 0")
        map_ms = page.evaluate("performance.now()") - t0
        map_weight = page.evaluate("""() => performance.getEntriesByType('resource')
            .filter((e) => e.name.includes('/vendor/') || e.name.includes('/api/map'))
            .map((e) => [e.name, e.encodedBodySize])""")
        markers = page.evaluate("document.querySelectorAll('#map .leaflet-marker-icon').length")
        page.click('.tab[data-tab="alarms"]')
        page.evaluate(OBSERVER)

        client, rc = mqtt_connect(broker.port)
        assert rc == 0
        lat: list[float] = []
        heard: list[float] = []
        page_part: list[float] = []
        for i in range(args.alarms):
            node = poles[i % len(poles)]
            event = Event.make(node, "alarm.pressed", {"count": 1})
            t_pub = time.time() * 1000
            client.publish(Topics.events(node), event.to_bytes(), qos=1)
            shown = wait_for(lambda e=str(event.id): page.evaluate(f"window.__seen['{e}']"), 30, 0.005,
                             f"alarm {i} in the console")
            lat.append(shown - t_pub)
            at = page.evaluate(f"window.__heard['{event.id}'] ?? null")
            if at is not None:
                heard.append(at - t_pub)
                page_part.append(shown - at)
            time.sleep(0.2)
        close(client)
        browser.close()
    finally:
        pw.stop()
        hub.stop()
        broker.stop()
    web = Path(__file__).resolve().parent.parent / "hub" / "web"
    console = {name.replace(hub.url, ""): size for name, size in weight if "/static/" in name or name.endswith("/")}
    files = [web / ("index.html" if p == "/" else p.split("/static/", 1)[1]) for p in console]
    raw = sum(f.stat().st_size for f in files)
    gz = sum(len(gzip.compress(f.read_bytes())) for f in files)
    data: dict[str, int] = {}
    for name, size in weight:
        if "/api/" in name:
            path = re.sub(r"/api/alarms/[^/]+/", "/api/alarms/{id}/", name.replace(hub.url, "").split("?")[0])
            data[path] = data.get(path, 0) + size
    print(f"\nconsole with {args.nodes} nodes and {args.open} open alarms (Chromium, 1920x1080):")
    print("  first contentful paint: " + ", ".join(f"{v:.0f} ms" for v in fcp))
    print(f"  queue drawn ({min(args.open, 1000)} alarms, {drawn[-1]} cards drawn): "
          + ", ".join(f"{v:.0f} ms" for v in queue))
    print("  the next cards on scrolling to the end: " + (", ".join(f"{v:.0f} ms" for v in more_ms) or "none"))
    print("  API requests after navigation (count, first start ms, last end ms): "
          + ", ".join(f"{k} {v[0]}× [{v[1]}, {v[2]}]" for k, v in api_at[-1].items()))
    print(f"  map drawn ({markers} markers/clusters on screen): {map_ms:.0f} ms")
    print(f"new alarm published -> card in the page ({len(lat)} alarms): p50 {pct(lat, 50):.0f} ms  "
          f"p99 {pct(lat, 99):.0f} ms  max {max(lat):.0f} ms")
    if heard:
        print(f"  of which published -> live message in the page: p50 {pct(heard, 50):.0f} ms  "
              f"p99 {pct(heard, 99):.0f} ms; live message -> card (the alarm fetched, merged and drawn): "
              f"p50 {pct(page_part, 50):.0f} ms  "
              f"p99 {pct(page_part, 99):.0f} ms")
    print(f"page weight (console, before the map): {raw:,} bytes ({gz:,} gzipped) in {len(console)} files; "
          f"data: " + ", ".join(f"{k} {v:,}" for k, v in data.items()))
    print(f"map scripts and data on first open: {sum(s for _, s in map_weight):,} bytes — "
          + ", ".join(f"{n.split('/')[-1]} {s:,}" for n, s in map_weight))


if __name__ == "__main__":
    main()
