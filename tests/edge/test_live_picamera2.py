"""Live view on a Pi pole: picamera2's H264Encoder feeds the viewers (the hardware path).

The pole's camera is ``Picamera2Camera`` over a fake picamera2 (tests/fake_picamera2.py: the
camera is the hardware we fake; its encoder makes real H.264 and calls our ``Output`` the way
picamera2 does). The node's live view is built by the agent's own wiring from a NodeConfig, and an
aiortc viewer decodes what arrives over WebRTC on loopback, so our plumbing is what is tested:
encoder choice, Output → av.Packet, fan-out, keyframes for late joiners, start/stop with the viewers,
privacy masks in the decoded picture, and doctor's word on the encoder.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from edge.clock import SystemClock
from edge.config import NodeConfig
from edge.errors import ConfigError
from edge.hw.camera import Picamera2Camera, open_camera
from edge.link.commands import CommandGuard
from edge.link.dispatch import CommandDispatcher
from edge.live.picamera_video import Picamera2EncoderStats, Picamera2VideoEncoder
from edge.live.video import EncoderStats, SharedVideoEncoder
from edge.live.wiring import LiveOnDemand
from edge.protocol import Command, Reply
from edge.vision.worker import CameraWorker
from hub.live.video.viewer import Viewer
from tests import fake_picamera2

KEY = b"live-test-key-0123456789"
NODE = "pole-32"
W, H = 320, 240


def street(index: int, width: int, height: int) -> np.ndarray:
    """Bright left half, dark green right half (the mask test blanks the left), a moving bar."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:, : width // 2] = (200, 200, 200)
    img[:, width // 2:] = (40, 90, 40)
    x = width // 2 + (index * 4) % (width // 2 - 10)
    img[height // 3: 2 * height // 3, x: x + 6] = (0, 0, 255)
    return img


def config(tmp: Path, **live: Any) -> NodeConfig:
    return NodeConfig.model_validate({
        "node": {"id": NODE, "kind": "alarm_post"}, "pins": {"factory": "mock"}, "data_dir": str(tmp),
        "camera": {"source": "picamera2", "width": W, "height": H, "fps": 5},
        "live": {"audio_in": "tone:440", "audio_out": "analyse", **live}})


class PiNode:
    """A pole as the agent builds it: open_camera('picamera2') → CameraWorker → LiveOnDemand."""

    def __init__(self, tmp: Path, masks: list | None = None, **live: Any) -> None:
        self.cfg = config(tmp, **live)
        self.camera = open_camera("picamera2", W, H, NODE, masks=masks)
        assert isinstance(self.camera, Picamera2Camera)
        self.picam2 = fake_picamera2.Picamera2.instances[-1]
        self.worker = CameraWorker(self.camera, SystemClock(), fps=5).start()
        self.guard = CommandGuard(NODE, KEY, tmp / "nonces.db", SystemClock())
        self.replies: list[Reply] = []
        agent = SimpleNamespace(cfg=self.cfg, worker=self.worker, clock=SystemClock(),
                                role=SimpleNamespace(on_talk=lambda on: None))
        self.live = LiveOnDemand(agent)
        self.commands = CommandDispatcher(self.guard, audit=lambda kind, data: None, send_reply=self.replies.append)
        self.live.register(self.commands)
        self.live.manager = self.live._build()
        self.manager = self.live.manager
        self.encoder = self.manager.encoder

    async def command(self, name: str, **args: Any) -> Reply | None:
        cmd = Command.make(NODE, name, args, operator="wang").signed(KEY)
        return await self.commands.handle(cmd.to_bytes())

    async def connect(self, session: str) -> Viewer:
        viewer = Viewer()
        reply = await self.command("live.start", session=session, sdp=await viewer.offer())
        assert reply is not None and reply.ok, reply
        await viewer.accept(reply.data["sdp"])
        return viewer

    async def close(self) -> None:
        await self.live.close()
        self.worker.close()
        self.guard.close()


@pytest.fixture
def picamera2(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = fake_picamera2.install(monkeypatch)
    fake_picamera2.Picamera2.scene = street
    return module


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def test_viewer_decodes_the_picamera2_encoders_video_with_masks(tmp_path: Path, picamera2: Any) -> None:
    async def main() -> None:
        node = PiNode(tmp_path, masks=[[(0, 0), (0.5, 0), (0.5, 1), (0, 1)]])  # left half private
        assert isinstance(node.encoder, Picamera2VideoEncoder)
        software_before, hardware_before = EncoderStats.started, Picamera2EncoderStats.started
        try:
            viewer = await node.connect("pi-1")
            await viewer.wait_frames(10, timeout=15)
            img = viewer.latest.to_ndarray(format="bgr24")
            assert img.shape == (H, W, 3)
            left, right = img[:, 20:140].mean(), img[:, 180:300].mean()
            assert left < 25, f"masked half shows {left:.0f}: masks must be applied before picamera2's encoder"
            assert right > 40  # the unmasked half, decoded from the encoder's H.264
            assert EncoderStats.started == software_before, "the software encoder must not run on this path"
            assert Picamera2EncoderStats.started - hardware_before == 1
            (h264,) = node.picam2.encoders
            assert h264.name == "main" and h264.profile == "baseline" and h264.repeat
            assert h264.bitrate == 800_000 and h264.frame_skip_count == 2  # 30 fps camera, live.fps 15
            assert h264.iperiod == 30  # live.keyframe_s 2 at 15 fps
            assert node.worker.live_fps is None, "the camera worker is not asked to read faster"
            assert node.encoder.frames_encoded >= 10
            await viewer.close()
        finally:
            await node.close()
    run(main())


def test_second_viewer_shares_the_encoder_which_stops_with_the_last(tmp_path: Path, picamera2: Any) -> None:
    async def main() -> None:
        node = PiNode(tmp_path)
        try:
            a = await node.connect("a")
            await a.wait_frames(3)
            (h264,) = node.picam2.encoders
            keyframes = h264.keyframes
            b = await node.connect("b")
            await b.wait_frames(3)  # the late joiner starts on a keyframe it can decode
            assert h264.keyframes > keyframes and h264._key_frames_requested >= 1  # forced for b, not waited for
            assert node.picam2.encoders == {h264} and len(fake_picamera2.H264Encoder.instances) == 1
            assert node.encoder.viewers == 2
            assert (await node.command("live.stop", session="a")).ok
            assert node.encoder.running and h264.running
            frames = b.frames
            await b.wait_frames(frames + 3)  # b still watching
            assert (await node.command("live.stop", session="b")).ok
            assert not node.encoder.running and not h264.running and not node.picam2.encoders
            assert node.picam2.started, "the camera keeps running for detection and snapshots"
            seen = node.worker.frames
            await wait_until(lambda: node.worker.frames >= seen + 3)  # still delivering to the camera worker
            assert node.worker.read() is not None
            await asyncio.gather(a.close(), b.close())
            again = await node.connect("c")  # a new first viewer starts a fresh encoder
            await again.wait_frames(3)
            assert len(fake_picamera2.H264Encoder.instances) == 2 and node.encoder.viewers == 1
            await again.close()
        finally:
            await node.close()
    run(main())


def test_encoder_that_cannot_start_gives_a_clear_reply_and_lets_the_next_viewer_try(
        tmp_path: Path, picamera2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        node = PiNode(tmp_path)
        real = node.picam2.start_encoder

        def busy(*args: Any, **kwargs: Any) -> None:
            raise OSError(16, "Device or resource busy")

        monkeypatch.setattr(node.picam2, "start_encoder", busy)
        try:
            viewer = Viewer()
            reply = await node.command("live.start", session="x", sdp=await viewer.offer())
            assert not reply.ok and "H.264 encoder" in reply.detail and "live.encoder: software" in reply.detail
            assert node.encoder.viewers == 0 and not node.encoder.running
            await viewer.close()
            monkeypatch.setattr(node.picam2, "start_encoder", real)
            ok = await node.connect("y")
            await ok.wait_frames(3)
            await ok.close()
        finally:
            await node.close()
    run(main())


def test_software_encoder_on_request_and_config_errors(tmp_path: Path, picamera2: Any) -> None:
    node = PiNode(tmp_path, encoder="software")
    try:
        assert type(node.encoder) is SharedVideoEncoder  # boxes can be drawn: the CPU encodes
    finally:
        asyncio.run(node.close())
    with pytest.raises((ConfigError, ValueError), match="camera.source: picamera2"):
        NodeConfig.model_validate({"node": {"id": NODE, "kind": "alarm_post"}, "pins": {"factory": "mock"},
                                   "live": {"encoder": "picamera2"}})


def test_doctor_says_which_encoder_the_node_will_use(picamera2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.config import LiveSettings
    from edge.live.checks import check_live_encoder, check_live_view

    live = LiveSettings(audio_in="tone:440", audio_out="analyse")
    status, detail, _ = check_live_encoder(live, "picamera2")
    assert status == "ok" and "picamera2 H264Encoder (the Pi's hardware encoder)" in detail and "boxes" in detail
    status, detail, _ = check_live_encoder(live, "synthetic")
    assert status == "ok" and "libx264 in software" in detail
    status, detail, fix = check_live_view(live, "picamera2")
    assert status == "warn" and "libx264" in detail and "H264Encoder" in detail  # test sound devices: a warning

    class LibavH264Encoder:  # what picamera2 exports as H264Encoder on a Pi 5 (no H.264 hardware)
        pass

    monkeypatch.setattr(picamera2.encoders, "H264Encoder", LibavH264Encoder)
    status, detail, _ = check_live_encoder(live, "picamera2")
    assert status == "ok" and "LibavH264Encoder: software" in detail

    monkeypatch.setitem(__import__("sys").modules, "picamera2.encoders", None)  # not importable (no libcamera)
    status, detail, fix = check_live_encoder(live, "picamera2")
    assert status == "fail" and "cannot be imported" in detail and "python3-picamera2" in fix
