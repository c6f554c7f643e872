"""TMF621 trouble tickets: the life cycle, customer scoping, targets on business hours,
warnings, escalation and closing (3.6.3, 3.6.4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.core.clock import iso
from etomcrm.customer_interface.models import CommunicationMessageRow, PartyInteractionRow
from etomcrm.db import session_scope
from etomcrm.problem_handling import tickets
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.security.service import Principal, Role
from tests.conftest import TokenFactory
from tests.factories import customer

TT = "/tmf-api/troubleTicket/v4/troubleTicket"
SUPPORT = Principal(id="support-1", name="Sandra Support", role=Role.SUPPORT)
BERLIN_FRIDAY_1755 = datetime(2026, 11, 20, 16, 55, tzinfo=UTC)  # 17:55 in Berlin


def _ticket(customer_id: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Dealer Augsburg offline",
        "description": "The extranet link at the Augsburg dealer is down since 09:10.",
        "severity": "Major",
        "ticketType": "network",
        "priority": "high",
    }
    if customer_id:
        body["relatedParty"] = [
            {"id": customer_id, "@referredType": "Customer", "role": "customer"}
        ]
    return {**body, **extra}


def _patch(client: TestClient, ticket_id: str, changes: dict[str, Any], headers: Any) -> Any:
    return client.patch(f"{TT}/{ticket_id}", json=changes, headers=headers)


def test_a_customer_opens_a_ticket_and_sees_only_its_own(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given two customers
    bmw, mini = customer(client, admin, "BMW AG"), customer(client, admin, "MINI")
    bmw_user = auth("customer", customer_id=bmw["id"])
    mini_user = auth("customer", customer_id=mini["id"])
    # when BMW opens a ticket from the portal
    created = client.post(TT, json=_ticket(), headers=bmw_user)
    # then it is acknowledged, belongs to BMW, has its history and its targets
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert ticket["status"] == "acknowledged"
    assert ticket["priority"] == "High"
    assert ticket["relatedParty"][0]["id"] == bmw["id"]
    assert [c["status"] for c in ticket["statusChange"]] == ["acknowledged"]
    assert ticket["slaTier"] == "standard"
    assert ticket["responseDueDate"] < ticket["expectedResolutionDate"]
    # and BMW reads it, MINI gets 404 and does not see it in its list
    assert client.get(f"{TT}/{ticket['id']}", headers=bmw_user).status_code == 200
    assert client.get(f"{TT}/{ticket['id']}", headers=mini_user).status_code == 404
    assert client.get(TT, headers=mini_user).json() == []
    assert [t["id"] for t in client.get(TT, headers=bmw_user).json()] == [ticket["id"]]
    # and the customer was told (a service message keyed by the change)
    with session_scope() as session:
        subjects = session.scalars(
            select(CommunicationMessageRow.name).where(
                CommunicationMessageRow.owner_customer_id == bmw["id"]
            )
        ).all()
    assert any("acknowledged" in (s or "") for s in subjects)


def test_staff_open_an_internal_ticket_with_only_what_tmf621_requires(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given support staff and a customer with a portal token
    support = auth("support")
    bmw = customer(client, admin)
    portal = auth("customer", customer_id=bmw["id"])
    # when support opens a ticket with only the attributes TMF621 requires
    required = {
        "description": "Core router R7 fan alarm",
        "severity": "Minor",
        "ticketType": "network",
    }
    created = client.post(TT, json=required, headers=support)
    # then it is accepted as an internal ticket of no customer, with its targets
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert ticket["internal"] is True and "relatedParty" not in ticket
    assert ticket["status"] == "acknowledged" and ticket["priority"] == "Medium"
    assert ticket["slaTier"] == "standard" and ticket["expectedResolutionDate"]
    # and staff work it; no customer sees it
    assert _patch(client, ticket["id"], {"status": "inProgress"}, support).status_code == 200
    assert client.get(f"{TT}/{ticket['id']}", headers=portal).status_code == 404
    assert client.get(TT, headers=portal).json() == []
    # and a customer's ticket is still its own, not internal
    own = client.post(TT, json=required, headers=portal)
    assert own.status_code == 201, own.text
    assert own.json()["internal"] is False
    assert own.json()["relatedParty"][0]["id"] == bmw["id"]


def test_staff_must_give_a_priority_from_the_document(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    support = auth("support")
    bmw = customer(client, admin)
    odd = client.post(TT, json=_ticket(bmw["id"], priority="urgent"), headers=support)
    assert odd.status_code == 400
    assert "Critical, High, Medium, Low" in odd.json()["message"]
    started = client.post(TT, json=_ticket(bmw["id"], status="resolved"), headers=support)
    assert started.status_code == 400


def test_every_legal_move_and_the_illegal_ones(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    support = auth("support")
    bmw = customer(client, admin)
    ticket = client.post(TT, json=_ticket(bmw["id"]), headers=support).json()
    # an illegal jump is refused with the allowed moves named
    refused = _patch(client, ticket["id"], {"status": "resolved"}, support)
    assert refused.status_code == 409
    assert "cancelled, inProgress, rejected" in refused.json()["message"]
    # the legal path: work, wait for the customer, hold, work, resolve, reopen, resolve
    for status in ("inProgress", "pending", "inProgress", "held", "inProgress", "resolved"):
        moved = _patch(client, ticket["id"], {"status": status}, support)
        assert moved.status_code == 200, moved.text
    body = moved.json()
    assert [c["status"] for c in body["statusChange"]] == [
        "acknowledged",
        "inProgress",
        "pending",
        "inProgress",
        "held",
        "inProgress",
        "resolved",
    ]
    assert "resolutionDate" in body
    assert "respondedDate" in body
    # a client's copy of the history is ignored
    rewritten = _patch(client, ticket["id"], {"statusChange": [], "note": [{"text": "x"}]}, support)
    assert len(rewritten.json()["statusChange"]) == 7
    closed = _patch(client, ticket["id"], {"status": "closed"}, support)
    assert closed.status_code == 200
    final = _patch(client, ticket["id"], {"status": "inProgress"}, support)
    assert final.status_code == 409
    assert "final state" in final.json()["message"]
    # rejected and cancelled are final too
    for end in ("rejected", "cancelled"):
        other = client.post(TT, json=_ticket(bmw["id"]), headers=support).json()
        assert _patch(client, other["id"], {"status": end}, support).status_code == 200
        assert _patch(client, other["id"], {"status": "inProgress"}, support).status_code == 409


def test_customer_confirms_or_rejects_the_resolution_and_a_survey_follows(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    support = auth("support")
    bmw, mini = customer(client, admin, "BMW AG"), customer(client, admin, "MINI")
    bmw_user = auth("customer", customer_id=bmw["id"])
    ticket = client.post(TT, json=_ticket(), headers=bmw_user).json()
    for status in ("inProgress", "resolved"):
        assert _patch(client, ticket["id"], {"status": status}, support).status_code == 200
    # a customer may not resolve or reprioritise its own ticket
    assert _patch(client, ticket["id"], {"priority": "Critical"}, bmw_user).status_code == 403
    # another customer cannot touch it
    mini_user = auth("customer", customer_id=mini["id"])
    other = client.post(f"{TT}/{ticket['id']}/confirmResolution", headers=mini_user)
    assert other.status_code == 404
    # when BMW rejects the resolution, the ticket reopens
    rejected = client.post(
        f"{TT}/{ticket['id']}/rejectResolution",
        json={"reason": "the link drops every hour"},
        headers=bmw_user,
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "inProgress"
    assert rejected.json()["reopenCount"] == 1
    assert "drops every hour" in rejected.json()["statusChangeReason"]
    # when it is resolved again and BMW confirms, it closes and a survey is sent
    assert _patch(client, ticket["id"], {"status": "resolved"}, support).status_code == 200
    confirmed = client.post(f"{TT}/{ticket['id']}/confirmResolution", headers=bmw_user)
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "closed"
    again = client.post(f"{TT}/{ticket['id']}/confirmResolution", headers=bmw_user)
    assert again.status_code == 409
    with session_scope() as session:
        surveys = session.scalars(
            select(PartyInteractionRow.body).where(
                PartyInteractionRow.owner_customer_id == bmw["id"]
            )
        ).all()
    assert [s["surveyKey"] for s in surveys if s.get("@type") == "SatisfactionSurvey"] == [
        f"ticket/{ticket['id']}/survey"
    ]


def _open(customer_id: str, now: datetime, priority: str = "High") -> dict[str, Any]:
    with session_scope() as session:
        return tickets.open_ticket(
            session, SUPPORT, _ticket(customer_id, priority=priority), now=now
        )


def _move(ticket_id: str, status: str, now: datetime) -> dict[str, Any]:
    with session_scope() as session:
        return tickets.change_status(session, SUPPORT, ticket_id, status, now=now)


def test_targets_run_on_business_hours_and_stop_while_the_customer_is_asked(
    client: TestClient, admin: dict[str, str]
) -> None:
    bmw = customer(client, admin)
    # given a standard ticket of priority High (4 h response, 32 h resolution) opened
    # on Friday 2026-11-20 at 17:55 in Berlin
    ticket = _open(bmw["id"], BERLIN_FRIDAY_1755)
    # then the response is due Monday 11:55 Berlin (five minutes on Friday, 3 h 55 on
    # Monday) and the resolution 32 business hours later: Thursday 2026-11-26 09:55
    assert ticket["responseDueDate"] == "2026-11-23T10:55:00Z"
    assert ticket["expectedResolutionDate"] == "2026-11-26T08:55:00Z"
    with session_scope() as session:
        row = session.get(TroubleTicketRow, ticket["id"])
        assert row is not None
        assert row.response_due_at == datetime(2026, 11, 23, 10, 55, tzinfo=UTC)
    # when staff take it up on Monday 09:00 Berlin and ask the customer at 10:00 ...
    monday = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    _move(ticket["id"], "inProgress", monday)
    waiting = _move(ticket["id"], "pending", monday + timedelta(hours=1))
    # ... no due time runs while it waits
    with session_scope() as session:
        row = session.get(TroubleTicketRow, ticket["id"])
        assert row is not None
        assert (row.response_due_at, row.resolution_due_at) == (None, None)
    assert waiting["respondedDate"] == iso(monday)
    # and when the customer answers two business hours later, the resolution moves by two
    answered = _move(ticket["id"], "inProgress", monday + timedelta(hours=3))
    assert answered["expectedResolutionDate"] == "2026-11-26T10:55:00Z"
    with session_scope() as session:
        row = session.get(TroubleTicketRow, ticket["id"])
        assert row is not None
        # responded: only the resolution target still runs
        assert row.response_due_at is None
        assert row.resolution_due_at == datetime(2026, 11, 26, 10, 55, tzinfo=UTC)


def test_a_gold_product_gets_gold_targets_on_its_sla_calendar(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a Gold SLA serviced 24x7 and a product of BMW under it
    bmw = customer(client, admin)
    sla = {
        "name": "SLA Gold",
        "@type": "SlaSpecification",
        "productSpecCharacteristic": [
            {"name": name, "productSpecCharacteristicValue": [{"value": value}]}
            for name, value in (
                ("availabilityTarget", 99.9),
                ("timeToRepairHours", 4),
                ("latencyBoundMs", 30),
                ("penaltyRule", "10% per violated metric, max 30%"),
                ("serviceHours", "24x7"),
            )
        ],
    }
    created = client.post(
        "/tmf-api/productCatalogManagement/v4/productSpecification", json=sla, headers=admin
    )
    assert created.status_code == 201, created.text
    product = client.post(
        "/tmf-api/productInventory/v4/product",
        json={
            "name": "Extranet access Augsburg",
            "status": "active",
            "productCharacteristic": [{"name": "slaLevel", "value": "SLA Gold"}],
            "relatedParty": [{"id": bmw["id"], "@referredType": "Customer", "role": "customer"}],
        },
        headers=admin,
    )
    assert product.status_code == 201, product.text
    # when a critical ticket names the product on Friday 17:55
    with session_scope() as session:
        ticket = tickets.open_ticket(
            session,
            SUPPORT,
            _ticket(
                bmw["id"],
                priority="Critical",
                relatedEntity=[
                    {
                        "id": product.json()["id"],
                        "@referredType": "Product",
                        "role": "affectedProduct",
                    }
                ],
            ),
            now=BERLIN_FRIDAY_1755,
        )
    # then Gold critical targets (0.5 h / 4 h) run round the clock
    assert ticket["slaTier"] == "gold"
    assert ticket["responseDueDate"] == "2026-11-20T17:25:00Z"
    assert ticket["expectedResolutionDate"] == "2026-11-20T20:55:00Z"


def test_warnings_and_escalations_come_once_per_target(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    bmw = customer(client, admin)
    ticket = _open(bmw["id"], BERLIN_FRIDAY_1755)  # response due Monday 10:55 UTC
    monday_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    # when the watch runs an hour before the response target, twice
    with session_scope() as session:
        first = tickets.tickets_due_soon(session, within=timedelta(hours=1), now=monday_10)
    with session_scope() as session:
        second = tickets.tickets_due_soon(session, within=timedelta(hours=1), now=monday_10)
    # then the response target is warned once
    assert [(w.ticket_id, w.target) for w in first] == [(ticket["id"], "response")]
    assert second == []
    # and when the target is missed, it escalates once
    late = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    with session_scope() as session:
        assert tickets.escalate_overdue(session, now=late) == [ticket["id"]]
    with session_scope() as session:
        assert tickets.escalate_overdue(session, now=late + timedelta(minutes=5)) == []
    # and the customer sees both on its ticket
    seen = client.get(f"{TT}/{ticket['id']}", headers=auth("customer", customer_id=bmw["id"]))
    body = seen.json()
    assert [e["target"] for e in body["escalation"]] == ["response"]
    assert [w["target"] for w in body["slaWarning"]] == ["response"]
    assert any("missed" in n["text"] for n in body["note"])
    # when the resolution target is missed too (Thursday), that escalates once more
    thursday = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    with session_scope() as session:
        assert tickets.escalate_overdue(session, now=thursday) == [ticket["id"]]
        assert tickets.escalate_overdue(session, now=thursday) == []
    # and the support manager's list of escalated tickets holds it, and not a calm one
    calm = _open(bmw["id"], thursday)
    for target in ("response", "resolution"):
        answer = client.get(TT, params={"escalation.target": target}, headers=admin)
        assert answer.status_code == 200, answer.text
        assert [t["id"] for t in answer.json()] == [ticket["id"]]
    everything = client.get(TT, headers=admin).json()
    assert {t["id"] for t in everything} == {ticket["id"], calm["id"]}


@pytest.mark.parametrize("answered", [False, True])
def test_a_silent_resolution_closes_by_itself(
    client: TestClient, admin: dict[str, str], answered: bool
) -> None:
    bmw = customer(client, admin)
    ticket = _open(bmw["id"], BERLIN_FRIDAY_1755)
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    _move(ticket["id"], "inProgress", monday)
    _move(ticket["id"], "resolved", monday + timedelta(hours=1))
    if answered:
        _move(ticket["id"], "inProgress", monday + timedelta(days=1))
    silence = timedelta(days=5)
    with session_scope() as session:
        early = tickets.close_silent_resolutions(
            session, silence=silence, now=monday + timedelta(days=4)
        )
    with session_scope() as session:
        closed = tickets.close_silent_resolutions(
            session, silence=silence, now=monday + timedelta(days=6)
        )
    assert early == []
    assert closed == ([] if answered else [ticket["id"]])
    with session_scope() as session:
        row = session.get(TroubleTicketRow, ticket["id"])
        assert row is not None
        assert row.status == ("inProgress" if answered else "closed")
        if not answered:
            assert "no answer from the customer within 5 days" in row.body["statusChangeReason"]


def test_the_scheduled_sweep_tracks_every_ticket_but_leaves_problem_tickets_to_their_flow(
    client: TestClient, admin: dict[str, str], flows: None
) -> None:
    from dbos import DBOS

    from etomcrm.core import resources
    from etomcrm.flows.assurance import ticket_sweep_tick
    from etomcrm.problem_handling.service import SERVICE_PROBLEM_KIND
    from etomcrm.security.service import SYSTEM

    # given a customer's own ticket whose response target is missed, one resolved long
    # ago without an answer, and a network problem's ticket resolved as long ago
    bmw = customer(client, admin)
    late = _open(bmw["id"], BERLIN_FRIDAY_1755)
    silent = _open(bmw["id"], BERLIN_FRIDAY_1755)
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    _move(silent["id"], "inProgress", monday)
    _move(silent["id"], "resolved", monday)
    with session_scope() as session:
        problem, _, _ = resources.create(
            session,
            SERVICE_PROBLEM_KIND,
            SYSTEM,
            {
                "category": "network",
                "priority": 1,
                "description": "PoP Augsburg down",
                "reason": "3 alarms",
                "originatorParty": {
                    "id": "network",
                    "role": "originator",
                    "@referredType": "Organization",
                },
            },
        )
        payload = _ticket(bmw["id"])
        payload["relatedEntity"] = [
            {"id": problem["id"], "@referredType": "ServiceProblem", "role": "cause"}
        ]
        followed = tickets.open_ticket(session, SUPPORT, payload, now=BERLIN_FRIDAY_1755)
    _move(followed["id"], "inProgress", monday)
    _move(followed["id"], "resolved", monday)
    # when the scheduled sweep runs a month later
    DBOS.start_workflow(ticket_sweep_tick, monday + timedelta(days=30), None).get_result()
    # then the missed targets escalated, the silent resolution closed, and the
    # problem's ticket left for its flow to close
    with session_scope() as session:
        rows = {r.id: r for r in session.scalars(select(TroubleTicketRow))}
    assert [e["target"] for e in rows[late["id"]].body["escalation"]] == [
        "response",
        "resolution",
    ]
    assert rows[silent["id"]].status == "closed"
    assert rows[followed["id"]].status == "resolved"


def test_a_customer_still_answers_a_ticket_written_before_tickets_were_marked_internal(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given a customer's ticket stored without the internal mark (an older record)
    bmw = customer(client, admin)
    portal = auth("customer", customer_id=bmw["id"])
    ticket = client.post(TT, json=_ticket(), headers=portal).json()
    with session_scope() as session:
        row = session.get(TroubleTicketRow, ticket["id"])
        assert row is not None
        row.body = {k: v for k, v in row.body.items() if k != "internal"}
    # when the customer adds a note
    note = [{"text": "Still down at 11:00", "author": "BMW"}]
    response = _patch(client, ticket["id"], {"note": note}, portal)
    # then it is accepted and the ticket is marked as the customer's own
    assert response.status_code == 200, response.text
    assert response.json()["internal"] is False
