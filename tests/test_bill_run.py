"""The bill run (Billing flow, 3.8.2 → 3.8.3): every account due billed once, in lanes,
traced with seed numbers, and neither a rerun nor a SIGKILL mid-run bills an account
twice or leaves a gap in the numbering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from dbos import DBOS
from sqlalchemy import func, select

from etomcrm.billing.models import CustomerBillRow
from etomcrm.config import get_settings
from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope
from etomcrm.flows import billing
from etomcrm.flows.framework import LANE_QUEUE, PLAIN_FLOWS, PlainRunner
from etomcrm.flows.models import TaskFlowRow
from etomcrm.flows.recorder import flows_of_case
from tests import bill_helpers
from tests.polling import until


@pytest.fixture(autouse=True)
def four_lanes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Four lanes whatever the machine's cores (the default): the counts below are exact.
    monkeypatch.setenv("ETOMCRM_BILL_RUN_LANES", "4")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_bill_run_has_as_many_lanes_as_the_machine_has_cores_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given no setting: as many lanes as cores
    monkeypatch.delenv("ETOMCRM_BILL_RUN_LANES")
    get_settings.cache_clear()
    assert billing.configured_lanes() == (os.cpu_count() or 1)
    # given a setting: that many
    monkeypatch.setenv("ETOMCRM_BILL_RUN_LANES", "3")
    get_settings.cache_clear()
    assert billing.configured_lanes() == 3
    # and a negative count is refused when the settings are read
    monkeypatch.setenv("ETOMCRM_BILL_RUN_LANES", "-1")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="bill_run_lanes"):
        get_settings()


def _accounts(count: int, *, cycle_day: int = 1) -> list[str]:
    with session_scope() as session:
        return [
            bill_helpers.billable_account(session, f"{10 + n}.00", "5.50", cycle_day=cycle_day)[1]
            for n in range(count)
        ]


def _numbers() -> list[str]:
    with session_scope() as session:
        return sorted(
            str(n)
            for n in session.scalars(
                select(CustomerBillRow.bill_no).where(CustomerBillRow.category == "normal")
            )
        )


def _sent() -> int:
    with session_scope() as session:
        return len(
            list(
                session.scalars(select(CustomerBillRow.id).where(CustomerBillRow.status == "sent"))
            )
        )


def _billed_accounts() -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(CustomerBillRow.billing_account_id)))


def _gapless(count: int) -> list[str]:
    return [f"RE-2026-{n:06d}" for n in range(1, count + 1)] if count else []


def _lanes() -> int:
    with session_scope() as session:
        return billing.lanes_for(session.get_bind().dialect.name)


def test_a_bill_run_bills_every_account_due_once_and_traces_it(db_url: str) -> None:
    # given six accounts billed on the 1st and one on the 15th
    due = _accounts(6)
    later = _accounts(1, cycle_day=15)

    # when the run of the 1st for November runs (plainly: the same steps, no DBOS)
    workflow_id = billing.bill_run_workflow_id("2026-11", 1)
    PLAIN_FLOWS["bill-run"](PlainRunner(workflow_id), "2026-11", 1)

    # then each account of the 1st has one bill, issued and sent, numbered without gaps
    assert sorted(_billed_accounts()) == sorted(due)
    assert later[0] not in _billed_accounts()
    assert _numbers()[0].startswith("RE-") and len(_numbers()) == 6
    with session_scope() as session:
        states = set(session.scalars(select(CustomerBillRow.status)))
        messages = session.scalar(select(func.count()).select_from(CommunicationMessageRow))
        traces = flows_of_case(session, workflow_id)
    assert states == {"sent"}
    assert messages == 6
    # and the run is traced: the run and its lanes (six accounts in four lanes, one on
    # SQLite; a chunk each), each chunk rated (3.8.2) and billed (3.8.3), each bill
    # rendered and sent
    seeds = [line.seed for trace in traces for line in trace.lines]
    outcomes = [line.outcome for trace in traces for line in trace.lines]
    assert "3.8.4" in seeds
    assert seeds.count("3.8.2") == _lanes()
    assert seeds.count("3.8.3") == _lanes() + 6 + 1  # chunks, bills, the run's summary
    assert sum("rendered and sent" in o for o in outcomes) == 6
    assert sum("bill(s) made and numbered RE-2026-" in o for o in outcomes) == _lanes()
    assert "6 bill(s) for 2026-11" in " ".join(outcomes) and "6 sent" in " ".join(outcomes)
    assert {trace.flow for trace in traces} == {"bill-run", "bill-lane"}
    assert all(trace.state == "completed" for trace in traces)

    # when it runs again (a rerun of the same period under another run)
    PLAIN_FLOWS["bill-run"](PlainRunner("bill-run-again"), "2026-11", None)

    # then no account of the 1st is billed twice; the 15th's account gets its bill now
    billed = _billed_accounts()
    assert sorted(billed) == sorted(due + later)
    assert _numbers() == _gapless(7)


def test_the_durable_bill_run_bills_in_lanes_and_a_rerun_attaches(db_url: str, flows: None) -> None:
    # given nine accounts
    due = _accounts(9)

    # when the run for November is started and awaited, then started again
    workflow_id = billing.start_bill_run("2026-11")
    summary = billing.wait_for_bill_run(workflow_id, "2026-11")
    again = billing.wait_for_bill_run(billing.start_bill_run("2026-11"), "2026-11")

    # then every account was billed once, with numbers 1..9 of the series
    assert summary["bills"] == 9 and again == summary
    nets = [Decimal(10 + n) + Decimal("5.50") for n in range(9)]
    expected = sum(
        (net + (net * Decimal("0.19")).quantize(Decimal("0.01"), ROUND_HALF_UP) for net in nets),
        Decimal("0.00"),
    )
    assert summary["total"] == str(expected)
    assert sorted(_billed_accounts()) == sorted(due)
    assert _numbers() == _gapless(9)
    with session_scope() as session:
        lanes = [t for t in flows_of_case(session, workflow_id) if t.flow == "bill-lane"]
    assert len(lanes) == _lanes()
    # and the lanes ran from the lane queue (a worker process takes one at a time)
    for lane in range(_lanes()):
        status = DBOS.get_workflow_status(billing.lane_workflow_id(workflow_id, lane))
        assert status is not None and status.queue_name == LANE_QUEUE


def _run_cli(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "etomcrm", "billing", "run", "--period", "2026-11"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_a_bill_run_killed_mid_run_and_run_again_bills_each_account_once(
    db_url: str, tmp_path: Path
) -> None:
    # given sixty accounts due
    count = 60
    due = _accounts(count)
    log = tmp_path / "run.log"
    env = {**os.environ, "ETOMCRM_DATABASE_URL": db_url}

    # when the bill run is killed (SIGKILL) once some of the bills are sent (the accounts
    # are billed a chunk at a time, then each bill is rendered and sent)
    run = _run_cli(env, log)
    # (the project's poller: the run is another process, its progress is in the database)
    until(lambda: run.poll() is not None or _sent() >= 3, seconds=120)
    assert run.poll() is None, log.read_text()[-3000:]
    assert _sent() >= 3, log.read_text()[-3000:]
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    assert _sent() < count, "the run ended before it could be killed"

    # and the same period is run again, to its end
    rerun = _run_cli(env, log)
    assert rerun.wait(timeout=300) == 0, log.read_text()[-3000:]

    # then every account has exactly one bill, and the numbers run 1..60 without a gap
    billed = _billed_accounts()
    assert sorted(billed) == sorted(due)
    assert _numbers() == _gapless(count)
    with session_scope() as session:
        messages = session.scalar(select(func.count()).select_from(CommunicationMessageRow))
        steps = list(session.scalars(select(TaskFlowRow.name)))
    assert messages == count
    # one record per chunk (a lane's accounts are one chunk), per bill sent, and the run's
    assert steps.count("3.8.3 Create and send the bill") == _lanes() + count + 1
    assert f"bill run bill-run-2026-11: {count} bill(s)" in log.read_text().replace("\n", " ")
