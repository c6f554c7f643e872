"""TMF656 service problems: staff only, their state machine and tracking record."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from etomcrm.db import session_scope
from etomcrm.problem_handling.models import ServiceProblemRow
from tests.conftest import TokenFactory
from tests.factories import customer

SP = "/tmf-api/serviceProblemManagement/v4/serviceProblem"


def _problem(**extra: Any) -> dict[str, Any]:
    return {
        "category": "system.originated",
        "priority": 2,
        "description": "Point of presence Munich-North unreachable",
        "reason": "Unknown",
        "originatorParty": {
            "id": "noc",
            "name": "Network operations",
            "role": "originator",
            "@referredType": "Organization",
        },
        "impactImportanceFactor": "critical",
        "affectedResource": [{"id": "pop-muc-north", "name": "PoP Munich-North"}],
        "affectedService": [{"id": "svc-extranet-42"}],
        "underlyingAlarm": [{"id": "7400000000000000001"}],
        **extra,
    }


def test_staff_work_a_service_problem_through_its_states(
    client: TestClient, auth: TokenFactory
) -> None:
    support = auth("support")
    # when support opens a problem about a point of presence
    created = client.post(SP, json=_problem(), headers=support)
    assert created.status_code == 201, created.text
    problem = created.json()
    # then it is acknowledged, tracked, and correlated by what it is about
    assert problem["status"] == "acknowledged"
    assert [t["description"] for t in problem["trackingRecord"]] == ["acknowledged"]
    with session_scope() as session:
        row = session.get(ServiceProblemRow, problem["id"])
        assert row is not None
        assert row.correlation_key == "resource:pop-muc-north"
    href = f"{SP}/{problem['id']}"
    # an illegal move is refused with the allowed ones named
    refused = client.patch(href, json={"status": "closed"}, headers=support)
    assert refused.status_code == 409
    assert "cancelled, inProgress, rejected" in refused.json()["message"]
    for status in ("inProgress", "pending", "inProgress", "held", "inProgress", "resolved"):
        moved = client.patch(href, json={"status": status}, headers=support)
        assert moved.status_code == 200, moved.text
    assert "resolutionDate" in moved.json()
    reopened = client.patch(href, json={"status": "inProgress"}, headers=support)
    assert reopened.status_code == 200
    assert client.patch(href, json={"status": "resolved"}, headers=support).status_code == 200
    closed = client.patch(href, json={"status": "closed"}, headers=support)
    assert [t["description"] for t in closed.json()["trackingRecord"]] == [
        "acknowledged",
        "inProgress",
        "pending",
        "inProgress",
        "held",
        "inProgress",
        "resolved",
        "inProgress",
        "resolved",
        "closed",
    ]
    assert client.patch(href, json={"status": "inProgress"}, headers=support).status_code == 409
    # rejected and cancelled are final too
    for end in ("rejected", "cancelled"):
        other = client.post(SP, json=_problem(), headers=support).json()
        other_href = f"{SP}/{other['id']}"
        assert client.patch(other_href, json={"status": end}, headers=support).status_code == 200
        again = client.patch(other_href, json={"status": "inProgress"}, headers=support)
        assert again.status_code == 409


def test_bad_priority_impact_or_start_state_are_refused(
    client: TestClient, auth: TokenFactory
) -> None:
    sla = auth("sla_manager")
    for body, word in (
        (_problem(priority=11), "priority"),
        (_problem(impactImportanceFactor="huge"), "impactImportanceFactor"),
        (_problem(status="resolved"), "acknowledged"),
    ):
        refused = client.post(SP, json=body, headers=sla)
        assert refused.status_code == 400
        assert word in refused.json()["message"]


def test_the_correlation_key_can_be_given_or_comes_from_the_service(
    client: TestClient, auth: TokenFactory
) -> None:
    support = auth("support")
    explicit = client.post(SP, json=_problem(correlationKey="pop:MUC-N"), headers=support).json()
    by_service = client.post(SP, json=_problem(affectedResource=[]), headers=support).json()
    with session_scope() as session:
        keys = {
            row.id: row.correlation_key
            for row in session.query(ServiceProblemRow).filter(
                ServiceProblemRow.id.in_([explicit["id"], by_service["id"]])
            )
        }
    assert keys == {explicit["id"]: "pop:MUC-N", by_service["id"]: "service:svc-extranet-42"}


def test_customers_and_other_roles_have_no_access(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    problem = client.post(SP, json=_problem(), headers=auth("support")).json()
    bmw = customer(client, admin)
    bmw_user = auth("customer", customer_id=bmw["id"])
    assert client.get(SP, headers=bmw_user).status_code == 403
    assert client.get(f"{SP}/{problem['id']}", headers=bmw_user).status_code == 403
    assert client.post(SP, json=_problem(), headers=bmw_user).status_code == 403
    assert client.get(SP, headers=auth("sales")).status_code == 403
    assert client.post(SP, json=_problem(), headers=auth("billing")).status_code == 403
