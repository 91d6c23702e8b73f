"""Speaker → microphone: play a tone, measure it back by FFT (level and frequency), louder on retry.

Like Zenitel's tone test: three tries at rising volume; the check passes on the first try whose
strongest bin is within ``freq_tol_hz`` of the tone and at least ``min_dbfs`` loud.
"""

from __future__ import annotations

import math

import numpy as np

from edge.hw.audio import RATE, ToneLoop
from edge.protocol import SelftestCheck


def measure(samples: np.ndarray, rate: int = RATE) -> tuple[float, float]:
    """(peak frequency in Hz, its level in dBFS of a full-scale sine) of ``samples``."""
    if samples.size == 0:
        return 0.0, -120.0
    window = np.hanning(samples.size)
    spectrum = np.abs(np.fft.rfft(samples * window))
    spectrum[0] = 0.0
    k = int(np.argmax(spectrum))
    amplitude = 2.0 * spectrum[k] / window.sum()  # a sine of amplitude A gives A here
    return k * rate / samples.size, 20 * math.log10(max(amplitude, 1e-6))


async def audio_loop(loop: ToneLoop, *, freq_hz: float = 1000.0, volumes: tuple[float, ...] = (0.2, 0.5, 1.0),
                     seconds: float = 0.5, min_dbfs: float = -40.0, freq_tol_hz: float = 30.0) -> SelftestCheck:
    tried: list[str] = []
    best = (0.0, -120.0)
    for volume in volumes:
        freq, level = measure(await loop.play_and_record(freq_hz, volume, seconds))
        best = max(best, (freq, level), key=lambda m: m[1])
        if abs(freq - freq_hz) <= freq_tol_hz and level >= min_dbfs:
            return SelftestCheck(name="audio_loop", status="pass", value=round(level, 1), limit=min_dbfs,
                                 unit="dBFS", detail=f"{freq:.0f} Hz heard at volume {volume}")
        tried.append(f"{volume}")
    return SelftestCheck(name="audio_loop", status="fail", value=round(best[1], 1), limit=min_dbfs, unit="dBFS",
                         detail=f"tone {freq_hz:.0f} Hz not heard at volume {', '.join(tried)} "
                                f"(loudest {best[0]:.0f} Hz)")
