"""The dunning flow (DESIGN.md section 2, Billing: "payment collected or dunned"), one
run per dunning case: reminder → notice with fee → final notice announcing the
suspension → suspension through a suspend order on the Fulfillment flow → resumed by a
resume order once paid (3.8.5). Every step is a message to the customer; the case
pauses while an enquiry disputes the amount (3.8.1).

The rules are billing's (``billing.dunning``); this flow only looks at the case at the
right times: when the next level is due (a durable wait on the flow clock), and at once
when it is woken (``PaymentReceived``, an enquiry opened or resolved). A daily schedule
states the bills that became overdue and starts their flows; ``PaymentReturned`` starts
one for a returned debit.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from dbos import DBOS
from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.billing import dunning
from etomcrm.billing.dunning_models import DunningCaseRow
from etomcrm.billing.events import (
    BillDisputed,
    BillingEnquiryResolved,
    BillOverdue,
    PaymentReceived,
    PaymentReturned,
)
from etomcrm.core.clock import FLOW_CLOCK
from etomcrm.db import session_scope
from etomcrm.flows import engine, recorder
from etomcrm.flows.framework import DurableRunner, Runner, StepResult, step
from etomcrm.flows.fulfillment import ordering_workflow_id
from etomcrm.flows.models import ProcessFlowRow
from etomcrm.flows.recorder import Task
from etomcrm.network.port import business_date

log = logging.getLogger(__name__)

FLOW = "dunning"
TOPIC = "dunning"
SCHEDULE = "0 30 5 * * *"  # 05:30 UTC daily: yesterday's due dates are past everywhere
STEP_SEEDS = {"open_dunning_step": "3.8.5", "dunning_look_step": "3.8.5", "overdue_step": "3.8.5"}


def dunning_flow(run: Runner, case_id: str) -> str:
    """One dunning case from its opening to the payment (or the customer's resumption)."""
    run.step("open", "open_dunning_step", case_id)
    look = 0
    while True:
        look += 1
        result = run.step(f"look-{look}", "dunning_look_step", case_id, look)
        if result.get("order"):
            # The suspend or resume order runs through the Fulfillment flow.
            order_id = str(result["order"])
            run.then("ordering", ordering_workflow_id(order_id), order_id)
        if result["ended"]:
            return str(result["outcome"])
        run.recv(TOPIC, float(result["wait_seconds"]))


@step
def open_dunning_step(session: Session, workflow_id: str, case_id: str) -> StepResult:
    case = session.get(DunningCaseRow, case_id)
    assert case is not None
    recorder.start_flow(
        session,
        workflow_id=workflow_id,
        flow=FLOW,
        case_id=case.bill_id,
        case_type="CustomerBill",
        customer_id=case.owner_customer_id,
        description=f"Dunning: {case.name}",
    )
    recorder.relate(session, workflow_id, {"id": case.id, "@referredType": "DunningCase"})
    why = (
        "payment due date passed with an amount open"
        if case.trigger == dunning.OVERDUE
        else "the direct debit was returned"
    )
    first = case.next_step_at.isoformat() if case.next_step_at else "now"
    return (
        {"bill": case.bill_id},
        [Task(dunning.SEED, dunning.PROCESS, f"dunning opened: {why}; first reminder due {first}")],
    )


@step
def dunning_look_step(session: Session, workflow_id: str, case_id: str, look: int) -> StepResult:
    result = dunning.advance(session, case_id, FLOW_CLOCK.now())
    if result.ended:
        recorder.finish_flow(session, workflow_id, "completed")
    tasks = [Task(seed, process, outcome) for seed, process, outcome in result.steps]
    return (
        {
            "ended": result.ended,
            "outcome": result.outcome,
            "order": result.start_order,
            "wait_seconds": result.wait_seconds,
        },
        tasks,
    )


@step
def overdue_step(session: Session, workflow_id: str, today: str) -> StepResult:
    recorder.start_flow(
        session,
        workflow_id=workflow_id,
        flow="dunning-tick",
        case_id=workflow_id,
        case_type="OverdueBills",
        customer_id=None,
        description=f"Overdue bills on {today}",
    )
    now = FLOW_CLOCK.now()
    cases = dunning.record_overdue(session, datetime.fromisoformat(today).date(), now=now)
    recorder.finish_flow(session, workflow_id, "completed")
    return (
        {"cases": cases},
        [
            Task(
                dunning.SEED,
                dunning.PROCESS,
                f"{len(cases)} bill(s) found overdue on {today}; their dunning started",
            )
        ],
    )


def overdue_flow(run: Runner, today: str) -> str:
    """The bills overdue on ``today`` get their dunning flows (once per bill)."""
    found = run.step("overdue", "overdue_step", today)
    for case_id in found["cases"]:
        run.then(FLOW, dunning.dunning_workflow_id(case_id), case_id)
    return f"{len(found['cases'])} overdue"


def overdue_workflow_id(today: str) -> str:
    return f"dunning-overdue-{today}"


@DBOS.workflow(name="dunning-tick")
def dunning_tick(scheduled_at: datetime, context: Any) -> None:
    """The daily schedule: state the bills overdue today and start their dunning."""
    today = business_date(scheduled_at).isoformat()
    DurableRunner().then("dunning-overdue", overdue_workflow_id(today), today)


def start_overdue_check(today: str) -> None:
    """Run the overdue check for ``today`` (YYYY-MM-DD) now (the CLI, the demo, tests)."""
    engine.enqueue("dunning-overdue", overdue_workflow_id(today), today)


# ----- handlers (wired in bootstrap.EVENT_HANDLERS) ---------------------------------------


def _inside_a_flow() -> bool:
    return DBOS.workflow_id is not None


def _start(bill_ids: tuple[str, ...] | list[str], trigger: str) -> None:
    with session_scope() as session:
        now = FLOW_CLOCK.now()
        cases = [dunning.open_case(session, bill_id, trigger, now=now) for bill_id in bill_ids]
        case_ids = [c.id for c in cases if c is not None]
    for case_id in case_ids:
        engine.enqueue(FLOW, dunning.dunning_workflow_id(case_id), case_id)
        # A case already open looks again now (a returned debit on a dunned bill).
        engine.send(dunning.dunning_workflow_id(case_id), "look again", TOPIC)


def start_dunning_of_overdue_bill(event: BillOverdue) -> None:
    """3.8.5: an overdue bill is dunned by its flow. The daily check states the fact
    inside its own flow and starts the dunning flows itself."""
    if not _inside_a_flow():
        _start([event.bill_id], dunning.OVERDUE)


def start_dunning_of_returned_debit(event: PaymentReturned) -> None:
    """3.8.5: a returned direct debit opens the bills it paid again: dunned at once."""
    if not _inside_a_flow():
        _start(event.bill_ids, f"returned:{event.payment_id}")


def _wake(bill_ids: tuple[str, ...] | list[str]) -> None:
    with session_scope(readonly=True) as session:
        case_ids = dunning.open_cases_of_bills(session, bill_ids)
    for case_id in case_ids:
        engine.send(dunning.dunning_workflow_id(case_id), "look again", TOPIC)


def wake_dunning_on_payment(event: PaymentReceived) -> None:
    """3.8.5: a payment on dunned bills: their flows look now (end, or resume)."""
    _wake(event.bill_ids)


def wake_dunning_on_dispute(event: BillDisputed) -> None:
    """3.8.1: a dispute pauses the bill's dunning now, not at its next look."""
    _wake([event.bill_id])


def wake_dunning_on_resolution(event: BillingEnquiryResolved) -> None:
    """3.8.1: an answered enquiry lets the bill's dunning go on (or end, if credited)."""
    _wake([event.bill_id])


def sweep_unstarted_dunning_flows() -> int:
    """Start the flow of every open dunning case that has none (a crash between the
    case's commit and its flow's start). Returns how many."""
    with session_scope(readonly=True) as session:
        open_cases = list(
            session.scalars(select(DunningCaseRow.id).where(DunningCaseRow.status != "closed"))
        )
        started = set(
            session.scalars(
                select(ProcessFlowRow.id).where(
                    ProcessFlowRow.id.in_([dunning.dunning_workflow_id(c) for c in open_cases])
                )
            )
        )
    waiting = [c for c in open_cases if dunning.dunning_workflow_id(c) not in started]
    for case_id in waiting:
        engine.enqueue(FLOW, dunning.dunning_workflow_id(case_id), case_id)
    return len(waiting)
