"""Live view on a node, aiortc on both ends on loopback: a pole running a file camera answers signed
live.* commands; the viewer decodes real video frames; audio crosses both ways (a tone's frequency
is measured at the other end); one encoder however many viewers; sessions end on max time, on a
lost viewer and on stop; unsigned or wrongly signed commands are refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.clock import FakeClock, SystemClock
from edge.config import LiveSettings
from edge.hw.camera import FileCamera, MaskedCamera
from edge.link.commands import CommandGuard
from edge.link.dispatch import CommandDispatcher
from edge.live.session import LiveManager
from edge.live.video import EncoderStats, SharedVideoEncoder
from edge.live.wiring import LIVE_COMMANDS
from edge.protocol import Command, Reply
from edge.shared.audio import dominant_hz
from edge.vision.worker import CameraWorker
from hub.live.video.viewer import Viewer

KEY = b"live-test-key-0123456789"
NODE = "pole-31"


def scene(path: Path, width: int = 320, height: int = 240) -> Path:
    """A picture with a bright left half and a dark right half (the mask test blanks the left)."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:, : width // 2] = (200, 200, 200)
    img[:, width // 2:] = (40, 90, 40)
    cv2.putText(img, "pingan", (10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 0, 255), 2)
    cv2.imwrite(str(path), img)
    return path


class Node:
    def __init__(self, tmp: Path, clock=None, masks=None, **live) -> None:
        camera = FileCamera(scene(tmp / "scene.png"), 320, 240)
        if masks:
            camera = MaskedCamera(camera, masks)
        self.clock = clock or SystemClock()
        self.worker = CameraWorker(camera, SystemClock(), fps=5).start()
        settings = LiveSettings(audio_in="tone:440", audio_out="analyse", **live)
        self.encoder = SharedVideoEncoder(self.worker, width=320, height=240, fps=settings.fps,
                                          bitrate_kbps=settings.bitrate_kbps, keyframe_s=settings.keyframe_s)
        self.guard = CommandGuard(NODE, KEY, tmp / "nonces.db", SystemClock())
        self.replies: list[Reply] = []
        self.talking: list[bool] = []
        self.refused: list[dict] = []
        self.manager = LiveManager(settings, self.encoder, clock=self.clock, on_talk=self.talking.append)
        self.commands = CommandDispatcher(self.guard, audit=lambda kind, data: self.refused.append(data),
                                          send_reply=self.replies.append)
        self.commands.register(self.manager.obey, *LIVE_COMMANDS)

    async def command(self, name: str, key: bytes = KEY, **args) -> Reply | None:
        cmd = Command.make(NODE, name, args, operator="wang").signed(key)
        return await self.commands.handle(cmd.to_bytes())

    async def close(self) -> None:
        await self.manager.close()
        self.worker.close()
        self.guard.close()


async def connect(node: Node, session: str, talk: bool = False) -> Viewer:
    viewer = Viewer(talk=talk)
    reply = await node.command("live.start", session=session, sdp=await viewer.offer(), talk=talk)
    assert reply is not None and reply.ok, reply
    await viewer.accept(reply.data["sdp"])
    return viewer


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_viewer_receives_decodable_frames_of_the_masked_camera(tmp_path: Path) -> None:
    async def main() -> None:
        node = Node(tmp_path, masks=[[(0, 0), (0.5, 0), (0.5, 1), (0, 1)]])  # left half private
        try:
            viewer = await connect(node, "s1")
            await viewer.wait_frames(10, timeout=15)
            img = viewer.latest.to_ndarray(format="bgr24")
            assert img.shape == (240, 320, 3)
            left, right = img[:, 20:140].mean(), img[:, 180:300].mean()
            assert left < 25, f"masked half shows {left:.0f}: privacy masks must reach live view"
            assert right > 40  # the scene's unmasked half, decoded from H.264
            assert node.encoder.running and node.encoder.frames_encoded >= 10
            await viewer.close()
        finally:
            await node.close()
        assert not node.encoder.running  # no viewer, no encoder
    run(main())


def test_second_viewer_shares_the_one_encoder(tmp_path: Path) -> None:
    async def main() -> None:
        node = Node(tmp_path)
        try:
            before = EncoderStats.started
            a = await connect(node, "a")
            await a.wait_frames(3)
            b = await connect(node, "b")
            await b.wait_frames(3)  # the second viewer starts at a keyframe and decodes
            assert EncoderStats.started - before == 1, "a second viewer must not start a second encoder"
            assert node.encoder.viewers == 2
            reply = await node.command("live.stop", session="a")
            assert reply.ok
            assert node.encoder.running and node.encoder.viewers == 1
            frames = b.frames
            await b.wait_frames(frames + 3)  # b still watching
            await node.command("live.stop", session="b")
            assert not node.encoder.running
            await asyncio.gather(a.close(), b.close())
        finally:
            await node.close()
    run(main())


def test_talk_carries_audio_both_ways_and_shows_the_led(tmp_path: Path) -> None:
    async def main() -> None:
        node = Node(tmp_path)
        try:
            viewer = await connect(node, "talk-1", talk=True)  # the operator's "microphone" sends 660 Hz
            assert node.talking == [True]
            await viewer.wait_frames(3)
            speaker = node.manager.last_speaker
            for _ in range(100):
                await asyncio.sleep(0.1)
                if speaker.frames > 60 and viewer.heard.frames > 60:
                    break
            heard_at_pole = speaker.dominant_hz(1.0)
            heard_at_centre = viewer.heard.dominant_hz(1.0)
            assert heard_at_pole is not None and abs(heard_at_pole - 660) < 10, heard_at_pole
            assert heard_at_centre is not None and abs(heard_at_centre - 440) < 10, heard_at_centre
            await node.command("live.stop", session="talk-1")
            assert node.talking == [True, False]
            await viewer.close()
        finally:
            await node.close()
    run(main())


def test_sessions_end_on_max_time_and_on_a_lost_viewer(tmp_path: Path) -> None:
    async def main() -> None:
        clock = FakeClock()
        node = Node(tmp_path, clock=clock, max_session_s=60, keepalive_timeout_s=10)
        try:
            a = await connect(node, "kept")
            b = await connect(node, "vanished")
            await a.wait_frames(2)
            clock.advance(8)
            ka = await node.command("live.keepalive", sessions=["kept"])  # only a's console is still open
            assert ka.data["alive"] == ["kept"]
            clock.advance(3)
            await node.manager.tick()
            assert set(node.manager.sessions) == {"kept"}
            assert node.manager.ended["vanished"] == "viewer_lost"
            ka = await node.command("live.keepalive", sessions=["kept", "vanished"])
            assert ka.data["gone"] == {"vanished": "viewer_lost"}  # the hub learns it to close the audit
            clock.advance(50)
            await node.command("live.keepalive", sessions=["kept"])
            await node.manager.tick()
            assert not node.manager.sessions and node.manager.ended["kept"] == "max_session"
            assert not node.encoder.running  # camera no longer read fast, encoder gone
            assert node.worker.live_fps is None
            await asyncio.gather(a.close(), b.close())
        finally:
            await node.close()
    run(main())


def test_connection_closed_by_the_viewer_ends_the_session(tmp_path: Path) -> None:
    async def main() -> None:
        node = Node(tmp_path)
        try:
            viewer = await connect(node, "c1")
            await viewer.wait_frames(2)
            await viewer.close()  # the browser tab went away
            for _ in range(100):
                if not node.manager.sessions:
                    break
                await asyncio.sleep(0.1)
            assert not node.manager.sessions, "a closed peer connection must end the session"
            assert not node.encoder.running
        finally:
            await node.close()
    run(main())


@pytest.mark.parametrize("key", [b"not-the-node-key-000000", None])
def test_unsigned_or_badly_signed_live_start_is_refused(tmp_path: Path, key: bytes | None) -> None:
    async def main() -> None:
        node = Node(tmp_path)
        try:
            viewer = Viewer()
            cmd = Command.make(NODE, "live.start", {"session": "x", "sdp": await viewer.offer()}, operator="eve")
            if key is not None:
                cmd = cmd.signed(key)
            reply = await node.commands.handle(cmd.to_bytes())
            assert reply is not None and not reply.ok and "bad signature" in reply.detail
            assert not node.manager.sessions and not node.encoder.running
            assert node.refused and node.refused[0]["reason"] == "bad signature"
            await viewer.close()
        finally:
            await node.close()
    run(main())


def test_limits_and_bad_offers_get_clear_replies(tmp_path: Path) -> None:
    async def main() -> None:
        node = Node(tmp_path, max_viewers=1)
        try:
            bad = await node.command("live.start", session="s", sdp="hello")
            assert not bad.ok and "SDP offer" in bad.detail
            a = await connect(node, "one")
            viewer = Viewer()
            full = await node.command("live.start", session="two", sdp=await viewer.offer())
            assert not full.ok and "max_viewers" in full.detail
            await asyncio.gather(a.close(), viewer.close())
        finally:
            await node.close()
    run(main())


def test_talk_plays_the_local_prompt_first(tmp_path: Path) -> None:
    """A recorded 'help is coming' (here: 1 s of 1 kHz) plays on the pole's speaker before the operator."""
    import wave

    prompt = tmp_path / "help.wav"
    t = np.arange(48_000) / 48_000
    with wave.open(str(prompt), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48_000)
        w.writeframes((np.sin(2 * np.pi * 1000 * t) * 9000).astype(np.int16).tobytes())

    async def main() -> None:
        node = Node(tmp_path, talk_prompt=prompt)
        try:
            viewer = await connect(node, "talk-p", talk=True)
            speaker = node.manager.last_speaker
            for _ in range(100):
                await asyncio.sleep(0.1)
                if speaker.samples().size > 48_000 * 2:
                    break
            heard = speaker.samples()
            first, then = dominant_hz(heard[:24_000]), dominant_hz(heard[-24_000:])
            assert first is not None and abs(first - 1000) < 10, first  # the prompt
            assert then is not None and abs(then - 660) < 10, then  # then the operator
            await viewer.close()
        finally:
            await node.close()
    run(main())


def test_detection_boxes_are_drawn_on_the_live_picture(tmp_path: Path) -> None:
    """When the pole detects, the pipeline's latest boxes appear in the video the viewer decodes."""
    from types import SimpleNamespace

    from edge.live.video import box_overlay
    from edge.vision.detector import Detection
    from edge.vision.pipeline import FrameResult

    pipeline = SimpleNamespace(last=FrameResult(index=0))

    async def main() -> None:
        node = Node(tmp_path)
        node.encoder.overlay = box_overlay(pipeline)
        try:
            viewer = await connect(node, "boxes")
            await viewer.wait_frames(3)
            plain = viewer.latest.to_ndarray(format="bgr24")
            pipeline.last = FrameResult(index=1, ran_detector=True,
                                        detections=[Detection("person", 0.91, (180.0, 60.0, 300.0, 200.0))])
            await viewer.wait_frames(viewer.frames + 10)
            boxed = viewer.latest.to_ndarray(format="bgr24")
            edge_plain, edge_boxed = plain[59:62, 190:290].astype(int), boxed[59:62, 190:290].astype(int)
            # the box's top edge: orange (B low, G and R high) where the scene was dark green
            assert edge_boxed[..., 2].mean() > 150 and edge_plain[..., 2].mean() < 80
            await viewer.close()
        finally:
            await node.close()
    run(main())


@pytest.mark.parametrize("device", [{"audio_in": "alsa:no-such-mic"}, {"audio_out": "alsa:no-such-speaker"}])
def test_talk_with_a_missing_sound_device_says_so_and_releases_the_camera(tmp_path: Path, device) -> None:
    async def main() -> None:
        node = Node(tmp_path)
        node.manager.settings = node.manager.settings.model_copy(update=device)
        try:
            viewer = Viewer(talk=True)
            reply = await node.command("live.start", session="t", sdp=await viewer.offer(), talk=True)
            assert not reply.ok and "ALSA" in reply.detail and "-L" in reply.detail, reply.detail
            assert not node.manager.sessions and not node.encoder.running
            assert node.talking == []  # the LED never said "talking"
            await viewer.close()
        finally:
            await node.close()
    run(main())


def test_doctor_checks_live_view_libraries_and_sound_devices() -> None:
    from edge.live.checks import check_live_audio

    status, detail, fix = check_live_audio(LiveSettings(audio_in="tone:440", audio_out="analyse"))
    assert status == "warn" and "libx264" in detail and "alsa:<device>" in fix  # works, but test devices
    status, detail, fix = check_live_audio(LiveSettings(audio_in="alsa:no-such-mic"))
    assert status == "fail" and "no-such-mic" in detail and "arecord -L" in fix
