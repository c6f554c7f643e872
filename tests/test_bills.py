"""3.8.3 Create & send the bill, 3.8.4 Manage customer bills (TMF678 customerBill)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from etomcrm.billing import bills
from etomcrm.billing.events import BillIssued, BillSent
from etomcrm.billing.models import AppliedRateRow, BillNumberSeries, CustomerBillRow
from etomcrm.core.totals import forget_totals
from etomcrm.customer_interface.events import CustomerTerminated
from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope
from etomcrm.order_handling.events import ProductsEnded
from etomcrm.selling.models import BillingAccountRow
from tests import bill_helpers
from tests.conftest import Handled, TokenFactory

NOV = (date(2026, 11, 1), date(2026, 11, 30))
TODAY = date(2026, 12, 1)
BILLS = "/tmf-api/customerBillManagement/v4/customerBill"
ON_DEMAND = "/tmf-api/customerBillManagement/v4/customerBillOnDemand"


def _bill(account_id: str, *, issue: bool = True) -> str:
    with session_scope() as session:
        bill_id = bills.bill_account(session, account_id, *NOV, today=TODAY)
        assert bill_id is not None
        if issue:
            bills.issue(session, bill_id, today=TODAY)
    return bill_id


# ----- totals -----------------------------------------------------------------------


def test_a_bill_totals_net_per_rate_and_the_tax_of_each_rate_rounded_half_up(
    db_url: str,
) -> None:
    # given an account with two charges at 19 % and one at 7 %
    with session_scope() as session:
        customer_id, account_id = bill_helpers.billable_account(session, "100.00", "49.99")
        bill_helpers.rate(session, account_id, customer_id, "10.00", tax_rate="7")

    # when it is billed for November
    bill_id = _bill(account_id, issue=False)

    # then the net per rate is 149.99 and 10.00, the tax 28.50 (28.4981 half up) and
    # 0.70, the gross 189.19; every charge belongs to the bill
    with session_scope() as session:
        bill = session.get(CustomerBillRow, bill_id)
        assert bill is not None
        assert bill.status == "new" and bill.bill_no is None
        assert bill.amount_due == Decimal("189.19")
        assert bill.body["taxExcludedAmount"] == {"unit": "EUR", "value": 159.99}
        assert sorted(t["taxAmount"]["value"] for t in bill.body["taxItem"]) == [0.7, 28.5]
        unbilled = session.scalar(
            select(func.count())
            .select_from(AppliedRateRow)
            .where(
                AppliedRateRow.billing_account_id == account_id, AppliedRateRow.bill_id.is_(None)
            )
        )
        assert unbilled == 0


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.decimals(min_value=Decimal("-500"), max_value=Decimal("5000"), places=2),
            st.sampled_from([Decimal("19"), Decimal("7"), Decimal("0")]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_a_bills_totals_are_the_sum_of_its_lines(lines: list[tuple[Decimal, Decimal]]) -> None:
    # given any lines; when they are totalled
    total = bills.totals(lines)
    # then the net is the sum of the lines, the bases add up to it, the tax is the sum
    # of the rates' taxes (each within half a cent of exact), gross = net + tax
    assert total.net == sum((net for net, _ in lines), Decimal("0.00"))
    assert sum(t.basis for t in total.taxes) == total.net
    assert total.tax == sum(t.tax for t in total.taxes)
    assert total.gross == total.net + total.tax
    for t in total.taxes:
        assert abs(t.tax - t.basis * t.rate / 100) <= Decimal("0.005")


def test_an_account_is_billed_once_per_period_whatever_the_reruns(db_url: str) -> None:
    # given a billed account
    with session_scope() as session:
        customer_id, account_id = bill_helpers.billable_account(session, "50.00")
    first = _bill(account_id)

    # when the period is billed again, even after a late charge came in
    with session_scope() as session:
        bill_helpers.rate(session, account_id, customer_id, "5.00")
    with session_scope() as session:
        again = bills.bill_account(session, account_id, *NOV, today=TODAY)

    # then it is the same bill, and the late charge waits for the next bill
    assert again == first
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(CustomerBillRow)) == 1
        late = session.scalars(select(AppliedRateRow).where(AppliedRateRow.bill_id.is_(None))).all()
        assert [r.tax_excluded for r in late] == [Decimal("5.00")]


def test_credits_larger_than_the_charges_make_no_negative_invoice(db_url: str) -> None:
    # given an account whose credit exceeds its charges
    with session_scope() as session:
        customer_id, account_id = bill_helpers.billable_account(session, "20.00")
        bill_helpers.rate(session, account_id, customer_id, "-36.47", rate_type="credit")

    # when it is billed, then no bill is made and the charges wait for the next one
    with session_scope() as session:
        assert bills.bill_account(session, account_id, *NOV, today=TODAY) is None
        assert session.scalar(select(func.count()).select_from(CustomerBillRow)) == 0


# ----- numbering --------------------------------------------------------------------


def test_issued_bills_are_numbered_per_series_without_gaps(db_url: str, handled: Handled) -> None:
    issued = handled(BillIssued)
    # given three billed accounts
    accounts = []
    with session_scope() as session:
        for n in range(3):
            accounts.append(bill_helpers.billable_account(session, f"{10 + n}.00")[1])
    ids = [_bill(a, issue=False) for a in accounts]

    # when the first issue rolls back, and then all are issued (one twice)
    with pytest.raises(RuntimeError), session_scope() as session:
        bills.issue(session, ids[0], today=TODAY)
        raise RuntimeError("the transaction fails after the number was taken")
    numbers = []
    for bill_id in ids:
        with session_scope() as session:
            numbers.append(bills.issue(session, bill_id, today=TODAY))
    with session_scope() as session:
        again = bills.issue(session, ids[1], today=TODAY)

    # then the numbers are 1, 2, 3 of the 2026 invoice series, the rolled back one
    # left no gap, an issued bill keeps its number; each issue stated once
    assert numbers == ["RE-2026-000001", "RE-2026-000002", "RE-2026-000003"]
    assert again == numbers[1]
    assert [e.bill_no for e in issued] == numbers
    with session_scope() as session:
        series = session.get(BillNumberSeries, "RE-2026")
        assert series is not None and series.next_number == 4
        bill = session.get(CustomerBillRow, ids[0])
        assert bill is not None
        assert bill.status == "validated"
        assert bill.payment_due_date == date(2026, 12, 15)
        assert bill.body["billNo"] == numbers[0]


def test_a_bill_on_hold_is_not_issued(db_url: str) -> None:
    with session_scope() as session:
        _, account_id = bill_helpers.billable_account(session, "10.00")
    bill_id = _bill(account_id, issue=False)
    with session_scope() as session:
        bills.hold(session, bill_id, today=TODAY)
    with pytest.raises(Exception, match="cannot be issued"), session_scope() as session:
        bills.issue(session, bill_id, today=TODAY)
    with session_scope() as session:
        bills.hold(session, bill_id, today=TODAY, held=False)
        assert bills.issue(session, bill_id, today=TODAY) == "RE-2026-000001"


# ----- the invoice, its hash, credit notes ------------------------------------------


def test_the_invoice_carries_the_particulars_and_the_debit_pre_notification(
    db_url: str,
) -> None:
    with session_scope() as session:
        customer_id, account_id = bill_helpers.billable_account(session, "100.00")
    bill_id = _bill(account_id)
    with session_scope() as session:
        invoice = bills.invoice_of(session, bill_id)
    assert invoice.kind == "invoice" and invoice.number == "RE-2026-000001"
    assert invoice.seller.name == "Extranet Services GmbH" and invoice.seller.vat_id
    assert (invoice.buyer.name, invoice.buyer.city, invoice.buyer.post_code) == (
        "BMW AG",
        "München",
        "80809",
    )
    assert (invoice.period_start, invoice.period_end) == NOV
    assert (invoice.net_total, invoice.tax_total, invoice.gross_total) == (
        Decimal("100.00"),
        Decimal("19.00"),
        Decimal("119.00"),
    )
    assert invoice.amount_due == Decimal("119.00")
    assert invoice.payment.means == "sepaDirectDebit"
    assert invoice.payment.collection_date == invoice.due_date == date(2026, 12, 15)
    assert invoice.payment.mandate_reference == f"M-{account_id[:8]}"
    assert invoice.payment.debtor_iban is not None and "*" in invoice.payment.debtor_iban
    assert invoice.buyer_reference == customer_id


def test_a_reverse_charge_customer_gets_no_tax_and_the_note(db_url: str) -> None:
    with session_scope() as session:
        customer_id = bill_helpers.customer(session, "Fiat S.p.A.")
        account_id = bill_helpers.account(
            session, customer_id, debit=False, vat_id="IT00159560366", country="IT"
        )
        bill_helpers.rate(session, account_id, customer_id, "250.00", tax_rate="0")
    bill_id = _bill(account_id)
    with session_scope() as session:
        invoice = bills.invoice_of(session, bill_id)
    assert invoice.tax_total == Decimal("0.00") and invoice.gross_total == Decimal("250.00")
    assert [t.category for t in invoice.taxes] == ["AE"]
    assert any("§13b UStG" in note for note in invoice.notes)
    assert invoice.payment.means == "bankTransfer"
    assert invoice.payment.reference == invoice.number


def test_an_issued_bill_is_shown_unchanged_by_its_hash(db_url: str) -> None:
    # given an issued bill
    with session_scope() as session:
        _, account_id = bill_helpers.billable_account(session, "80.00")
    bill_id = _bill(account_id)
    with session_scope() as session:
        bill = session.get(CustomerBillRow, bill_id)
        assert bill is not None and bill.content_hash is not None
        assert len(bill.content_hash) == 64
        assert bills.unchanged(session, bill_id)

    # when one of its charges is altered behind its back
    with session_scope() as session:
        charge = session.scalars(
            select(AppliedRateRow).where(AppliedRateRow.bill_id == bill_id)
        ).one()
        charge.tax_excluded = Decimal("8.00")

    # then the hash shows it
    with session_scope() as session:
        assert not bills.unchanged(session, bill_id)


def test_a_credit_note_references_the_bill_it_corrects(db_url: str) -> None:
    # given an issued bill of two charges
    with session_scope() as session:
        customer_id, account_id = bill_helpers.billable_account(session, "100.00")
        disputed = bill_helpers.rate(session, account_id, customer_id, "40.00", name="Router")
    bill_id = _bill(account_id)

    # when the router is credited in part, and a goodwill amount besides
    with session_scope() as session:
        note_id = bills.credit_note(
            session,
            bill_id,
            [
                (disputed, Decimal("15.00"), "Router: wrong model"),
                (None, Decimal("5.00"), "Goodwill"),
            ],
            "dispute settled",
            today=TODAY,
        )

    # then the credit note has its own series, negative lines and names the bill
    with session_scope() as session:
        note = session.get(CustomerBillRow, note_id)
        assert note is not None
        assert note.category == "creditNote" and note.bill_no == "GS-2026-000001"
        assert note.amount_due == Decimal("-23.80")
        assert note.body["referencedBill"] == bill_id
        invoice = bills.invoice_of(session, note_id)
        assert invoice.kind == "creditNote"
        assert invoice.referenced_invoice == "RE-2026-000001"
        assert [line.net for line in invoice.lines] == [Decimal("-15.00"), Decimal("-5.00")]
        assert invoice.gross_total == Decimal("-23.80")
        # and the bill itself is as it was
        assert bills.unchanged(session, bill_id)

    # and a credit beyond what the bill charged is refused
    with pytest.raises(Exception, match="more than"), session_scope() as session:
        bills.credit_note(
            session, bill_id, [(None, Decimal("500.00"), "too much")], "x", today=TODAY
        )


# ----- sending ----------------------------------------------------------------------


def test_sending_a_bill_writes_the_message_with_the_pdf_attached(
    db_url: str, handled: Handled
) -> None:
    sent = handled(BillSent)
    with session_scope() as session:
        customer_id, account_id = bill_helpers.billable_account(session, "99.00")
    bill_id = _bill(account_id)
    with session_scope() as session:
        message_id = bills.send_bill(session, bill_id, today=TODAY)
    with session_scope() as session:
        assert bills.send_bill(session, bill_id, today=TODAY) == message_id
    with session_scope() as session:
        bill = session.get(CustomerBillRow, bill_id)
        message = session.get(CommunicationMessageRow, message_id)
        assert bill is not None and message is not None
        assert bill.status == "sent"
        assert message.owner_customer_id == customer_id
        assert message.body["receiver"][0]["email"] == "billing@bmw.example"
        [attachment] = message.body["attachment"]
        assert attachment["mimeType"] == "application/pdf"
        assert attachment["url"].endswith(f"/customerBill/{bill_id}/document")
        assert "RE-2026-000001" in message.body["subject"]
    assert [(e.bill_id, e.message_id) for e in sent] == [(bill_id, message_id)]


def test_a_bill_goes_to_the_billing_contact_the_account_names(db_url: str) -> None:
    with session_scope() as session:
        customer_id = bill_helpers.customer(session)
        account_id = bill_helpers.account(session, customer_id, email="ap@bmw.example")
        bill_helpers.rate(session, account_id, customer_id, "10.00")
    bill_id = _bill(account_id)
    with session_scope() as session:
        message_id = bills.send_bill(session, bill_id, today=TODAY)
        message = session.get(CommunicationMessageRow, message_id)
        assert message is not None
        assert [r["email"] for r in message.body["receiver"]] == ["ap@bmw.example"]


def test_a_bill_delivered_in_the_portal_only_is_sent_without_a_message(
    db_url: str, handled: Handled
) -> None:
    sent = handled(BillSent)
    with session_scope() as session:
        customer_id = bill_helpers.customer(session)
        account_id = bill_helpers.account(session, customer_id, delivery=("portal",))
        bill_helpers.rate(session, account_id, customer_id, "10.00")
    bill_id = _bill(account_id)
    with session_scope() as session:
        assert bills.send_bill(session, bill_id, today=TODAY) == ""
    with session_scope() as session:
        bill = session.get(CustomerBillRow, bill_id)
        assert bill is not None and bill.status == "sent"
        assert session.scalar(select(func.count()).select_from(CommunicationMessageRow)) == 0
    assert [e.bill_id for e in sent] == [bill_id]


def test_an_issued_invoice_keeps_the_address_it_was_issued_with(db_url: str) -> None:
    # given an issued bill
    with session_scope() as session:
        _, account_id = bill_helpers.billable_account(session, "10.00")
    bill_id = _bill(account_id)

    # when the customer moves
    with session_scope() as session:
        account = session.get(BillingAccountRow, account_id)
        assert account is not None
        body = copy.deepcopy(account.body)
        body["contact"][0]["contactMedium"][0]["characteristic"]["city"] = "Berlin"
        account.body = body

    # then the invoice still shows the address it was issued with, and is unchanged
    with session_scope() as session:
        assert bills.invoice_of(session, bill_id).buyer.city == "München"
        assert bills.unchanged(session, bill_id)
        assert bills.payer(session, account_id).party.city == "Berlin"


# ----- final bill and bill now ------------------------------------------------------


def test_the_last_product_ending_makes_the_final_bill(db_url: str) -> None:
    # given a customer with unbilled charges and no product left in service
    with session_scope() as session:
        customer_id, account_id = bill_helpers.billable_account(session, "30.00")
    ended = datetime(2026, 11, 20, 12, tzinfo=UTC)

    # when its products end (twice: the handler may run again), and it is terminated
    for _ in range(2):
        bills.final_bill_when_last_product_ends(ProductsEnded("o1", customer_id, ended, ("p1",)))
    bills.final_bill_on_termination(CustomerTerminated(customer_id))

    # then one final bill was made, issued and sent
    with session_scope() as session:
        [bill] = session.scalars(select(CustomerBillRow)).all()
        assert bill.category == "final" and bill.status == "sent"
        assert bill.billing_account_id == account_id
        assert bill.amount_due == Decimal("35.70")
        assert bill.bill_date == date(2026, 11, 20)
        assert bill.body["runType"] == "offCycle"


# ----- the API ----------------------------------------------------------------------


def _two_customers_with_bills() -> tuple[str, list[str], str, list[str]]:
    with session_scope() as session:
        a, account_a = bill_helpers.billable_account(session, "10.00", name="BMW AG")
        b, account_b = bill_helpers.billable_account(session, "20.00", name="Audi AG")
        account_a2 = bill_helpers.account(session, a)
        bill_helpers.rate(session, account_a2, a, "30.00")
    bills_a = [_bill(account_a), _bill(account_a2)]
    bills_b = [_bill(account_b)]
    return a, bills_a, b, bills_b


def test_customers_see_their_own_bills_only(
    client: TestClient, auth: TokenFactory, admin: dict[str, str]
) -> None:
    a, bills_a, _, bills_b = _two_customers_with_bills()
    mine = client.get(BILLS, headers=auth("customer", customer_id=a))
    assert mine.status_code == 200
    assert sorted(x["id"] for x in mine.json()) == sorted(bills_a)
    assert all(x["billNo"].startswith("RE-2026-") for x in mine.json())
    other = client.get(f"{BILLS}/{bills_b[0]}", headers=auth("customer", customer_id=a))
    assert other.status_code == 404
    document = client.get(f"{BILLS}/{bills_b[0]}/document", headers=auth("customer", customer_id=a))
    assert document.status_code == 404
    everything = client.get(BILLS, headers=admin)
    assert len(everything.json()) == 3
    one = client.get(f"{BILLS}/{bills_a[0]}", headers=admin).json()
    assert one["state"] == "validated" and one["amountDue"] == {"unit": "EUR", "value": 11.9}
    assert one["billDocument"][0]["url"].endswith(f"{bills_a[0]}/document")


def test_listing_bills_takes_a_bounded_number_of_queries(
    client: TestClient, admin: dict[str, str], count_queries: Callable[[], Any]
) -> None:
    _two_customers_with_bills()
    client.get(BILLS, headers=admin)  # the key's principal is read once, then cached
    forget_totals("customerBill")
    with count_queries() as few:
        assert len(client.get(BILLS, headers=admin).json()) == 3
    with session_scope() as session:
        for _ in range(6):
            _, account_id = bill_helpers.billable_account(session, "5.00")
            bills.issue(
                session,
                bills.bill_account(session, account_id, *NOV, today=TODAY) or "",
                today=TODAY,
            )
    forget_totals("customerBill")
    with count_queries() as many:
        assert len(client.get(BILLS, headers=admin).json()) == 9
    assert many.count == few.count


def test_bills_are_held_by_staff_never_edited_nor_deleted(
    client: TestClient, auth: TokenFactory, admin: dict[str, str]
) -> None:
    a, bills_a, _, _ = _two_customers_with_bills()
    with session_scope() as session:
        _, account_id = bill_helpers.billable_account(session, "10.00")
    fresh = _bill(account_id, issue=False)
    billing = auth("billing")
    merge = {"Content-Type": "application/merge-patch+json"}

    held = client.patch(f"{BILLS}/{fresh}", json={"state": "onHold"}, headers={**billing, **merge})
    assert held.status_code == 200, held.text
    assert held.json()["state"] == "onHold"
    wrong = client.patch(
        f"{BILLS}/{fresh}", json={"state": "validated"}, headers={**billing, **merge}
    )
    assert wrong.status_code == 409  # issuing takes a number: the service does it
    released = client.patch(f"{BILLS}/{fresh}", json={"state": "new"}, headers={**billing, **merge})
    assert released.json()["state"] == "new"
    issued_held = client.patch(
        f"{BILLS}/{bills_a[1]}", json={"state": "onHold"}, headers={**billing, **merge}
    )
    assert issued_held.json()["state"] == "onHold"
    issued_released = client.patch(
        f"{BILLS}/{bills_a[1]}", json={"state": "validated"}, headers={**billing, **merge}
    )
    assert issued_released.json()["state"] == "validated"

    with session_scope() as session:
        bills.send_bill(session, bills_a[0], today=TODAY)
    for change in ({"state": "onHold"}, {"state": "settled"}, {"billCycle": {"id": "x"}}):
        refused = client.patch(f"{BILLS}/{bills_a[0]}", json=change, headers={**admin, **merge})
        assert refused.status_code == 409, (change, refused.text)
    by_customer = client.patch(
        f"{BILLS}/{bills_a[1]}",
        json={"state": "onHold"},
        headers={**auth("customer", customer_id=a), **merge},
    )
    assert by_customer.status_code in (403, 405)
    assert client.delete(f"{BILLS}/{bills_a[0]}", headers=admin).status_code == 405
    assert client.post(BILLS, json={"state": "new"}, headers=admin).status_code in (405, 400)
    with session_scope() as session:
        assert bills.unchanged(session, bills_a[0])


def test_the_document_of_a_bill_is_its_pdf(
    client: TestClient, auth: TokenFactory, admin: dict[str, str]
) -> None:
    pytest.importorskip("etomcrm.billing.invoice")  # the "docs" branch renders it
    a, bills_a, _, _ = _two_customers_with_bills()
    response = client.get(f"{BILLS}/{bills_a[0]}/document", headers=auth("customer", customer_id=a))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    again = client.get(f"{BILLS}/{bills_a[0]}/document", headers=admin)
    assert again.content == response.content


def test_a_customer_asks_for_a_bill_now(client: TestClient, auth: TokenFactory) -> None:
    # given a customer with unbilled charges
    with session_scope() as session:
        customer_id, account_id = bill_helpers.billable_account(session, "12.00")
        _, foreign = bill_helpers.billable_account(session, "1.00", name="Audi AG")
    headers = auth("customer", customer_id=customer_id)

    # when it asks for a bill now
    response = client.post(
        ON_DEMAND,
        json={"name": "bill now", "billingAccount": {"id": account_id}},
        headers=headers,
    )

    # then the request is done, naming the bill, which is issued and sent
    assert response.status_code == 201, response.text
    request = response.json()
    assert request["state"] == "done"
    bill = client.get(f"{BILLS}/{request['customerBill']['id']}", headers=headers).json()
    assert bill["state"] == "sent" and bill["category"] == "onDemand"
    assert bill["amountDue"]["value"] == 14.28
    assert client.get(f"{ON_DEMAND}/{request['id']}", headers=headers).json()["state"] == "done"
    # and another customer's account is not its to bill
    refused = client.post(ON_DEMAND, json={"billingAccount": {"id": foreign}}, headers=headers)
    assert refused.status_code == 404
