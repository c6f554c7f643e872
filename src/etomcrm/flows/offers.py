"""3.9.4's daily look for contracts ending soon: each one found is stated
(``ContractEndApproaching``) and its handler gives the account manager the next best
offer as a task (:mod:`etomcrm.retention.moments`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dbos import DBOS
from sqlalchemy.orm import Session

from etomcrm.flows.framework import DurableRunner, StepResult, step
from etomcrm.retention.moments import contracts_ending

SCHEDULE = "0 0 6 * * *"  # 06:00 UTC daily, before the account managers' day


@step
def contract_ends_step(session: Session, workflow_id: str, at: str) -> StepResult:
    """3.9.4: the contracts ending within the notice period, each stated once a day."""
    found = contracts_ending(session, datetime.fromisoformat(at))
    # The tasks are the record: a contract found again gives no second task.
    return {"contractsEnding": len(found)}, []


@DBOS.workflow(name="contract-end-tick")
def contract_end_tick(scheduled_at: datetime, context: Any) -> None:
    """The daily schedule: contracts ending soon become offer tasks."""
    DurableRunner().step("contracts", "contract_ends_step", scheduled_at.isoformat())
