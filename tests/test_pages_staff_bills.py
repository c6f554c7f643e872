"""The staff bill pages over plain HTTP (issue 11): a bill with its lines, PDF and XML,
the payments allocated to it and its dunning state; an enquiry logged for the customer
and answered by a credit note, above the threshold approved by a second person (four
eyes, as the API), or rejected; billing's work lists (credit notes awaiting approval,
dunning cases, billing's tasks) linked from the home page; bad input shows the form
again with the error beside the field; bounded queries whatever the number of lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.billing import bills, dunning, payments
from etomcrm.billing.dunning_models import BillingEnquiryRow
from etomcrm.billing.models import AppliedRateRow, CustomerBillRow
from etomcrm.billing.work_list import hand_over
from etomcrm.db import session_scope, utcnow
from tests import bill_helpers
from tests.test_pages_portal import csrf_of, sign_in, user
from tests.test_pages_tickets_bills import NOV, TODAY

BILLS = "/ui/billing/bills"


@dataclass(frozen=True)
class Bill:
    customer_id: str
    account_id: str
    bill_id: str
    bill_no: str
    line_ids: list[str]


def _bill(*nets: str) -> Bill:
    """An issued November bill of the charges ``nets`` (net, 19 % VAT on top)."""
    with session_scope() as session:
        customer_id = bill_helpers.customer(session, "BMW AG")
        account_id = bill_helpers.account(session, customer_id)
        for n, net in enumerate(nets):
            bill_helpers.rate(session, account_id, customer_id, net, name=f"Charge {n}")
        session.flush()
        bill_id = bills.bill_account(session, account_id, *NOV, today=TODAY)
        assert bill_id is not None
        bill_no = bills.issue(session, bill_id, today=TODAY)
        line_ids = list(
            session.scalars(
                select(AppliedRateRow.id)
                .where(AppliedRateRow.bill_id == bill_id)
                .order_by(AppliedRateRow.name)
            )
        )
    return Bill(customer_id, account_id, bill_id, bill_no, line_ids)


def _staff(client: TestClient, username: str, role: str = "billing") -> None:
    user(username, role=role)
    client.cookies.clear()
    assert sign_in(client, username).status_code == 303


def _enquiry(bill_id: str) -> dict[str, Any]:
    with session_scope(readonly=True) as session:
        bodies = list(
            session.scalars(
                select(BillingEnquiryRow.body).where(BillingEnquiryRow.bill_id == bill_id)
            )
        )
    assert len(bodies) == 1
    return dict(bodies[0])


def test_billing_reads_a_bill_with_its_documents_payments_and_dunning(
    client: TestClient,
) -> None:
    # given an issued bill of two charges (120.00 net, 142.80 due), 100.00 of it paid
    # and a dunning case opened on the rest
    bmw = _bill("50.00", "70.00")
    with session_scope() as session:
        payments.record_payment(
            session,
            account_id=bmw.account_id,
            amount=Decimal("100.00"),
            currency="EUR",
            payment_date=TODAY,
            reference=bmw.bill_no,
            means="bankTransfer",
        )
        dunning.open_case(session, bmw.bill_id, "overdue", now=utcnow())
    _staff(client, "bea.billing")
    # when billing opens the bill
    page = client.get(f"{BILLS}/{bmw.bill_id}")
    # then it shows its lines, the payment allocated, what is open and its dunning state
    assert page.status_code == 200, page.text
    assert f"Bill {bmw.bill_no}" in page.text
    assert "Charge 0" in page.text and "Charge 1" in page.text
    payments_table = page.text.split('id="payments"')[1].split("</table>")[0]
    assert "100.00 EUR" in payments_table and bmw.bill_no in payments_table
    assert "42.80 EUR" in page.text.split('id="open-amount"')[1][:40]
    assert "opened" in page.text.split('id="dunning"')[1].split("</section>")[0]
    # and the PDF and the XML of the bill as issued
    pdf = client.get(f"{BILLS}/{bmw.bill_id}/document.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    xml = client.get(f"{BILLS}/{bmw.bill_id}/document.xml")
    assert xml.status_code == 200 and b"CrossIndustryInvoice" in xml.content
    assert client.get(f"{BILLS}/{bmw.bill_id}/document.doc").status_code == 404
    # and the dunning list links to it
    cases = client.get("/ui/billing/dunning")
    assert cases.status_code == 200 and f'{BILLS}/{bmw.bill_id}#dunning"' in cases.text
    # and the customer's 360 and the home page's work lists lead to these pages
    c360 = client.get(f"/ui/customers/{bmw.customer_id}")
    assert f'href="{BILLS}/{bmw.bill_id}"' in c360.text
    found = client.get("/ui/search", params={"q": bmw.bill_id})
    assert f'href="{BILLS}/{bmw.bill_id}"' in found.text
    home = client.get("/ui/").text
    for target in ("/ui/billing/approvals", "/ui/billing/dunning", "/ui/billing/tasks"):
        assert f'href="{target}"' in home


def test_a_credit_note_above_the_threshold_needs_a_second_person(client: TestClient) -> None:
    # given an issued bill with a line of 600.00 net (above the 500 EUR threshold)
    bmw = _bill("20.00", "600.00")
    _staff(client, "bea.billing")
    page = client.get(f"{BILLS}/{bmw.bill_id}")
    token = csrf_of(page.text)
    line = bmw.line_ids[1]
    # when she logs the customer's call about the line without saying what is wrong
    refused = client.post(
        f"{BILLS}/{bmw.bill_id}/enquiries",
        data={"channel": "phone", "line": line, "description": " ", "csrf_token": token},
    )
    # then the form comes back with the reason beside the field and her choices kept
    assert refused.status_code == 400
    assert 'id="description-error"' in refused.text
    assert f'<option value="{line}" selected>' in refused.text
    assert '<option value="phone" selected>' in refused.text
    # when she logs it in full
    logged = client.post(
        f"{BILLS}/{bmw.bill_id}/enquiries",
        data={
            "channel": "phone",
            "line": line,
            "description": "A site we never ordered",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert logged.status_code == 303
    enquiry = _enquiry(bmw.bill_id)
    assert enquiry["status"] == "open" and enquiry["channel"] == "phone"
    # when she proposes a credit note with an amount that is not one
    page = client.get(f"{BILLS}/{bmw.bill_id}")
    bad = client.post(
        f"/ui/billing/enquiries/{enquiry['id']}/credit-note",
        data={"reason": "Not ordered", "amount": "lots", "csrf_token": token},
    )
    # then the form comes back with the reason typed kept and the error beside the amount
    assert bad.status_code == 400
    assert f'id="amount-{enquiry["id"]}-error"' in bad.text
    assert ">Not ordered</textarea>" in bad.text
    # when she proposes the line in full
    proposed = client.post(
        f"/ui/billing/enquiries/{enquiry['id']}/credit-note",
        data={"reason": "Not ordered", "amount": "", "csrf_token": token},
        follow_redirects=False,
    )
    # then it waits for a second person, and she may not approve it herself
    assert proposed.status_code == 303
    assert _enquiry(bmw.bill_id)["status"] == "pendingApproval"
    page = client.get(f"{BILLS}/{bmw.bill_id}")
    assert "/approval" not in page.text and "four eyes" in page.text
    own = client.post(f"/ui/billing/enquiries/{enquiry['id']}/approval", data={"csrf_token": token})
    assert own.status_code == 403 and "four-eyes" in own.text
    # and a sales person may not approve it either (the API's roles)
    _staff(client, "sven.sales", "sales")
    page = client.get(f"{BILLS}/{bmw.bill_id}")
    assert page.status_code == 200 and "/approval" not in page.text
    assert (
        client.post(
            f"/ui/billing/enquiries/{enquiry['id']}/approval",
            data={"csrf_token": csrf_of(page.text)},
        ).status_code
        == 403
    )
    # when a second person in billing finds it on the approvals list and approves it
    _staff(client, "bruno.billing")
    waiting = client.get("/ui/billing/approvals")
    assert waiting.status_code == 200
    assert f'{BILLS}/{bmw.bill_id}#enquiry-{enquiry["id"]}"' in waiting.text
    assert "bea.billing" in waiting.text or "Not ordered" in waiting.text
    page = client.get(f"{BILLS}/{bmw.bill_id}")
    assert f'/ui/billing/enquiries/{enquiry["id"]}/approval"' in page.text
    approved = client.post(
        f"/ui/billing/enquiries/{enquiry['id']}/approval",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    # then the credit note is issued, listed on the bill and linked to its own page
    assert approved.status_code == 303
    done = _enquiry(bmw.bill_id)
    assert done["status"] == "resolved"
    note_id = done["resolution"]["creditNote"]["id"]
    page = client.get(f"{BILLS}/{bmw.bill_id}")
    assert f'href="{BILLS}/{note_id}"' in page.text
    note = client.get(f"{BILLS}/{note_id}")
    assert note.status_code == 200 and "Credit note" in note.text
    assert f'href="{BILLS}/{bmw.bill_id}"' in note.text
    assert "None waiting." in client.get("/ui/billing/approvals").text


def test_billing_rejects_an_enquiry_with_its_reason(client: TestClient) -> None:
    # given an enquiry on a bill
    bmw = _bill("20.00")
    _staff(client, "bea.billing")
    token = csrf_of(client.get(f"{BILLS}/{bmw.bill_id}").text)
    client.post(
        f"{BILLS}/{bmw.bill_id}/enquiries",
        data={"channel": "email", "line": "", "description": "Too much", "csrf_token": token},
    )
    enquiry = _enquiry(bmw.bill_id)
    # when she rejects it without a reason, then with one
    empty = client.post(
        f"/ui/billing/enquiries/{enquiry['id']}/rejection",
        data={"reason": "", "csrf_token": token},
    )
    assert empty.status_code == 400
    assert f'id="reason-reject-{enquiry["id"]}-error"' in empty.text
    rejected = client.post(
        f"/ui/billing/enquiries/{enquiry['id']}/rejection",
        data={"reason": "The contract price", "csrf_token": token},
        follow_redirects=False,
    )
    # then the enquiry is rejected with it, as through the API
    assert rejected.status_code == 303
    done = _enquiry(bmw.bill_id)
    assert done["status"] == "rejected" and done["resolution"]["reason"] == "The contract price"
    assert "Rejected: The contract price" in client.get(f"{BILLS}/{bmw.bill_id}").text
    german = client.get(f"{BILLS}/{bmw.bill_id}", headers={"Accept-Language": "de"}).text
    assert f"Rechnung {bmw.bill_no}" in german and "Abgelehnt: The contract price" in german
    assert "Beanstandet: 23,80 EUR" in german


def test_the_billing_tasks_list_shows_unmatched_payments(client: TestClient) -> None:
    # given a bank entry billing could not match, handed to its work list
    with session_scope() as session:
        hand_over(
            session,
            key="bank-entry/E-1",
            reason="Bank entry E-1 of 99.00 EUR: no bill named",
            description="Book it by hand or return it.",
            items=[{"id": "E-1", "@referredType": "BankEntry", "role": "no bill named"}],
        )
    _staff(client, "bea.billing")
    # when billing opens its tasks
    page = client.get("/ui/billing/tasks")
    # then the entry is listed
    assert page.status_code == 200
    assert "Bank entry E-1 of 99.00 EUR: no bill named" in page.text
    # and a customer's user has no such page
    with session_scope() as session:
        customer_id = bill_helpers.customer(session, "Audi AG")
    user("anna.audi", customer_id=customer_id)
    client.cookies.clear()
    assert sign_in(client, "anna.audi").status_code == 303
    assert client.get("/ui/billing/tasks").status_code == 403


def test_a_bill_page_takes_as_many_queries_for_thirty_lines_as_for_two(
    client: TestClient, count_queries: Callable[[], Any]
) -> None:
    small, large = _bill("10.00", "11.00"), _bill(*(f"{10 + n}.00" for n in range(30)))
    with session_scope() as session:
        for bill in (small, large):
            for _ in range(3):
                payments.record_payment(
                    session,
                    account_id=bill.account_id,
                    amount=Decimal("1.00"),
                    currency="EUR",
                    payment_date=TODAY,
                    reference=bill.bill_no,
                    means="bankTransfer",
                )
        assert session.scalar(select(CustomerBillRow.id).limit(1)) is not None
    _staff(client, "bea.billing")

    def queries(path: str) -> int:
        with count_queries() as counter:
            assert client.get(path).status_code == 200
        return int(counter.count)

    queries(f"{BILLS}/{small.bill_id}")  # the session's user is looked up once, then cached
    few, many = queries(f"{BILLS}/{small.bill_id}"), queries(f"{BILLS}/{large.bill_id}")
    assert few == many <= 10
    for path in ("/ui/billing/approvals", "/ui/billing/dunning", "/ui/billing/tasks"):
        assert queries(path) <= 3
