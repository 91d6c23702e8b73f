"""The speaker → microphone loop of a pole, behind one interface with a real and a fake side.

Why a seam: the self-test's tone check (edge/selftest/audio.py) must run the same logic on a Pi
(ALSA through ``aplay``/``arecord``, Debian's alsa-utils) and in tests, where a simulated acoustic
loop stands in whose gain a test can cut, so a broken speaker fails exactly as it would on a pole.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import wave
from pathlib import Path
from typing import Protocol

import numpy as np

from edge.errors import HardwareError

RATE = 16_000


def tone(freq_hz: float, volume: float, seconds: float, rate: int = RATE) -> np.ndarray:
    """A sine at ``volume`` (0..1 of full scale), float32."""
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    return (volume * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


class ToneLoop(Protocol):
    async def play_and_record(self, freq_hz: float, volume: float, seconds: float) -> np.ndarray:
        """Play a tone and return what the microphone heard meanwhile (float32, -1..1, RATE)."""
        ...


class FakeAcousticLoop:
    """The simulator's air: the tone comes back times ``gain`` plus room noise. ``gain = 0`` is a dead
    speaker; ``hang`` makes the loop never answer (a stuck sound card), for the timeout path."""

    def __init__(self, gain: float = 0.3, noise: float = 0.002, seed: int = 7,
                 shift_hz: float = 0.0, hang: bool = False) -> None:
        self.gain, self.noise, self.shift_hz, self.hang = gain, noise, shift_hz, hang
        self.played: list[tuple[float, float]] = []
        self._rng = np.random.default_rng(seed)

    async def play_and_record(self, freq_hz: float, volume: float, seconds: float) -> np.ndarray:
        self.played.append((freq_hz, volume))
        if self.hang:
            await asyncio.Event().wait()
        heard = tone(freq_hz + self.shift_hz, volume, seconds) * self.gain
        heard += self._rng.normal(0.0, self.noise, heard.shape).astype(np.float32)
        return np.clip(heard, -1.0, 1.0)


class AlsaToneLoop:
    """On the Pi: ``aplay`` the tone while ``arecord`` listens (alsa-utils, scripts/bootstrap.sh)."""

    def __init__(self, playback: str = "default", capture: str = "default") -> None:
        if not (shutil.which("aplay") and shutil.which("arecord")):
            raise HardwareError("aplay/arecord not found: install alsa-utils (apt-get install alsa-utils)")
        self.playback, self.capture = playback, capture

    async def play_and_record(self, freq_hz: float, volume: float, seconds: float) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="pingan-tone-") as tmp:
            out, rec = Path(tmp) / "tone.wav", Path(tmp) / "heard.wav"
            pcm = (tone(freq_hz, volume, seconds) * 32767).astype("<i2")
            with wave.open(str(out), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(RATE)
                w.writeframes(pcm.tobytes())
            recorder = await asyncio.create_subprocess_exec(
                "arecord", "-q", "-D", self.capture, "-f", "S16_LE", "-c", "1", "-r", str(RATE),
                "-d", str(max(1, round(seconds + 0.5))), str(rec))
            await asyncio.sleep(0.2)  # the recorder is listening before the tone starts
            player = await asyncio.create_subprocess_exec("aplay", "-q", "-D", self.playback, str(out))
            if await player.wait() != 0 or await recorder.wait() != 0:
                raise HardwareError("aplay/arecord failed: check the sound card (arecord -l, aplay -l)")
            with wave.open(str(rec), "rb") as r:
                raw = np.frombuffer(r.readframes(r.getnframes()), dtype="<i2")
            return (raw.astype(np.float32) / 32768.0)
