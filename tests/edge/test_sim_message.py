"""`pingan-edge sim press NODE` for a node that is not there says where it looked and who listens there
(issue 17: it told the user to set PINGAN_SIM_DIR "to the folder the demo printed", which it never printed)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sim_for_a_missing_node_names_the_folder_and_the_nodes_listening_there() -> None:
    with tempfile.TemporaryDirectory(prefix="pingan-sim-") as d:  # short: Unix socket paths are limited
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(os.path.join(d, "pole-01.sock"))
        try:
            r = subprocess.run([sys.executable, "-m", "edge.cli", "sim", "press", "pole-99"], capture_output=True,
                               text=True, timeout=60, env={**os.environ, "PINGAN_SIM_DIR": d, "PYTHONPATH": str(ROOT)})
        finally:
            sock.close()
    said = r.stdout + r.stderr
    assert r.returncode != 0 and "Traceback" not in said
    assert f"{d}/pole-99.sock" in said and f"listening in {d}: pole-01" in said
    assert "/tmp/pingan-sim" in said and "the folder the demo printed" not in said
