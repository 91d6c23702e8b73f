"""GB/T 28181 live video figures: start -> first RTP packet at the platform, cold (the pole's live session not open
yet: signed live.start, WebRTC, the pole's first keyframe) and warm (a second city session while the pole's source
already runs: served from the cached GOP), and the hub's CPU per city viewer.

* A broker and the poles run as processes (a detailed file camera 640x480, 15 fps, H.264 at 800 kbit/s, keyframe
  every 2 s; ``--camera synthetic`` for the flat test card); the hub
  runs in this process (as the SIP side will hold it) with ``GbMediaSessions`` over UDP.
* Latency: ``start()`` until the first RTP packet arrives at a UDP receiver in this process; before each cold
  round the pole is idle (no session, encoder stopped).
* CPU: the receivers are a child process, so this process's CPU (user+sys, all threads) is the hub's: idle, then
  1, 2, 4 city sessions on one pole, then one session on each of 1, 2, 4 poles, each over ``--window`` seconds.

* ``--via-sip``: the latency rounds go through the hub's SIP side as the city sends them: a Play INVITE over
  UDP to the hub's GB/T 28181 port (the hub's own adapter and GbMediaSessions, as `pingan-hub serve` wires
  them), timed from the INVITE's send to the first RTP packet, BYE to end; the CPU windows are skipped.

    .venv/bin/python bench/gb_media.py [--rounds 6] [--window 10] [--via-sip]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.app import create_app  # noqa: E402
from hub.config import load_settings  # noqa: E402
from hub.gb28181.media import GbMediaSessions  # noqa: E402
from hub.store.schema import nodes  # noqa: E402
from hub.transport.broker import Broker  # noqa: E402
from tests.conftest import NodeProc, wait_for  # noqa: E402

SINK = r"""
import asyncio, sys
class P(asyncio.DatagramProtocol):
    def __init__(s): s.n = s.b = 0
    def datagram_received(s, d, a): s.n += 1; s.b += len(d)
async def main(k):
    loop = asyncio.get_running_loop(); eps = []
    for _ in range(k):
        t, p = await loop.create_datagram_endpoint(P, local_addr=("127.0.0.1", 0)); eps.append((t, p))
    print(" ".join(str(t.get_extra_info("sockname")[1]) for t, _ in eps), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    print(" ".join(f"{p.n}:{p.b}" for _, p in eps), flush=True)
asyncio.run(main(int(sys.argv[1])))
"""


def detailed_video(path: Path, frames: int = 150, size: tuple[int, int] = (640, 480)) -> Path:
    """A street-like load for the encoder: a fine random texture that pans, with fresh noise on every frame, so
    the pole's H.264 runs at its configured bitrate (800 kbit/s) instead of the few dozen kbit/s of a flat
    synthetic picture."""
    w, h = size
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (h, w * 2, 3), np.uint8), (3, 3), 0)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, size)
    for n in range(frames):
        img = texture[:, (n * 4) % w:(n * 4) % w + w].copy()
        img = cv2.add(img, rng.integers(0, 24, (h, w, 3), np.uint8))
        out.write(img)
    out.release()
    return path


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def register(data_dir: Path, broker_url: str, node: str) -> str:
    env = {**os.environ, "PINGAN_DATA_DIR": str(data_dir), "PINGAN_MQTT_URL": broker_url}
    out = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "add", node, "--grid", "G01", "--place",
                          "Bench street", "--out", str(data_dir.parent / "bundles")],
                         env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


class FirstPacket(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.at: float | None = None
        self.got = asyncio.Event()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.at is None:
            self.at = time.monotonic()
            self.got.set()


async def first_packet_ms(media: GbMediaSessions, node: str, call_id: str) -> float:
    loop = asyncio.get_running_loop()
    proto = FirstPacket()
    transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    t0 = time.monotonic()
    await media.start(node, call_id=call_id, dest_host="127.0.0.1", dest_port=port, transport="udp", ssrc=1)
    await asyncio.wait_for(proto.got.wait(), 15)
    transport.close()
    assert proto.at is not None
    return (proto.at - t0) * 1000


HUB_ID, PLATFORM_ID = "34020000002000000001", "34020000002000000002"


class Platform(asyncio.DatagramProtocol):
    """The city platform's SIP socket: sends INVITE/ACK/BYE and notes each call's 200 to its INVITE; the hub's
    REGISTERs go unanswered (latency only)."""

    def __init__(self) -> None:
        self.answered: dict[str, asyncio.Event] = {}

    def datagram_received(self, data: bytes, addr: Any) -> None:
        head = data.split(b"\r\n\r\n")[0].decode(errors="replace").split("\r\n")
        fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        if head[0].startswith("SIP/2.0 200") and fields.get("CSeq", "").endswith("INVITE"):
            self.answered.setdefault(fields.get("Call-ID", ""), asyncio.Event()).set()


def _request(method: str, channel: str, call_id: str, port: int, body: bytes = b"") -> bytes:
    head = (f"{method} sip:{channel}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{call_id}"
            f"{method}\r\nFrom: <sip:{PLATFORM_ID}@3402000000>;tag=b\r\nTo: <sip:{channel}@3402000000>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {2 if method == 'BYE' else 1} {method}\r\n"
            f"Contact: <sip:{PLATFORM_ID}@127.0.0.1:{port}>\r\n"
            + ("Content-Type: application/sdp\r\n" if body else "") + f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def invite_first_packet_ms(plat: asyncio.DatagramTransport, hub_port: int, channel: str,
                                 call_id: str) -> float:
    """A Play INVITE to the hub's SIP port until the first RTP packet at the offered port."""
    loop = asyncio.get_running_loop()
    proto = FirstPacket()
    transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    sdp = (f"v=0\r\no={PLATFORM_ID} 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=video {port} RTP/AVP 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\ny=0100000001\r\n").encode()
    t0 = time.monotonic()
    plat.sendto(_request("INVITE", channel, call_id, port, sdp), ("127.0.0.1", hub_port))
    await asyncio.wait_for(proto.got.wait(), 15)
    transport.close()
    assert proto.at is not None
    return (proto.at - t0) * 1000


async def run_via_sip(args: argparse.Namespace, data_dir: Path, broker: Broker, poles: list[NodeProc]) -> None:
    from hub.store.schema import gb_ids
    from hub.transport.broker import free_port

    loop = asyncio.get_running_loop()
    plat, platform = await loop.create_datagram_endpoint(Platform, local_addr=("127.0.0.1", 0))
    sip_port = free_port()
    app = create_app(load_settings(
        data_dir=data_dir, mqtt_url=broker.url, offline_grace_s=0, gb_id=HUB_ID, gb_password="bench-only",
        gb_upstream=f"sip:{PLATFORM_ID}@127.0.0.1:{plat.get_extra_info('sockname')[1]};transport=udp",
        gb_sip_port=sip_port, gb_sip_host="127.0.0.1", gb_streams_per_pole=4))
    state = app.state.hub
    async with app.router.lifespan_context(app):
        def online() -> bool:
            with state.engine.connect() as conn:
                return len(conn.execute(select(nodes.c.id).where(nodes.c.state == "online")).all()) == len(poles)
        await asyncio.to_thread(wait_for, online, 30, 0.1, "poles online")
        await asyncio.to_thread(wait_for, lambda: state.engine.connect().execute(
            select(gb_ids.c.gb_id).where(gb_ids.c.node == poles[0].node)).scalar() is not None, 30, 0.1, "GB IDs")
        with state.engine.connect() as conn:
            camera = conn.execute(select(gb_ids.c.gb_id).where(gb_ids.c.node == poles[0].node)).scalar()
        cold: list[float] = []
        warm: list[float] = []
        for r in range(args.rounds):
            await node_idle(poles[0])
            cold.append(await invite_first_packet_ms(plat, sip_port, camera, f"cold-{r}"))
            await asyncio.sleep(0.5)
            warm.append(await invite_first_packet_ms(plat, sip_port, camera, f"warm-{r}"))
            for call in (f"warm-{r}", f"cold-{r}"):  # the 200 can follow the first packet: ACK it, then BYE
                await asyncio.wait_for(platform.answered.setdefault(call, asyncio.Event()).wait(), 10)
                plat.sendto(_request("ACK", camera, call, 0), ("127.0.0.1", sip_port))
                plat.sendto(_request("BYE", camera, call, 0), ("127.0.0.1", sip_port))
            print(f"  round {r + 1}: cold {cold[-1]:7.1f} ms   warm {warm[-1]:6.1f} ms", flush=True)
    plat.close()
    print(f"\nPlay INVITE -> first RTP packet through the hub's SIP side, UDP, {args.camera_label}, "
          f"{args.rounds} rounds:")
    print(f"  cold (pole idle):         p50 {pct(cold, 50):7.1f} ms   p95 {pct(cold, 95):7.1f} ms   "
          f"max {max(cold):7.1f} ms   (target <= 2000 ms)")
    print(f"  warm (source running):    p50 {pct(warm, 50):7.1f} ms   p95 {pct(warm, 95):7.1f} ms   "
          f"max {max(warm):7.1f} ms   (target <= 300 ms)")


async def node_idle(pole: NodeProc) -> None:
    for _ in range(200):
        live = (await asyncio.to_thread(pole.control, cmd="state"))["state"]["live"]
        if not live["sessions"] and not live["encoder_running"]:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the pole did not go idle")


async def cpu_window(media: GbMediaSessions, targets: list[str], window: float) -> tuple[float, int, int]:
    """Hub CPU (% of one core) with one UDP city session per entry of ``targets`` (a pole id each)."""
    sink = await asyncio.create_subprocess_exec(sys.executable, "-c", SINK, str(len(targets)),
                                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert sink.stdout is not None and sink.stdin is not None
    ports = [int(p) for p in (await sink.stdout.readline()).split()] if targets else []
    for n, (node, port) in enumerate(zip(targets, ports, strict=True)):
        await media.start(node, call_id=f"cpu-{n}", dest_host="127.0.0.1", dest_port=port, transport="udp", ssrc=n)
    await asyncio.sleep(3.0)  # past the cold start and its GOP
    proc = psutil.Process()
    c0, t0 = proc.cpu_times(), time.monotonic()
    await asyncio.sleep(window)
    c1, t1 = proc.cpu_times(), time.monotonic()
    sink.stdin.write(b"\n")
    await sink.stdin.drain()
    counts = [tuple(int(x) for x in c.split(b":")) for c in (await sink.stdout.readline()).split()]
    await sink.wait()
    for n in range(len(targets)):
        await media.stop(f"cpu-{n}", "bench")
    used = (c1.user - c0.user) + (c1.system - c0.system)
    return 100 * used / (t1 - t0), sum(c[0] for c in counts), sum(c[1] for c in counts)


async def run(args: argparse.Namespace, data_dir: Path, broker: Broker, poles: list[NodeProc]) -> None:
    app = create_app(load_settings(data_dir=data_dir, mqtt_url=broker.url, offline_grace_s=0))
    state = app.state.hub
    async with app.router.lifespan_context(app):
        def online() -> bool:
            with state.engine.connect() as conn:
                return len(conn.execute(select(nodes.c.id).where(nodes.c.state == "online")).all()) == len(poles)
        await asyncio.to_thread(wait_for, online, 30, 0.1, "poles online")
        media = GbMediaSessions(state.liveview, state.engine, limit_per_node=4, bind_host="127.0.0.1")
        try:
            first = poles[0].node
            cold: list[float] = []
            warm: list[float] = []
            for r in range(args.rounds):
                await node_idle(poles[0])
                cold.append(await first_packet_ms(media, first, f"cold-{r}"))
                await asyncio.sleep(0.5)
                warm.append(await first_packet_ms(media, first, f"warm-{r}"))
                await media.stop(f"warm-{r}", "bench")
                await media.stop(f"cold-{r}", "bench")
                print(f"  round {r + 1}: cold {cold[-1]:7.1f} ms   warm {warm[-1]:6.1f} ms", flush=True)
            await node_idle(poles[0])
            cpu: dict[str, tuple[float, int, int]] = {"idle": await cpu_window(media, [], args.window)}
            for n in (1, 2, 4):
                await node_idle(poles[0])
                cpu[f"{n} on one pole"] = await cpu_window(media, [first] * n, args.window)
            for n in (1, 2, 4):
                cpu[f"1 on each of {n} pole{'s' if n > 1 else ''}"] = await cpu_window(
                    media, [p.node for p in poles[:n]], args.window)
        finally:
            await media.close()
    print(f"\nstart -> first RTP packet, UDP, {args.camera_label}, {args.rounds} rounds:")
    print(f"  cold (pole idle):         p50 {pct(cold, 50):7.1f} ms   p95 {pct(cold, 95):7.1f} ms   "
          f"max {max(cold):7.1f} ms   (target <= 2000 ms)")
    print(f"  warm (source running):    p50 {pct(warm, 50):7.1f} ms   p95 {pct(warm, 95):7.1f} ms   "
          f"max {max(warm):7.1f} ms   (target <= 300 ms)")
    print(f"hub CPU (% of one core, this process's user+sys over {args.window:g} s; receivers in a child process):")
    base = cpu["idle"][0]
    for label, (pc, packets, size) in cpu.items():
        rate = f"out {packets / args.window:5.0f} pkt/s, {size * 8 / args.window / 1000:6.0f} kbit/s"
        extra = "" if label == "idle" else f"   (+{pc - base:4.1f}% over idle; {rate})"
        print(f"  {label:>22}: {pc:5.1f}%{extra}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--window", type=float, default=10.0, help="seconds of CPU measurement per configuration")
    ap.add_argument("--via-sip", action="store_true", help="time Play INVITEs through the hub's SIP side")
    ap.add_argument("--camera", choices=["detailed", "synthetic"], default="detailed",
                    help="detailed: a panning noisy texture (encoder at its bitrate); synthetic: the flat test card")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pingan-gbmedia-"))
    sim = Path(tempfile.mkdtemp(prefix="pingan-sim-"))
    data_dir = tmp / "hub"
    broker = Broker(tmp / "broker").start()
    poles: list[NodeProc] = []
    source = str(detailed_video(tmp / "street.avi")) if args.camera == "detailed" else "synthetic"
    args.camera_label = f"{args.camera} camera 640x480 @ 15 fps"
    try:
        for n in range(4):
            name = f"pole-gb-{n}"
            poles.append(NodeProc(tmp, name, broker.url, sim, register(data_dir, broker.url, name),
                                  camera={"source": source, "width": 640, "height": 480}).start())
        asyncio.run((run_via_sip if args.via_sip else run)(args, data_dir, broker, poles))
    finally:
        for pole in poles:
            pole.stop()
        broker.stop()


if __name__ == "__main__":
    main()
