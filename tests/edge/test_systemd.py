"""The systemd units parse and reference real programs (systemd-analyze verify), and the agent
speaks the notify protocol: READY=1 at start, WATCHDOG=1 while it makes progress."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
@pytest.mark.parametrize("unit", ["pingan-edge.service", "pingan-hub.service"])
def test_units_verify(tmp_path: Path, unit: str) -> None:
    text = (ROOT / "systemd" / unit).read_text()
    bin_dir = Path(sys.executable).parent
    text = text.replace("/opt/pingan/.venv/bin", str(bin_dir))
    (tmp_path / unit).write_text(text)
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / unit)], capture_output=True,
                         text=True, timeout=60)
    problems = [line for line in (out.stdout + out.stderr).splitlines() if unit in line or "rror" in line]
    assert problems == [], problems
    assert "Type=notify" in text or unit == "pingan-hub.service"


def test_agent_notifies_ready_and_pings_watchdog(tmp_path: Path, broker, hub_factory, node_factory,
                                                  monkeypatch) -> None:
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(20)
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # ping every second
    hub = hub_factory(broker.url)
    node_factory("pole-31", broker.url, hub.register("pole-31"))
    seen: list[str] = []
    while "WATCHDOG=1" not in seen:
        seen.append(sock.recv(256).decode())
    assert seen[0] == "READY=1"
    sock.close()
