"""The Billing flow's bill run (DESIGN.md section 2): for a month (and a bill cycle day),
every account due is rated (3.8.2), billed, issued and sent (3.8.3).

One run per period and cycle day (workflow id ``bill-run-YYYY-MM[-dN]``). The accounts
are dealt into lanes, each a child workflow of its own, so that they are billed in
parallel. A lane goes through its accounts in chunks, each chunk one step (its accounts
rated, billed and numbered, and recorded, in one transaction); then it delivers, each
bill rendered and sent in a step of its own (the PDF is what takes time).

A run killed at any moment and run again bills no account twice: a step that committed
is not repeated (its record and DBOS's checkpoint), a step that did not commit left
nothing behind, not even a number of the series; and a bill is made once per account
and period whatever runs it (its run key).
"""

from __future__ import annotations

import calendar
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dbos import DBOS
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.billing import bills
from etomcrm.billing.models import CustomerBillRow
from etomcrm.config import get_settings
from etomcrm.core.clock import FLOW_CLOCK
from etomcrm.core.collection import collection_paused
from etomcrm.core.errors import InvalidRequest, TmfError
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.db import among, session_scope
from etomcrm.flows import engine, recorder
from etomcrm.flows.framework import DurableRunner, Runner, StepResult, look_until, step
from etomcrm.flows.models import ProcessFlowRow
from etomcrm.flows.recorder import Task
from etomcrm.selling import accounts
from etomcrm.selling.models import BillingAccountRow

log = logging.getLogger(__name__)
# 04:00 UTC on the 1st: last month's bill run, every cycle day.
SCHEDULE = "0 0 4 1 * *"
# Accounts a lane bills in one step (one transaction): rated, billed and numbered together.
CHUNK = 1000
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
        run.then("bill-lane", lane_id, run.workflow_id, period, lane, apart=True)
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
    """One lane of a bill run: its accounts a chunk at a time (rated, billed and numbered,
    one step each chunk), then each bill rendered and sent (one step each bill)."""
    deliver: list[str] = []
    for first in range(0, len(accounts), CHUNK):
        chunk = accounts[first : first + CHUNK]
        result = run.step(f"chunk-{first // CHUNK}", "bill_chunk_step", run_id, period, chunk)
        deliver.extend(result["deliver"])
    for bill_id in deliver:
        run.step(f"deliver-{bill_id}", "deliver_bill_step", run_id, bill_id)
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
    count = min(lanes_for(session.get_bind().dialect.name), len(due))
    lanes = [due[n::count] for n in range(count)]
    return {"lanes": lanes, "accounts": len(due)}, [
        Task(
            *MANAGE,
            f"{len(due)} billing account(s) due for {start.isoformat()} to {end.isoformat()}, "
            f"dealt into {count} lane(s)",
        )
    ]


def lanes_for(dialect: str) -> int:
    """How many lanes bill in parallel on a database of ``dialect``: one on SQLite, where
    one writer works at a time and parallel lanes would only queue for its lock (and fail
    past its busy timeout); on PostgreSQL :func:`configured_lanes`."""
    return 1 if dialect == "sqlite" else configured_lanes()


def configured_lanes() -> int:
    """The setting ``bill_run_lanes``, by default as many lanes as the machine has cores:
    a lane keeps about one core busy (its worker and its database session take turns),
    and lanes beyond the cores only wait for them and for the number series' lock
    (measured on 2 cores, 100,000 accounts: 2 lanes 44.2 s, 3 lanes 49.0 s, 4 lanes
    51.0 s)."""
    return get_settings().bill_run_lanes or os.cpu_count() or 1


def _start_lane(session: Session, workflow_id: str, run_id: str) -> None:
    recorder.start_flow(
        session,
        workflow_id=workflow_id,
        flow="bill-lane",
        case_id=run_id,
        case_type="BillRun",
        customer_id=None,
        description=f"a lane of the bill run {run_id}",
    )


@dataclass
class _Chunk:
    """What billing a chunk did: accounts rated, bills made now, numbers taken now, bills
    found made before (an earlier run), accounts that could not be billed."""

    rated: int = 0
    made: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    before: list[str] = field(default_factory=list)
    # The number each bill made before had when this chunk began (None: not numbered).
    earlier: dict[str, str | None] = field(default_factory=dict)
    nothing: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def _bill_chunk(
    session: Session, account_ids: list[str], start: date, end: date, today: date, out: _Chunk
) -> None:
    """Rate, bill and number the accounts, in the caller's transaction."""
    made, earlier = bills.rate_bill_and_issue(session, account_ids, start, end, today=today)
    bill_ids = [b for b in made.values() if b is not None]
    out.rated += len(account_ids)
    out.nothing += sum(1 for b in made.values() if b is None)
    out.earlier.update(earlier)
    for bill_id in bill_ids:
        if bill_id in earlier:
            out.before.append(bill_id)
        else:
            out.made.append(bill_id)


def _span(numbers: list[str]) -> str:
    """``RE-2026-000001..000015`` for a run of consecutive numbers, else the list."""
    if not numbers:
        return ""
    ordered = sorted(numbers)
    first, last = ordered[0], ordered[-1]
    series, _, low = first.rpartition("-")
    same = all(n.rpartition("-")[0] == series for n in ordered)
    if same and int(last.rpartition("-")[2]) - int(low) == len(ordered) - 1:
        return first if first == last else f"{first}..{last.rpartition('-')[2]}"
    return ", ".join(ordered)


@step
def bill_chunk_step(
    session: Session, workflow_id: str, run_id: str, period: str, account_ids: list[str]
) -> StepResult:
    _start_lane(session, workflow_id, run_id)
    start, end = period_bounds(period)
    today = FLOW_CLOCK.now().date()
    out = _Chunk()
    try:
        # A savepoint: the chunk is billed as one, or (one account cannot be billed) not
        # at all, and then account by account, so that the others are billed all the same.
        with session.begin_nested(), collection_paused():
            _bill_chunk(session, account_ids, start, end, today, out)
    except TmfError:
        out = _Chunk()
        for account_id in account_ids:
            try:
                with session.begin_nested():
                    _bill_chunk(session, [account_id], start, end, today, out)
            except TmfError as error:
                out.failed[account_id] = error.message
    # What is to be sent: the chunk's bills numbered and not sent yet (now or before);
    # the numbers taken now are those of the bills that had none when the chunk began.
    bill_ids = out.made + out.before
    deliver = []
    # Found by id alone, chosen and sorted here: a condition on the state or an ORDER BY
    # the number can lead PostgreSQL (its statistics older than the run's bills) through
    # every validated bill, or the whole number index, for each chunk's few hundred.
    found = session.execute(
        select(CustomerBillRow.id, CustomerBillRow.bill_no, CustomerBillRow.status).where(
            among(session, CustomerBillRow.id, bill_ids)
        )
    ).all()
    for bill_id, bill_no, _ in sorted(
        (row for row in found if row[2] == "validated"), key=lambda row: str(row[1])
    ):
        deliver.append(str(bill_id))
        if bill_no is not None and out.earlier.get(str(bill_id)) is None:
            out.numbers.append(str(bill_no))
    made = f"{len(out.made)} bill(s) made and numbered"
    if out.numbers:
        made += f" {_span(out.numbers)}"
    if len(out.numbers) > len(out.made):
        made += f" (of them {len(out.numbers) - len(out.made)} made before, numbered now)"
    if out.before:
        made += f"; {len(out.before)} account(s) billed before for {period}"
    if out.nothing:
        made += f"; {out.nothing} account(s) with nothing to bill"
    tasks = [
        Task(*RATE, f"{out.rated} account(s) rated for {start.isoformat()} to {end.isoformat()}"),
        Task(*BILL, made),
    ]
    tasks += [
        Task(*BILL, f"account {account_id} not billed: {message}")
        for account_id, message in out.failed.items()
    ]
    result: JsonDict = {
        "deliver": deliver,
        "made": len(out.made),
        "before": len(out.before),
        "failed": out.failed,
    }
    return result, tasks


@step
def deliver_bill_step(session: Session, workflow_id: str, run_id: str, bill_id: str) -> StepResult:
    _start_lane(session, workflow_id, run_id)
    bill = session.get(CustomerBillRow, bill_id)
    if bill is None:
        return {"sent": False}, [Task(*BILL, f"bill {bill_id} not sent: it does not exist")]
    ref = {"id": bill_id, "@referredType": "CustomerBill", "role": "bill"}
    if bill.status != "validated":
        # Sent meanwhile (a rerun), or held back by a person: not sent by this step.
        return {"sent": False}, [
            Task(*BILL, f"bill {bill.bill_no} not sent by this run: it is {bill.status}")
        ]
    today = FLOW_CLOCK.now().date()
    try:
        with session.begin_nested():
            bills.render_document(session, bill_id)
            message_id = bills.send_bill(session, bill_id, today=today)
    except TmfError as error:
        return {"sent": False, "error": error.message}, [
            Task(*BILL, f"bill {bill.bill_no} not sent: {error.message}", related=(ref,))
        ]
    how = f"message {message_id}" if message_id else "in the portal"
    return {"sent": True, "message": message_id}, [
        Task(
            *BILL,
            f"bill {bill.bill_no} over {bill.amount_due} {bill.body['amountDue']['unit']} "
            f"rendered and sent ({how})",
            related=(ref,),
        )
    ]


@step
def finish_lane_step(session: Session, workflow_id: str, run_id: str) -> StepResult:
    _start_lane(session, workflow_id, run_id)
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
    unsent = CustomerBillRow.status.in_(("new", "validated", "onHold"))
    billed = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(CustomerBillRow.amount_due), 0),
            func.count().filter(unsent),
        ).where(
            CustomerBillRow.period_start == start,
            CustomerBillRow.period_end == end,
            CustomerBillRow.category == "normal",
        )
    ).one()
    recorder.finish_flow(session, workflow_id, "completed")
    summary = f"{billed[0]} bill(s) for {period}, {billed[1]} in total: "
    summary += f"{billed[0] - billed[2]} sent" + (f", {billed[2]} not sent" if billed[2] else "")
    return {"done": True, "bills": int(billed[0])}, [Task(*BILL, summary)]


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
    "bill_chunk_step": BILL[0],
    "deliver_bill_step": BILL[0],
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
