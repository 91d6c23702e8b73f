"""Live view figures: time from "Live" to the first frame in the console, glass-to-glass delay of a file
camera, and node CPU per viewer at 640x480 and 1280x720.

* A broker and the hub run as processes. For the first two figures the pole runs in this process (the
  real NodeAgent, its own thread and loop) so the bench can note when each camera frame is read.
  Its file camera plays a video whose frames carry their number as a row of black/white blocks.
* Time to first frame: in headless Chromium, logged in as an operator, ``openLive(pole)`` (what the
  Live button calls) until the <video> presents its first frame (``requestVideoFrameCallback``); the
  node is idle (no session, encoder stopped) before each of the rounds: a cold start each time.
* Glass-to-glass: the page reads the block counter off each presented frame (canvas) and notes the
  presentation time; the bench subtracts the time the node read that frame from the file. Browser
  and bench share the machine's wall clock. "Glass" is the file camera's read (no lens here).
* CPU: a pole process with the synthetic camera at each size; aiortc viewers in this process watch it
  through the hub; the node's CPU (user+sys of its process) over a window, per number of viewers.

    .venv/bin/python bench/live_view.py [--rounds 20] [--window 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.transport.broker import Broker  # noqa: E402
from tests.conftest import HubProc, NodeProc, ensure_user, wait_for  # noqa: E402

BITS, BLOCK, TOP = 16, 32, 8
OPERATOR = ("bench", "bench-operator-pw")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def counter_video(path: Path, frames: int = 900, size: tuple[int, int] = (640, 480)) -> Path:
    """Frame n shows n in binary: BITS blocks along the top, white = 1."""
    w, h = size
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, size)
    for n in range(frames):
        img = np.full((h, w, 3), 90, np.uint8)
        for b in range(BITS):
            on = (n >> (BITS - 1 - b)) & 1
            x = 16 + b * BLOCK
            cv2.rectangle(img, (x, TOP), (x + BLOCK - 4, TOP + BLOCK - 4), (255, 255, 255) if on else (0, 0, 0), -1)
        cv2.putText(img, f"frame {n}", (20, h - 30), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 220, 255), 2)
        out.write(img)
    out.release()
    return path


def read_counter(frame: np.ndarray) -> int:
    n = 0
    for b in range(BITS):
        x = 16 + b * BLOCK + (BLOCK - 4) // 2
        n = (n << 1) | int(frame[TOP + (BLOCK - 4) // 2, x].mean() > 128)
    return n


PAGE_COUNTER = f"""() => {{ window.__g2g = []; const v = document.getElementById('live-video');
  const c = document.createElement('canvas'); const ctx = c.getContext('2d', {{willReadFrequently: true}});
  const cb = (now, meta) => {{
    c.width = v.videoWidth; c.height = v.videoHeight; ctx.drawImage(v, 0, 0);
    let n = 0;
    for (let b = 0; b < {BITS}; b++) {{
      const px = ctx.getImageData(16 + b * {BLOCK} + {(BLOCK - 4) // 2}, {TOP + (BLOCK - 4) // 2}, 1, 1).data;
      n = (n << 1) | ((px[0] + px[1] + px[2]) / 3 > 128 ? 1 : 0);
    }}
    window.__g2g.push([n, performance.timeOrigin + meta.expectedDisplayTime]);
    v.requestVideoFrameCallback(cb);
  }};
  v.requestVideoFrameCallback(cb); }}"""

FIRST_FRAME = """async (node) => { const v = document.getElementById('live-video');
  const t0 = performance.now();
  const first = new Promise((resolve) => {
    const poll = () => { if (v.srcObject) v.requestVideoFrameCallback((now) => resolve(now));
                         else setTimeout(poll, 1); };
    poll(); });
  openLive(node);
  return (await first) - t0; }"""


class InProcessPole:
    """The real NodeAgent in a thread of its own, its camera reads noted by frame number."""

    def __init__(self, tmp: Path, broker_url: str, key: str, video: Path) -> None:
        from edge.config import NodeConfig

        os.environ["PINGAN_NODE_KEY"] = key
        os.environ["GPIOZERO_PIN_FACTORY"] = "mock"
        self.cfg = NodeConfig.model_validate({
            "node": {"id": "pole-g2g", "kind": "alarm_post", "location": {"lat": 24.48, "lon": 118.11}},
            "mqtt": {"url": broker_url}, "pins": {"factory": "mock"}, "data_dir": str(tmp / "pole-g2g"),
            "camera": {"source": str(video), "width": 640, "height": 480},
            "live": {"audio_in": "tone:440", "audio_out": "analyse"},
            "sim": {"control_socket": str(tmp / "pole-g2g.sock")}})
        self.read_at: dict[int, float] = {}
        self.agent = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        self._ready.wait(30)

    async def _main(self) -> None:
        from edge.agent.node import NodeAgent

        self.agent = NodeAgent(self.cfg)
        camera = self.agent.worker.camera
        read = camera.read

        def noted() -> np.ndarray | None:
            frame = read()
            if frame is not None:
                self.read_at[read_counter(frame)] = time.time() * 1000
            return frame

        camera.read = noted
        self._ready.set()
        await self.agent.run(handle_signals=False)

    def idle(self) -> bool:
        manager = self.agent.live.manager  # made on the first live command
        return manager is None or (not manager.sessions and not manager.encoder.running)

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.loop.call_soon_threadsafe(self.agent.stop)
        self.thread.join(10)


def browser_figures(hub: HubProc, pole: InProcessPole, rounds: int) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    ensure_user(hub.data_dir, *OPERATOR, "operator")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(hub.url + "/")
        page.fill("#login-user", OPERATOR[0])
        page.fill("#login-pass", OPERATOR[1])
        page.click("#login-submit")
        page.wait_for_function("document.getElementById('conn').className === ''")
        ttff: list[float] = []
        for i in range(rounds):
            wait_for(pole.idle, 30, 0.02, "the pole idle before a cold start")
            ttff.append(page.evaluate(FIRST_FRAME, "pole-g2g"))
            if i < rounds - 1:
                page.evaluate("pingan.closeLive()")
        page.evaluate(PAGE_COUNTER)
        time.sleep(10)
        shown = page.evaluate("window.__g2g")
        page.evaluate("pingan.closeLive()")
        browser.close()
    g2g = [at - pole.read_at[n] for n, at in shown if n in pole.read_at and 0 < at - pole.read_at[n] < 5000]
    return ttff, g2g


async def watch_cpu(hub: HubProc, node: NodeProc, counts: list[int], window: float) -> dict[int, float]:
    from hub.live.video.viewer import Viewer

    proc = psutil.Process(node.proc.pid)
    viewers: list[Viewer] = []
    sessions: list[str] = []
    out: dict[int, float] = {}
    async with httpx.AsyncClient(base_url=hub.url, headers=hub.headers, timeout=30) as client:
        async def keepalive() -> None:
            while True:
                for sid in sessions:
                    await client.post(f"/api/live/{sid}/keepalive")
                await asyncio.sleep(3)

        ka = asyncio.create_task(keepalive())
        for n in counts:
            while len(viewers) < n:
                v = Viewer()
                r = await client.post(f"/api/nodes/{node.node}/live", json={"sdp": await v.offer()})
                r.raise_for_status()
                await v.accept(r.json()["sdp"])
                await v.wait_frames(3, 20)
                viewers.append(v)
                sessions.append(r.json()["session"])
            await asyncio.sleep(2)
            c0, t0 = proc.cpu_times(), time.monotonic()
            await asyncio.sleep(window)
            c1, t1 = proc.cpu_times(), time.monotonic()
            out[n] = 100 * ((c1.user + c1.system) - (c0.user + c0.system)) / (t1 - t0)
        ka.cancel()
        for sid in sessions:
            await client.delete(f"/api/live/{sid}")
        await asyncio.gather(*(v.close() for v in viewers))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--window", type=float, default=8.0, help="seconds of CPU measurement per viewer count")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pingan-live-"))
    sim = Path(tempfile.mkdtemp(prefix="pingan-sim-"))
    broker = Broker(tmp / "broker").start()
    hub = HubProc(tmp, broker.url).start()
    pole = None
    cpu: dict[str, dict[int, float]] = {}
    try:
        video = counter_video(tmp / "counter.avi")
        pole = InProcessPole(tmp, broker.url, hub.register("pole-g2g"), video)
        wait_for(lambda: any(n["id"] == "pole-g2g" and n["state"] == "online" for n in hub.get("/api/nodes")), 30,
                 message="pole online")
        print(f"pole-g2g online (in-process, file camera {video.name} 640x480); {args.rounds} cold starts", flush=True)
        ttff, g2g = browser_figures(hub, pole, args.rounds)
        pole.stop()
        pole = None
        for w, h in ((640, 480), (1280, 720)):
            name = f"pole-cpu-{w}"
            node = NodeProc(tmp, name, broker.url, sim, hub.register(name),
                            camera={"source": "synthetic", "width": w, "height": h}).start()
            try:
                wait_for(lambda n=name: any(x["id"] == n and x["state"] == "online" for x in hub.get("/api/nodes")),
                         30, message=f"{name} online")
                cpu[f"{w}x{h}"] = asyncio.run(watch_cpu(hub, node, [0, 1, 2, 4], args.window))
            finally:
                node.stop()
    finally:
        if pole is not None:
            pole.stop()
        hub.stop()
        broker.stop()
    print(f"\n'Live' -> first frame in the console (Chromium, cold node, {len(ttff)} rounds):")
    print(f"  p50 {pct(ttff, 50):7.1f} ms   p99 {pct(ttff, 99):7.1f} ms   max {max(ttff):7.1f} ms")
    print(f"glass-to-glass, file camera 640x480 @ 15 fps -> node H.264 -> WebRTC -> Chromium ({len(g2g)} frames):")
    print(f"  p50 {pct(g2g, 50):7.1f} ms   p99 {pct(g2g, 99):7.1f} ms   min {min(g2g):7.1f} ms")
    print(f"node CPU (% of one core, process user+sys over {args.window:g} s) by viewers, synthetic camera, 15 fps:")
    for size, by in cpu.items():
        base = by[0]
        cells = "   ".join(f"{n} viewer{'s' if n != 1 else ''}: {v:5.1f}%" for n, v in by.items())
        per = (by[4] - by[1]) / 3
        print(f"  {size:>9}: {cells}   (first viewer +{by[1] - base:.1f}%, each further viewer +{per:.1f}%)")


if __name__ == "__main__":
    main()
