"""3.7.2: a missed target becomes one slaViolation, one message, one ticket and one
credit, however often (or however concurrently) it is evaluated."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from etomcrm.customer_interface.models import CommunicationMessageRow, PartyInteractionRow
from etomcrm.db import session_scope
from etomcrm.network.models import NetworkMeasurementRow
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.qos_sla import assessment, violations
from etomcrm.qos_sla.events import ViolationRecorded
from etomcrm.qos_sla.models import SlaViolationRow
from tests.conftest import Handled, TokenFactory
from tests.factories import customer
from tests.qos_helpers import measure, monitored_product, ticket_about

SLAS = "/tmf-api/slaManagement/v2/sla"
VIOLATIONS = "/tmf-api/slaManagement/v2/slaViolation"
OCTOBER = datetime(2026, 9, 30, 22, tzinfo=UTC)  # 745 hours in Berlin
AFTER_OCTOBER = datetime(2026, 11, 5, tzinfo=UTC)


def _violated_october(
    client: TestClient, admin: dict[str, str], *, slow: bool = False
) -> tuple[dict[str, Any], str]:
    """BMW's product down 10 of October's 745 hours (98.6577 %, target 99.5 %)."""
    bmw, product_id, link_id = monitored_product(client, admin)
    measure(link_id, OCTOBER, 735, latency=45.0 if slow else 10.0)
    measure(link_id, OCTOBER + timedelta(hours=735), 10, availability=0.0)
    return bmw, product_id


def _evaluate() -> list[dict[str, Any]]:
    with session_scope() as session:
        results = assessment.assess(session, period="2026-10", now=AFTER_OCTOBER)
        return violations.evaluate(session, results)


def _count(session: Any, stmt: Any) -> int:
    return int(session.scalar(stmt) or 0)


def test_a_violation_evaluated_twice_and_after_a_restart_is_recorded_once(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given October's availability missed its target
    bmw, product_id = _violated_october(client, admin)
    # when the violations are evaluated twice in a row, then again in a new session
    first, second = _evaluate(), _evaluate()
    with session_scope() as session:
        rows = session.scalars(select(NetworkMeasurementRow).limit(1)).all()
        assert rows  # the restart reads the same data
    third = _evaluate()
    # then one violation with a credit of 10 % of the 1,000 EUR monthly charge
    assert [v["metric"] for v in first] == ["availability"]
    assert (second, third) == ([], [])
    violation = first[0]
    assert violation["violation"]["actualValue"] == "98.6577"
    assert violation["credit"] == {"unit": "EUR", "value": "100.00", "status": "owed"}
    with session_scope() as session:
        assert _count(session, select(func.count()).select_from(SlaViolationRow)) == 1
        # the credit is owed; billing gets it once the violation's problem is closed
        assert not session.scalars(
            select(PartyInteractionRow.id).where(PartyInteractionRow.at_type == "BillingTask")
        ).all()
        messages = session.scalars(
            select(CommunicationMessageRow).where(
                CommunicationMessageRow.owner_customer_id == bmw["id"]
            )
        ).all()
        told = [m for m in messages if "SLA not met" in (m.body.get("subject") or "")]
        assert len(told) == 1
        assert "100.00 EUR" in told[0].body["content"]
        tickets = session.scalars(
            select(TroubleTicketRow).where(TroubleTicketRow.owner_customer_id == bmw["id"])
        ).all()
        assert [t.id for t in tickets] == [violation["troubleTicket"]["id"]]
        assert tickets[0].body["relatedEntity"][0]["id"] == product_id
    # and the customer reads it; another customer does not
    mine = client.get(VIOLATIONS, headers=auth("customer", customer_id=bmw["id"]))
    assert [v["violationKey"] for v in mine.json()] == [f"{product_id}/availability/2026-10"]
    other = customer(client, admin, "Audi AG")
    headers = auth("customer", customer_id=other["id"])
    assert client.get(VIOLATIONS, headers=headers).json() == []
    assert client.get(f"{VIOLATIONS}/{violation['id']}", headers=headers).status_code == 404
    # and staff find it by what etomcrm adds to TMF623: billing's credits still owed, the
    # open violations of a product, and that product's SLA
    for params, expected in (
        ({"credit.status": "owed"}, [violation["id"]]),
        ({"credit.status": "handedToBilling"}, []),
        ({"status": "open", "product.id": product_id}, [violation["id"]]),
        ({"status": "closed"}, []),
    ):
        listed = client.get(VIOLATIONS, params=params, headers=admin)
        assert listed.status_code == 200, listed.text
        assert [v["id"] for v in listed.json()] == expected, params
    sla = client.get(SLAS, params={"product.id": product_id}, headers=admin)
    assert [s["product"]["id"] for s in sla.json()] == [product_id]


def test_two_assessors_racing_record_the_violation_once(
    client: TestClient, admin: dict[str, str], handled: Handled
) -> None:
    # given a violated October, assessed (final), and two assessors that start together
    _violated_october(client, admin)
    with session_scope() as session:
        assessment.assess(session, period="2026-10", now=AFTER_OCTOBER)
    recorded_events = handled(ViolationRecorded)
    barrier = threading.Barrier(2)
    recorded: list[int] = []
    failures: list[BaseException] = []

    def assessor() -> None:
        try:
            # SQLite serialises writing sessions, PostgreSQL lets both check at once
            barrier.wait(timeout=10)
            with session_scope() as session:
                results = assessment.assess(session, period="2026-10", now=AFTER_OCTOBER)
                recorded.append(len(violations.evaluate(session, results)))
        except BaseException as error:  # reported to the test thread
            failures.append(error)

    threads = [threading.Thread(target=assessor) for _ in range(2)]
    # when both evaluate at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then one of them records it and the other finds it taken
    assert not failures, failures
    assert sorted(recorded) == [0, 1]
    with session_scope() as session:
        assert _count(session, select(func.count()).select_from(SlaViolationRow)) == 1
    # and only the committed one is handed on
    assert len(recorded_events) == 1


def test_two_violated_metrics_share_the_capped_credit_and_an_open_ticket(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given October missed availability and latency, and an open ticket names the product
    bmw, product_id = _violated_october(client, admin, slow=True)
    ticket = ticket_about(
        client,
        admin,
        bmw["id"],
        product_id,
        name="Slow link",
        description="The extranet is slow.",
        severity="Minor",
    )
    # when the violations are evaluated
    recorded = _evaluate()
    # then each metric's violation takes 10 % (20 % in all) and links the known ticket
    credits = {v["metric"]: v["credit"]["value"] for v in recorded}
    assert credits == {"availability": "100.00", "latency": "100.00"}
    assert {v["troubleTicket"]["id"] for v in recorded} == {ticket["id"]}
    assert all(v["troubleTicket"]["linked"] for v in recorded)
    with session_scope() as session:
        assert (
            _count(
                session,
                select(func.count())
                .select_from(TroubleTicketRow)
                .where(TroubleTicketRow.owner_customer_id == bmw["id"]),
            )
            == 1
        )
