"""The pole's microphone and speaker for talk-back.

On a Pi both are ALSA devices opened through PyAV (``alsa:default``, ``alsa:plughw:1,0``; list
them with ``arecord -L`` / ``aplay -L``). Off the Pi a tone generator stands in for the microphone
and an analyser for the speaker: it keeps what arrives so a test can measure the tone's frequency,
which proves audio really crossed the link (not that some bytes did).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from edge.errors import HardwareError

log = logging.getLogger(__name__)
RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms, Opus's frame
TIME_BASE = fractions.Fraction(1, RATE)


def resolve_device(spec: str, *, output: bool) -> str:
    """'auto' → ALSA's default device when the machine has sound hardware, else the fake one."""
    if spec != "auto":
        return spec
    if Path("/dev/snd").exists():
        return "alsa:default"
    return "analyse" if output else "tone:440"


class ToneTrack(MediaStreamTrack):
    """A sine tone in real time (mono s16, 48 kHz, 20 ms frames): the fake microphone."""

    kind = "audio"

    def __init__(self, hz: float = 440.0, level: float = 0.3) -> None:
        super().__init__()
        self.hz, self.level = hz, level
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._n / RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = (self._n + np.arange(FRAME_SAMPLES)) / RATE
        samples = (np.sin(2 * np.pi * self.hz * t) * self.level * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._n
        frame.time_base = TIME_BASE
        self._n += FRAME_SAMPLES
        return frame


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


class AnalyserSpeaker:
    """The fake speaker: keeps the last ``keep_s`` seconds of mono samples to measure them."""

    def __init__(self, keep_s: float = 5.0) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self._keep = int(keep_s * RATE)
        self._samples = np.zeros(0, dtype=np.int16)
        self._lock = threading.Lock()
        self.frames = 0

    def play(self, frame: av.AudioFrame) -> None:
        for out in self._resampler.resample(frame):
            data = out.to_ndarray().reshape(-1).astype(np.int16)
            with self._lock:
                self._samples = np.concatenate([self._samples, data])[-self._keep:]
        self.frames += 1

    def samples(self) -> np.ndarray:
        with self._lock:
            return self._samples.copy()

    def dominant_hz(self, seconds: float = 1.0) -> float | None:
        """The strongest frequency of the last ``seconds`` heard, or None if (nearly) silent."""
        return dominant_hz(self.samples()[-int(seconds * RATE):], RATE)

    def close(self) -> None:
        pass


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


def dominant_hz(samples: np.ndarray, rate: int = RATE) -> float | None:
    if samples.size < rate // 20:
        return None
    x = samples.astype(np.float64)
    x -= x.mean()
    if np.sqrt(np.mean(x * x)) < 100:  # silence (s16 full scale is 32767)
        return None
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[int(np.argmax(spectrum))])


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
