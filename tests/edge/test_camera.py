"""The camera seam: privacy masks, source selection, a reconnecting stream, picamera2's absence.

The stream test serves a real MJPEG/AVI file over HTTP from this process (OpenCV reads it
through FFmpeg, as it would an IP camera), stops the server and starts it again: the camera
must return None while it is gone, retry on its backoff (an injected clock), and resume.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import HardwareError
from edge.hw.camera import (
    FileCamera,
    MaskedCamera,
    OpenCVCamera,
    Picamera2Camera,
    PrivacyMask,
    SyntheticCamera,
    encode_jpeg,
    open_camera,
    polygon_to_pixels,
    redact_url,
)
from hub.transport.broker import free_port

W, H = 320, 240


class Ticks:
    """A monotonic clock the test moves by hand (the camera's backoff reads it)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _video(path: Path, n: int = 12) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for i in range(n):
        frame = np.full((H, W, 3), 90, np.uint8)
        cv2.rectangle(frame, (10 + 20 * i, 60), (50 + 20 * i, 180), (0, 0, 200), -1)
        writer.write(frame)
    writer.release()
    return path


# ---------------------------------------------------------------- masks


def test_masks_blank_polygons_in_pixels_and_fractions() -> None:
    cam = MaskedCamera(SyntheticCamera(W, H, "pole"), [
        [(0, 0), (100, 0), (100, 50), (0, 50)],  # pixels: top-left block
        [(0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0)],  # fractions: bottom-right quarter
    ])
    frame = cam.read()
    assert frame is not None and frame.shape == (H, W, 3)
    assert frame[:50, :100].max() == 0
    assert frame[H // 2:, W // 2:].max() == 0
    assert frame[60:110, 110:150].max() > 0  # the rest is untouched


def test_masks_accept_settings_objects_and_pass_attributes_through() -> None:
    from edge.vision.config import MaskSettings

    inner = SyntheticCamera(W, H, "pole")
    cam = open_camera("synthetic", W, H, "pole", masks=[MaskSettings(points=[(0, 0), (1, 0), (1, 0.25)])])
    assert isinstance(cam, MaskedCamera)
    frame = cam.read()
    assert frame is not None and frame[0, W - 2].max() == 0
    wrapped = MaskedCamera(inner, [])
    inner.broken = True
    assert wrapped.read() is None and wrapped.broken is True


def test_a_mask_does_not_write_into_a_read_only_frame() -> None:
    class Frozen:
        def read(self) -> np.ndarray:
            f = np.full((H, W, 3), 200, np.uint8)
            f.flags.writeable = False
            return f

        def close(self) -> None:
            pass

    frame = MaskedCamera(Frozen(), [[(0, 0), (10, 0), (10, 10)]]).read()
    assert frame is not None and frame[1, 5].max() == 0


def test_polygon_coordinates_rule() -> None:
    assert polygon_to_pixels([(0.5, 0.5), (1, 1), (0, 1)], 640, 480).tolist() == [[320, 240], [640, 480], [0, 480]]
    assert polygon_to_pixels([(10, 20), (30, 40), (0, 1)], 640, 480).tolist() == [[10, 20], [30, 40], [0, 1]]
    assert not PrivacyMask([])


# ---------------------------------------------------------------- sources


def test_open_camera_picks_the_camera_by_source(tmp_path: Path) -> None:
    assert isinstance(open_camera("synthetic", W, H, "x"), SyntheticCamera)
    img = tmp_path / "still.png"
    cv2.imwrite(str(img), np.zeros((H, W, 3), np.uint8))
    assert isinstance(open_camera(str(img), W, H, "x"), FileCamera)
    for source in ("/dev/video97", "97", 97):
        cam = open_camera(source, W, H, "x")  # no such device: None, not a crash
        assert isinstance(cam, OpenCVCamera) and cam.read() is None and not cam.connected
    assert isinstance(open_camera(f"http://127.0.0.1:{free_port()}/cam.mjpg", W, H, "x"), OpenCVCamera)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://cam.local/stream", "not supported"),
        ("rtsp:///stream1", "has no host"),
        ("http://cam.local:99999/x", "malformed"),
        ("/dev/videoX", "not /dev/videoN"),
        ("/no/such/file.mp4", "does not exist"),
    ],
)
def test_a_bad_source_is_a_clear_error(url: str, message: str) -> None:
    with pytest.raises(HardwareError, match=message):
        open_camera(url, W, H, "x")


def test_passwords_stay_out_of_messages() -> None:
    assert redact_url("rtsp://admin:s3cret@10.0.0.5:554/s1") == "rtsp://admin:***@10.0.0.5:554/s1"
    with pytest.raises(HardwareError) as exc:
        OpenCVCamera("gopher://admin:s3cret@10.0.0.5/")
    assert "s3cret" not in str(exc.value)
    cam = OpenCVCamera(f"rtsp://admin:s3cret@127.0.0.1:{free_port()}/s1", clock=Ticks())
    assert "s3cret" not in repr(cam)


def test_an_unreachable_stream_backs_off_and_never_raises() -> None:
    ticks = Ticks()
    cam = OpenCVCamera(f"rtsp://127.0.0.1:{free_port()}/stream1", W, H, clock=ticks, max_backoff_s=8)
    assert cam.attempts == 1 and not cam.connected and cam.last_error
    tried_at = []
    for _ in range(60):  # 30 s of reads every 0.5 s
        before = cam.attempts
        assert cam.read() is None
        if cam.attempts > before:
            tried_at.append(ticks.t - 100.0)
        ticks.t += 0.5
    # Backoff 1, 2, 4, 8, 8 ... seconds after the first attempt at t=0.
    assert tried_at[:5] == [1.0, 3.0, 7.0, 15.0, 23.0]
    cam.close()


def test_opencv_camera_on_a_file_reads_then_reopens_at_the_end(tmp_path: Path) -> None:
    ticks = Ticks()
    cam = OpenCVCamera(str(_video(tmp_path / "v.avi", n=5)), clock=ticks)
    frames = [cam.read() for _ in range(5)]
    assert all(f is not None and f.shape == (H, W, 3) for f in frames)
    assert cam.read() is None and not cam.connected  # the end: like a dropped stream
    ticks.t += 1.0
    assert cam.read() is not None and cam.attempts == 2


@pytest.fixture()
def http_video(tmp_path: Path) -> Iterator[tuple[str, tuple[Callable[[], None], Callable[[], None]]]]:
    _video(tmp_path / "cam.avi", n=8)
    port = free_port()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    servers: list[ThreadingHTTPServer] = []

    def start() -> None:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)

    def stop() -> None:
        server = servers.pop()
        server.shutdown()
        server.server_close()

    start()
    yield f"http://127.0.0.1:{port}/cam.avi", (start, stop)
    while servers:
        stop()


def test_a_stream_that_drops_returns_none_and_reconnects(
    http_video: tuple[str, tuple[Callable[[], None], Callable[[], None]]],
) -> None:
    url, (start, stop) = http_video
    ticks = Ticks()
    cam = open_camera(url, W, H, "x")
    assert isinstance(cam, OpenCVCamera)
    cam._clock = ticks  # the backoff on the test's clock
    assert cam.connected
    got = [cam.read() for _ in range(8)]
    assert all(f is not None for f in got)
    stop()  # the camera goes away (and the stream has ended)
    assert cam.read() is None and not cam.connected
    for _ in range(10):  # retries while it is gone: None each time, no exception
        ticks.t += 5.0
        assert cam.read() is None
    assert cam.attempts >= 3
    start()  # back on the same address
    ticks.t += 31.0
    frame = cam.read()
    assert frame is not None and frame.shape == (H, W, 3) and cam.connected
    cam.close()


def test_picamera2_missing_says_how_to_install_it() -> None:
    try:
        import picamera2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("picamera2 is installed here")
    with pytest.raises(HardwareError) as exc:
        Picamera2Camera(W, H)
    assert "apt install python3-picamera2" in str(exc.value) and "--system-site-packages" in str(exc.value)
    with pytest.raises(HardwareError, match="python3-picamera2"):
        open_camera("picamera2", W, H, "x")


# ---------------------------------------------------------------- existing seam


def test_synthetic_camera_breaks_and_encode_jpeg_fits_the_limit() -> None:
    cam = SyntheticCamera(W, H, "pole-1")
    frame = cam.read()
    assert frame is not None and frame.shape == (H, W, 3)
    cam.broken = True
    assert cam.read() is None
    noise = np.random.default_rng(0).integers(0, 255, (960, 1280, 3), dtype=np.uint8)
    jpeg = encode_jpeg(noise, 95, limit=100_000)
    assert len(jpeg) <= 100_000 and jpeg[:2] == b"\xff\xd8"
