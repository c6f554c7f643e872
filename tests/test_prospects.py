"""3.4.1 Manage prospects: leads qualify into opportunities that move through stages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from etomcrm.db import session_scope
from etomcrm.security.service import Principal, Role
from etomcrm.selling.prospects import (
    advance_opportunity,
    close_opportunity,
    open_lead,
    qualify_lead,
)
from tests.conftest import TokenFactory
from tests.factories import customer, post

SALES = "/tmf-api/sales/v4"
SELLER = Principal(id="u-sales", name="sarah.sales", role=Role.SALES)


def lead_body(customer_id: str, name: str = "Extranet for 50 dealers") -> dict[str, Any]:
    return {
        "name": name,
        "channel": {"id": "phone", "name": "phone"},
        "estimatedRevenue": {"unit": "EUR", "value": 120000.5},
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "prospect"}],
    }


def test_lead_to_won_opportunity_through_the_service_functions(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a prospect customer and a lead it raised
    bmw = customer(client, admin)
    with session_scope() as session:
        lead = open_lead(
            session,
            SELLER,
            customer_id=bmw["id"],
            name="Extranet for 50 dealers",
            estimated_revenue=Decimal("250000.00"),
        )
    assert lead["status"] == "acknowledged"
    # when it is qualified, advanced and closed as won
    with session_scope() as session:
        opportunity = qualify_lead(
            session,
            SELLER,
            lead["id"],
            owner="sarah.sales",
            probability=30,
            expected_revenue=Decimal("240000.10"),
        )
    with session_scope() as session:
        advance_opportunity(session, SELLER, opportunity["id"], stage="proposal", probability=50)
        advance_opportunity(session, SELLER, opportunity["id"], stage="negotiation")
        closed = close_opportunity(
            session, SELLER, opportunity["id"], won=True, reason="best SLA offer"
        )
    # then the lead is accepted and points to the opportunity, which is won at 100 %
    read = client.get(f"{SALES}/salesLead/{lead['id']}", headers=admin).json()
    assert read["status"] == "accepted"
    assert read["salesOpportunity"]["id"] == opportunity["id"]
    assert opportunity["stage"] == "qualification"
    assert opportunity["salesLead"]["id"] == lead["id"]
    assert opportunity["relatedParty"][0]["id"] == bmw["id"]
    assert Decimal(str(opportunity["expectedRevenue"]["value"])) == Decimal("240000.10")
    assert closed["stage"] == "closedWon" and closed["probability"] == 100
    assert closed["winLossReason"] == "best SLA offer" and closed["closeDate"]


def test_qualifying_through_the_api(client: TestClient, auth: TokenFactory) -> None:
    sales = auth("sales")
    bmw = customer(client, auth("admin"))
    lead = post(client, f"{SALES}/salesLead", lead_body(bmw["id"]), sales)
    opportunity = post(
        client,
        f"{SALES}/salesOpportunity",
        {
            "name": "BMW extranet",
            "owner": "sarah.sales",
            "probability": 20,
            "expectedRevenue": {"unit": "EUR", "value": 99000},
            "salesLead": {"id": lead["id"]},
        },
        sales,
    )
    assert opportunity["stage"] == "qualification"
    assert client.get(f"{SALES}/salesLead/{lead['id']}", headers=sales).json()["status"] == (
        "accepted"
    )
    # a lead qualifies once
    response = client.post(
        f"{SALES}/salesOpportunity",
        json={"name": "twice", "salesLead": {"id": lead["id"]}},
        headers=sales,
    )
    assert response.status_code == 409 and "cannot qualify" in response.json()["message"]


def test_illegal_stage_change_names_the_allowed_ones(
    client: TestClient, auth: TokenFactory
) -> None:
    sales = auth("sales")
    opportunity = post(client, f"{SALES}/salesOpportunity", {"name": "Cold call"}, sales)
    path = f"{SALES}/salesOpportunity/{opportunity['id']}"
    response = client.patch(path, json={"stage": "closedWon", "winLossReason": "x"}, headers=sales)
    assert response.status_code == 409
    assert response.json()["code"] == "ILLEGAL_TRANSITION"
    assert (
        "allowed from 'qualification': closedLost, proposal, prospecting"
        in (response.json()["message"])
    )
    # closing needs a reason, and a closed opportunity is final
    response = client.patch(path, json={"stage": "closedLost"}, headers=sales)
    assert response.status_code == 400 and "winLossReason" in response.json()["message"]
    response = client.patch(
        path, json={"stage": "closedLost", "winLossReason": "price"}, headers=sales
    )
    assert response.status_code == 200 and response.json()["probability"] == 0
    response = client.patch(path, json={"stage": "proposal"}, headers=sales)
    assert response.status_code == 409 and "final state" in response.json()["message"]


def test_lead_states_follow_their_machine(client: TestClient, auth: TokenFactory) -> None:
    sales = auth("sales")
    bmw = customer(client, auth("admin"))
    lead = post(client, f"{SALES}/salesLead", lead_body(bmw["id"]), sales)
    path = f"{SALES}/salesLead/{lead['id']}"
    # accepted only by qualifying; the opportunity reference is not set by hand
    response = client.patch(path, json={"status": "accepted"}, headers=sales)
    assert response.status_code == 409 and "salesOpportunity" in response.json()["message"]
    response = client.patch(path, json={"salesOpportunity": {"id": "x"}}, headers=sales)
    assert response.status_code == 400
    assert client.patch(path, json={"status": "inProgress"}, headers=sales).status_code == 200
    assert client.patch(path, json={"status": "rejected"}, headers=sales).status_code == 200
    response = client.patch(path, json={"status": "inProgress"}, headers=sales)
    assert response.status_code == 409 and "final state" in response.json()["message"]
    # money is in EUR and not negative
    body = lead_body(bmw["id"])
    body["estimatedRevenue"] = {"unit": "USD", "value": 5}
    response = client.post(f"{SALES}/salesLead", json=body, headers=sales)
    assert response.status_code == 400 and "EUR" in response.json()["message"]


def test_customer_reads_its_own_leads_but_no_opportunities(
    client: TestClient, auth: TokenFactory
) -> None:
    admin = auth("admin")
    bmw = customer(client, admin, "BMW AG")
    audi = customer(client, admin, "Audi AG")
    mine = post(client, f"{SALES}/salesLead", lead_body(bmw["id"]), admin)
    theirs = post(client, f"{SALES}/salesLead", lead_body(audi["id"]), admin)
    as_bmw = auth("customer", customer_id=bmw["id"])
    listed = client.get(f"{SALES}/salesLead", headers=as_bmw)
    assert [lead["id"] for lead in listed.json()] == [mine["id"]]
    assert client.get(f"{SALES}/salesLead/{theirs['id']}", headers=as_bmw).status_code == 404
    assert client.get(f"{SALES}/salesLead/{mine['id']}", headers=as_bmw).status_code == 200
    # opportunities are internal sales data
    assert client.get(f"{SALES}/salesOpportunity", headers=as_bmw).status_code == 403
    # and support staff cannot write leads
    response = client.post(f"{SALES}/salesLead", json=lead_body(bmw["id"]), headers=auth("support"))
    assert response.status_code == 403


def test_opportunity_schema_is_documented(client: TestClient) -> None:
    document = client.app.openapi()  # type: ignore[attr-defined]
    schema = document["components"]["schemas"]["TMF699_SalesOpportunity"]
    assert "customers cannot read opportunities" in schema["description"]
    assert set(schema["properties"]) >= {
        "stage",
        "probability",
        "expectedRevenue",
        "owner",
        "winLossReason",
        "salesLead",
    }
