"""For `rq cron pulse.jobs.cron_config`: the periodic jobs, through rq.cron.register."""

from rq import cron

from pulse.jobs.periodic import PERIODIC_JOBS

for _periodic in PERIODIC_JOBS:
    cron.register(_periodic.func, _periodic.queue, cron=_periodic.cron, name=_periodic.name)
