"""hub/runtime/periodic.py: every periodic job survives a failed round, is counted, and runs only on the
leader when it must run once per district."""

from __future__ import annotations

import asyncio

from hub.runtime import metrics
from hub.runtime.periodic import Job, start_jobs, stop_jobs


def _count(counter, job: str) -> float:
    return counter.labels(job)._value.get()


def test_a_failing_round_is_logged_counted_and_the_job_goes_on(caplog) -> None:
    rounds: list[int] = []

    def work() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("the database went away")

    async def main() -> None:
        tasks = start_jobs([Job("t_flaky", 0.01, work, first_after_s=0)], lambda: True)
        while len(rounds) < 3:
            await asyncio.sleep(0.01)
        await stop_jobs(tasks)

    failures, runs = _count(metrics.job_failures, "t_flaky"), _count(metrics.job_runs, "t_flaky")
    asyncio.run(main())
    assert _count(metrics.job_failures, "t_flaky") == failures + 1
    assert _count(metrics.job_runs, "t_flaky") >= runs + 2
    assert "periodic job t_flaky failed" in caplog.text


def test_leader_only_jobs_wait_for_leadership_and_coroutines_run_on_the_loop() -> None:
    leader = {"now": False}
    ran: list[str] = []

    async def sweep() -> None:
        ran.append("sweep")

    async def main() -> None:
        tasks = start_jobs([Job("t_leader", 0.01, lambda: ran.append("resend"), leader_only=True),
                            Job("t_everyone", 0.01, sweep)], lambda: leader["now"])
        while "sweep" not in ran:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert "resend" not in ran  # not the leader: skipped
        leader["now"] = True
        while "resend" not in ran:
            await asyncio.sleep(0.01)
        await stop_jobs(tasks)
        assert all(t.done() for t in tasks)

    asyncio.run(main())
