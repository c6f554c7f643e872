"""The Billing flow's bill run (DESIGN.md section 2): for a month (and a bill cycle day),
every account due is rated (3.8.2), billed, issued and sent (3.8.3).

One run per period and cycle day (workflow id ``bill-run-YYYY-MM[-dN]``). The accounts
are dealt into lanes, each a child workflow of its own, so that they are billed in
parallel; each account is one step (rated, billed, numbered, sent, and recorded in one
transaction). A run killed at any moment and run again bills no account twice: a step
that committed is not repeated (its record and DBOS's checkpoint), a step that did not
commit left nothing behind, not even a number of the series; and a bill is made once
per account and period whatever runs it (its run key).
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dbos import DBOS
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.billing import bills
from etomcrm.billing.models import CustomerBillRow
from etomcrm.core.clock import FLOW_CLOCK
from etomcrm.core.errors import InvalidRequest, TmfError
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.db import session_scope
from etomcrm.flows import engine, recorder
from etomcrm.flows.framework import DurableRunner, Runner, StepResult, look_until, step
from etomcrm.flows.models import ProcessFlowRow
from etomcrm.flows.recorder import Task
from etomcrm.selling import accounts
from etomcrm.selling.models import BillingAccountRow

log = logging.getLogger(__name__)
# 04:00 UTC on the 1st: last month's bill run, every cycle day.
SCHEDULE = "0 0 4 1 * *"
LANES = 4
LANE_DONE = "bill-lane-done"
RATE = ("3.8.2", "Apply prices, discounts, rebates")
BILL = ("3.8.3", "Create and send the bill")
MANAGE = ("3.8.4", "Manage customer bills")


def period_bounds(period: str) -> tuple[date, date]:
    """``2026-11`` → (2026-11-01, 2026-11-30)."""
    try:
        year, month = (int(part) for part in period.split("-"))
        first = date(year, month, 1)
    except ValueError:
        raise InvalidRequest(f"a billing period is a month, e.g. 2026-11, not {period!r}") from None
    return first, date(year, month, calendar.monthrange(year, month)[1])


def bill_run_workflow_id(period: str, cycle_day: int | None = None) -> str:
    return f"bill-run-{period}" + (f"-d{cycle_day}" if cycle_day else "")


def lane_workflow_id(run_id: str, lane: int) -> str:
    return f"{run_id}-lane-{lane}"


def bill_run_flow(run: Runner, period: str, cycle_day: int | None = None) -> str:
    """One bill run: accounts due found, dealt into lanes billed in parallel, done."""
    started = run.step("start", "start_bill_run_step", period, cycle_day)
    lanes: list[list[str]] = started["lanes"]
    lane_ids = [lane_workflow_id(run.workflow_id, n) for n in range(len(lanes))]
    for lane_id, lane in zip(lane_ids, lanes, strict=True):
        run.then("bill-lane", lane_id, run.workflow_id, period, lane)
    look_until(
        run,
        "collect",
        "collect_bill_run_step",
        period,
        lane_ids,
        done=lambda result: bool(result["done"]),
        topic=LANE_DONE,
        wait_seconds=lambda _: 0.5,
    )
    return "billed"


def bill_lane_flow(run: Runner, run_id: str, period: str, accounts: list[str]) -> str:
    """One lane of a bill run: its accounts one after the other."""
    for account_id in accounts:
        run.step(f"account-{account_id}", "bill_account_step", run_id, period, account_id)
    run.step("done", "finish_lane_step", run_id)
    return "billed"


def accounts_due(session: Session, cycle_day: int | None) -> list[str]:
    """The active billing accounts of the cycle day (of every day when None)."""
    if cycle_day is not None:
        return accounts.accounts_due(session, cycle_day)
    return [
        str(i)
        for i in session.scalars(
            select(BillingAccountRow.id)
            .where(BillingAccountRow.status == "active")
            .order_by(BillingAccountRow.id)
        )
    ]


@step
def start_bill_run_step(
    session: Session, workflow_id: str, period: str, cycle_day: int | None
) -> StepResult:
    start, end = period_bounds(period)
    recorder.start_flow(
        session,
        workflow_id=workflow_id,
        flow="bill-run",
        case_id=workflow_id,
        case_type="BillRun",
        customer_id=None,
        description=f"bill run for {period}"
        + (f", cycle day {cycle_day}" if cycle_day else ", every cycle day"),
    )
    due = accounts_due(session, cycle_day)
    count = min(LANES, len(due))
    lanes = [due[n::count] for n in range(count)]
    return {"lanes": lanes, "accounts": len(due)}, [
        Task(
            *MANAGE,
            f"{len(due)} billing account(s) due for {start.isoformat()} to {end.isoformat()}, "
            f"dealt into {count} lane(s)",
        )
    ]


@step
def bill_account_step(
    session: Session, workflow_id: str, run_id: str, period: str, account_id: str
) -> StepResult:
    recorder.start_flow(
        session,
        workflow_id=workflow_id,
        flow="bill-lane",
        case_id=run_id,
        case_type="BillRun",
        customer_id=None,
        description=f"a lane of the bill run {run_id}",
    )
    start, end = period_bounds(period)
    today = FLOW_CLOCK.now().date()
    try:
        # A savepoint: an account that cannot be billed leaves nothing half done, and
        # the lane goes on with the others (the account shows in the trace).
        with session.begin_nested():
            rated = bills.rate(session, account_id, start, end, today=today)
            bill_id = bills.bill_account(session, account_id, start, end, today=today)
            if bill_id is None:
                return {"bill": None}, [
                    Task(*BILL, f"account {account_id}: nothing to bill for {period}")
                ]
            bill_no = bills.issue(session, bill_id, today=today)
            message_id = bills.send_bill(session, bill_id, today=today)
    except TmfError as error:
        return {"bill": None, "error": error.message}, [
            Task(*BILL, f"account {account_id} not billed: {error.message}")
        ]
    bill = session.get(CustomerBillRow, bill_id)
    assert bill is not None
    ref = {"id": bill_id, "@referredType": "CustomerBill", "role": "bill"}
    tasks = [
        Task(
            *BILL,
            f"account {account_id}: bill {bill_no} over {bill.amount_due} "
            f"{bill.body['amountDue']['unit']} issued and sent (message {message_id})",
            related=(ref,),
        )
    ]
    tasks.insert(0, Task(*RATE, f"account {account_id}: {rated} charge(s) rated"))
    return {"bill": bill_id, "billNo": bill_no}, tasks


@step
def finish_lane_step(session: Session, workflow_id: str, run_id: str) -> StepResult:
    recorder.start_flow(
        session,
        workflow_id=workflow_id,
        flow="bill-lane",
        case_id=run_id,
        case_type="BillRun",
        customer_id=None,
        description=f"a lane of the bill run {run_id}",
    )
    recorder.finish_flow(session, workflow_id, "completed")
    return {"done": True}, []


@step
def collect_bill_run_step(
    session: Session, workflow_id: str, period: str, lane_ids: list[str], look: int
) -> StepResult:
    finished = session.scalar(
        select(func.count())
        .select_from(ProcessFlowRow)
        .where(ProcessFlowRow.id.in_(lane_ids), ProcessFlowRow.status == "completed")
    )
    if (finished or 0) < len(lane_ids):
        return {"done": False}, []
    start, end = period_bounds(period)
    billed = session.execute(
        select(func.count(), func.coalesce(func.sum(CustomerBillRow.amount_due), 0)).where(
            CustomerBillRow.period_start == start,
            CustomerBillRow.period_end == end,
            CustomerBillRow.category == "normal",
        )
    ).one()
    recorder.finish_flow(session, workflow_id, "completed")
    return {"done": True, "bills": int(billed[0])}, [
        Task(*BILL, f"{billed[0]} bill(s) for {period} issued and sent, {billed[1]} in total")
    ]


def start_bill_run(period: str, cycle_day: int | None = None) -> str:
    period_bounds(period)
    workflow_id = bill_run_workflow_id(period, cycle_day)
    engine.enqueue("bill-run", workflow_id, period, cycle_day)
    return workflow_id


def previous_period(moment: datetime) -> str:
    local = moment.astimezone(ZoneInfo("Europe/Berlin"))
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}-{month:02d}"


@DBOS.workflow(name="bill-run-tick")
def bill_run_tick(scheduled_at: datetime, context: Any) -> None:
    """The monthly schedule: last month's bill run (once, whatever the retries)."""
    runner = DurableRunner()
    period = previous_period(scheduled_at)
    runner.then("bill-run", bill_run_workflow_id(period), period, None)


FLOWS: dict[str, Callable[..., str]] = {"bill-run": bill_run_flow, "bill-lane": bill_lane_flow}
STEP_SEEDS = {
    "start_bill_run_step": MANAGE[0],
    "bill_account_step": BILL[0],
    "finish_lane_step": BILL[0],
    "collect_bill_run_step": BILL[0],
}


def wait_for_bill_run(workflow_id: str, period: str) -> JsonDict:
    """Wait (in a process that runs flows) until the run is done; what the period's
    bills are: how many, their total and the numbers they took."""
    DBOS.retrieve_workflow(workflow_id).get_result()
    start, end = period_bounds(period)
    with session_scope(readonly=True) as session:
        rows = session.execute(
            select(CustomerBillRow.bill_no, CustomerBillRow.amount_due)
            .where(
                CustomerBillRow.period_start == start,
                CustomerBillRow.period_end == end,
                CustomerBillRow.category == "normal",
            )
            .order_by(CustomerBillRow.bill_no)
        ).all()
    numbers = [str(no) for no, _ in rows if no]
    return {
        "workflowId": workflow_id,
        "bills": len(rows),
        "total": str(sum((amount for _, amount in rows), Decimal("0.00"))),
        "first": numbers[0] if numbers else None,
        "last": numbers[-1] if numbers else None,
    }
