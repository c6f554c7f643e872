"""Dunning (3.8.5) as a durable flow: reminder → notice with fee → final notice →
suspension through a suspend order → payment → resumed; paused while disputed; ended
when paid early. The flow waits on the flow clock, which the tests move on."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from etomcrm.billing import dunning as rules
from etomcrm.billing.dunning_models import DunningCaseRow
from etomcrm.billing.events import PaymentReceived, PaymentReturned
from etomcrm.billing.models import AppliedRateRow, CustomerBillRow
from etomcrm.cli import app as cli
from etomcrm.core.bus import record
from etomcrm.core.clock import FLOW_CLOCK
from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope, utcnow
from etomcrm.flows import dunning as dunning_flow
from etomcrm.flows import engine
from etomcrm.network.port import business_date
from etomcrm.order_handling.models import ProductOrderRow, ProductRow
from tests.conftest import TokenFactory
from tests.dunning_helpers import Customer, customer_with_services, issued_bill, pay
from tests.polling import until

BILLS = "/tmf-api/customerBillManagement/v4"
ENQUIRIES = f"{BILLS}/billingEnquiry"


def _today() -> date:
    return business_date(utcnow())


def _dunning(client: TestClient, headers: dict[str, str], bill_id: str) -> dict[str, Any]:
    response = client.get(f"{BILLS}/customerBill/{bill_id}/dunning", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _at_level(
    client: TestClient, headers: dict[str, str], bill_id: str, level: int, status: str
) -> dict[str, Any] | None:
    found = _dunning(client, headers, bill_id)
    return found if found["level"] == level and found["status"] == status else None


def _wake(bill_id: str) -> None:
    with session_scope(readonly=True) as session:
        (case_id,) = rules.open_cases_of_bills(session, [bill_id])
    engine.send(rules.dunning_workflow_id(case_id), "look again", dunning_flow.TOPIC)


def _subjects(customer_id: str) -> list[str]:
    with session_scope(readonly=True) as session:
        return list(
            session.scalars(
                select(CommunicationMessageRow.name)
                .where(CommunicationMessageRow.owner_customer_id == customer_id)
                .order_by(CommunicationMessageRow.created_at, CommunicationMessageRow.id)
            )
        )


def _statuses(customer: Customer) -> list[str]:
    with session_scope(readonly=True) as session:
        return [
            str(s)
            for s in session.scalars(
                select(ProductRow.status)
                .where(ProductRow.id.in_(customer.product_ids))
                .order_by(ProductRow.id)
            )
        ]


def _paid(bill_id: str, customer: Customer) -> None:
    """The pay part settles the bill and states it."""
    pay(bill_id)
    with session_scope() as session:
        record(
            session,
            PaymentReceived(
                payment_id="pay-1",
                billing_account_id=customer.account_id,
                customer_id=customer.id,
                bill_ids=(bill_id,),
            ),
        )


def test_business_days_skip_weekends_and_bavarian_holidays() -> None:
    # given Christmas Eve 2026, a Thursday, at noon in Berlin
    eve = datetime(2026, 12, 24, 11, 0, tzinfo=UTC)
    # when one and three business days pass
    # then the 25th and 26th (holidays) and the Sunday are skipped
    assert rules.business_days_after(eve, 1) == datetime(2026, 12, 28, 11, 0, tzinfo=UTC)
    assert rules.business_days_after(eve, 3) == datetime(2026, 12, 30, 11, 0, tzinfo=UTC)


def test_an_unpaid_bill_climbs_the_ladder_to_suspension_and_is_resumed_on_payment(
    client: TestClient, auth: TokenFactory, flows: None
) -> None:
    # given a customer with two sites and a bill due ten days ago
    with session_scope() as session:
        customer = customer_with_services(session, "Autohaus Spät GmbH")
        bill_id = issued_bill(session, customer, due=_today() - timedelta(days=10))
    admin = auth("admin")
    own = auth("customer", customer_id=customer.id)

    # when the daily overdue check runs
    dunning_flow.start_overdue_check(_today().isoformat())

    # then the reminder goes out at once (the grace days are over)
    reminded = until(lambda: _at_level(client, own, bill_id, 1, "open"))
    assert reminded, _dunning(client, admin, bill_id)
    assert reminded["levelName"] == "reminder"
    assert reminded["history"][0]["openAmount"] == {"unit": "EUR", "value": "119.00"}
    # and a second check that day opens no second case
    dunning_flow.start_overdue_check(_today().isoformat())

    # when the reminder's days pass: the notice, with the fee for the next bill
    FLOW_CLOCK.advance(timedelta(days=15))
    _wake(bill_id)
    noticed = until(lambda: _at_level(client, admin, bill_id, 2, "open"))
    assert noticed and noticed["fee"] == {"unit": "EUR", "value": "5.00"}, noticed
    with session_scope(readonly=True) as session:
        (fee,) = session.scalars(select(AppliedRateRow).where(AppliedRateRow.rate_type == "fee"))
        assert (fee.bill_id, fee.customer_id, f"{fee.tax_included}") == (None, customer.id, "5.00")
        assert fee.tax_amount == 0 and fee.source_key.startswith("dunning-fee/")

    # when the notice's days pass: the final notice announces the suspension date
    FLOW_CLOCK.advance(timedelta(days=15))
    _wake(bill_id)
    final = until(lambda: _at_level(client, admin, bill_id, 3, "open"))
    assert final and final["suspensionDate"], final
    assert _statuses(customer) == ["active", "active"]

    # when that date comes: a suspend order runs through the Fulfillment flow
    FLOW_CLOCK.advance(timedelta(days=15))
    _wake(bill_id)
    assert until(lambda: _at_level(client, admin, bill_id, 4, "suspended"))
    assert until(lambda: _statuses(customer) == ["suspended", "suspended"]), _statuses(customer)
    with session_scope(readonly=True) as session:
        (suspend,) = session.scalars(
            select(ProductOrderRow).where(ProductOrderRow.owner_customer_id == customer.id)
        )
        items = suspend.body["productOrderItem"]
        assert {(i["action"], i["product"]["status"]) for i in items} == {("modify", "suspended")}

    # when the customer pays
    _paid(bill_id, customer)

    # then the case ends and a resume order makes the products active again
    closed = until(lambda: _at_level(client, own, bill_id, 4, "closed"))
    assert closed and closed["outcome"] == "paid; services resumed", closed
    assert until(lambda: _statuses(customer) == ["active", "active"]), _statuses(customer)
    until(
        lambda: (
            engine.workflow_state(f"post-ordering-{closed['productOrder'][-1]['id']}") == "SUCCESS"
        )
    )

    # and the customer was told at every step
    subjects = _subjects(customer.id)
    for expected in (
        "Payment reminder",
        "Dunning notice",
        "Final notice",
        "Your services are suspended",
        "paid: thank you",
        "Your services are resumed",
    ):
        assert any(expected in s for s in subjects), (expected, subjects)
    # and every step is on record with its seed number
    trace = CliRunner().invoke(cli, ["trace", bill_id], terminal_width=200)
    assert trace.exit_code == 0, trace.output
    for seed in ("3.8.5", "3.2.2", "3.5.3"):
        assert seed in trace.output, trace.output


def test_a_disputed_bill_is_not_dunned_until_the_enquiry_is_answered(
    client: TestClient, auth: TokenFactory, flows: None
) -> None:
    # given a reminded bill
    with session_scope() as session:
        customer = customer_with_services(session, "Autohaus Streit KG", sites=1)
        bill_id = issued_bill(session, customer, due=_today() - timedelta(days=10))
    admin = auth("admin")
    own = auth("customer", customer_id=customer.id)
    dunning_flow.start_overdue_check(_today().isoformat())
    assert until(lambda: _at_level(client, admin, bill_id, 1, "open"))

    # when the customer disputes the whole bill
    disputed = client.post(
        ENQUIRIES,
        json={"customerBill": {"id": bill_id}, "description": "We cancelled this site in October"},
        headers=own,
    )
    assert disputed.status_code == 201, disputed.text

    # then dunning pauses, and stays paused however long the answer takes
    assert until(lambda: _at_level(client, admin, bill_id, 1, "paused"))
    FLOW_CLOCK.advance(timedelta(days=30))
    _wake(bill_id)
    paused = _dunning(client, admin, bill_id)
    assert (paused["level"], paused["status"]) == (1, "paused")
    assert paused["disputedAmount"] == {"unit": "EUR", "value": "119.00"}

    # when billing rejects the dispute, dunning goes on from where it was
    rejected = client.post(
        f"{ENQUIRIES}/{disputed.json()['id']}/reject",
        json={"reason": "the cancellation takes effect at the end of December"},
        headers=auth("billing"),
    )
    assert rejected.status_code == 200, rejected.text
    assert until(lambda: _at_level(client, admin, bill_id, 1, "open"))

    # and when it is paid, it ends
    _paid(bill_id, customer)
    closed = until(lambda: _at_level(client, admin, bill_id, 1, "closed"))
    assert closed and closed["outcome"] == "paid"
    subjects = _subjects(customer.id)
    assert any("no reminders while we examine" in s for s in subjects), subjects


def test_a_bill_paid_before_the_first_reminder_ends_its_dunning_quietly(
    client: TestClient, auth: TokenFactory, flows: None
) -> None:
    # given a bill due yesterday (the grace days are still running)
    with session_scope() as session:
        customer = customer_with_services(session, "Autohaus Pünktlich AG", sites=1)
        bill_id = issued_bill(session, customer, due=_today() - timedelta(days=1))
    admin = auth("admin")
    dunning_flow.start_overdue_check(_today().isoformat())
    opened = until(lambda: _at_level(client, admin, bill_id, 0, "open"))
    assert opened and opened["nextStepDate"], opened

    # when it is paid
    _paid(bill_id, customer)

    # then the case closes without a single message to the customer
    closed = until(lambda: _at_level(client, admin, bill_id, 0, "closed"))
    assert closed and closed["outcome"] == "paid before the first reminder", closed
    assert _subjects(customer.id) == []


def test_a_returned_debit_is_dunned_at_once_and_the_case_is_visible_to_billing(
    client: TestClient, auth: TokenFactory, flows: None, count_queries: Any
) -> None:
    # given a bill not yet due whose direct debit came back
    with session_scope() as session:
        customer = customer_with_services(session, "Autohaus Rückgabe GmbH", sites=1)
        bill_id = issued_bill(session, customer, due=_today() + timedelta(days=5))
        record(
            session,
            PaymentReturned(
                payment_id="pay-returned",
                billing_account_id=customer.account_id,
                customer_id=customer.id,
                bill_ids=(bill_id,),
                reason="AC04 account closed",
            ),
        )
    admin = auth("admin")

    # then the reminder goes out at once
    reminded = until(lambda: _at_level(client, admin, bill_id, 1, "open"))
    assert reminded and reminded["trigger"] == "returned:pay-returned", reminded

    # and billing's list of cases shows it, in a bounded number of queries
    with count_queries() as counter:
        listed = client.get(f"{BILLS}/dunningCase?status=open", headers=admin)
    assert listed.status_code == 200 and [c["customerBill"]["id"] for c in listed.json()] == [
        bill_id
    ]
    assert counter.count <= 8, counter.statements
    # a customer does not list the cases, and reads no other customer's bill
    own = auth("customer", customer_id=customer.id)
    assert client.get(f"{BILLS}/dunningCase", headers=own).status_code == 403
    with session_scope() as session:
        stranger = customer_with_services(session, "Fremdfirma GmbH", sites=1)
    other = auth("customer", customer_id=stranger.id)
    assert client.get(f"{BILLS}/customerBill/{bill_id}/dunning", headers=other).status_code == 404

    # when it is paid the flow ends
    _paid(bill_id, customer)
    assert until(lambda: _at_level(client, admin, bill_id, 1, "closed"))
    with session_scope(readonly=True) as session:
        bill = session.get(CustomerBillRow, bill_id)
        assert bill is not None and bill.status == "settled"
        assert session.scalar(select(DunningCaseRow.status)) == "closed"


def test_a_partly_disputed_bill_is_dunned_for_the_undisputed_rest(
    client: TestClient, auth: TokenFactory
) -> None:
    # given an overdue bill of two lines, the traffic line disputed
    with session_scope() as session:
        customer = customer_with_services(session, "Autohaus Teilweise GmbH", sites=1)
        bill_id = issued_bill(
            session,
            customer,
            due=date(2026, 11, 2),
            lines=(("Site access", "119.00"), ("Traffic", "856.80")),
        )
    disputed = client.post(
        ENQUIRIES,
        json={
            "customerBill": {"id": bill_id},
            "disputedLine": [{"id": f"{bill_id}-l2"}],
            "description": "traffic of a site we do not have",
        },
        headers=auth("customer", customer_id=customer.id),
    )
    assert disputed.status_code == 201, disputed.text

    # when the overdue bill's case is looked at after the grace days
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    with session_scope() as session:
        case = rules.open_case(session, bill_id, rules.OVERDUE, now=now)
        assert case is not None
        case_id = case.id
    with session_scope() as session:
        looked = rules.advance(session, case_id, now)

    # then the reminder asks for the undisputed 119.00 only
    assert not looked.ended and looked.wait_seconds > 0
    with session_scope(readonly=True) as session:
        found = session.get(DunningCaseRow, case_id)
        assert found is not None and found.level == rules.REMINDER
        assert found.body["history"][-1]["openAmount"]["value"] == "119.00"
    assert any(
        "119.00 EUR are still open" in s or "Payment reminder" in s for s in _subjects(customer.id)
    )


def test_a_payment_during_the_suspension_resumes_once_the_suspension_is_through(
    db_url: str,
) -> None:
    # given a case whose suspension date has come
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with session_scope() as session:
        customer = customer_with_services(session, "Autohaus Eilig GmbH", sites=1)
        bill_id = issued_bill(session, customer, due=date(2026, 10, 1))
        case = rules.open_case(session, bill_id, rules.OVERDUE, now=now)
        assert case is not None
        case.level, case.next_step_at, case_id = rules.FINAL_NOTICE, now, case.id
    with session_scope() as session:
        suspending = rules.advance(session, case_id, now)
    assert suspending.start_order is not None and not suspending.ended

    # when the customer pays before the network has carried the suspension out
    pay(bill_id)
    with session_scope() as session:
        waiting = rules.advance(session, case_id, now)

    # then the case waits for the suspension rather than resume products still active
    assert not waiting.ended and waiting.start_order is None
    assert waiting.wait_seconds == rules.SUSPENSION_RECHECK_SECONDS

    # and once the suspend order is through, the resume order follows and the case ends
    with session_scope() as session:
        order = session.get(ProductOrderRow, suspending.start_order)
        assert order is not None
        order.status = "completed"
        order.body = {**order.body, "state": "completed"}
        for product in session.scalars(
            select(ProductRow).where(ProductRow.owner_customer_id == customer.id)
        ):
            product.status = "suspended"
            product.body = {**product.body, "status": "suspended"}
    with session_scope() as session:
        resumed = rules.advance(session, case_id, now)
    assert resumed.ended and resumed.outcome == "paid; services resumed"
    with session_scope(readonly=True) as session:
        resume = session.get(ProductOrderRow, resumed.start_order)
        assert resume is not None
        assert {i["product"]["status"] for i in resume.body["productOrderItem"]} == {"active"}


def test_a_case_whose_flow_never_started_is_started_by_the_worker_sweep(
    client: TestClient, auth: TokenFactory, flows: None
) -> None:
    # given a case committed, its flow never started (the process died in between)
    with session_scope() as session:
        customer = customer_with_services(session, "Autohaus Absturz GmbH", sites=1)
        bill_id = issued_bill(session, customer, due=_today() - timedelta(days=10))
        assert rules.open_case(session, bill_id, rules.OVERDUE, now=utcnow()) is not None
    admin = auth("admin")
    # when the worker sweeps at its start
    assert dunning_flow.sweep_unstarted_dunning_flows() == 1
    # then the flow runs: the reminder goes out, and a second sweep starts nothing
    assert until(lambda: _at_level(client, admin, bill_id, 1, "open"))
    assert dunning_flow.sweep_unstarted_dunning_flows() == 0
    _paid(bill_id, customer)
    assert until(lambda: _at_level(client, admin, bill_id, 1, "closed"))
