"""ETOMCRM_NETWORK_SEED decides everything the simulated network does (issue 12): two runs
over the same sites under one seed get the same feasibility, the same points of
presence, the same activation outcomes, measurements and repairs, although every id
the CRM gives their sites, products and links is new on each run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from etomcrm.config import get_settings
from etomcrm.db import session_scope
from etomcrm.network.models import NetworkServiceOrderRow
from etomcrm.network.port import use_network
from etomcrm.network.simulator import SimulatedNetwork
from etomcrm.network.telemetry import generate_measurements
from etomcrm.network_view.topology import build_topology
from tests import factories
from tests.conftest import TokenFactory
from tests.factories import SITE, post
from tests.test_feasibility import POQ, characteristic, poq_body
from tests.test_network import access_offering
from tests.test_network_topology import product

# Ten dealers in states with one and with two points of presence.
DEALERS = (
    ("DLR-MUC", "München", "80809", "Bayern"),
    ("DLR-NUE", "Nürnberg", "90402", "Bayern"),
    ("DLR-PAS", "Passau", "94032", "Bayern"),
    ("DLR-STR", "Stuttgart", "70173", "Baden-Württemberg"),
    ("DLR-FRA", "Frankfurt am Main", "60311", "Hessen"),
    ("DLR-KOE", "Köln", "50667", "Nordrhein-Westfalen"),
    ("DLR-DUS", "Düsseldorf", "40213", "Nordrhein-Westfalen"),
    ("DLR-HAM", "Hamburg", "20095", "Hamburg"),
    ("DLR-BER", "Berlin", "10117", "Berlin"),
    ("DLR-HAN", "Hannover", "30159", "Niedersachsen"),
)
DAY = datetime(2026, 11, 3, tzinfo=UTC)


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Seed 99 from the environment, and a network that is late, fails, special-builds
    and refuses often enough for every answer to depend on the draws."""
    monkeypatch.setenv("ETOMCRM_NETWORK_SEED", "99")
    get_settings.cache_clear()
    use_network(
        SimulatedNetwork(
            day_seconds=0,
            late_rate=0.3,
            failure_rate=0.2,
            unserviceable_rate=0.2,
            special_build_rate=0.3,
        )
    )
    yield
    use_network(None)
    monkeypatch.delenv("ETOMCRM_NETWORK_SEED")
    get_settings.cache_clear()


def _dealer_sites(client: TestClient, admin: dict[str, str], customer_id: str) -> dict[str, str]:
    sites = {}
    for code, city, postcode, state in DEALERS:
        body = {
            "name": f"Autohaus {city}",
            "code": code,
            "status": "active",
            "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
            "place": [
                {
                    "@type": "GeographicAddress",
                    "street1": "Hauptstraße 1",
                    "postcode": postcode,
                    "city": city,
                    "stateOrProvince": state,
                    "country": "DE",
                }
            ],
        }
        sites[code] = str(post(client, f"{SITE}/geographicSite", body, admin)["id"])
    return sites


def _network_side(session: Session, customer_id: str, sites: dict[str, str]) -> dict[str, Any]:
    """What the network does with the customer's sites: activation, links, a day of
    measurements, a repair per link; by site code."""
    network = SimulatedNetwork(day_seconds=0, late_rate=0.3, failure_rate=0.2, now=lambda: DAY)
    outcomes = {}
    for code, site_id in sites.items():
        status = network.submit_service_order(
            session,
            key=f"{customer_id}/{site_id}/1",
            customer_id=customer_id,
            product_order_id=f"order-of-{customer_id}",
            order_item_id="1",
            site_id=site_id,
            offering_id="no-offering",
        )
        outcomes[code] = (status.state, status.detail, status.expected_completion_date)
    links = build_topology(session, customer_id).links
    code_of = {site_id: code for code, site_id in sites.items()}
    rows: list[dict[str, Any]] = []

    def collect(_: Session, batch: list[dict[str, Any]], __: datetime) -> int:
        rows.extend(batch)
        return len(batch)

    generate_measurements(
        session,
        links=links,
        start=DAY,
        end=DAY + timedelta(days=1),
        interval=timedelta(hours=1),
        seed=get_settings().network_seed,
        feed=collect,
    )
    measured = sorted(
        (code_of[r["site_id"]], r["at"], r["latency_ms"], r["loss_percent"], r["bytes_in"])
        for r in rows
    )
    repairs = {}
    for link in links:
        problem = {
            "id": f"problem-of-{link.id}",
            "affectedResource": [{"id": link.id, "@referredType": "AccessLink"}],
        }
        order = network.request_repair(session, problem=problem)
        stored = session.get(NetworkServiceOrderRow, order.id)
        assert stored is not None
        repairs[code_of[link.site_id]] = (
            order.expected_resolution,
            stored.body["simulation"]["cause"],
        )
    return {
        "activation": outcomes,
        "pop": {code_of[link.site_id]: link.pop_id for link in links},
        "measurements": measured,
        "repairs": repairs,
    }


def _one_run(client: TestClient, admin: dict[str, str], sales: dict[str, str]) -> dict[str, Any]:
    """What one run of the story asks the network, with ids of its own."""
    customer = factories.customer(client, admin)["id"]
    sites = _dealer_sites(client, admin, customer)
    offering = access_offering(client, admin, 100)["id"]
    response = client.post(
        POQ, json=poq_body(offering, *sites.values(), customer_id=customer), headers=sales
    )
    assert response.status_code == 201, response.text
    code_of = {site_id: code for code, site_id in sites.items()}
    feasibility = {
        code_of[item["product"]["place"][0]["id"]]: (
            item["qualificationItemResult"],
            characteristic(item, "leadTimeDays")
            if item["qualificationItemResult"] == "qualified"
            else None,
            item.get("eligibilityUnavailabilityReason"),
        )
        for item in response.json()["productOfferingQualificationItem"]
    }
    for site_id in sites.values():
        product(client, admin, customer, site_id, offering)
    with session_scope() as session:
        side = _network_side(session, customer, sites)
    return {"feasibility": feasibility, **side}


def test_one_network_seed_gives_the_same_answers_for_the_same_sites_on_every_run(
    client: TestClient, admin: dict[str, str], auth: TokenFactory, seeded: None
) -> None:
    # given two runs over the same ten dealers under seed 99, each with new ids
    first = _one_run(client, admin, auth("sales"))
    second = _one_run(client, admin, auth("sales"))
    # then the network answered both the same: feasibility, PoPs, activation outcomes,
    # every measurement and every repair
    assert first["feasibility"] == second["feasibility"]
    assert first["pop"] == second["pop"]
    assert first["activation"] == second["activation"]
    assert first["measurements"] == second["measurements"]
    assert first["repairs"] == second["repairs"]
    # and the draws are draws: the network did not answer every site alike
    assert len({answer for answer, _, _ in first["feasibility"].values()}) == 2
    assert len({state for state, _, _ in first["activation"].values()}) >= 2
    assert len(first["measurements"]) == 24 * 10


def test_another_network_seed_gives_other_answers(
    client: TestClient,
    admin: dict[str, str],
    auth: TokenFactory,
    seeded: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a run under seed 99
    first = _one_run(client, admin, auth("sales"))
    # when the same sites are run under seed 7
    monkeypatch.setenv("ETOMCRM_NETWORK_SEED", "7")
    get_settings.cache_clear()
    use_network(
        SimulatedNetwork(
            day_seconds=0,
            late_rate=0.3,
            failure_rate=0.2,
            unserviceable_rate=0.2,
            special_build_rate=0.3,
        )
    )
    other = _one_run(client, admin, auth("sales"))
    # then the network decides otherwise
    assert first["feasibility"] != other["feasibility"]
    assert first["measurements"] != other["measurements"]
