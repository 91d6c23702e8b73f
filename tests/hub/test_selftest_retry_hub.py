"""The hub's side of the self-test retry: a failed scheduled result that announces a retry (``retry_at``) is
stored and shown as failing but raises no node.fault; the retry's result decides (a pass: no fault; a fail:
one node.fault naming the checks). A failed result without retry_at (an older node, or retry off) raises the
fault at once, as before."""

from __future__ import annotations

from datetime import timedelta

from edge.protocol import Event, utcnow
from tests.hub.test_selftest_hub import feed, hub  # noqa: F401 - hub is the fixture


def _result(node: str, ok: bool, trigger: str, retry: bool = False) -> Event:
    checks = [{"name": "audio_loop", "status": "pass" if ok else "fail", "value": -80.0, "limit": -40.0}]
    data = {"ok": ok, "trigger": trigger, "duration_s": 3.0, "checks": checks}
    if retry:
        data["retry_at"] = (utcnow() + timedelta(minutes=10)).isoformat()
    return Event.make(node, "selftest.result", data)


def _faults(client) -> list[dict]:
    return [a for a in client.get("/api/alarms").json() if a["kind"] == "node.fault"]


def test_a_retried_failure_waits_for_the_retry(hub) -> None:  # noqa: F811
    state, ingest, fake, client = hub
    for node in ("pole-01", "pole-02", "pole-03"):
        state.service.register_node(node, grid="G1")
    feed(ingest, _result("pole-01", False, "schedule", retry=True))
    feed(ingest, _result("pole-02", False, "schedule", retry=True))
    assert _faults(client) == []
    assert client.get("/api/nodes/pole-01/selftests").json()[0]["ok"] is False  # shown as failing meanwhile

    feed(ingest, _result("pole-01", True, "retry"))  # the glitch is gone
    feed(ingest, _result("pole-02", False, "retry"))  # the speaker is dead
    faults = _faults(client)
    assert [f["node"] for f in faults] == ["pole-02"]

    feed(ingest, _result("pole-03", False, "schedule"))  # no retry announced: the fault at once
    assert sorted(f["node"] for f in _faults(client)) == ["pole-02", "pole-03"]
