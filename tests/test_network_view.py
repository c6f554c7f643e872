"""The customer network view (seed 5.1): a customer's own topology, traffic over time,
open problems and SLA standing, with the API's conventions and scoping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert

from etomcrm.db import session_scope
from etomcrm.network.models import NetworkLinkRow, NetworkMeasurementRow, NetworkPopRow
from etomcrm.order_handling.models import ProductRow
from etomcrm.qos_sla.models import QosAssessmentRow
from tests import factories
from tests.conftest import TokenFactory

VIEW = "/tmf-api/customerNetworkView/v1/customer"
DAY = datetime(2026, 11, 24, tzinfo=UTC)


def _network(client: TestClient, admin: dict[str, str], sites: int) -> tuple[str, list[str]]:
    """A customer with `sites` sites, each on a link to one PoP, with a day of hourly
    measurements: site n sends n MB in and 2n MB out every hour."""
    customer = factories.customer(client, admin)
    site_ids = [
        factories.site(client, admin, customer["id"], f"Ort {n}")["id"] for n in range(sites)
    ]
    with session_scope() as session:
        if session.get(NetworkPopRow, "pop-by-1") is None:
            session.add(NetworkPopRow(id="pop-by-1", name="München 1", region="BY", status="up"))
        rows = []
        for n, site_id in enumerate(site_ids, start=1):
            product_id = f"{customer['id']}-p{n}"
            session.add(
                ProductRow(
                    id=product_id,
                    at_type="Product",
                    status="active",
                    owner_customer_id=customer["id"],
                    body={"id": product_id, "@type": "Product", "status": "active"},
                )
            )
            link_id = f"{customer['id']}-l{n}"
            session.add(
                NetworkLinkRow(
                    id=link_id,
                    customer_id=customer["id"],
                    site_id=site_id,
                    pop_id="pop-by-1",
                    product_id=product_id,
                    bandwidth_mbits=100,
                    status="down" if n == 1 else "up",
                )
            )
            for hour in range(24):
                rows.append(
                    {
                        "link_id": link_id,
                        "site_id": site_id,
                        "at": DAY + timedelta(hours=hour),
                        "interval_seconds": 3600,
                        "availability": 1.0,
                        "latency_ms": 12.0,
                        "loss_percent": 0.0,
                        "bytes_in": n * 1_000_000,
                        "bytes_out": 2 * n * 1_000_000,
                    }
                )
        session.flush()
        session.execute(insert(NetworkMeasurementRow), rows)
        session.add(
            QosAssessmentRow(
                product_id=f"{customer['id']}-p1",
                period="2026-11",
                metric="availability",
                measured=Decimal("99.8500"),
                target=Decimal("99.9000"),
                met=False,
                final=False,
            )
        )
    return customer["id"], site_ids


def test_a_customer_sees_its_network_problems_and_sla_standing(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a customer with three sites, one link down, an open ticket and an assessment
    admin = auth("admin")
    customer_id, site_ids = _network(client, admin, 3)
    ticket = client.post(
        "/tmf-api/troubleTicket/v4/troubleTicket",
        json={
            "description": "Site Ort 0 unreachable",
            "severity": "major",
            "ticketType": "network",
            "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        },
        headers=admin,
    )
    assert ticket.status_code == 201, ticket.text
    other_id, _ = _network(client, admin, 1)
    me = auth("customer", customer_id=customer_id)
    # when the customer opens its network view
    response = client.get(f"{VIEW}/{customer_id}", params={"period": "2026-11"}, headers=me)
    # then it sees its sites and links with their status, its problem and its standing
    assert response.status_code == 200, response.text
    view = response.json()
    topology = view["topology"]
    assert sorted(s["id"] for s in topology["sites"]) == sorted(site_ids)
    assert sorted(link["status"] for link in topology["links"]) == ["down", "up", "up"]
    assert [p["id"] for p in view["openProblems"]] == [ticket.json()["id"]]
    assert view["slaStanding"] == [
        {
            "productId": f"{customer_id}-p1",
            "metric": "availability",
            "measured": "99.8500",
            "target": "99.9000",
            "met": False,
            "final": False,
        }
    ]
    # and nothing of another customer's: its view is a 404, as for nothing at all
    assert client.get(f"{VIEW}/{other_id}", headers=me).status_code == 404
    assert client.get(f"{VIEW}/{other_id}/traffic", headers=me).status_code == 404
    assert client.get(f"{VIEW}/{customer_id}").status_code == 401


def test_traffic_is_summed_per_site_by_hour_day_and_month(
    client: TestClient, auth: TokenFactory
) -> None:
    admin = auth("admin")
    customer_id, site_ids = _network(client, admin, 2)
    window = {"from": "2026-11-24T00:00:00Z", "to": "2026-11-25T00:00:00Z"}

    def volumes(granularity: str) -> dict[str, list[Any]]:
        response = client.get(
            f"{VIEW}/{customer_id}/traffic",
            params={**window, "granularity": granularity},
            headers=admin,
        )
        assert response.status_code == 200, response.text
        return {s["siteId"]: s["volume"] for s in response.json()["sites"]}

    by_hour, by_day, by_month = volumes("hour"), volumes("day"), volumes("month")
    # site 2 sends 2 MB in and 4 MB out every hour: 24 buckets by hour, one by day
    assert len(by_hour[site_ids[1]]) == 24
    assert by_hour[site_ids[1]][9] == {
        "period": "2026-11-24T09:00:00Z",
        "bytesIn": 2_000_000,
        "bytesOut": 4_000_000,
    }
    assert by_day[site_ids[1]] == [
        {"period": "2026-11-24", "bytesIn": 48_000_000, "bytesOut": 96_000_000}
    ]
    assert by_month[site_ids[0]] == [
        {"period": "2026-11", "bytesIn": 24_000_000, "bytesOut": 48_000_000}
    ]
    # one site only, and bad parameters are a 400 that says what to send
    one = client.get(
        f"{VIEW}/{customer_id}/traffic", params={**window, "siteId": site_ids[0]}, headers=admin
    ).json()
    assert [s["siteId"] for s in one["sites"]] == [site_ids[0]]
    bad = client.get(f"{VIEW}/{customer_id}/traffic", params={"granularity": "week"}, headers=admin)
    assert (
        bad.status_code == 400 and "granularity is one of hour, day, month" in bad.json()["message"]
    )
    naive = client.get(
        f"{VIEW}/{customer_id}/traffic", params={"from": "2026-11-24T00:00"}, headers=admin
    )
    assert naive.status_code == 400


def test_the_view_costs_the_same_queries_for_2_or_12_sites(
    client: TestClient, auth: TokenFactory, count_queries: Callable[[], Any]
) -> None:
    admin = auth("admin")
    counts = []
    for sites in (2, 12):
        customer_id, _ = _network(client, admin, sites)
        client.get(f"{VIEW}/{customer_id}", headers=admin)
        with count_queries() as counter:
            assert client.get(f"{VIEW}/{customer_id}", headers=admin).status_code == 200
            assert client.get(f"{VIEW}/{customer_id}/traffic", headers=admin).status_code == 200
        counts.append(counter.count)
    assert counts[0] == counts[1]
