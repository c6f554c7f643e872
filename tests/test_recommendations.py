"""3.4.5 Cross/up-selling: TMF680 recommendations from a customer's installed base."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from etomcrm.core import resources
from etomcrm.core.clock import iso
from etomcrm.db import session_scope, utcnow
from etomcrm.network.models import NetworkMeasurementRow
from etomcrm.order_handling.service import PRODUCT_KIND
from etomcrm.retention.recommendations import _last_month, recommend_for_customer
from etomcrm.security.service import SYSTEM
from tests.conftest import TokenFactory
from tests.factories import CATALOG, customer, post, site

QUERIES = "/tmf-api/recommendation/v4/queryProductRecommendation"
TT = "/tmf-api/troubleTicket/v4/troubleTicket"


def _product(
    customer_id: str,
    site_body: dict[str, Any],
    name: str = "Site access",
    status: str = "active",
    start: datetime | None = None,
    **characteristics: Any,
) -> str:
    payload: dict[str, Any] = {
        "name": name,
        "status": status,
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "place": [{"id": site_body["id"], "role": "installation", "name": site_body["name"]}],
        "productCharacteristic": [{"name": k, "value": v} for k, v in characteristics.items()],
    }
    if start is not None:
        payload["startDate"] = iso(start)
    with session_scope() as session:
        body, _, _ = resources.create(session, PRODUCT_KIND, SYSTEM, payload)
    return str(body["id"])


def _access_site(
    customer_id: str, site_body: dict[str, Any], mbits: int, included_gb: int, router_age: int = 12
) -> str:
    """A site's access and its managed router, installed ``router_age`` months ago."""
    access = _product(customer_id, site_body, bandwidthMbit=mbits, includedVolumeGB=included_gb)
    installed = utcnow() - timedelta(days=round(router_age * 30.5))
    _product(customer_id, site_body, "Managed router", start=installed)
    return access


def _traffic(site_id: str, gigabytes: int) -> None:
    """The network's performance data of the site last month: ``gigabytes`` in total."""
    start, _ = _last_month(utcnow())
    per_row = gigabytes * 10**9 // 4
    with session_scope() as session:
        for day in range(4):
            session.add(
                NetworkMeasurementRow(
                    link_id=f"link-{site_id}",
                    site_id=site_id,
                    at=start + timedelta(days=day, hours=10),
                    interval_seconds=900,
                    availability=1.0,
                    latency_ms=8.0,
                    loss_percent=0.0,
                    bytes_in=per_row * 3 // 4,
                    bytes_out=per_row - per_row * 3 // 4,
                )
            )
        # traffic of the month before does not count
        session.add(
            NetworkMeasurementRow(
                link_id=f"link-{site_id}",
                site_id=site_id,
                at=start - timedelta(days=3),
                interval_seconds=900,
                availability=1.0,
                latency_ms=8.0,
                loss_percent=0.0,
                bytes_in=10**13,
                bytes_out=0,
            )
        )


def _tickets(
    client: TestClient, headers: dict[str, str], customer_id: str, site_id: str, n: int
) -> None:
    for number in range(n):
        response = client.post(
            TT,
            json={
                "name": f"Fault {number}",
                "description": "The site is unreachable.",
                "severity": "Major",
                "ticketType": "network",
                "relatedParty": [
                    {"id": customer_id, "@referredType": "Customer", "role": "customer"}
                ],
                "relatedEntity": [
                    {"id": site_id, "@referredType": "GeographicSite", "role": "affectedSite"}
                ],
            },
            headers=headers,
        )
        assert response.status_code == 201, response.text


def _ask(client: TestClient, headers: dict[str, str], customer_id: str | None = None) -> Any:
    body: dict[str, Any] = {}
    if customer_id:
        body["relatedParty"] = {"id": customer_id, "@referredType": "Customer"}
    return client.post(QUERIES, json=body, headers=headers)


def test_recommendations_follow_the_facts_of_the_installed_base(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given BMW's sites: Munich busy (92 GB of 100 last month), Leipzig on Silver with 5
    # tickets in the last 90 days, Berlin with no managed router, Köln with a six-year-old
    # router, and Hamburg quiet
    bmw = customer(client, admin)
    munich, leipzig, berlin, cologne, hamburg = (
        site(client, admin, bmw["id"], city)
        for city in ("München", "Leipzig", "Berlin", "Köln", "Hamburg")
    )
    busy = _access_site(bmw["id"], munich, 10, 100)
    _traffic(munich["id"], 92)
    faulty = _access_site(bmw["id"], leipzig, 100, 2000)
    _product(bmw["id"], leipzig, "SLA Silver", slaLevel="SLA Silver")
    _tickets(client, admin, bmw["id"], leipzig["id"], 5)
    _product(bmw["id"], berlin, bandwidthMbit=100, includedVolumeGB=2000)
    _access_site(bmw["id"], cologne, 100, 2000, router_age=72)
    _access_site(bmw["id"], hamburg, 100, 2000)
    _traffic(hamburg["id"], 10)
    # and a terminated product and two tickets on Hamburg, which change nothing
    _product(bmw["id"], hamburg, status="terminated")
    _tickets(client, admin, bmw["id"], hamburg["id"], 2)
    gold = post(client, f"{CATALOG}/productOffering", {"name": "SLA Gold"}, admin)
    # when sales asks for recommendations
    response = _ask(client, auth("sales"), bmw["id"])
    # then the answer is done, ranked (priority) by expected value, each with its reason:
    # nothing is priced in this catalog, so every expected value is 0 and the rules'
    # order (Gold, bandwidth, routers) stands
    assert response.status_code == 201, response.text
    query = response.json()
    assert query["state"] == "done"
    items = query["recommendationItem"]
    assert [(i["product"]["name"], i["priority"]) for i in items] == [
        ("SLA Gold", 1),
        ("Site access 100 Mbit/s", 2),
        ("Managed router", 3),
        ("Managed router", 4),
    ]
    assert items[0]["productOffering"]["id"] == gold["id"]
    assert (
        "Dealer Leipzig had 5 trouble tickets in the last 90 days on SLA Silver"
        in (items[0]["product"]["description"])
    )
    assert items[0]["product"]["productRelationship"][0]["product"]["id"] == faulty
    assert (
        "used 92 GB of its 100 GB included volume last month (92 %)"
        in (items[1]["product"]["description"])
    )
    assert items[1]["product"]["productRelationship"][0]["product"]["id"] == busy
    reasons = sorted(
        c["value"]
        for item in items[2:]
        for c in item["product"]["productCharacteristic"]
        if c["name"] == "recommendationReason"
    )
    assert (
        reasons[0]
        == "Dealer Berlin runs its own router, outside monitoring and the SLA's time to repair"
    )
    assert reasons[1].startswith("the router at Dealer Köln is 72 months old")
    assert "productOffering" not in items[1]  # no such offering in the catalog
    # and it can be read again
    again = client.get(f"{QUERIES}/{query['id']}", headers=admin)
    assert again.status_code == 200 and again.json()["recommendationItem"] == items


def test_recommending_takes_the_same_queries_for_few_or_many_products(
    client: TestClient, admin: dict[str, str], count_queries: Callable[[], Any]
) -> None:
    # given a customer with one busy site, and one with twenty
    few, many = customer(client, admin, "Few GmbH"), customer(client, admin, "Many AG")
    for owner, sites in ((few, 1), (many, 20)):
        for number in range(sites):
            where = site(client, admin, owner["id"], f"Ort {number}")
            _access_site(owner["id"], where, 10, 100)
            _traffic(where["id"], 95)
    client.get(QUERIES, headers=admin)  # the token is verified and cached by now
    # when each is asked for
    counts = []
    for owner, sites in ((few, 1), (many, 20)):
        with count_queries() as counter:
            response = _ask(client, admin, owner["id"])
        assert response.status_code == 201, response.text
        assert len(response.json()["recommendationItem"]) == sites
        counts.append(counter.count)
    # then the number of queries does not grow with the products
    assert counts[0] == counts[1], counts


def test_a_customer_queries_its_own_recommendations_only(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    bmw, audi = customer(client, admin, "BMW AG"), customer(client, admin, "Audi AG")
    _product(bmw["id"], site(client, admin, bmw["id"]), bandwidthMbit=10, includedVolumeGB=500)
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
