"""What the node's CPU still does for live view when picamera2's encoder does the encoding, next to
what the software encoder costs for the same frames.

On a Pi 4 the H.264 encoding of the picamera2 path happens in the SoC; the node's Python is left with
our part: picamera2 calls ``PacketOutput.outputframe(bytes, keyframe, timestamp)`` per frame, which
makes an ``av.Packet`` and hands it to every viewer's track (``call_soon_threadsafe``), and each
track's loop queues it. This bench measures that part per frame (in a thread, as picamera2 calls it,
with the viewers' loop draining the tracks) for 1 and 4 viewers, and, for comparison, the software
path's encode of the same 640x480 frames (``SharedVideoEncoder._encode``: libx264 ultrafast). No Pi
here: picamera2 is the test fake (tests/fake_picamera2.py), whose encoder is not timed; the frames are
H.264 packets encoded beforehand. aiortc's packetising and SRTP are the same on both paths and not
counted. Figures are from this x86_64 machine; a Pi 4's cores are several times slower.

    .venv/bin/python bench/live_picamera2.py [--frames 300]
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import statistics
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.live.picamera_video import Picamera2VideoEncoder  # noqa: E402
from edge.live.video import SharedVideoEncoder  # noqa: E402
from tests import fake_picamera2  # noqa: E402
from tests.edge.test_live_picamera2 import street  # noqa: E402

W, H = 640, 480


def frames(n: int) -> list[np.ndarray]:
    return [street(i, W, H) for i in range(n)]


def pre_encoded(images: list[np.ndarray]) -> list[tuple[bytes, bool, int]]:
    """The frames as a picamera2 encoder would hand them over: Annex B bytes, keyframe, microseconds."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = W, H, "yuv420p"
    codec.time_base = fractions.Fraction(1, 1_000_000)
    codec.gop_size = 30
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"}
    out = []
    for i, img in enumerate(images):
        vf = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
        vf.pts = i * 66_667
        out += [(bytes(p), bool(p.is_keyframe), int(p.pts)) for p in codec.encode(vf)]
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def plumbing(packets: list[tuple[bytes, bool, int]], viewers: int) -> tuple[list[float], int]:
    """µs per outputframe() call from picamera2's (here: a) thread, with ``viewers`` tracks draining."""
    outputs: list = []
    camera = SimpleNamespace(width=W, height=H, frame_rate=30.0,
                             start_encoder=lambda encoder, output: (outputs.append(output), output.start()),
                             stop_encoder=lambda encoder: outputs[-1].stop())
    encoder = Picamera2VideoEncoder(camera, fps=15)
    tracks = [encoder.track() for _ in range(viewers)]
    received = [0]

    async def drain(track) -> None:
        while True:
            await track.recv()
            received[0] += 1

    tasks = [asyncio.create_task(drain(t)) for t in tracks]
    times: list[float] = []

    def picamera2_thread() -> None:
        for data, key, ts in packets:
            t0 = time.perf_counter()
            outputs[-1].outputframe(data, key, ts)
            times.append((time.perf_counter() - t0) * 1e6)
            time.sleep(1 / 60)  # give the loop room, as a 15-30 fps camera does

    thread = threading.Thread(target=picamera2_thread)
    thread.start()
    while thread.is_alive():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    for track in tracks:
        track.stop()
    for task in tasks:
        task.cancel()
    return times, received[0]


def software(images: list[np.ndarray]) -> list[float]:
    encoder = SharedVideoEncoder(None, width=W, height=H, fps=15)
    codec = encoder._codec()
    started = time.monotonic()
    times = []
    for img in images:
        t0 = time.perf_counter()
        encoder._encode(codec, img, started)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    mp = pytest.MonkeyPatch()
    fake_picamera2.install(mp)
    try:
        images = frames(args.frames)
        packets = pre_encoded(images)
        print(f"live view node work per frame, {W}x{H}, {len(packets)} frames (shared 2-core x86_64):")
        for viewers in (1, 4):
            times, received = asyncio.run(plumbing(packets, viewers))
            print(f"  picamera2 path, {viewers} viewer(s): Output->av.Packet->fan-out  p50 {pct(times, 50):6.1f} us"
                  f"   p99 {pct(times, 99):6.1f} us   mean {statistics.fmean(times):6.1f} us"
                  f"   ({received} packets reached the tracks)")
        times = software(images)
        print(f"  software path (libx264 ultrafast encode + colour conversion) p50 {pct(times, 50):6.2f} ms"
              f"   p99 {pct(times, 99):6.2f} ms   mean {statistics.fmean(times):6.2f} ms")
    finally:
        mp.undo()


if __name__ == "__main__":
    main()
