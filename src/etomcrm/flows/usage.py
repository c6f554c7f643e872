"""Usage from the network side, every hour: the traffic of each site's access product
(3.8.2's input, TMF635).

The schedule takes the hours that ended before its tick, ``LOOKBACK`` of them: the
last hour, and the ones before it again, because performance data arrives late.
Each hour's usage has ids of its own (``traffic/<site>/<product>/<hour>``), so an hour
taken again stores nothing twice and corrects an hour whose measurements grew.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dbos import DBOS
from sqlalchemy.orm import Session

from etomcrm.billing.usage import usage_from_measurements
from etomcrm.flows.framework import DurableRunner, StepResult, step

SCHEDULE = "0 10 * * * *"  # ten past every hour: the hour before has been fed by then
LOOKBACK = 3  # hours taken again on each tick (late measurements)


def hours_before(moment: datetime, count: int = LOOKBACK) -> list[datetime]:
    """The ``count`` whole hours that ended before ``moment``, oldest first."""
    current = moment.replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=n) for n in range(count, 0, -1)]


@step
def traffic_usage_step(session: Session, workflow_id: str, at: str) -> StepResult:
    """3.8.2 Apply pricing, discounting, adjustments & rebates: its input, the traffic
    usage of the hours before ``at``."""
    new = unchanged = corrected = 0
    for hour in hours_before(datetime.fromisoformat(at)):
        result = usage_from_measurements(session, hour)
        new, unchanged, corrected = (
            new + result.new,
            unchanged + result.unchanged,
            corrected + result.corrected,
        )
    # Like the ticket sweep, the hourly tick keeps no process record of its own: what
    # it did is the usage records themselves (their versions show the corrections).
    return {"new": new, "unchanged": unchanged, "corrected": corrected}, []


@DBOS.workflow(name="usage-tick")
def usage_tick(scheduled_at: datetime, context: Any) -> None:
    """The hourly schedule: the traffic of the hours before as usage records."""
    DurableRunner().step("traffic", "traffic_usage_step", scheduled_at.isoformat())
