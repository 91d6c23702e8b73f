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
