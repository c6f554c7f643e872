"""Handlers of domain events whose work retention does in its own transaction (wired
in :mod:`etomcrm.bootstrap`)."""

from __future__ import annotations

from etomcrm.db import session_scope
from etomcrm.retention.events import CustomerRiskRaised
from etomcrm.retention.tasks import open_retention_task


def task_account_manager(event: CustomerRiskRaised) -> None:
    """A churn risk became high: the account manager gets a retention task."""
    with session_scope() as session:
        open_retention_task(session, event.customer_id, event.assessment_id)
