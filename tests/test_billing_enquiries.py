"""Billing enquiries (3.8.1): a customer disputes a bill or a line; billing rejects it
or adjusts the bill by a credit note, above the threshold with a second person's
approval; the customer is told. (Credit notes come from the test double at the
enquiries' port, ``credit_notes``; the bills part fills that port at the merge.)"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.billing import enquiries
from etomcrm.billing.dunning_models import BillingEnquiryRow
from etomcrm.billing.models import AppliedRateRow, CustomerBillRow
from etomcrm.customer_interface.models import CommunicationMessageRow, PartyInteractionRow
from etomcrm.db import session_scope, utcnow
from etomcrm.network.port import business_date
from etomcrm.security.service import Principal, Role
from tests.conftest import TokenFactory
from tests.dunning_helpers import (  # noqa: F401  (credit_notes is a fixture)
    CreditNotes,
    credit_notes,
    customer_with_services,
    issued_bill,
)

ENQUIRIES = "/tmf-api/customerBillManagement/v4/billingEnquiry"
REQUESTS = "/tmf-api/partyInteraction/v4/customerRequest"
LINES = (("Site access, November", "119.00"), ("Traffic 8,000 GB", "856.80"))


def _bill(lines: tuple[tuple[str, str], ...] = LINES) -> tuple[str, str]:
    with session_scope() as session:
        customer = customer_with_services(session, "Autohaus Einspruch GmbH", sites=1)
        bill_id = issued_bill(
            session, customer, due=business_date(utcnow()) + timedelta(days=10), lines=lines
        )
    return customer.id, bill_id


def _dispute(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(ENQUIRIES, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _subjects(customer_id: str) -> list[str]:
    with session_scope(readonly=True) as session:
        return list(
            session.scalars(
                select(CommunicationMessageRow.name).where(
                    CommunicationMessageRow.owner_customer_id == customer_id
                )
            )
        )


def test_a_disputed_line_is_routed_to_billing_and_credited_below_the_threshold(
    client: TestClient,
    auth: TokenFactory,
    credit_notes: CreditNotes,  # noqa: F811
) -> None:
    # given a customer's bill of two lines
    customer_id, bill_id = _bill()
    own = auth("customer", customer_id=customer_id)

    # when the customer disputes the access line
    enquiry = _dispute(
        client,
        own,
        customerBill={"id": bill_id},
        disputedLine=[{"id": f"{bill_id}-l1"}],
        description="The site was not yet connected in November",
    )

    # then it is open for that amount, and a customer request sits in billing's queue
    assert enquiry["status"] == "open"
    assert enquiry["disputedAmount"] == {"unit": "EUR", "value": "119.00"}
    queue = client.get(f"{REQUESTS}?queue=billing", headers=auth("billing")).json()
    assert [r["id"] for r in queue] == [enquiry["customerRequest"]["id"]]
    assert queue[0]["routedTo"] == "billing" and queue[0]["classification"] == "billing"

    # when billing adjusts it (100.00 net, below the 500 EUR threshold)
    adjusted = client.post(
        f"{ENQUIRIES}/{enquiry['id']}/adjust",
        json={"reason": "the site went live on 3 December"},
        headers=auth("billing"),
    )

    # then a credit note referencing the bill is issued at once
    assert adjusted.status_code == 200, adjusted.text
    body = adjusted.json()
    assert body["status"] == "resolved"
    assert body["resolution"]["creditNote"]["amount"] == {"unit": "EUR", "value": "119.00"}
    ((credited_bill, lines, reason),) = credit_notes.made
    assert credited_bill == bill_id and reason == "the site went live on 3 December"
    assert [(line.amount, line.tax_rate, line.applied_rate_id) for line in lines] == [
        (Decimal("119.00"), Decimal("19.00"), f"{bill_id}-l1")
    ]
    with session_scope(readonly=True) as session:
        bill = session.get(CustomerBillRow, bill_id)
        assert bill is not None and bill.remaining_amount == Decimal("856.80")
        request = session.get(PartyInteractionRow, enquiry["customerRequest"]["id"])
        assert request is not None and request.status == "resolved"
    # and the customer was told: received, then the outcome
    subjects = _subjects(customer_id)
    assert any("Your enquiry about bill" in s and "credit note GS-" in s for s in subjects)
    assert len(subjects) == 2, subjects


def test_a_credit_note_above_the_threshold_needs_a_second_person(
    client: TestClient,
    auth: TokenFactory,
    credit_notes: CreditNotes,  # noqa: F811
) -> None:
    # given a disputed traffic line of 856.80 EUR (720.00 net, above 500)
    customer_id, bill_id = _bill()
    enquiry = _dispute(
        client,
        auth("customer", customer_id=customer_id),
        customerBill={"id": bill_id},
        disputedLine=[{"id": f"{bill_id}-l2"}],
        description="We were charged traffic of a site we do not have",
    )
    proposer, approver = auth("billing"), auth("billing")

    # when one person in billing proposes the credit note
    proposed = client.post(
        f"{ENQUIRIES}/{enquiry['id']}/adjust",
        json={"reason": "traffic of another customer's site"},
        headers=proposer,
    )

    # then it waits for approval, and nothing is credited yet
    assert proposed.status_code == 200, proposed.text
    assert proposed.json()["status"] == "pendingApproval"
    assert proposed.json()["adjustment"]["netAmount"] == {"unit": "EUR", "value": "720.00"}
    assert credit_notes.made == []
    # and the proposer cannot approve it, nor can a customer
    refused = client.post(f"{ENQUIRIES}/{enquiry['id']}/approve", headers=proposer)
    assert refused.status_code == 403 and "four-eyes" in refused.json()["message"]
    own = auth("customer", customer_id=customer_id)
    assert client.post(f"{ENQUIRIES}/{enquiry['id']}/approve", headers=own).status_code == 403

    # when a second person approves it
    approved = client.post(f"{ENQUIRIES}/{enquiry['id']}/approve", headers=approver)

    # then the credit note is issued and the customer told
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "resolved"
    assert approved.json()["adjustment"]["authorization"]["state"] == "approved"
    assert [line.amount for _, lines, _ in credit_notes.made for line in lines] == [
        Decimal("856.80")
    ]
    assert any("credit note" in s for s in _subjects(customer_id))
    # and an answered enquiry takes no second answer
    again = client.post(f"{ENQUIRIES}/{enquiry['id']}/approve", headers=approver)
    assert again.status_code == 409


def test_a_rejected_dispute_tells_the_customer_why(
    client: TestClient,
    auth: TokenFactory,
    credit_notes: CreditNotes,  # noqa: F811
) -> None:
    # given a dispute of the whole bill
    customer_id, bill_id = _bill()
    own = auth("customer", customer_id=customer_id)
    enquiry = _dispute(
        client, own, customerBill={"id": bill_id}, description="Far too much this month"
    )
    assert enquiry["disputedAmount"]["value"] == "975.80"

    # when billing rejects it with the reason
    rejected = client.post(
        f"{ENQUIRIES}/{enquiry['id']}/reject",
        json={"reason": "the traffic is as measured at your sites"},
        headers=auth("billing"),
    )

    # then it is rejected, nothing is credited, and the customer reads the reason
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert credit_notes.made == []
    assert any("the bill stands" in s for s in _subjects(customer_id))
    mine = client.get(ENQUIRIES, headers=own).json()
    assert [(e["id"], e["status"]) for e in mine] == [(enquiry["id"], "rejected")]


def test_a_customer_disputes_only_its_own_bills(client: TestClient, auth: TokenFactory) -> None:
    # given two customers, each with a bill
    first_id, first_bill = _bill()
    second_id, _ = _bill()
    # when the second disputes the first's bill, it is not found for it
    response = client.post(
        ENQUIRIES,
        json={"customerBill": {"id": first_bill}, "description": "not mine"},
        headers=auth("customer", customer_id=second_id),
    )
    assert response.status_code == 404
    # and the first's enquiries stay hidden from the second
    enquiry = _dispute(
        client,
        auth("customer", customer_id=first_id),
        customerBill={"id": first_bill},
        description="too high",
    )
    other = auth("customer", customer_id=second_id)
    assert client.get(f"{ENQUIRIES}/{enquiry['id']}", headers=other).status_code == 404
    assert client.get(ENQUIRIES, headers=other).json() == []
    # nor may a customer answer its own enquiry
    own = auth("customer", customer_id=first_id)
    answer = client.post(f"{ENQUIRIES}/{enquiry['id']}/reject", json={"reason": "x"}, headers=own)
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"description": "no bill named"},
        {"customerBill": {"id": "BILL"}},
        {"customerBill": {"id": "BILL"}, "description": "  "},
        {"customerBill": {"id": "BILL"}, "description": "x", "disputedLine": [{"id": "nope"}]},
        {"customerBill": {"id": "BILL"}, "description": "x", "disputedLine": "BILL-l1"},
        {"customerBill": {"id": "BILL"}, "description": "x", "disputedAmount": "-5"},
        {"customerBill": {"id": "BILL"}, "description": "x", "disputedAmount": "abc"},
        {"customerBill": {"id": "BILL"}, "description": "x", "disputedAmount": "99999.00"},
        {"customerBill": {"id": "BILL"}, "description": "x", "disputedAmount": "1.005"},
        {
            "customerBill": {"id": "BILL"},
            "description": "x",
            "disputedLine": [{"id": "BILL-l1"}, {"id": "BILL-l1"}],
        },
        {"customerBill": {"id": "BILL"}, "description": "x", "channel": "phone"},
    ],
)
def test_bad_disputes_are_refused_with_400(
    client: TestClient, auth: TokenFactory, body: dict[str, Any]
) -> None:
    # given a customer's bill
    customer_id, bill_id = _bill()
    posted = json.loads(json.dumps(body).replace("BILL", bill_id))
    # when the customer posts a malformed dispute
    response = client.post(
        ENQUIRIES, json=posted, headers=auth("customer", customer_id=customer_id)
    )
    # then it is refused as a bad request, and nothing is logged
    assert response.status_code == 400, response.text
    assert client.get(ENQUIRIES, headers=auth("billing")).json() == []


def test_bad_answers_are_refused(
    client: TestClient,
    auth: TokenFactory,
    credit_notes: CreditNotes,  # noqa: F811
) -> None:
    # given an open enquiry on one line
    customer_id, bill_id = _bill()
    own = auth("customer", customer_id=customer_id)
    enquiry = _dispute(
        client,
        own,
        customerBill={"id": bill_id},
        disputedLine=[{"id": f"{bill_id}-l1"}],
        description="wrong",
    )
    billing = auth("billing")
    url = f"{ENQUIRIES}/{enquiry['id']}"
    # then answers without a reason, with a bad amount, or by the wrong role are refused
    assert client.post(f"{url}/reject", json={}, headers=billing).status_code == 400
    assert client.post(f"{url}/adjust", json={"reason": ""}, headers=billing).status_code == 400
    bad_amount = {"reason": "r", "amount": {"unit": "EUR", "value": "0"}}
    assert client.post(f"{url}/adjust", json=bad_amount, headers=billing).status_code == 400
    sales = auth("sales")
    assert client.post(f"{url}/reject", json={"reason": "r"}, headers=sales).status_code == 403
    # and a second dispute of the same line while the first is open is a conflict
    second = client.post(
        ENQUIRIES,
        json={
            "customerBill": {"id": bill_id},
            "disputedLine": [{"id": f"{bill_id}-l1"}],
            "description": "again",
        },
        headers=own,
    )
    assert second.status_code == 409
    # and an unknown enquiry is not found
    unknown = client.post(f"{ENQUIRIES}/nope/reject", json={"reason": "r"}, headers=billing)
    assert unknown.status_code == 404


def test_staff_take_up_a_customer_request_as_an_enquiry(
    client: TestClient,
    auth: TokenFactory,
    credit_notes: CreditNotes,  # noqa: F811
) -> None:
    # given a customer that wrote in about its invoice
    customer_id, bill_id = _bill()
    filed = client.post(
        REQUESTS,
        json={
            "channel": "portal",
            "subject": "Invoice too high",
            "description": "The traffic charge on our invoice is wrong",
        },
        headers=auth("customer", customer_id=customer_id),
    )
    assert filed.status_code == 201 and filed.json()["routedTo"] == "billing", filed.text
    billing = auth("billing")

    # and a request of another customer is not taken up for this bill
    other_id, _ = _bill()
    foreign = client.post(
        REQUESTS,
        json={"channel": "phone", "subject": "Billing question", "customerId": other_id},
        headers=billing,
    )
    assert foreign.status_code == 201, foreign.text
    refused = client.post(
        ENQUIRIES,
        json={
            "customerBill": {"id": bill_id},
            "description": "x",
            "disputedAmount": {"unit": "EUR", "value": "10.00"},
            "customerRequest": {"id": foreign.json()["id"]},
        },
        headers=billing,
    )
    assert refused.status_code == 400, refused.text

    # when billing takes the request up as an enquiry on the traffic line
    enquiry = _dispute(
        client,
        billing,
        customerBill={"id": bill_id},
        disputedLine=[{"id": f"{bill_id}-l2"}],
        description="Traffic charge disputed (customer request)",
        customerRequest={"id": filed.json()["id"]},
        channel="portal",
    )

    # then the enquiry is that request, and the requester sees the note on it
    assert enquiry["customerRequest"]["id"] == filed.json()["id"]
    assert enquiry["disputedAmount"]["value"] == "856.80"
    with session_scope(readonly=True) as session:
        request = session.get(PartyInteractionRow, filed.json()["id"])
        assert request is not None
        assert "billing enquiry" in request.body["note"][-1]["text"]


def test_a_line_credited_in_full_is_credited_less_its_contract_discount(
    client: TestClient,
    auth: TokenFactory,
    credit_notes: CreditNotes,  # noqa: F811
) -> None:
    # given a bill whose access line (429.00 net) had 15 % off on a discount line of its own
    customer_id, bill_id = _bill((("Site access, December", "510.51"),))
    with session_scope() as session:
        session.add(
            AppliedRateRow(
                id=f"{bill_id}-d1",
                source_key=f"test/{bill_id}/discount",
                billing_account_id=f"acct-{customer_id}",
                customer_id=customer_id,
                bill_id=bill_id,
                rate_type="discount",
                name="Contract discount 15 % on Site access",
                tax_excluded=Decimal("-64.35"),
                tax_rate=Decimal("19.00"),
                tax_amount=Decimal("-12.23"),
                tax_included=Decimal("-76.58"),
                currency="EUR",
                characteristic={"discountOf": {"id": f"{bill_id}-l1"}},
            )
        )
    own = auth("customer", customer_id=customer_id)
    enquiry = _dispute(
        client,
        own,
        customerBill={"id": bill_id},
        disputedLine=[{"id": f"{bill_id}-l1"}],
        description="The site was down for repair",
    )

    # when billing credits the disputed line in full
    adjusted = client.post(
        f"{ENQUIRIES}/{enquiry['id']}/adjust",
        json={"reason": "agreed"},
        headers=auth("billing"),
    )

    # then the credit is what the line cost the customer: list price less its discount
    assert adjusted.status_code == 200, adjusted.text
    ((_, lines, _),) = credit_notes.made
    assert [(line.amount, line.applied_rate_id) for line in lines] == [
        (Decimal("433.93"), f"{bill_id}-l1")
    ]


def test_an_enquiry_worked_at_a_set_moment_dates_its_credit_note_that_day(
    db_url: str,
    credit_notes: CreditNotes,  # noqa: F811
) -> None:
    # given a customer's disputed bill
    customer_id, bill_id = _bill()
    customer = Principal(id="c", name="Kunde", role=Role.CUSTOMER, customer_id=customer_id)
    staff = Principal(id="b", name="Billing", role=Role.BILLING)
    moment = datetime(2027, 2, 3, 10, 0, tzinfo=UTC)

    # when the enquiry is disputed and adjusted at a moment the caller sets (the demo's
    # story day, months ahead of the wall clock)
    with enquiries.CLOCK.at(moment), session_scope() as session:
        enquiry = enquiries.dispute_bill(
            session, customer, bill_id, description="not connected", line_ids=[f"{bill_id}-l1"]
        )
        enquiries.propose_adjustment(session, staff, str(enquiry["id"]), reason="agreed")

    # then the credit note carries that day, and the enquiry that moment
    ((credited_bill, _, _),) = credit_notes.made
    with session_scope(readonly=True) as session:
        note = session.scalars(
            select(CustomerBillRow).where(CustomerBillRow.category == "creditNote")
        ).one()
        row = session.get(BillingEnquiryRow, str(enquiry["id"]))
    assert credited_bill == bill_id and note.bill_date == date(2027, 2, 3)
    assert row is not None and row.body["lastUpdate"].startswith("2027-02-03T10:00")
