"""3.9.3 Analyse and manage customer risk: churn and bad-debt risk per customer, with the
reasons, as TMF696 partyRoleRiskAssessment records for staff."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.billing.payments import reverse_payment
from etomcrm.core import resources
from etomcrm.core.models import AuditRecord, OutboxEvent
from etomcrm.db import session_scope, utcnow
from etomcrm.order_handling.service import PRODUCT_KIND
from etomcrm.problem_handling import tickets
from etomcrm.qos_sla import service as sla_service
from etomcrm.qos_sla import violations
from etomcrm.qos_sla.assessment import Assessment
from etomcrm.retention.risk import assess_customer_risk
from etomcrm.retention.satisfaction import answer_survey, send_survey
from etomcrm.security.service import SYSTEM
from etomcrm.selling.credit import assess_credit
from tests.conftest import TokenFactory
from tests.factories import CUSTOMER, INTERACTION, PARTY, customer, post, site
from tests.payment_helpers import account, bill, paid
from tests.qos_helpers import product, sla_level

RISK = "/tmf-api/riskManagement/v4/partyRoleRiskAssessment"


def _assess(client: TestClient, headers: dict[str, str], customer_id: str, **extra: Any) -> Any:
    return client.post(
        RISK,
        json={"partyRole": {"id": customer_id, "@referredType": "Customer"}, **extra},
        headers=headers,
    )


def _scores(assessment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["risk"]: s for s in assessment["riskAssessmentResult"]["score"]}


def _inputs(assessment: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c["value"] for c in assessment["characteristic"]}


def _events(event_type: str) -> list[OutboxEvent]:
    with session_scope() as session:
        return list(
            session.scalars(select(OutboxEvent).where(OutboxEvent.event_type == event_type))
        )


def _retention_tasks(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The sales work list of retention tasks (3.9.3)."""
    response = client.get(
        f"{INTERACTION}/partyInteraction",
        params={"@type": "RetentionTask", "routedTo": "sales"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _ticket(customer_id: str, name: str, site_id: str | None = None) -> str:
    payload: dict[str, Any] = {
        "name": name,
        "description": "The extranet link at the dealer is down.",
        "severity": "Major",
        "ticketType": "network",
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
    }
    if site_id is not None:
        payload["relatedEntity"] = [
            {"id": site_id, "@referredType": "GeographicSite", "role": "affectedSite"}
        ]
    with session_scope() as session:
        return str(tickets.open_ticket(session, SYSTEM, payload)["id"])


def _move(ticket_id: str, *statuses: str) -> None:
    for status in statuses:
        with session_scope() as session:
            tickets.change_status(session, SYSTEM, ticket_id, status)


def _two_violations(client: TestClient, admin: dict[str, str], customer_id: str) -> None:
    """October's availability and latency missed on the customer's Gold product (3.7.2)."""
    sla_level(client, admin)
    sold = product(client, admin, customer_id)
    with session_scope() as session:
        sla_service.establish_sla(session, sold["id"])
    for metric, measured, target in (
        ("availability", "98.6577", "99.5"),
        ("latency", "45", "30"),
    ):
        with session_scope() as session:
            recorded = violations.record_violation(
                session,
                Assessment(
                    product_id=sold["id"],
                    period="2026-10",
                    metric=metric,
                    measured=Decimal(measured),
                    target=Decimal(target),
                    met=False,
                    final=True,
                    certain_miss=True,
                ),
            )
        assert recorded is not None


def test_a_fresh_customer_is_a_low_churn_risk_and_a_middle_bad_debt_risk(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given a new customer with no history, and another customer
    bmw = customer(client, admin)
    audi = customer(client, admin, "Audi AG")
    sales, support = auth("sales"), auth("support")
    # when sales assesses both
    created = _assess(client, sales, bmw["id"], trigger="quarterly account review")
    assert _assess(client, sales, audi["id"]).status_code == 201
    # then BMW's assessment succeeded: churn 10 (low), bad debt 50 (medium), overall 50
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["Location"].endswith(f"{RISK}/{body['id']}")
    assert body["status"] == "succeeded"
    assert body["partyRole"] == {
        "id": bmw["id"],
        "@referredType": "Customer",
        "role": "customer",
        "name": "BMW AG",
    }
    scores = _scores(body)
    assert (scores["churn"]["score"], scores["churn"]["level"]) == (10, "low")
    assert (scores["badDebt"]["score"], scores["badDebt"]["level"]) == (50, "medium")
    assert scores["badDebt"]["riskName"] == "BadPaymentRisk"
    result = body["riskAssessmentResult"]
    assert result["overallScore"] == 50
    valid = result["validFor"]
    start, end = (datetime.fromisoformat(valid[k]) for k in ("startDateTime", "endDateTime"))
    assert end - start == timedelta(days=30)
    # and it says why, naming every input
    assert body["reason"] == [
        "churn 10: no SLA violations, escalated, reopened or open tickets and no survey "
        "answers in the last 12 months",
        # no churn model yet (seed 5.3): the rule gives the churn score and says why
        "churn rule used: too little history (0 labelled customers: 0 churned, 0 stayed; "
        "the model needs at least 200 with at least 20 of each outcome)",
        "bad debt 50: no credit assessment yet",
    ]
    inputs = _inputs(body)
    assert inputs["slaViolationsLast12Months"] == inputs["openTickets"] == 0
    assert inputs["detractorAnswers"] == inputs["promoterAnswers"] == 0
    assert inputs["creditRiskRating"] is None and inputs["creditProfileDate"] is None
    assert body["trigger"] == "quarterly account review"
    assert body["assessedBy"] == "apikey:test-sales"
    assert "previousAssessment" not in body
    # and support reads it back, alone in the list filtered by customer
    read = client.get(f"{RISK}/{body['id']}", headers=support)
    assert read.status_code == 200 and read.json() == body
    listed = client.get(RISK, params={"partyRole.id": bmw["id"]}, headers=support)
    assert [a["id"] for a in listed.json()] == [body["id"]]
    # and the hub heard of it, the audit trail has it, the account team was not alarmed
    created_events = _events("PartyRoleRiskAssessmentCreateEvent")
    assert {e.resource_id for e in created_events} >= {body["id"]}
    with session_scope() as session:
        audit = session.scalars(
            select(AuditRecord).where(AuditRecord.resource_id == body["id"])
        ).all()
    assert [(a.action, a.actor) for a in audit] == [("create", "apikey:test-sales")]
    assert _retention_tasks(client, admin) == []


def test_a_credit_assessment_sets_the_bad_debt_risk(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer whose credit was assessed with 3 late payments (rating 5)
    bmw = customer(client, admin)
    response = client.patch(
        f"{CUSTOMER}/customer/{bmw['id']}",
        json={"characteristic": [{"name": "latePaymentsLast12Months", "value": 3}]},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    with session_scope() as session:
        decision = assess_credit(session, SYSTEM, bmw["id"], order_value=Decimal("1000"))
    assert decision.risk_rating == 5
    # when its risk is assessed
    body = _assess(client, admin, bmw["id"]).json()
    # then the bad-debt risk is 90 (high) and the overall score with it
    assert (_scores(body)["badDebt"]["score"], _scores(body)["badDebt"]["level"]) == (90, "high")
    assert body["riskAssessmentResult"]["overallScore"] == 90
    assert _inputs(body)["creditRiskRating"] == 5
    assert body["reason"][-1].startswith("bad debt 90: credit risk rating 5 of 5")
    # and a high bad-debt risk alone is no churn alarm
    assert _retention_tasks(client, admin) == []


def test_violations_escalations_reopenings_and_a_detractor_make_a_high_churn_risk(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    bmw = customer(client, admin)
    # given a ticket escalated (its targets missed)
    _ticket(bmw["id"], "Augsburg offline")
    with session_scope() as session:
        assert len(tickets.escalate_overdue(session, now=utcnow() + timedelta(days=30))) == 1
    # and a ticket reopened after its resolution, in progress again
    reopened = _ticket(bmw["id"], "Munich slow")
    _move(reopened, "inProgress", "resolved", "inProgress")
    # and two SLA violations (their ticket still open)
    _two_violations(client, admin, bmw["id"])
    # and a survey answered by a detractor (NPS 3, CSAT 3)
    with session_scope() as session:
        survey = send_survey(
            session,
            customer_id=bmw["id"],
            about={"id": reopened, "@referredType": "TroubleTicket"},
            key="risk-test-survey",
        )
    answered = client.post(
        f"{INTERACTION}/satisfactionSurvey/{survey['id']}/answer",
        json={"csat": 3, "nps": 3, "comment": "Too many outages"},
        headers=auth("customer", customer_id=bmw["id"]),
    )
    assert answered.status_code == 200, answered.text
    # when billing assesses the customer's risk
    first = _assess(client, auth("billing"), bmw["id"])
    # then churn is 10 + 2 x 15 + 10 + 10 + 3 x 5 + 15 = 90: high
    assert first.status_code == 201, first.text
    body = first.json()
    churn = _scores(body)["churn"]
    assert (churn["score"], churn["level"]) == (90, "high")
    assert body["riskAssessmentResult"]["overallScore"] == 90
    # with each reason listed
    assert body["reason"] == [
        "churn +30: 2 SLA violation(s) in the last 12 months (availability 2026-10, "
        "latency 2026-10)",
        "churn +10: 1 trouble ticket(s) escalated ('Augsburg offline')",
        "churn +10: 1 trouble ticket(s) reopened after a resolution ('Munich slow')",
        "churn +15: 3 trouble ticket(s) still open ('Augsburg offline', 'Munich slow', "
        "'SLA violated: availability 2026-10')",
        "churn +15: 1 survey answer(s) from a detractor (NPS 6 or less)",
        # no churn model yet (seed 5.3): the rule gives the churn score and says why
        "churn rule used: too little history (0 labelled customers: 0 churned, 0 stayed; "
        "the model needs at least 200 with at least 20 of each outcome)",
        "bad debt 50: no credit assessment yet",
    ]
    inputs = _inputs(body)
    assert inputs["slaViolationsLast12Months"] == 2
    assert (inputs["escalatedTickets"], inputs["reopenedTickets"], inputs["openTickets"]) == (
        1,
        1,
        3,
    )
    assert (inputs["surveyAnswersLast12Months"], inputs["detractorAnswers"]) == (1, 1)
    # and the account team gets one retention task, also when the risk is assessed again
    second = _assess(client, admin, bmw["id"]).json()
    assert second["previousAssessment"]["id"] == body["id"]
    assert second["previousAssessment"]["churnLevel"] == "high"
    (task,) = _retention_tasks(client, admin)
    assert task["interactionItem"][0]["item"]["id"] == body["id"]
    assert task["relatedParty"][0]["id"] == bmw["id"]
    assert task["reason"] == "Retention: churn risk high (90)"


def test_history_older_than_twelve_months_no_longer_counts(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer with two SLA violations and their open ticket
    bmw = customer(client, admin)
    _two_violations(client, admin, bmw["id"])
    # when the flow assesses its risk a year and a day later
    with session_scope() as session:
        body = assess_customer_risk(
            session,
            SYSTEM,
            bmw["id"],
            reason="SLA violation 123 resolved",
            now=utcnow() + timedelta(days=366),
        )
    # then the violations are out of the window; the ticket still open counts
    inputs = _inputs(body)
    assert (inputs["slaViolationsLast12Months"], inputs["openTickets"]) == (0, 1)
    assert _scores(body)["churn"]["score"] == 15
    assert body["trigger"] == "SLA violation 123 resolved"
    assert body["assessedBy"] == "system"


def test_customers_and_other_roles_neither_read_nor_run_assessments(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given an assessment of BMW
    bmw = customer(client, admin)
    assessment = _assess(client, admin, bmw["id"]).json()
    one = f"{RISK}/{assessment['id']}"
    # then BMW itself neither lists, reads nor runs one
    own = auth("customer", customer_id=bmw["id"])
    assert client.get(RISK, headers=own).status_code == 403
    assert client.get(one, headers=own).status_code == 403
    refused = _assess(client, own, bmw["id"])
    assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
    # and marketing and order management do not read them
    for role in ("marketing", "order_manager"):
        assert client.get(RISK, headers=auth(role)).status_code == 403
        assert client.get(one, headers=auth(role)).status_code == 403
    # and support and the SLA manager read them but do not run one
    for role in ("support", "sla_manager"):
        assert client.get(one, headers=auth(role)).status_code == 200
        assert _assess(client, auth(role), bmw["id"]).status_code == 403
    # and nobody changes or deletes an assessment (it is a record)
    patched = client.patch(one, json={"status": "failed"}, headers=admin)
    assert patched.status_code == 405 and patched.json()["code"] == "METHOD_NOT_ALLOWED"
    assert client.delete(one, headers=admin).status_code == 405
    assert client.get(one, headers=admin).json() == assessment


def test_bad_requests_are_refused_with_a_message(client: TestClient, admin: dict[str, str]) -> None:
    bmw = customer(client, admin)
    # when the customer's id is missing, then 400
    missing = client.post(RISK, json={"partyRole": {"@referredType": "Customer"}}, headers=admin)
    assert missing.status_code == 400 and "id" in missing.json()["message"]
    # when the client sends a result of its own, then 400: etomcrm computes it
    forged = _assess(
        client,
        admin,
        bmw["id"],
        riskAssessmentResult={"overallScore": 0, "score": [{"score": 0}]},
    )
    assert forged.status_code == 400
    assert "not riskAssessmentResult" in forged.json()["message"]
    # when the party is not a customer, then 400
    party = client.post(
        RISK, json={"partyRole": {"id": bmw["id"], "@referredType": "Individual"}}, headers=admin
    )
    assert party.status_code == 400 and "Customer" in party.json()["message"]
    # when the trigger is not a text, then 400
    assert _assess(client, admin, bmw["id"], trigger=7).status_code == 400
    # when the customer does not exist, then 404 naming it
    unknown = _assess(client, admin, "no-such-customer")
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "no customer with id no-such-customer"
    # and nothing was recorded
    assert client.get(RISK, headers=admin).json() == []


def test_an_assessment_and_the_list_take_a_fixed_number_of_queries(
    client: TestClient, admin: dict[str, str], count_queries: Callable[[], Any]
) -> None:
    # given one customer with 1 ticket and answered survey, and one with 20 of each
    small, large = customer(client, admin, "Small"), customer(client, admin, "Large")
    for owner, many in ((small, 1), (large, 20)):
        for number in range(many):
            ticket = _ticket(owner["id"], f"Ticket {number}")
            with session_scope() as session:
                survey = send_survey(
                    session,
                    customer_id=owner["id"],
                    about={"id": ticket, "@referredType": "TroubleTicket"},
                    key=f"{owner['id']}/{number}",
                )
                answer_survey(session, SYSTEM, survey["id"], csat=4, nps=8)
        # assessed once, so the next assessment finds a previous one either way
        assert _assess(client, admin, owner["id"]).status_code == 201

    def assessment_queries(customer_id: str) -> int:
        with count_queries() as counter:
            assert _assess(client, admin, customer_id).status_code == 201
        return int(counter.count)

    # when each is assessed, then both take the same number of queries
    assert assessment_queries(small["id"]) == assessment_queries(large["id"])

    def list_queries() -> int:
        with count_queries() as counter:
            assert client.get(RISK, params={"limit": 100}, headers=admin).status_code == 200
        return int(counter.count)

    # and a list of 4 assessments takes as many queries as one of 24
    few = list_queries()
    for _ in range(20):
        assert _assess(client, admin, small["id"]).status_code == 201
    assert list_queries() == few


def test_a_churn_risk_that_becomes_high_gives_the_account_manager_one_retention_task(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given BMW, whose account manager is Anna Berger, with a Silver site that had three
    # tickets, and four detractors' survey answers
    anna = post(client, f"{PARTY}/individual", {"givenName": "Anna", "familyName": "Berger"}, admin)
    bmw = customer(client, admin)
    updated = client.patch(
        f"{CUSTOMER}/customer/{bmw['id']}",
        json={
            "relatedParty": [
                {
                    "id": anna["id"],
                    "name": "Anna Berger",
                    "role": "accountManager",
                    "@referredType": "Individual",
                }
            ]
        },
        headers=admin,
    )
    assert updated.status_code == 200, updated.text
    leipzig = site(client, admin, bmw["id"], "Leipzig")
    with session_scope() as session:
        resources.create(
            session,
            PRODUCT_KIND,
            SYSTEM,
            {
                "name": "Site access 100 Mbit/s",
                "status": "active",
                "relatedParty": [
                    {"id": bmw["id"], "@referredType": "Customer", "role": "customer"}
                ],
                "place": [{"id": leipzig["id"], "name": leipzig["name"], "role": "installation"}],
                "productCharacteristic": [
                    {"name": "bandwidthMbit", "value": 100},
                    {"name": "slaLevel", "value": "SLA Silver"},
                ],
            },
        )
    opened = [_ticket(bmw["id"], f"Leipzig down {n}", site_id=leipzig["id"]) for n in range(3)]
    portal = auth("customer", customer_id=bmw["id"])
    for number in range(4):
        with session_scope() as session:
            survey = send_survey(
                session,
                customer_id=bmw["id"],
                about={"id": opened[number % 3], "@referredType": "TroubleTicket"},
                key=f"retention-survey-{number}",
            )
        answered = client.post(
            f"{INTERACTION}/satisfactionSurvey/{survey['id']}/answer",
            json={"csat": 3, "nps": 2},
            headers=portal,
        )
        assert answered.status_code == 200, answered.text
    # when sales assesses the risk: 10 + 3 x 5 open + 4 x 15 detractors = 85, high
    first = _assess(client, auth("sales"), bmw["id"]).json()
    assert _scores(first)["churn"]["level"] == "high"
    # then the sales work list holds one retention task for Anna, about BMW
    (task,) = _retention_tasks(client, auth("sales"))
    assert task["status"] == "open" and task["direction"] == "outbound"
    parties = {p["role"]: p["id"] for p in task["relatedParty"]}
    assert parties == {"customer": bmw["id"], "accountManager": anna["id"]}
    mine = client.get(
        f"{INTERACTION}/partyInteraction",
        params={"@type": "RetentionTask", "relatedParty.id": anna["id"]},
        headers=admin,
    ).json()
    assert [t["id"] for t in mine] == [task["id"]]
    # with the assessment and the next best offer attached: Gold for the faulty site
    assessment, offer = (item["item"] for item in task["interactionItem"])
    assert assessment == {
        "id": first["id"],
        "@referredType": "PartyRoleRiskAssessment",
        "role": "riskAssessment",
    }
    recommendation = client.get(
        f"/tmf-api/recommendation/v4/queryProductRecommendation/{offer['id']}", headers=admin
    ).json()
    best = recommendation["recommendationItem"][0]["product"]
    assert best["name"] == "SLA Gold"
    assert "Next best offer: SLA Gold: Dealer Leipzig had 3 trouble tickets" in task["description"]
    # when the risk is assessed again at the same level
    second = _assess(client, admin, bmw["id"]).json()
    assert _scores(second)["churn"]["level"] == "high"
    # then no second task
    assert [t["id"] for t in _retention_tasks(client, admin)] == [task["id"]]


def test_late_bills_and_a_returned_debit_raise_the_bad_debt_risk(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer without a credit assessment (50) that billing saw pay one bill
    # late, leave one open past due and return one direct debit
    bmw = customer(client, admin)
    today = utcnow().date()
    with session_scope() as session:
        account_id = account(session, bmw["id"])
        bill(session, account_id, bmw["id"], "RK-1", "100.00", today - timedelta(days=60))
        bill(session, account_id, bmw["id"], "RK-2", "40.00", today - timedelta(days=20))
    with session_scope() as session:
        paid(session, account_id, "100.00", today - timedelta(days=45), "RK-1")
        debit = paid(
            session,
            account_id,
            "40.00",
            today - timedelta(days=20),
            "RK-2",
            means="sepaDirectDebit",
        )
    with session_scope() as session:
        reverse_payment(session, debit, reason="AM04", fee=Decimal("3.00"))
    # when its risk is assessed
    body = _assess(client, admin, bmw["id"]).json()
    # then 10 + 2 x 20 (late, overdue) + 25 (returned) + 10 (open past due) = 85, high
    assert (_scores(body)["badDebt"]["score"], _scores(body)["badDebt"]["level"]) == (85, "high")
    inputs = _inputs(body)
    assert (inputs["openBalance"], inputs["billsPaidLate"], inputs["returnedDebits"]) == (
        "40.00",
        1,
        1,
    )
    assert body["reason"][-1].startswith("bad debt 85: of 2 bill(s) due in 12 months 1 paid late")


def test_a_good_payer_keeps_the_credit_assessment_s_bad_debt_risk(
    client: TestClient, admin: dict[str, str]
) -> None:
    bmw = customer(client, admin)
    today = utcnow().date()
    with session_scope() as session:
        account_id = account(session, bmw["id"])
        bill(session, account_id, bmw["id"], "RK-3", "100.00", today - timedelta(days=10))
    with session_scope() as session:
        paid(session, account_id, "100.00", today - timedelta(days=12), "RK-3")
    body = _assess(client, admin, bmw["id"]).json()
    # billing's 10 is below the 50 of no credit assessment: the higher one stands
    assert _scores(body)["badDebt"]["score"] == 50
    assert _inputs(body)["billsDue"] == 1
