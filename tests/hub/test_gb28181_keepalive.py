"""Registration over time: refreshed before it expires (same Call-ID), and a platform that stops answering
is counted offline after three missed keepalives, tried again with backoff, and registered with again when
it is back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.hub.test_gb28181_sipp import rig
from tests.hub.test_gb28181_subscribe import Platform


def test_refresh_before_expiry_and_offline_after_three_missed_keepalives(tmp_path: Path) -> None:
    async def run() -> None:
        platform = Platform(expires=6)  # refreshed at 2/3 of 6 s (5 s at the least)
        server = asyncio.create_task(platform.serve())
        r = rig(tmp_path, "udp", platform.port, answer_timeout_s=1.0)
        await r.adapter.start()
        status = r.adapter.registration.status

        async def until(cond, what: str, timeout: float = 15) -> None:  # noqa: ANN001
            deadline = time.monotonic() + timeout
            while not cond():
                assert time.monotonic() < deadline, f"timed out waiting for {what}: {status}"
                await asyncio.sleep(0.05)

        try:
            await until(lambda: status.registrations == 2, "the refresh")
            registers = [m for m in platform.got if m.method == "REGISTER"]
            assert len({m.call_id for m in registers}) == 1  # the same registration, refreshed
            assert status.state == "registered" and status.keepalives_missed == 0
            platform.expires = 3600  # the next refresh is granted an hour: the keepalives alone tell from now on
            await until(lambda: status.registrations == 3, "the second refresh")
            platform.deaf = True
            await until(lambda: status.state == "offline", "offline after missed keepalives")
            assert status.keepalives_missed == 3
            await until(lambda: status.failures >= 2, "registrations unanswered while it is away")
            health = r.adapter.health()
            assert health["state"] == "offline"
            assert health["last_error"] == "no answer from the city platform to REGISTER"
            platform.deaf = False
            await until(lambda: status.state == "registered" and status.registrations >= 4, "registered again")
        finally:
            await r.adapter.stop()
            server.cancel()
            platform.sock.close()

    asyncio.run(run())
