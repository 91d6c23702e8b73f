"""The hub hands freed heap pages back to the OS (hub/runtime/memtrim.py): after a burst, RSS comes down."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from hub.runtime import memtrim


@pytest.mark.skipif(memtrim._trim is None, reason="not glibc: malloc_trim does not exist here")
def test_freed_pages_between_live_blocks_go_back_to_the_os() -> None:
    # A fresh interpreter: 200,000 payload-sized blocks (malloc, not pymalloc), one in ten kept alive so the
    # heap cannot shrink from its top, as after a burst of resends. Only trim() may bring RSS down.
    script = textwrap.dedent("""
        import gc
        from hub.runtime import memtrim

        def rss_mb():
            return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

        blocks = [bytes(900) + i.to_bytes(4, "little") for i in range(200_000)]
        kept = blocks[::10]
        del blocks
        gc.collect()
        before = rss_mb()
        memtrim.trim()
        print(before, rss_mb(), len(kept))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    before, after, _ = (float(x) for x in out.stdout.split())
    assert before - after > 50, f"RSS {before:.0f} MB -> {after:.0f} MB after trim"
