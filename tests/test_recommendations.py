"""3.4.5 Cross/up-selling: TMF680 recommendations from a customer's installed base."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from etomcrm.core import resources
from etomcrm.db import session_scope
from etomcrm.order_handling.service import PRODUCT_KIND
from etomcrm.security.service import SYSTEM
from etomcrm.selling.recommendations import recommend_for_customer
from tests.conftest import TokenFactory
from tests.factories import CATALOG, customer, post, site

QUERIES = "/tmf-api/recommendation/v4/queryProductRecommendation"


def _product(
    customer_id: str, site_body: dict[str, Any], status: str = "active", **characteristics: Any
) -> str:
    payload = {
        "name": f"Site access {site_body['name']}",
        "status": status,
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "place": [{"id": site_body["id"], "role": "installation", "name": site_body["name"]}],
        "productCharacteristic": [{"name": k, "value": v} for k, v in characteristics.items()],
    }
    with session_scope() as session:
        body, _, _ = resources.create(session, PRODUCT_KIND, SYSTEM, payload)
    return str(body["id"])


def _ask(client: TestClient, headers: dict[str, str], customer_id: str | None = None) -> Any:
    body: dict[str, Any] = {}
    if customer_id:
        body["relatedParty"] = {"id": customer_id, "@referredType": "Customer"}
    return client.post(QUERIES, json=body, headers=headers)


def test_recommendations_follow_the_installed_base(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given three sites: one near its volume, one with many tickets, one with an own router
    bmw = customer(client, admin)
    munich, leipzig, berlin, hamburg = (
        site(client, admin, bmw["id"], city) for city in ("München", "Leipzig", "Berlin", "Hamburg")
    )
    busy = _product(bmw["id"], munich, bandwidthMbit=10, monthlyVolumeGB=92, includedVolumeGB=100)
    faulty = _product(bmw["id"], leipzig, slaLevel="Silver", ticketsLast90Days=5)
    _product(bmw["id"], berlin, managedRouter=False)
    # and a quiet site and a terminated one, which get nothing
    _product(bmw["id"], hamburg, bandwidthMbit=100, monthlyVolumeGB=10, includedVolumeGB=100)
    _product(bmw["id"], munich, status="terminated", ticketsLast90Days=9)
    gold = post(client, f"{CATALOG}/productOffering", {"name": "SLA Gold"}, admin)
    # when sales asks for recommendations
    response = _ask(client, auth("sales"), bmw["id"])
    # then the answer is done, ordered by priority, each with its reason
    assert response.status_code == 201, response.text
    query = response.json()
    assert query["state"] == "done"
    items = query["recommendationItem"]
    assert [i["product"]["name"] for i in items] == [
        "SLA Gold",
        "Site access 100 Mbit/s",
        "Managed router",
    ]
    assert [i["priority"] for i in items] == [1, 2, 3]
    assert items[0]["productOffering"]["id"] == gold["id"]
    assert "5 trouble tickets" in items[0]["product"]["description"]
    assert items[0]["product"]["productRelationship"][0]["product"]["id"] == faulty
    assert "(92 %)" in items[1]["product"]["description"]
    assert items[1]["product"]["productRelationship"][0]["product"]["id"] == busy
    reasons = {c["name"]: c["value"] for c in items[2]["product"]["productCharacteristic"]}
    assert "runs its own router" in reasons["recommendationReason"]
    assert "productOffering" not in items[1]  # no such offering in the catalog
    # and it can be read again
    again = client.get(f"{QUERIES}/{query['id']}", headers=admin)
    assert again.status_code == 200 and again.json()["recommendationItem"] == items


def test_a_customer_queries_its_own_recommendations_only(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    bmw, audi = customer(client, admin, "BMW AG"), customer(client, admin, "Audi AG")
    _product(bmw["id"], site(client, admin, bmw["id"]), managedRouter=False)
    bmw_portal = auth("customer", customer_id=bmw["id"])
    audi_portal = auth("customer", customer_id=audi["id"])
    # the customer asks without naming itself
    response = _ask(client, bmw_portal)
    assert response.status_code == 201, response.text
    query = response.json()
    assert query["relatedParty"]["id"] == bmw["id"]
    assert len(query["recommendationItem"]) == 1
    assert client.get(f"{QUERIES}/{query['id']}", headers=bmw_portal).status_code == 200
    # another customer neither reads it, nor lists it, nor asks in BMW's name
    assert client.get(f"{QUERIES}/{query['id']}", headers=audi_portal).status_code == 404
    assert client.get(QUERIES, headers=audi_portal).json() == []
    assert _ask(client, audi_portal, bmw["id"]).status_code == 404
    # Audi has no products, so no recommendations
    assert _ask(client, audi_portal).json()["recommendationItem"] == []


def test_an_answered_query_does_not_change(client: TestClient, admin: dict[str, str]) -> None:
    bmw = customer(client, admin)
    with session_scope() as session:
        query = recommend_for_customer(session, SYSTEM, bmw["id"])
    response = client.patch(f"{QUERIES}/{query['id']}", json={"name": "x"}, headers=admin)
    assert response.status_code == 409 and "post a new query" in response.json()["message"]
    assert _ask(client, admin, "no-such-customer").status_code == 404
    response = client.post(QUERIES, json={}, headers=admin)
    assert response.status_code == 400 and "relatedParty" in response.json()["message"]
