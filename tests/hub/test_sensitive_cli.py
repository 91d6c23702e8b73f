"""``pingan-hub sensitive add|list|cancel`` as an installer runs it: a bad window is one line in both languages
(exit 2, nothing stored), a good one is listed in district time, cancelled once, and audited with the name."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.protocol import utcnow


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PINGAN_DATA_DIR": str(data)}
    return subprocess.run([sys.executable, "-m", "hub.cli", "sensitive", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_add_list_cancel_and_a_bad_window(tmp_path: Path) -> None:
    local = (utcnow() + timedelta(hours=6)).astimezone(ZoneInfo("Asia/Shanghai"))
    bad = _cli(tmp_path, "add", "--start", local.strftime("%Y-%m-%dT%H:%M"),
               "--end", (local - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"), "--reason", "x")
    assert bad.returncode == 2 and "must be after the start" in bad.stderr and "必须晚于开始时间" in bad.stderr
    assert "Traceback" not in bad.stderr and _cli(tmp_path, "list").stdout == ""

    made = _cli(tmp_path, "add", "--end", local.strftime("%Y-%m-%dT%H:%M"), "--reason", "exam week", "--loiter", "20",
                "--by", "zhang")
    assert made.returncode == 0, made.stderr
    period = made.stdout.split()[0]
    listed = _cli(tmp_path, "list").stdout
    assert period in listed and local.strftime("%Y-%m-%d %H:%M") in listed and "exam week" in listed
    assert "cancelled" in _cli(tmp_path, "cancel", period, "--by", "zhang").stdout
    again = _cli(tmp_path, "cancel", period)
    assert again.returncode == 2 and "already cancelled" in again.stderr
    con = sqlite3.connect(tmp_path / "hub.db")
    try:
        rows = con.execute("SELECT actor, action FROM audit WHERE target = ? ORDER BY seq", (period,)).fetchall()
    finally:
        con.close()
    assert rows == [("cli:zhang", "sensitive.create"), ("cli:zhang", "sensitive.cancel")]
