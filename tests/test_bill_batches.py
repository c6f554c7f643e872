"""3.8.3 a chunk at a time: the bill run's set-based billing (``bill_accounts``), issuing
(``issue_bills``) and the PDF rendered apart (``render_document``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from etomcrm.billing import bills
from etomcrm.billing.bill_models import BillDocumentRow
from etomcrm.billing.events import BillIssued
from etomcrm.billing.invoice import invoice_xml
from etomcrm.billing.models import AppliedRateRow, CustomerBillRow
from etomcrm.billing.payments import record_payment
from etomcrm.core.bus import recorded
from etomcrm.db import session_scope
from etomcrm.flows.framework import PLAIN_FLOWS, PlainRunner
from etomcrm.flows.recorder import flows_of_case
from etomcrm.selling.models import BillingAccountRow
from tests import bill_helpers

NOV = (date(2026, 11, 1), date(2026, 11, 30))
TODAY = date(2026, 12, 1)
BILLS = "/tmf-api/customerBillManagement/v4/customerBill"


def _accounts(count: int) -> list[str]:
    with session_scope() as session:
        return [
            bill_helpers.billable_account(session, f"{10 + n}.00", "5.50")[1] for n in range(count)
        ]


def _bill_chunk(account_ids: list[str]) -> dict[str, str | None]:
    with session_scope() as session:
        return bills.bill_accounts(session, account_ids, *NOV, today=TODAY)


def test_a_chunk_is_billed_once_whatever_the_reruns(db_url: str) -> None:
    # given four accounts with charges and one without
    billed = _accounts(4)
    with session_scope() as session:
        empty = bill_helpers.account(session, bill_helpers.customer(session))

    # when the chunk is billed, and billed again
    first = _bill_chunk([*billed, empty])
    again = _bill_chunk([*billed, empty])

    # then each account with charges has one bill, the same on the rerun; the empty one none
    assert again == first
    assert first[empty] is None
    assert all(first[a] is not None for a in billed)
    with session_scope() as session:
        rows = {r.billing_account_id: r for r in session.scalars(select(CustomerBillRow))}
        unbilled = session.scalar(
            select(func.count()).select_from(AppliedRateRow).where(AppliedRateRow.bill_id.is_(None))
        )
        # and every charge is on its account's bill, whose amount is what bill_account makes
        for n, account_id in enumerate(billed):
            row = rows[account_id]
            assert row.id == first[account_id] and row.status == "new"
            net = Decimal(10 + n) + Decimal("5.50")
            assert row.amount_due == net + bills.money(net * Decimal("0.19"))
            charges = session.scalars(
                select(AppliedRateRow.bill_id).where(
                    AppliedRateRow.billing_account_id == account_id
                )
            ).all()
            assert set(charges) == {row.id}
    assert len(rows) == 4
    assert unbilled == 0


def test_a_chunk_is_numbered_consecutively_in_order_and_a_rollback_gives_numbers_back(
    db_url: str,
) -> None:
    # given five billed accounts
    made = _bill_chunk(_accounts(5))
    bill_ids = [b for b in made.values() if b is not None]

    # when a chunk is issued and rolled back (a crash before the commit)
    try:
        with session_scope() as session:
            assert bills.issue_bills(session, bill_ids[:2], today=TODAY)
            raise RuntimeError("crash")
    except RuntimeError:
        pass
    # and then issued in reverse order, then again
    with session_scope() as session:
        numbers = bills.issue_bills(session, list(reversed(bill_ids)), today=TODAY)
    with session_scope() as session:
        again = bills.issue_bills(session, bill_ids, today=TODAY)

    # then the numbers run 1..5 in the order given, and a second issue changes none
    assert [numbers[b] for b in reversed(bill_ids)] == [f"RE-2026-{n:06d}" for n in range(1, 6)]
    assert again == numbers
    # and each bill keeps its content hash, its PDF not rendered yet
    with session_scope() as session:
        for bill_id in bill_ids:
            stored = session.get(BillDocumentRow, bill_id)
            assert stored is not None and stored.pdf is None
            assert bills.unchanged(session, bill_id)


def test_the_pdf_is_rendered_before_sending_from_the_content_stored_at_issue(
    db_url: str,
) -> None:
    # given an issued bill, not rendered
    (account_id,) = _accounts(1)
    with session_scope() as session:
        bill_id = bills.bill_account(session, account_id, *NOV, today=TODAY)
        assert bill_id is not None
        bills.issue(session, bill_id, today=TODAY)

    # when it is sent
    with session_scope() as session:
        bills.send_bill(session, bill_id, today=TODAY)

    # then its PDF and XML exist, rendered from the content the hash vouches for, stored
    # once (asked for again, the same bytes)
    with session_scope() as session:
        stored = session.get(BillDocumentRow, bill_id)
        assert stored is not None and stored.pdf is not None and stored.xml is not None
        assert stored.pdf.startswith(b"%PDF")
        assert bills.unchanged(session, bill_id)
        assert stored.xml == invoice_xml(bills.invoice_from_json(stored.content))
        assert bills.render_document(session, bill_id) == stored.pdf
        assert session.get(CustomerBillRow, bill_id).status == "sent"  # type: ignore[union-attr]


def test_the_document_of_a_bill_not_yet_rendered_is_rendered_when_asked_for(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given an issued bill whose PDF is not rendered
    (account_id,) = _accounts(1)
    with session_scope() as session:
        bill_id = bills.bill_account(session, account_id, *NOV, today=TODAY)
        assert bill_id is not None
        bills.issue(session, bill_id, today=TODAY)

    # when its document is asked for, twice
    first = client.get(f"{BILLS}/{bill_id}/document", headers=admin)
    second = client.get(f"{BILLS}/{bill_id}/document", headers=admin)

    # then it is the PDF, rendered once and stored, the same bytes both times
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/pdf"
    assert first.content == second.content
    with session_scope() as session:
        stored = session.get(BillDocumentRow, bill_id)
        assert stored is not None and stored.pdf == first.content
        assert bills.unchanged(session, bill_id)


def test_a_bad_account_in_a_chunk_does_not_stop_the_others(db_url: str) -> None:
    # given three accounts due, one of which has its November bill held back before it
    # was numbered (it cannot be issued)
    accounts = _accounts(3)
    held = accounts[1]
    with session_scope() as session:
        held_bill = bills.bill_account(session, held, *NOV, today=TODAY)
        assert held_bill is not None
        bills.hold(session, held_bill, today=TODAY)

    # when one lane bills them as one chunk
    PLAIN_FLOWS["bill-lane"](PlainRunner("lane-test"), "bill-run-test", "2026-11", accounts)

    # then the two others are billed, numbered 1 and 2 and sent; the held one is not
    with session_scope() as session:
        rows = {r.billing_account_id: r for r in session.scalars(select(CustomerBillRow))}
        traces = flows_of_case(session, "bill-run-test")
    assert {a: rows[a].status for a in accounts} == {
        accounts[0]: "sent",
        held: "onHold",
        accounts[2]: "sent",
    }
    assert sorted(str(rows[a].bill_no) for a in (accounts[0], accounts[2])) == [
        "RE-2026-000001",
        "RE-2026-000002",
    ]
    assert rows[held].bill_no is None
    # and the trace says so: two accounts billed, one not, two bills sent
    outcomes = [line.outcome for trace in traces for line in trace.lines]
    assert any(o.startswith(f"account {held} not billed") for o in outcomes)
    assert "2 bill(s) made and numbered RE-2026-000001..000002" in outcomes
    assert sum("rendered and sent" in o for o in outcomes) == 2


def test_billing_and_issuing_a_chunk_take_a_bounded_number_of_queries(
    db_url: str, count_queries: Callable[[], Any]
) -> None:
    def measure(size: int) -> tuple[int, int]:
        accounts = _accounts(size)
        # (counted inside the unit of work: the handlers of BillIssued after the commit are
        # the payments' work, not issuing's)
        with session_scope() as session, count_queries() as billing_count:
            made = bills.bill_accounts(session, accounts, *NOV, today=TODAY)
        bill_ids = [b for b in made.values() if b is not None]
        assert len(bill_ids) == size
        with session_scope() as session, count_queries() as issuing_count:
            numbers = bills.issue_bills(session, bill_ids, today=TODAY)
        assert len(numbers) == size
        return billing_count.count, issuing_count.count

    measure(1)  # the first bill of the year makes its number series
    small, large = measure(2), measure(12)
    assert small == large, (small, large)


def _issued(account_ids: list[str], *, at_once: bool) -> list[dict[str, Any]]:
    """Bill and issue the accounts, in one step or as bill then issue; each bill as the
    API and the stored document show it (ids, times and versions aside)."""
    with session_scope() as session:
        made = bills.bill_accounts(session, account_ids, *NOV, today=TODAY, issue=at_once)
        bill_ids = [b for b in made.values() if b is not None]
        if not at_once:
            bills.issue_bills(session, bill_ids, today=TODAY)
        events = [e for e in recorded(session) if isinstance(e, BillIssued)]
    out = []
    with session_scope() as session:
        for n, account_id in enumerate(account_ids):
            row = session.get(CustomerBillRow, made[account_id])
            stored = session.get(BillDocumentRow, made[account_id])
            assert row is not None and stored is not None
            assert bills.unchanged(session, row.id)
            event = next(e for e in events if e.bill_id == row.id)
            invoice = bills.invoice_from_json(stored.content)
            out.append(
                {
                    "account": n,
                    "bill_no": row.bill_no,
                    "status": row.status,
                    "dates": (row.bill_date, row.payment_due_date),
                    "amounts": (row.amount_due, row.remaining_amount),
                    "body": {
                        k: v
                        for k, v in row.body.items()
                        if k not in ("id", "href", "billingAccount", "relatedParty")
                    },
                    "lines": [(line.name, line.net, line.tax_rate) for line in invoice.lines],
                    "total": invoice.gross_total,
                    "event": (event.bill_no, event.amount_due, event.means),
                }
            )
    return out


def test_a_chunk_billed_and_issued_in_one_step_is_what_billing_then_issuing_makes(
    db_url: str,
) -> None:
    # given two sets of three like accounts
    first, second = _accounts(3), _accounts(3)

    # when the first is billed then issued, and the second billed and issued in one step
    two_steps = _issued(first, at_once=False)
    one_step = _issued(second, at_once=True)

    # then the bills are alike (numbers 4..6 follow 1..3), as are their invoices and events
    assert [b["bill_no"] for b in two_steps] == [f"RE-2026-{n:06d}" for n in (1, 2, 3)]
    assert [b["bill_no"] for b in one_step] == [f"RE-2026-{n:06d}" for n in (4, 5, 6)]
    for made in (two_steps, one_step):
        for bill in made:
            bill.pop("bill_no")
            bill["body"].pop("billNo")
            bill["body"].pop("billDocument")
            bill["event"] = bill["event"][1:]
    assert one_step == two_steps
    assert one_step[0]["status"] == "validated"


def test_billing_and_issuing_in_one_step_take_a_bounded_number_of_queries(
    db_url: str, count_queries: Callable[[], Any]
) -> None:
    def measure(size: int) -> int:
        accounts = _accounts(size)
        with session_scope() as session, count_queries() as counted:
            made = bills.bill_accounts(session, accounts, *NOV, today=TODAY, issue=True)
        assert all(made[a] is not None for a in accounts)
        return int(counted.count)

    measure(1)  # the first bill of the year makes its number series
    assert measure(2) == measure(12)


def _account_balance(account_id: str) -> Any:
    with session_scope() as session:
        row = session.get(BillingAccountRow, account_id)
        assert row is not None
        return (row.body.get("accountBalance") or [{}])[0].get("amount")


def test_issuing_a_chunk_records_each_accounts_balance_with_its_bill(
    db_url: str, count_queries: Callable[[], Any]
) -> None:
    # given three accounts with charges, the last of which paid 10.00 before it was billed
    accounts = _accounts(3)
    with session_scope() as session:
        record_payment(
            session,
            account_id=accounts[2],
            amount=Decimal("10.00"),
            currency="EUR",
            payment_date=date(2026, 11, 20),
            reference=None,
            means="bankTransfer",
        )

    # when a chunk is billed and issued, and another chunk fails before its commit
    with session_scope() as session:
        made = bills.bill_accounts(session, accounts, *NOV, today=TODAY, issue=True)
    more = _accounts(2)
    try:
        with session_scope() as session:
            bills.bill_accounts(session, more, *NOV, today=TODAY, issue=True)
            raise RuntimeError("crash")
    except RuntimeError:
        pass

    # then each account billed owes its bill, less its credit, recorded in the same
    # transaction (the crashed chunk's accounts owe nothing recorded)
    with session_scope() as session:
        due = {a: session.get(CustomerBillRow, made[a]).amount_due for a in accounts}  # type: ignore[union-attr]
    assert [_account_balance(a) for a in accounts] == [
        {"unit": "EUR", "value": float(due[accounts[0]])},
        {"unit": "EUR", "value": float(due[accounts[1]])},
        {"unit": "EUR", "value": float(due[accounts[2]] - Decimal("10.00"))},
    ]
    assert [_account_balance(a) for a in more] == [None, None]

    # and a chunk's balances take as many statements for twelve accounts as for two
    # (counted with the commit, before which they are written)
    def measure(size: int) -> int:
        chunk = _accounts(size)
        with count_queries() as counted, session_scope() as session:
            bills.bill_accounts(session, chunk, *NOV, today=TODAY, issue=True)
        assert all(_account_balance(a) for a in chunk)
        return int(counted.count)

    assert measure(2) == measure(12)


def test_on_postgresql_accounts_have_room_for_their_balances_and_documents_use_lz4(
    db_url: str,
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has no fill factor or column compression")
    # given the migrated schema; when its storage settings are read
    with session_scope() as session:
        options = session.scalar(
            text("SELECT reloptions FROM pg_class WHERE oid = 'billing_account'::regclass")
        )
        methods: dict[str, str] = dict(
            session.execute(
                text(
                    "SELECT attname, attcompression FROM pg_attribute"
                    " WHERE attrelid = 'bill_document'::regclass"
                    " AND attname IN ('content', 'pdf', 'xml')"
                )
            ).all()
        )
        lz4 = session.scalar(text("SELECT count(*) FROM pg_settings WHERE 'lz4' = ANY(enumvals)"))
    # then an account's page keeps half its room for the new versions of its rows (a
    # balance written by a bill run stays in its page: no index gets a new entry)
    assert options == ["fillfactor=50"]
    # and a bill's stored content, PDF and XML are compressed by lz4 where the server has it
    assert methods == dict.fromkeys(("content", "pdf", "xml"), "l" if lz4 else "")
