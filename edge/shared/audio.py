"""Test audio both sides use: a tone generator for a microphone and an analyser for a speaker.

The pole uses them off the Pi (no ALSA devices); the hub's browser-side stand-in uses them to prove
that audio really crossed a live session (the tone's frequency measured at the far end), not that
some bytes did.
"""

from __future__ import annotations

import asyncio
import fractions
import threading
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms, Opus's frame
TIME_BASE = fractions.Fraction(1, RATE)


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


def dominant_hz(samples: np.ndarray, rate: int = RATE) -> float | None:
    if samples.size < rate // 20:
        return None
    x = samples.astype(np.float64)
    x -= x.mean()
    if np.sqrt(np.mean(x * x)) < 100:  # silence (s16 full scale is 32767)
        return None
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[int(np.argmax(spectrum))])
