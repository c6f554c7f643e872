"""3.8.5 Manage customer payments: TMF676 payments allocated to bills (by reference, then
oldest first), partial and overpayments, account credit, returned debits, open balance and
payment history, and the payment API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from etomcrm.billing.events import PaymentReceived, PaymentReturned
from etomcrm.billing.models import (
    AppliedRateRow,
    CustomerBillRow,
    PaymentAllocationRow,
    PaymentRow,
)
from etomcrm.billing.payments import (
    account_credit,
    apply_account_credit,
    open_balance,
    payment_history,
    record_payment,
    reverse_payment,
)
from etomcrm.core.errors import Conflict
from etomcrm.db import session_scope
from etomcrm.selling.models import BillingAccountRow
from tests.conftest import Handled, TokenFactory
from tests.factories import customer
from tests.payment_helpers import account, bill, bill_state

PAYMENTS = "/tmf-api/paymentManagement/v4/payment"
CUSTOMER = "cust-1"


def _pay(account_id: str, amount: str, reference: str | None = None, **extra: Any) -> str:
    with session_scope() as session:
        return record_payment(
            session,
            account_id=account_id,
            amount=Decimal(amount),
            currency="EUR",
            payment_date=extra.pop("payment_date", date(2026, 12, 16)),
            reference=reference,
            means=extra.pop("means", "bankTransfer"),
            **extra,
        )


def _setup(*bills: tuple[str, str, date]) -> tuple[str, list[str]]:
    with session_scope() as session:
        account_id = account(session, CUSTOMER)
        ids = [bill(session, account_id, CUSTOMER, no, amount, due) for no, amount, due in bills]
    return account_id, ids


def _state(bill_id: str) -> tuple[str | None, Decimal]:
    with session_scope() as session:
        return bill_state(session, bill_id)


def _balance(session: Any, account_id: str) -> Any:
    """The account's TMF666 accountBalance amount (receivable)."""
    row = session.get(BillingAccountRow, account_id)
    [balance] = row.body["accountBalance"]
    assert balance["balanceType"] == "receivable"
    return balance["amount"]


def _payment(payment_id: str) -> PaymentRow:
    with session_scope() as session:
        row = session.get(PaymentRow, payment_id)
        assert row is not None
        session.expunge(row)
        return row


def test_an_exact_payment_settles_the_bill(db_url: str, handled: Handled) -> None:
    # given a bill of 119.00 EUR
    account_id, [bill_id] = _setup(("RE-2026-000001", "119.00", date(2026, 12, 20)))
    received = handled(PaymentReceived)
    # when the account pays exactly that
    payment_id = _pay(account_id, "119.00", "RE-2026-000001")
    # then the bill is settled, nothing is left over, and the payment is announced
    assert _state(bill_id) == ("settled", Decimal("0.00"))
    payment = _payment(payment_id)
    assert (payment.amount, payment.unallocated, payment.status) == (
        Decimal("119.00"),
        Decimal("0.00"),
        "succeeded",
    )
    assert payment.body["paymentItem"][0]["item"]["id"] == bill_id
    assert payment.body["paymentItem"][0]["amount"] == {"unit": "EUR", "value": 119.0}
    assert [(e.payment_id, e.bill_ids) for e in received] == [(payment_id, (bill_id,))]


def test_a_partial_payment_leaves_the_bill_partially_paid(db_url: str) -> None:
    account_id, [bill_id] = _setup(("RE-2026-000002", "200.00", date(2026, 12, 20)))
    _pay(account_id, "100.00", "Teilzahlung Rechnung RE-2026-000002")
    assert _state(bill_id) == ("partiallyPaid", Decimal("100.00"))
    # and the rest settles it
    _pay(account_id, "100.00")
    assert _state(bill_id) == ("settled", Decimal("0.00"))


def test_the_reference_picks_the_bill_before_the_oldest(db_url: str) -> None:
    # given an older and a newer bill
    account_id, [older, newer] = _setup(
        ("RE-2026-000010", "50.00", date(2026, 11, 20)),
        ("RE-2026-000011", "80.00", date(2026, 12, 20)),
    )
    # when the payment names the newer one
    _pay(account_id, "80.00", "Rechnung RE-2026-000011 danke")
    # then the newer is settled and the older still open
    assert _state(newer) == ("settled", Decimal("0.00"))
    assert _state(older) == ("sent", Decimal("50.00"))


def test_a_reference_naming_a_longer_number_is_not_this_bill(db_url: str) -> None:
    account_id, [older, newer] = _setup(
        ("RE-1", "50.00", date(2026, 11, 20)),
        ("RE-12", "80.00", date(2026, 12, 20)),
    )
    _pay(account_id, "50.00", "RE-12")
    # RE-12 is named (and paid in part); RE-1 is not mentioned by "RE-12"
    assert _state(newer) == ("partiallyPaid", Decimal("30.00"))
    assert _state(older) == ("sent", Decimal("50.00"))


def test_without_a_reference_the_oldest_bill_is_paid_first(db_url: str) -> None:
    account_id, [older, newer] = _setup(
        ("RE-2026-000020", "80.00", date(2026, 12, 20)),
        ("RE-2026-000019", "50.00", date(2026, 11, 20)),
    )
    _pay(account_id, "70.00")
    assert _state(newer) == ("settled", Decimal("0.00"))
    assert _state(older) == ("partiallyPaid", Decimal("60.00"))


def test_an_overpayment_is_the_accounts_credit_for_the_next_bill(db_url: str) -> None:
    # given a bill of 100.00 paid with 150.00
    account_id, [first] = _setup(("RE-2026-000030", "100.00", date(2026, 11, 20)))
    payment_id = _pay(account_id, "150.00", "RE-2026-000030")
    assert _state(first) == ("settled", Decimal("0.00"))
    with session_scope() as session:
        assert account_credit(session, account_id) == Decimal("50.00")
        assert open_balance(session, [CUSTOMER]) == {CUSTOMER: Decimal("-50.00")}
        assert _balance(session, account_id) == {"unit": "EUR", "value": -50.0}
    # when the next bill of 80.00 is issued and takes the credit
    with session_scope() as session:
        second = bill(session, account_id, CUSTOMER, "RE-2026-000031", "80.00", date(2026, 12, 20))
    with session_scope() as session:
        applied = apply_account_credit(session, account_id)
    # then 50.00 of it is paid, 30.00 open, no credit left
    assert applied == Decimal("50.00")
    assert _state(second) == ("partiallyPaid", Decimal("30.00"))
    with session_scope() as session:
        assert account_credit(session, account_id) == Decimal("0.00")
        assert open_balance(session, [CUSTOMER, "nobody"]) == {
            CUSTOMER: Decimal("30.00"),
            "nobody": Decimal("0.00"),
        }
        assert _balance(session, account_id) == {"unit": "EUR", "value": 30.0}
    assert _payment(payment_id).body["unallocatedAmount"] == {"unit": "EUR", "value": 0.0}


def test_a_bank_entry_is_booked_once(db_url: str) -> None:
    account_id, _ = _setup(("RE-2026-000040", "10.00", date(2026, 12, 20)))
    _pay(account_id, "10.00", bank_entry_id="E-1")
    with pytest.raises(Conflict):
        _pay(account_id, "10.00", bank_entry_id="E-1")


def test_a_returned_debit_reopens_the_bills_and_charges_the_fee(
    db_url: str, handled: Handled
) -> None:
    # given two bills paid by one direct debit of 200.00 that also left 20.00 credit
    account_id, [a, b] = _setup(
        ("RE-2026-000050", "100.00", date(2026, 12, 1)),
        ("RE-2026-000051", "80.00", date(2026, 12, 20)),
    )
    payment_id = _pay(account_id, "200.00", means="sepaDirectDebit")
    returned = handled(PaymentReturned)
    # when the bank returns it with a fee of 3.00
    with session_scope() as session:
        reversal = reverse_payment(session, payment_id, reason="AM04", fee=Decimal("3.00"))
    # then both bills are open again as sent, the credit is gone
    assert _state(a) == ("sent", Decimal("100.00"))
    assert _state(b) == ("sent", Decimal("80.00"))
    with session_scope() as session:
        assert account_credit(session, account_id) == Decimal("0.00")
        assert open_balance(session, [CUSTOMER]) == {CUSTOMER: Decimal("180.00")}
        assert _balance(session, account_id) == {"unit": "EUR", "value": 180.0}
        # the fee waits for the next bill
        fee = session.scalars(
            select(AppliedRateRow).where(AppliedRateRow.billing_account_id == account_id)
        ).one()
        assert (fee.rate_type, fee.tax_included, fee.bill_id, fee.source_key) == (
            "fee",
            Decimal("3.00"),
            None,
            f"return-fee/{payment_id}",
        )
    assert _payment(payment_id).status == "returned"
    record = _payment(reversal)
    assert (record.amount, record.status, record.body["reverses"]["id"]) == (
        Decimal("-200.00"),
        "reversal",
        payment_id,
    )
    assert [(e.payment_id, set(e.bill_ids), e.reason) for e in returned] == [
        (payment_id, {a, b}, "AM04")
    ]
    # and it cannot come back twice
    with pytest.raises(Conflict), session_scope() as session:
        reverse_payment(session, payment_id, reason="AM04", fee=Decimal("3.00"))


def test_payment_history_counts_late_on_time_overdue_and_returns(db_url: str) -> None:
    today = date(2026, 12, 31)
    account_id, [on_time, late, overdue, returned, _future] = _setup(
        ("H-1", "10.00", date(2026, 10, 20)),
        ("H-2", "10.00", date(2026, 11, 20)),
        ("H-3", "10.00", date(2026, 12, 10)),
        ("H-4", "10.00", date(2026, 12, 15)),
        ("H-5", "10.00", date(2027, 1, 20)),
    )
    _pay(account_id, "10.00", "H-1", payment_date=date(2026, 10, 19))
    _pay(account_id, "10.00", "H-2", payment_date=date(2026, 11, 25))
    debit = _pay(account_id, "10.00", "H-4", payment_date=date(2026, 12, 15))
    with session_scope() as session:
        reverse_payment(session, debit, reason="MD06", fee=Decimal("0"))
    with session_scope() as session:
        history = payment_history(session, CUSTOMER, today=today)
    assert (
        history.bills_issued,
        history.paid_on_time,
        history.paid_late,
        history.overdue_open,
        history.returns,
        history.late,
        history.open_balance,
    ) == (4, 1, 1, 2, 1, 3, Decimal("30.00"))
    assert {overdue, returned, on_time, late}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    bills=st.lists(st.integers(min_value=1, max_value=50_000), min_size=0, max_size=4),
    payments=st.lists(st.integers(min_value=1, max_value=80_000), min_size=1, max_size=4),
)
def test_a_payment_never_allocates_more_than_is_open(
    db_url: str, bills: list[int], payments: list[int]
) -> None:
    # given bills of any cents and payments of any cents
    with session_scope() as session:
        for table in (PaymentAllocationRow, PaymentRow, CustomerBillRow):
            session.execute(delete(table))
    cents = Decimal("0.01")
    account_id, ids = _setup(
        *((f"P-{n}", str(amount * cents), date(2026, 12, n + 1)) for n, amount in enumerate(bills))
    )
    # when they are paid
    for amount in payments:
        _pay(account_id, str(amount * cents))
    # then no bill is paid beyond its amount, money is conserved, credit only beyond
    with session_scope() as session:
        rows = session.scalars(select(CustomerBillRow)).all()
        for row in rows:
            assert Decimal(0) <= row.remaining_amount <= row.amount_due
            allocated = session.scalar(
                select(func.coalesce(func.sum(PaymentAllocationRow.amount), 0)).where(
                    PaymentAllocationRow.bill_id == row.id
                )
            )
            assert Decimal(allocated or 0) == row.amount_due - row.remaining_amount
        paid = sum(payments) * cents
        open_total = sum((r.amount_due for r in rows), Decimal(0))
        credit = account_credit(session, account_id)
        assert credit == max(Decimal(0), paid - open_total)
        taken = sum((r.amount_due - r.remaining_amount for r in rows), Decimal(0))
        assert taken + credit == paid
    assert len(ids) == len(bills)


# ----- the API --------------------------------------------------------------------------


def _api_setup(client: Any, admin: dict[str, str]) -> tuple[str, str, str, str]:
    mine = customer(client, admin, "BMW AG")["id"]
    other = customer(client, admin, "Audi AG")["id"]
    with session_scope() as session:
        account_id = account(session, mine)
        other_account = account(session, other, name="Audi AG")
        bill(session, account_id, mine, "RE-2026-000100", "119.00", date(2026, 12, 20))
        bill(session, other_account, other, "RE-2026-000101", "50.00", date(2026, 12, 20))
    return mine, other, account_id, other_account


def _body(account_id: str, amount: float, reference: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "account": {"id": account_id, "@referredType": "BillingAccount"},
        "paymentMethod": {"@type": "BankAccountTransfer", "name": "bank transfer"},
        "totalAmount": {"unit": "EUR", "value": amount},
        "paymentDate": "2026-12-16",
    }
    if reference:
        body["reference"] = reference
    return body


def test_billing_staff_post_a_payment_and_the_customer_reads_only_its_own(
    client: Any, admin: dict[str, str], auth: TokenFactory
) -> None:
    mine, other, account_id, other_account = _api_setup(client, admin)
    billing = auth("billing")
    # when billing staff post a payment naming the bill
    response = client.post(
        PAYMENTS, json=_body(account_id, 119.0, "RE-2026-000100"), headers=billing
    )
    # then it is allocated and settled
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "succeeded"
    assert payment["paymentItem"][0]["item"]["name"] == "RE-2026-000100"
    assert payment["unallocatedAmount"] == {"unit": "EUR", "value": 0.0}
    client.post(PAYMENTS, json=_body(other_account, 20.0), headers=billing)
    # a customer never posts one, nor a sales person
    assert (
        client.post(
            PAYMENTS, json=_body(account_id, 1.0), headers=auth("customer", customer_id=mine)
        ).status_code
        == 403
    )
    assert (
        client.post(PAYMENTS, json=_body(account_id, 1.0), headers=auth("sales")).status_code == 403
    )
    # the customer sees its own payment, not the other's
    own = auth("customer", customer_id=mine)
    listed = client.get(PAYMENTS, headers=own)
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()] == [payment["id"]]
    assert client.get(f"{PAYMENTS}/{payment['id']}", headers=own).status_code == 200
    theirs = client.get(PAYMENTS, headers=admin).json()
    other_id = next(p["id"] for p in theirs if p["account"]["id"] == other_account)
    assert client.get(f"{PAYMENTS}/{other_id}", headers=own).status_code == 404
    # a payment is a record: never changed or deleted
    assert client.delete(f"{PAYMENTS}/{payment['id']}", headers=admin).status_code == 405
    assert (
        client.patch(
            f"{PAYMENTS}/{payment['id']}",
            json={"description": "x"},
            headers={**admin, "Content-Type": "application/merge-patch+json"},
        ).status_code
        == 405
    )
    assert other


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"totalAmount": {"unit": "EUR", "value": -5}}, "must be > 0"),
        ({"totalAmount": {"unit": "EUR", "value": 1.005}}, "whole cents"),
        ({"totalAmount": {"unit": "USD", "value": 5}}, "billed in EUR"),
        ({"account": {"id": "nope", "@referredType": "BillingAccount"}}, "no billing account"),
        ({"paymentDate": "16.12.2026"}, "ISO 8601 date"),
        ({"reference": "R" * 201}, "1 to 200 characters"),
    ],
)
def test_a_bad_payment_is_refused_with_a_reason(
    client: Any, admin: dict[str, str], change: dict[str, Any], message: str
) -> None:
    _, _, account_id, _ = _api_setup(client, admin)
    response = client.post(PAYMENTS, json={**_body(account_id, 10.0), **change}, headers=admin)
    assert response.status_code in (400, 404), response.text
    assert message in response.text


def test_listing_payments_takes_a_bounded_number_of_queries(
    client: Any, admin: dict[str, str], count_queries: Callable[[], Any]
) -> None:
    _, _, account_id, _ = _api_setup(client, admin)

    def listed() -> int:
        with count_queries() as counter:
            response = client.get(PAYMENTS, headers=admin)
        assert response.status_code == 200
        return int(counter.count)

    client.post(PAYMENTS, json=_body(account_id, 1.0), headers=admin)
    few = listed()
    for _ in range(5):
        client.post(PAYMENTS, json=_body(account_id, 1.0), headers=admin)
    assert listed() == few


def test_a_bank_entry_posted_twice_is_a_conflict(client: Any, admin: dict[str, str]) -> None:
    _, _, account_id, _ = _api_setup(client, admin)
    body = {**_body(account_id, 10.0), "bankEntryId": "2026121600099999"}
    assert client.post(PAYMENTS, json=body, headers=admin).status_code == 201
    assert client.post(PAYMENTS, json=body, headers=admin).status_code == 409


def test_open_balance_takes_two_queries_whatever_the_customers(
    db_url: str, count_queries: Callable[[], Any]
) -> None:
    with session_scope() as session:
        for n in range(5):
            account_id = account(session, f"ob-{n}")
            bill(session, account_id, f"ob-{n}", f"OB-{n}", "10.00", date(2026, 12, 1))
    with count_queries() as one, session_scope() as session:
        assert open_balance(session, ["ob-0"]) == {"ob-0": Decimal("10.00")}
    with count_queries() as five, session_scope() as session:
        assert sum(open_balance(session, [f"ob-{n}" for n in range(5)]).values()) == 50
    assert one.count == five.count
