"""When a node tests itself: daily at a local start time, spread over a window by node id.

Why spread by a hash of the node id: 2,000 poles starting their tone test and uplink probe at 03:00:00
would hit the hub together; each node's offset inside the window is fixed (sha256 of its id), so the
load is flat and a node tests at the same minute every night (easy to find in its history).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta

from edge.errors import ConfigError


def parse_window(start: str, window_min: int) -> tuple[time, timedelta]:
    """``start`` "HH:MM" local, ``window_min`` 1..720; a clear ConfigError in both languages otherwise."""
    try:
        hh, mm = start.split(":")
        at = time(int(hh), int(mm))
    except (ValueError, TypeError):
        raise ConfigError(f"selftest.start {start!r} is not a time of day HH:MM (e.g. 03:00) / "
                          f"自检开始时间 {start!r} 不是 HH:MM 格式（例如 03:00）") from None
    if not 1 <= window_min <= 720:
        raise ConfigError(f"selftest.window_min {window_min} must be 1..720 minutes / "
                          f"自检时间窗 {window_min} 分钟须在 1 到 720 之间")
    return at, timedelta(minutes=window_min)


def offset(node_id: str, window: timedelta) -> timedelta:
    h = int.from_bytes(hashlib.sha256(node_id.encode()).digest()[:8], "big")
    return timedelta(seconds=h % int(window.total_seconds()))


def next_run(node_id: str, now: datetime, start: str = "03:00", window_min: int = 60) -> datetime:
    """The next self-test after ``now`` (local, naive or aware alike)."""
    at, window = parse_window(start, window_min)
    day = datetime.combine(now.date(), at, tzinfo=now.tzinfo) + offset(node_id, window)
    return day if day > now else day + timedelta(days=1)
