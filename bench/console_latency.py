"""Press → alarm row visible in the console, in a real browser (Playwright + Chromium), and page weight.

A broker, the hub and a few simulated poles run as processes (as in the demo); an operator is logged
in to the console in headless Chromium. Each press is timed from just before the node's button goes
down to the moment the alarm's card is inserted into the page (a MutationObserver in the page notes
it; browser and bench share the machine's wall clock). Each alarm is then resolved over the API, so
the list stays short as on a real shift. Page weight: the bytes of the console's HTML, JS and CSS.

    .venv/bin/python bench/console_latency.py [--presses 50] [--poles 5]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.transport.broker import Broker  # noqa: E402
from tests.conftest import HubProc, NodeProc, ensure_user, wait_for  # noqa: E402

OBSERVER = """() => { window.__seen = {};
  new MutationObserver((muts) => { for (const m of muts) for (const n of m.addedNodes)
    if (n.dataset && n.dataset.id && !(n.dataset.id in window.__seen)) window.__seen[n.dataset.id] = Date.now(); })
  .observe(document.getElementById('alarms'), {childList: true}); }"""


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


WEB = Path(__file__).resolve().parent.parent / "hub" / "web"
# the page and every module it loads at once (the map's Leaflet comes only when the map is opened)
CONSOLE_FILES = ("/", "/static/console.css", *(f"/static/{p.relative_to(WEB).as_posix()}" for p in
                                              [*WEB.glob("*.js"), *WEB.glob("screens/*.js")]))


def page_weight(url: str) -> tuple[int, int, dict[str, int]]:
    sizes, gz = {}, 0
    for path in CONSOLE_FILES:
        body = httpx.get(url + path, timeout=10).content
        sizes[path] = len(body)
        gz += len(gzip.compress(body))
    return sum(sizes.values()), gz, sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--presses", type=int, default=50)
    ap.add_argument("--poles", type=int, default=5)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="pingan-console-"))
    sim = Path(tempfile.mkdtemp(prefix="pingan-sim-"))
    broker = Broker(tmp / "broker").start()
    hub = HubProc(tmp, broker.url).start()
    nodes: list[NodeProc] = []
    pw = sync_playwright().start()
    try:
        for i in range(1, args.poles + 1):
            node = f"pole-{i:02d}"
            nodes.append(NodeProc(tmp, node, broker.url, sim, hub.register(node),
                                  alarm={"coalesce_window_s": 1}, heartbeat_s=10).start())
        wait_for(lambda: sum(n["state"] == "online" for n in hub.get("/api/nodes")) == args.poles, 60,
                 message="poles online")
        ensure_user(hub.data_dir, "bench", "bench-operator-pw", "operator")
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run"])
        page = browser.new_page()
        page.goto(hub.url + "/")
        page.fill("#login-user", "bench")
        page.fill("#login-pass", "bench-operator-pw")
        page.click("#login-submit")
        page.wait_for_function("() => document.getElementById('conn').className === ''")
        page.evaluate(OBSERVER)
        print(f"{args.poles} poles online, console logged in; pressing {args.presses} times", flush=True)
        lat: list[float] = []
        for i in range(args.presses):
            node = nodes[i % len(nodes)]
            before = set(page.evaluate("Object.keys(window.__seen)"))
            t0 = time.time() * 1000
            node.control(cmd="hold")
            seen = wait_for(lambda b=before: {k: v for k, v in page.evaluate("window.__seen").items() if k not in b},
                            10, 0.005, f"press {i} on {node.node} in the console")
            alarm_id, shown = next(iter(seen.items()))
            lat.append(shown - t0)
            node.control(cmd="release")
            r = hub.post(f"/api/alarms/{alarm_id}/resolve", {"outcome": "other", "note": "bench"})
            assert r.status_code == 200, r.text
            time.sleep(0.3)  # with the rotation, each pole is pressed again only after its 1 s coalescing window
        total, gz, sizes = page_weight(hub.url)
        browser.close()
    finally:
        pw.stop()
        for n in nodes:
            n.stop()
        hub.stop()
        broker.stop()
    print(f"\npress -> alarm row visible in the console ({len(lat)} presses, {args.poles} poles):")
    print(f"  p50 {pct(lat, 50):7.1f} ms   p99 {pct(lat, 99):7.1f} ms   max {max(lat):7.1f} ms")
    print(f"page weight: {total:,} bytes ({gz:,} gzipped) — " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))


if __name__ == "__main__":
    main()
