"""The churn model refitted on a schedule (seed 5.3, predict).

Once a day the tick looks at the model in use: when there is none, or it was fitted
``churn_refit_after_days`` (7) days or more before the tick, and there is enough history,
the model is fitted again on everything at hand. The tick's moment is the one the
schedule gives (a test passes its own), so "due" never depends on the wall clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dbos import DBOS
from sqlalchemy.orm import Session

from etomcrm.analytics import churn
from etomcrm.flows.framework import DurableRunner, StepResult, step

SCHEDULE = "0 45 2 * * *"  # 02:45 UTC daily, before the working day's assessments


@step
def churn_refit_step(session: Session, workflow_id: str, at: str) -> StepResult:
    """Refit the churn model when it is due (see the module docstring)."""
    outcome = churn.refit_if_due(session, datetime.fromisoformat(at))
    # Like the usage tick, no process record: the model's versions are the record.
    return {"outcome": outcome}, []


@DBOS.workflow(name="churn-tick")
def churn_tick(scheduled_at: datetime, context: Any) -> None:
    """The daily schedule: refit the churn model if it is due."""
    DurableRunner().step("refit", "churn_refit_step", scheduled_at.isoformat())
