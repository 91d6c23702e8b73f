"""Live view through a TURN server (what a NATed deployment needs): Debian's coturn on loopback, the
viewer allowed only relayed candidates, the node given the same TURN server by the hub's args. Video
still arrives, so media really went through the relay. Skipped where coturn is not installed."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hub.live.video.viewer import Viewer
from hub.transport.broker import free_port
from tests.conftest import wait_for
from tests.edge.test_live_node import Node

TURN_USER, TURN_PASS = "pingan", "turn-secret-1"


@pytest.fixture()
def turn(tmp_path: Path):
    exe = shutil.which("turnserver")
    if exe is None:
        if os.environ.get("CI") == "true":  # scripts/bootstrap.sh installs it: in CI its absence is a failure
            pytest.fail("coturn is not installed; scripts/bootstrap.sh should have installed it")
        pytest.skip("coturn is not installed (apt-get install -y coturn)")
    port = free_port()
    log = tmp_path / "turn.log"
    proc = subprocess.Popen([exe, "-n", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
                             "--listening-port", str(port), "--min-port", "49152", "--max-port", "65535",
                             "--realm", "pingan", "--lt-cred-mech", "--user", f"{TURN_USER}:{TURN_PASS}",
                             "--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers", "--simple-log",
                             "--log-file", str(log), "--pidfile", str(tmp_path / "turn.pid"),
                             "--userdb", str(tmp_path / "turndb")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: log.exists() and "(admin thread)" in log.read_text(errors="replace")
                 or proc.poll() is not None, 10, 0.05, "coturn started")
        assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
        yield [{"urls": f"turn:127.0.0.1:{port}?transport=udp", "username": TURN_USER, "credential": TURN_PASS}], log
    finally:  # stopped even when it failed to come up
        proc.terminate()
        proc.wait(10)


def test_video_arrives_through_a_turn_relay(tmp_path: Path, turn) -> None:
    servers, _ = turn

    async def main() -> None:
        node = Node(tmp_path)
        viewer = Viewer(ice_servers=servers, relay_only=True)
        try:
            offer = await viewer.offer()
            candidates = [line for line in offer.splitlines() if line.startswith("a=candidate")]
            assert candidates and all(" typ relay" in c for c in candidates), candidates
            reply = await node.command("live.start", session="via-turn", sdp=offer, ice_servers=servers)
            assert reply.ok, reply.detail
            await viewer.accept(reply.data["sdp"])
            await viewer.wait_frames(5, timeout=20)
        finally:
            await viewer.close()
            await node.close()

    asyncio.run(asyncio.wait_for(main(), 60))  # frames came, and the viewer had no path but the relay
