"""The hub's periodic jobs, written once: resends, escalation, report roll-ups, live-session sweeps,
handing memory back.

Why one helper: each job had its own ``while True`` with its own sleep, leader check and error
handling, and two of them let an exception end the loop for good. Here every job runs its work off
the event loop (blocking database calls never hold up requests or the live stream), is skipped on a
replica that is not the leader when it must run once per district, logs and counts a failure and
goes on with the next round, and shows in ``/metrics`` (``pingan_hub_job_runs_total`` and
``pingan_hub_job_failures_total`` by job).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hub.runtime import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    every_s: float
    work: Callable[[], Any] | Callable[[], Awaitable[Any]]  # a plain function runs in a thread
    leader_only: bool = False  # replicas: only the leader runs it (each attempt goes out once)
    first_after_s: float | None = None  # the first round's delay; every_s when None


async def run_job(job: Job, is_leader: Callable[[], bool] = lambda: True) -> None:
    """Run ``job`` until cancelled."""
    delay = job.every_s if job.first_after_s is None else job.first_after_s
    while True:
        await asyncio.sleep(delay)
        delay = job.every_s
        if job.leader_only and not is_leader():
            continue
        try:
            if inspect.iscoroutinefunction(job.work):
                await job.work()
            else:
                await asyncio.to_thread(job.work)
        except Exception:  # noqa: BLE001 - one failed round never ends the job
            metrics.job_failures.labels(job.name).inc()
            log.exception("periodic job %s failed; it runs again in %.0f s", job.name, job.every_s)
        else:
            metrics.job_runs.labels(job.name).inc()


def start_jobs(jobs: list[Job], is_leader: Callable[[], bool]) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(run_job(job, is_leader), name=f"job:{job.name}") for job in jobs]


async def stop_jobs(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
