"""A failed scheduled self-test is retried once, its failed checks only, ``selftest.retry_after_min`` later
(2N's practice, 10 minutes by default): the first result says when (``retry_at``) so the hub waits, a glitch
that is gone by then raises nothing, a speaker still dead fails again and no third run follows; a run on
command and a passing run are never retried."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from edge.config import SelftestSettings
from edge.hw.audio import FakeAcousticLoop
from edge.protocol import SelftestCheck, SelftestResultData
from edge.selftest.audio import audio_loop
from edge.selftest.checks import Check
from edge.selftest.runner import SelfTester

NOW = datetime(2026, 12, 5, 3, 17, tzinfo=UTC)


def _tester(checks: list[Check], retry_after_s: float = 0.05) -> tuple[SelfTester, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    tester = SelfTester("pole-07", checks, lambda kind, data: sent.append({"kind": kind, **data}),
                        retry_after_s=retry_after_s, now=lambda: NOW)
    return tester, sent


def _flaky() -> Check:
    """Fails once (a passer-by shouting over the tone), passes after."""
    calls = 0

    async def run() -> SelftestCheck:
        nonlocal calls
        calls += 1
        return SelftestCheck(name="audio_loop", status="fail" if calls == 1 else "pass", value=-50.0 + calls * 20)
    return Check("audio_loop", run)


async def _disk() -> SelftestCheck:
    return SelftestCheck(name="disk", status="pass", value=40.0, limit=90.0, unit="%")


def test_a_glitch_is_retried_once_and_its_pass_ends_it() -> None:
    tester, sent = _tester([_flaky(), Check("disk", _disk)])
    final = asyncio.run(tester.scheduled())
    assert [(e["trigger"], e["ok"]) for e in sent] == [("schedule", False), ("retry", True)]
    assert datetime.fromisoformat(sent[0]["retry_at"].replace("Z", "+00:00")) == NOW + timedelta(seconds=0.05)
    assert [c["name"] for c in sent[1]["checks"]] == ["audio_loop"]  # the failed checks only
    assert "retry_at" not in sent[1] and final.ok
    SelftestResultData.model_validate(sent[0])  # the contract's model reads it back


def test_a_dead_speaker_fails_the_retry_too_and_no_third_run_follows() -> None:
    dead = FakeAcousticLoop(gain=0.0)
    tester, sent = _tester([Check("audio_loop", lambda: audio_loop(dead)), Check("disk", _disk)])
    asyncio.run(tester.scheduled())
    assert [(e["trigger"], e["ok"]) for e in sent] == [("schedule", False), ("retry", False)]
    assert "retry_at" in sent[0] and "retry_at" not in sent[1]
    assert sent[1]["checks"][0]["status"] == "fail"


def test_passing_runs_runs_on_command_and_retry_off_are_not_retried() -> None:
    tester, sent = _tester([Check("disk", _disk)])
    asyncio.run(tester.scheduled())
    assert [e["trigger"] for e in sent] == ["schedule"] and "retry_at" not in sent[0]
    tester, sent = _tester([_flaky()])
    asyncio.run(tester.run("command"))
    assert [e["trigger"] for e in sent] == ["command"] and "retry_at" not in sent[0]
    tester, sent = _tester([_flaky()], retry_after_s=0)
    asyncio.run(tester.scheduled())
    assert [e["trigger"] for e in sent] == ["schedule"] and "retry_at" not in sent[0]


def test_the_config_default_is_ten_minutes_and_bounded() -> None:
    assert SelftestSettings().retry_after_min == 10
    with pytest.raises(ValidationError, match="less than or equal to 120"):
        SelftestSettings(retry_after_min=500)
