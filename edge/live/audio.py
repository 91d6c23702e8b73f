"""The pole's microphone and speaker for talk-back.

On a Pi both are ALSA devices opened through PyAV (``alsa:default``, ``alsa:plughw:1,0``; list
them with ``arecord -L`` / ``aplay -L``). Off the Pi a tone generator stands in for the microphone
and an analyser for the speaker: it keeps what arrives so a test can measure the tone's frequency,
which proves audio really crossed the link (not that some bytes did).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from edge.errors import HardwareError
from edge.shared.audio import RATE, AnalyserSpeaker, ToneTrack

log = logging.getLogger(__name__)


def resolve_device(spec: str, *, output: bool) -> str:
    """'auto' → ALSA's default device when the machine has sound hardware, else the fake one."""
    if spec != "auto":
        return spec
    if Path("/dev/snd").exists():
        return "alsa:default"
    return "analyse" if output else "tone:440"


def open_microphone(spec: str) -> tuple[MediaStreamTrack, Any]:
    """The microphone track for ``spec`` and what must be closed with it (or None)."""
    spec = resolve_device(spec, output=False)
    if spec.startswith("tone:"):
        try:
            hz = float(spec.split(":", 1)[1])
        except ValueError:
            raise HardwareError(f"live.audio_in {spec!r}: write tone:<Hz>, e.g. tone:440") from None
        return ToneTrack(hz), None
    if spec.startswith("alsa:"):
        from aiortc.contrib.media import MediaPlayer

        device = spec.split(":", 1)[1]
        try:
            player = MediaPlayer(device, format="alsa", options={"channels": "1", "sample_rate": str(RATE)})
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise HardwareError(f"cannot open the microphone {device!r} (ALSA): {exc}; "
                                "list devices with `arecord -L`") from None
        return player.audio, player
    raise HardwareError(f"live.audio_in {spec!r} is not alsa:<device>, tone:<Hz> or auto")


class Speaker(Protocol):
    def play(self, frame: av.AudioFrame) -> None: ...
    def close(self) -> None: ...


class AlsaSpeaker:
    """An ALSA playback device through PyAV (the pole's loudspeaker on a Pi)."""

    def __init__(self, device: str) -> None:
        try:
            self._out = av.open(device, "w", format="alsa")
            self._stream = self._out.add_stream("pcm_s16le", rate=RATE, layout="mono")
            self._out.start_encoding()  # opens the device now: a wrong name fails here, not at the first word
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise HardwareError(f"cannot open the speaker {device!r} (ALSA): {exc}; list devices with `aplay -L`") \
                from None
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)

    def play(self, frame: av.AudioFrame) -> None:
        for out in self._resampler.resample(frame):
            out.pts = None
            for packet in self._stream.encode(out):
                self._out.mux(packet)

    def close(self) -> None:
        self._out.close()


def open_speaker(spec: str) -> Speaker:
    spec = resolve_device(spec, output=True)
    if spec == "analyse":
        return AnalyserSpeaker()
    if spec.startswith("alsa:"):
        return AlsaSpeaker(spec.split(":", 1)[1])
    raise HardwareError(f"live.audio_out {spec!r} is not alsa:<device>, analyse or auto")


async def play_file(path: Path, speaker: Speaker) -> None:
    """Play a local audio file (e.g. a recorded 'help is coming') on the speaker, in real time."""
    from aiortc.contrib.media import MediaPlayer

    try:
        player = MediaPlayer(str(path))
    except (av.FFmpegError, OSError) as exc:
        log.error("cannot play the talk prompt %s: %s", path, exc)
        return
    track = player.audio
    if track is None:
        log.error("the talk prompt %s has no audio", path)
        return
    try:
        while True:
            frame = await track.recv()  # MediaPlayer paces itself in real time
            speaker.play(frame)
    except MediaStreamError:
        pass
    finally:
        track.stop()
