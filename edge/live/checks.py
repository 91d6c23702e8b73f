"""What ``pingan-edge doctor`` checks for live view: the libraries, the encoder, the sound devices."""

from __future__ import annotations

from edge.config import LiveSettings
from edge.errors import HardwareError


def check_live_audio(settings: LiveSettings) -> tuple[str, str, str]:
    """(status, detail, fix): aiortc/PyAV with libx264 present; the microphone and speaker open and close."""
    try:
        import aiortc
        import av
    except ImportError as exc:
        return "fail", f"live view libraries missing ({exc})", "reinstall the node software (pip install pingan)"
    try:
        av.codec.Codec("libx264", "w")
    except Exception as exc:  # noqa: BLE001 - PyAV raises several kinds for a missing codec
        return "fail", f"PyAV has no libx264 encoder ({exc})", "use the PyAV wheel from PyPI (it bundles libx264)"
    from edge.live.audio import open_microphone, open_speaker, resolve_device

    mic_spec = resolve_device(settings.audio_in, output=False)
    out_spec = resolve_device(settings.audio_out, output=True)
    try:
        track, closer = open_microphone(mic_spec)
        track.stop()
        if closer is not None and closer.audio is not None:
            closer.audio.stop()
        open_speaker(out_spec).close()
    except HardwareError as exc:
        return "fail", str(exc), "set live.audio_in / live.audio_out to devices `arecord -L` / `aplay -L` list"
    fake = [s for s in (mic_spec, out_spec) if not s.startswith("alsa:")]
    detail = f"aiortc {aiortc.__version__}, PyAV {av.__version__} (libx264); microphone {mic_spec}, speaker {out_spec}"
    if fake:
        return ("warn", detail + " (test devices: talk-back will not reach a real speaker)",
                "on a pole set live.audio_in / live.audio_out to alsa:<device>")
    return "ok", detail, ""


def check_live_encoder(settings: LiveSettings, camera_source: str) -> tuple[str, str, str]:
    """(status, detail, fix): which H.264 encoder the live view will use, and whether it can be loaded."""
    from edge.live.wiring import encoder_kind

    if encoder_kind(settings, camera_source) == "software":
        boxes = "detection boxes drawn" if settings.overlay_boxes else "no detection boxes"
        return "ok", f"live encoder: libx264 in software ({boxes})", ""
    try:
        from picamera2.encoders import H264Encoder  # type: ignore[import-not-found]
    except ImportError as exc:  # picamera2 itself, or libcamera / videodev2 under it
        from edge.hw.camera import PICAMERA2_HINT

        return "fail", f"live encoder: picamera2's H264Encoder cannot be imported ({exc})", PICAMERA2_HINT
    hardware = H264Encoder.__name__ == "H264Encoder"  # on a Pi 5 picamera2 gives its libx264 encoder this name
    where = ("the Pi's hardware encoder" if hardware
             else f"{H264Encoder.__name__}: software, this Pi has no H.264 hardware")
    detail = f"live encoder: picamera2 H264Encoder ({where}) on the masked main stream; detection boxes are not drawn"
    return "ok", detail, ""


def check_live_view(settings: LiveSettings, camera_source: str) -> tuple[str, str, str]:
    """The live view's libraries and sound devices, then its encoder; the worse status wins."""
    results = [check_live_audio(settings), check_live_encoder(settings, camera_source)]
    rank = {"ok": 0, "warn": 1, "fail": 2}
    status = max((r[0] for r in results), key=rank.__getitem__)
    return status, "; ".join(r[1] for r in results), "; ".join(r[2] for r in results if r[2])
