"""Handlers of domain events that start or signal a flow (wired in
:mod:`etomcrm.bootstrap`). Each runs after the change it reacts to has committed."""

from __future__ import annotations

import logging

from etomcrm.flows import engine
from etomcrm.flows.assurance import problem_workflow_id, start_problem_flow
from etomcrm.problem_handling.events import ServiceProblemRaisedForTicket, ServiceProblemRepaired

log = logging.getLogger(__name__)


def start_flow_of_ticket_problem(event: ServiceProblemRaisedForTicket) -> None:
    """A problem 3.6.1 raised for a customer's ticket runs its assurance flow."""
    start_problem_flow(event.problem_id)


def wake_repaired_problem(event: ServiceProblemRepaired) -> None:
    """The problem's flow, waiting for the repair, looks again now. A problem without
    a flow (raised by SLA management, by staff) has nobody to wake: DBOS drops the
    message."""
    try:
        engine.send(problem_workflow_id(event.problem_id), "repaired", "problem")
    except Exception as error:  # no such flow, or it looks again at its next recheck
        log.info("did not wake the flow of service problem %s: %s", event.problem_id, error)
