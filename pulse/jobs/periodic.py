"""The one list of periodic jobs, registered with RQ's cron scheduler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pulse.jobs.maintenance import purge_expired_records, refresh_rollups


@dataclass(frozen=True)
class PeriodicJob:
    func: Callable[..., Any]
    cron: str
    queue: str = "periodic"

    @property
    def name(self) -> str:
        return self.func.__name__


PERIODIC_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob(purge_expired_records, cron="17 * * * *"),
    # Every few minutes: a day's roll-up is built soon after it has settled (rollups.SETTLE).
    PeriodicJob(refresh_rollups, cron="*/5 * * * *"),
)


def register_all(scheduler: Any) -> None:
    """Register every periodic job on an `rq.cron.CronScheduler`."""
    for periodic in PERIODIC_JOBS:
        scheduler.register(
            periodic.func, queue_name=periodic.queue, cron=periodic.cron, name=periodic.name
        )
