"""3.9.5 Validate customer satisfaction: surveys sent once, answered once, reported."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope, utcnow
from etomcrm.retention.satisfaction import send_survey
from tests.conftest import TokenFactory
from tests.factories import INTERACTION, customer

REPORT = f"{INTERACTION}/satisfactionReport"


def _survey(customer_id: str, key: str, about_id: str = "order-1") -> dict[str, Any]:
    with session_scope() as session:
        return send_survey(
            session,
            customer_id=customer_id,
            about={"id": about_id, "@referredType": "ProductOrder"},
            key=key,
        )


def _answer(client: TestClient, headers: dict[str, str], survey_id: str, **body: Any) -> Any:
    return client.post(
        f"{INTERACTION}/satisfactionSurvey/{survey_id}/answer", json=body, headers=headers
    )


def test_a_survey_is_sent_once_per_key_and_the_customer_told(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer and a completed order
    bmw = customer(client, admin)
    # when the flow sends the survey twice with the same key (a retried step)
    first = _survey(bmw["id"], "order-1-survey")
    again = _survey(bmw["id"], "order-1-survey")
    # then there is one survey, open, asking CSAT, NPS and a comment about the order
    assert first["id"] == again["id"]
    assert first["@type"] == "SatisfactionSurvey" and first["status"] == "open"
    assert [q["id"] for q in first["question"]] == ["csat", "nps", "comment"]
    assert first["interactionItem"][0]["item"]["id"] == "order-1"
    listed = client.get(
        f"{INTERACTION}/partyInteraction", params={"@type": "SatisfactionSurvey"}, headers=admin
    )
    assert [s["id"] for s in listed.json()] == [first["id"]]
    # and one message told the customer
    with session_scope() as session:
        messages = session.scalar(
            select(func.count())
            .select_from(CommunicationMessageRow)
            .where(CommunicationMessageRow.owner_customer_id == bmw["id"])
        )
    assert messages == 1


def test_customer_answers_its_own_survey_once(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    bmw, audi = customer(client, admin, "BMW AG"), customer(client, admin, "Audi AG")
    survey = _survey(bmw["id"], "s1")
    portal = auth("customer", customer_id=bmw["id"])
    # another customer cannot see or answer it
    audi_portal = auth("customer", customer_id=audi["id"])
    assert _answer(client, audi_portal, survey["id"], csat=5, nps=10).status_code == 404
    assert (
        client.get(f"{INTERACTION}/partyInteraction/{survey['id']}", headers=audi_portal)
    ).status_code == 404
    # out of range scores are refused
    response = _answer(client, portal, survey["id"], csat=6, nps=10)
    assert response.status_code == 400 and "csat" in response.json()["message"]
    response = _answer(client, portal, survey["id"], csat=4, nps=11)
    assert response.status_code == 400 and "0 to 10" in response.json()["message"]
    # the customer answers
    response = _answer(client, portal, survey["id"], csat=4, nps=9, comment="Fast install")
    assert response.status_code == 200, response.text
    answered = response.json()
    assert answered["status"] == "completed"
    assert answered["surveyAnswer"]["csat"] == 4 and answered["surveyAnswer"]["nps"] == 9
    # and a second answer is a conflict
    response = _answer(client, portal, survey["id"], csat=1, nps=0)
    assert response.status_code == 409 and "answered already" in response.json()["message"]


def test_report_gives_average_csat_and_nps_per_customer(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given four answers: two promoters, one passive, one detractor
    bmw, audi = customer(client, admin, "BMW AG"), customer(client, admin, "Audi AG")
    support = auth("support")
    for key, who, csat, nps in (
        ("a", bmw, 5, 10),
        ("b", bmw, 4, 9),
        ("c", bmw, 3, 7),
        ("d", audi, 1, 2),
    ):
        survey = _survey(who["id"], key, f"order-{key}")
        assert _answer(client, support, survey["id"], csat=csat, nps=nps).status_code == 200
    _survey(audi["id"], "unanswered")
    # when staff read the report
    response = client.get(REPORT, headers=auth("analyst"))
    # then NPS = 50 % promoters - 25 % detractors
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["count"] == 4
    assert report["averageCsat"] == "3.25" and report["nps"] == "25.0"
    per = {c["customerId"]: c for c in report["perCustomer"]}
    assert per[bmw["id"]]["averageCsat"] == "4.00" and per[bmw["id"]]["nps"] == "66.7"
    assert per[audi["id"]]["nps"] == "-100.0"
    # answers since tomorrow: none
    tomorrow = (utcnow() + timedelta(days=1)).isoformat()
    later = client.get(REPORT, params={"since": tomorrow}, headers=admin).json()
    assert later["count"] == 0 and later["averageCsat"] is None and later["perCustomer"] == []


def test_report_is_for_staff(client: TestClient, admin: dict[str, str], auth: TokenFactory) -> None:
    bmw = customer(client, admin)
    portal = auth("customer", customer_id=bmw["id"])
    assert client.get(REPORT, headers=portal).status_code == 403
    response = client.get(REPORT, params={"since": "yesterday"}, headers=admin)
    assert response.status_code == 400 and "ISO 8601" in response.json()["message"]
    response = client.get(REPORT, params={"since": "2026-01-01T00:00:00"}, headers=admin)
    assert response.status_code == 400 and "time zone" in response.json()["message"]
    # a marketing user may not record answers for a customer
    survey = _survey(bmw["id"], "m")
    assert _answer(client, auth("marketing"), survey["id"], csat=5, nps=10).status_code == 403
