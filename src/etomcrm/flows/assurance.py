"""The Assurance flow for the alarm case (DESIGN.md section 2): network alarm → service
problem → customers found → tickets opened and customers informed (3.6.1, 3.6.2) →
tracked (3.6.3) → repaired → closed after the customers confirm, or after the stated
silence (3.6.4) → survey (3.9.5, sent when a ticket closes). A problem 3.6.1 raised for
a customer's ticket runs the same flow.

Detection runs on a DBOS schedule (every 30 s in a process that runs flows): it
correlates the alarms of the last window and starts one problem flow per new service
problem; the same tick lets the simulated network side report the repairs it finished
(a real OSS PATCHes the service problem itself). A problem flow waits durably: for the
network's repair (woken when the network reports it, TMF656 ``resolved``, or when the
last alarm of its cause clears; looking again every quarter hour), then for the
customers' confirmation (until the silence period ends). Its tickets are the ones
correlation opened for it and the customers' own tickets 3.6.1 linked to it (the
problem's ``troubleTicket``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from dbos import DBOS
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from etomcrm.config import get_settings
from etomcrm.core import resources
from etomcrm.core.clock import FLOW_CLOCK
from etomcrm.db import session_scope
from etomcrm.flows import engine, recorder
from etomcrm.flows.framework import (
    DurableRunner,
    Runner,
    StepResult,
    look_until,
    step,
)
from etomcrm.flows.recorder import Task
from etomcrm.network.port import get_network
from etomcrm.network.simulator import SimulatedNetwork
from etomcrm.problem_handling.correlation import correlate, ticket_name
from etomcrm.problem_handling.models import AlarmRow, ServiceProblemRow, TroubleTicketRow
from etomcrm.problem_handling.service import SERVICE_PROBLEM_KIND, report_repair
from etomcrm.problem_handling.tickets import change_status, track_tickets
from etomcrm.security.service import SYSTEM

log = logging.getLogger(__name__)

DETECTION_WINDOW = timedelta(hours=2)
REPAIR_RECHECK_SECONDS = 15 * 60.0
SCHEDULE = "*/30 * * * * *"
TICKET_SWEEP_SCHEDULE = "15 * * * * *"  # every minute


def problem_workflow_id(problem_id: str) -> str:
    return f"problem-{problem_id}"


def _tickets_of(session: Session, problem_id: str) -> list[TroubleTicketRow]:
    problem = session.get(ServiceProblemRow, problem_id)
    linked = [
        str(t["id"])
        for t in (problem.body.get("troubleTicket") or [] if problem is not None else [])
        if isinstance(t, dict) and t.get("id")
    ]
    return list(
        session.scalars(
            select(TroubleTicketRow)
            .where(
                or_(
                    TroubleTicketRow.name == ticket_name(problem_id),
                    TroubleTicketRow.id.in_(linked),
                )
            )
            .order_by(TroubleTicketRow.created_at, TroubleTicketRow.id)
        )
    )


def _take_up(session: Session, tickets: list[TroubleTicketRow]) -> None:
    """Tickets waiting to be taken up are in work while the network repairs."""
    for ticket in tickets:
        if ticket.status == "acknowledged":
            change_status(
                session, SYSTEM, ticket.id, "inProgress", reason="the network side is repairing"
            )


def problem_flow(run: Runner, problem_id: str) -> str:
    """One service problem from its detection to the last customer's closed ticket."""
    run.step("isolate", "isolate_step", problem_id)
    look_until(
        run,
        "repair",
        "repair_step",
        problem_id,
        done=lambda state: bool(state["repaired"]),
        topic="problem",
        wait_seconds=lambda _: REPAIR_RECHECK_SECONDS,
    )
    look_until(
        run,
        "closing",
        "closing_step",
        problem_id,
        done=lambda closing: closing["open"] == 0,
        topic="ticket",
        wait_seconds=lambda closing: float(closing["wait_seconds"]),
    )
    run.step("close", "close_problem_step", problem_id)
    return "closed"


@step
def isolate_step(session: Session, workflow_id: str, problem_id: str) -> StepResult:
    problem = session.get(ServiceProblemRow, problem_id)
    assert problem is not None
    recorder.start_flow(
        session,
        workflow_id=workflow_id,
        flow="assurance",
        case_id=problem_id,
        case_type="ServiceProblem",
        customer_id=None,
        description=f"Assurance: {problem.body.get('description', problem_id)}",
    )
    tickets = _tickets_of(session, problem_id)
    for ticket in tickets:
        recorder.relate(
            session,
            workflow_id,
            {"id": ticket.id, "@referredType": "TroubleTicket", "role": "ticket"},
        )
    _take_up(session, tickets)
    if problem.status == "acknowledged":
        set_problem_status(session, problem_id, "inProgress")
    customers = {t.owner_customer_id for t in tickets}
    return (
        {"tickets": len(tickets)},
        [
            Task(
                "3.6.1",
                "Isolate the problem and start resolution",
                f"{problem.body.get('description')}; {len(tickets)} ticket(s) for "
                f"{len(customers)} customer(s), each informed",
            ),
            Task(
                "3.6.2",
                "Report the problem to other processes",
                "repair requested from the network side; SLA management told the affected "
                f"products ({problem.body.get('affectedNumberOfServices', 0)})",
            ),
        ],
    )


@step
def repair_step(session: Session, workflow_id: str, problem_id: str, check: int) -> StepResult:
    problem = session.get(ServiceProblemRow, problem_id)
    assert problem is not None
    tickets = _tickets_of(session, problem_id)
    # The network side reported the repair (TMF656 resolved), or the alarms that
    # showed the fault have all cleared; without alarms only the network's word counts.
    reported = problem.status in ("resolved", "closed")
    alarms, still_raised = session.execute(
        select(func.count(), func.sum(case((AlarmRow.status != "cleared", 1), else_=0))).where(
            AlarmRow.correlation_key == problem.correlation_key
        )
    ).one()
    if not reported and (still_raised or not alarms):
        _take_up(session, tickets)
        # Targets are warned and escalated by the ticket sweep, for every ticket.
        waiting = (
            f"{still_raised} alarm(s) still raised; the repair goes on"
            if still_raised
            else "the network side is repairing; waiting for its report"
        )
        return ({"repaired": False}, [Task("3.6.3", "Track and manage the problem", waiting)])
    _take_up(session, tickets)
    for ticket in tickets:
        if ticket.status == "inProgress":
            change_status(
                session, SYSTEM, ticket.id, "resolved", reason="the network side repaired the fault"
            )
    set_problem_status(session, problem_id, "resolved")
    how = (
        f"repaired by the network side ({problem.body.get('statusChangeReason')})"
        if reported
        else "repaired (the alarms cleared)"
    )
    return (
        {"repaired": True},
        [
            Task(
                "3.6.3",
                "Track and manage the problem",
                f"{how}; {len(tickets)} ticket(s) resolved, customers asked to confirm",
            )
        ],
    )


@step
def closing_step(session: Session, workflow_id: str, problem_id: str, look: int) -> StepResult:
    silence = timedelta(seconds=get_settings().ticket_silence_seconds)
    now = FLOW_CLOCK.now()
    open_count, closed_silent, next_deadline = 0, 0, None
    for ticket in _tickets_of(session, problem_id):
        if ticket.status != "resolved":
            continue
        resolved_at = datetime.fromisoformat(ticket.body["statusChangeDate"])
        deadline = resolved_at + silence
        if deadline <= now:
            change_status(
                session,
                SYSTEM,
                ticket.id,
                "closed",
                reason="no answer from the customer within the silence period",
            )
            closed_silent += 1
        else:
            open_count += 1
            next_deadline = deadline if next_deadline is None else min(next_deadline, deadline)
    wait = (next_deadline - now).total_seconds() if next_deadline else 0.0
    tasks = []
    if closed_silent:
        tasks.append(
            Task("3.6.4", "Close the problem", f"{closed_silent} ticket(s) closed after silence")
        )
    else:
        tasks.append(
            Task("3.6.4", "Close the problem", f"{open_count} ticket(s) await confirmation")
        )
    return {"open": open_count, "wait_seconds": max(wait, 0.001)}, tasks


@step
def close_problem_step(session: Session, workflow_id: str, problem_id: str) -> StepResult:
    tickets = _tickets_of(session, problem_id)
    confirmed = sum(
        1
        for t in tickets
        if any(
            "confirmed" in str(change.get("changeReason", ""))
            for change in t.body.get("statusChange", [])
            if change.get("status") == "closed"
        )
    )
    set_problem_status(session, problem_id, "closed")
    recorder.finish_flow(session, workflow_id, "completed")
    return (
        {},
        [
            Task(
                "3.6.4",
                "Close the problem",
                f"service problem closed: {len(tickets)} ticket(s) closed, {confirmed} confirmed "
                "by the customer; surveys sent",
            )
        ],
    )


def set_problem_status(session: Session, problem_id: str, status: str) -> None:
    row = session.get(ServiceProblemRow, problem_id)
    if row is None or row.status == status:
        return
    resources.patch(session, SERVICE_PROBLEM_KIND, SYSTEM, problem_id, {"status": status})


# ----- detection -----------------------------------------------------------------------


def detect(since: datetime, now: datetime) -> list[str]:
    """3.6.1 Isolate Customer Problem (eTOM 1.1.1.6.1): correlate the alarms raised
    since ``since`` and start a problem flow for every new service problem."""

    with session_scope() as session:
        result = correlate(session, since=since, now=now)
    for problem_id in result.problems:
        start_problem_flow(problem_id)
    return result.problems


def start_problem_flow(problem_id: str) -> None:
    try:
        engine.enqueue("problem", problem_workflow_id(problem_id), problem_id)
    except Exception:
        log.exception("could not start the flow of service problem %s now", problem_id)


@DBOS.workflow(name="correlation-tick")
def correlation_tick(scheduled_at: datetime, context: Any) -> None:
    """The scheduled detection: correlate the last window, start the problem flows."""
    runner = DurableRunner()
    runner.step("repairs", "network_repairs_step", scheduled_at.isoformat())
    window = runner.step("correlate", "correlate_step", scheduled_at.isoformat())
    for problem_id in window["problems"]:
        runner.then("problem", problem_workflow_id(problem_id), problem_id)


@DBOS.workflow(name="ticket-sweep-tick")
def ticket_sweep_tick(scheduled_at: datetime, context: Any) -> None:
    """The scheduled look at every ticket (3.6.3): warnings, escalations, silent
    closures."""
    DurableRunner().step("sweep", "sweep_tickets_step", scheduled_at.isoformat())


@step
def sweep_tickets_step(session: Session, workflow_id: str, at: str) -> StepResult:
    moment = datetime.fromisoformat(at)
    silence = timedelta(seconds=get_settings().ticket_silence_seconds)
    swept = track_tickets(session, now=moment, silence=silence)
    # Like detection, the sweep keeps no record of its own every minute: what it did is
    # written on the tickets (slaWarning, escalation, notes, status changes).
    return (
        {
            "warned": len(swept.warned),
            "escalated": len(swept.escalated),
            "closed": len(swept.closed),
        },
        [],
    )


@step
def network_repairs_step(session: Session, workflow_id: str, at: str) -> StepResult:
    """The simulated network side reports the repairs it finished, through the TMF656
    entry a real OSS uses (a real OSS calls it by itself: nothing to do here)."""
    network = get_network()
    if not isinstance(network, SimulatedNetwork):
        return {"repaired": []}, []
    reports = network.repairs_done(session)
    for report in reports:
        report_repair(
            session,
            report.problem_id,
            cause=report.cause,
            root_cause_resource=report.root_cause_resource,
        )
    return {"repaired": [r.problem_id for r in reports]}, []


@step
def correlate_step(session: Session, workflow_id: str, at: str) -> StepResult:
    moment = datetime.fromisoformat(at)
    result = correlate(session, since=moment - DETECTION_WINDOW, now=moment)
    # Detection keeps no record of its own every 30 s: the problems' flows are the record.
    return {"problems": result.problems}, []
