"""The simulated network's topology: PoPs per German state, one access link per active
product with a site, the customer's view of it, and planned maintenance windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from etomcrm.core.errors import InvalidRequest
from etomcrm.db import session_scope
from etomcrm.network.maintenance import announce_maintenance, maintenance_for
from etomcrm.network.models import MaintenanceWindowRow, NetworkLinkRow, NetworkPopRow
from etomcrm.network_view.topology import build_topology, region_of, topology_of
from tests import factories
from tests.factories import SITE, post
from tests.test_network import access_offering

PRODUCT = "/tmf-api/productInventory/v4/product"
T0 = datetime(2026, 6, 1, tzinfo=UTC)


def located_site(
    client: TestClient, headers: dict[str, str], customer_id: str, city: str, **place: str
) -> str:
    body = {
        "name": f"Dealer {city}",
        "status": "active",
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "place": [{"@type": "GeographicAddress", "city": city, "country": "DE", **place}],
    }
    return str(post(client, f"{SITE}/geographicSite", body, headers)["id"])


def product(
    client: TestClient,
    headers: dict[str, str],
    customer_id: str,
    site_id: str | None,
    offering_id: str,
    status: str = "active",
) -> str:
    body: dict[str, Any] = {
        "name": "Extranet site access",
        "status": status,
        "productOffering": {"id": offering_id},
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
    }
    if site_id:
        body["place"] = [{"id": site_id, "role": "installationAddress"}]
    return str(post(client, PRODUCT, body, headers)["id"])


def test_region_comes_from_the_state_name_or_code_then_the_postcode() -> None:
    assert region_of({"stateOrProvince": "Bayern"}) == "BY"
    assert region_of({"stateOrProvince": "DE-HE"}) == "HE"
    assert region_of({"postcode": "20095"}) == "HH"
    assert region_of({"postcode": "80809"}) == "BY"
    assert region_of({}) == "DE"


def test_topology_is_derived_from_active_products_with_a_site_and_built_once(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given BMW with three sites in two states, two of them with an active product, one
    # product in Hamburg not active yet, and one product without a site
    bmw = factories.customer(client, admin)["id"]
    munich = located_site(client, admin, bmw, "München", stateOrProvince="Bayern")
    nuremberg = located_site(client, admin, bmw, "Nürnberg", postcode="90402")
    hamburg = located_site(client, admin, bmw, "Hamburg", postcode="20095")
    fast, slow = access_offering(client, admin, 200)["id"], access_offering(client, admin, 50)
    p_munich = product(client, admin, bmw, munich, fast)
    p_nuremberg = product(client, admin, bmw, nuremberg, slow["id"])
    product(client, admin, bmw, hamburg, fast, status="created")
    product(client, admin, bmw, None, fast)
    # when the topology is built twice
    with session_scope() as session:
        first = build_topology(session, bmw, seed=7)
        first_links = {link.product_id: (link.id, link.pop_id) for link in first.links}
        bandwidths = {link.product_id: link.bandwidth_mbits for link in first.links}
    with session_scope() as session:
        second = build_topology(session, bmw, seed=7)
        second_links = {link.product_id: (link.id, link.pop_id) for link in second.links}
        link_count = session.scalar(select(func.count()).select_from(NetworkLinkRow))
        pops = session.scalars(select(NetworkPopRow.id)).all()
    # then one link per active product with a site, on a Bavarian PoP, bandwidth from
    # the offering; the second run created nothing and gave the same ids
    assert set(first_links) == {p_munich, p_nuremberg}
    assert bandwidths == {p_munich: 200, p_nuremberg: 50}
    assert all(pop.startswith("pop-by-") for _, pop in first_links.values())
    assert first.created_links == 2 and 1 <= first.created_pops <= 2
    assert second.created_links == 0 and second.created_pops == 0
    assert second_links == first_links
    assert link_count == 2
    assert sorted(pops) == sorted({pop for _, pop in first_links.values()})


def test_the_same_seed_hangs_a_site_on_the_same_pop(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer with ten Bavarian sites (Bavaria has two PoPs)
    bmw = factories.customer(client, admin)["id"]
    offering = access_offering(client, admin, 100)["id"]
    for n in range(10):
        site = located_site(client, admin, bmw, f"Ort {n}", stateOrProvince="BY")
        product(client, admin, bmw, site, offering)
    # when built, torn down and built again with the same seed
    with session_scope() as session:
        first = {link.site_id: link.pop_id for link in build_topology(session, bmw, seed=1).links}
    with session_scope() as session:
        session.query(NetworkLinkRow).delete()
    with session_scope() as session:
        again = {link.site_id: link.pop_id for link in build_topology(session, bmw, seed=1).links}
    # then every site is on the same PoP as before, and both Bavarian PoPs are used
    assert again == first
    assert set(first.values()) == {"pop-by-1", "pop-by-2"}


def test_the_customer_view_is_a_graph_of_its_own_sites_links_and_pops(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given BMW and MINI with one site each, MINI's link down
    bmw = factories.customer(client, admin)["id"]
    mini = factories.customer(client, admin, "MINI")["id"]
    offering = access_offering(client, admin, 100)["id"]
    bmw_site = located_site(client, admin, bmw, "Kiel", postcode="24103")
    mini_site = located_site(client, admin, mini, "Kiel", postcode="24105")
    product(client, admin, bmw, bmw_site, offering)
    product(client, admin, mini, mini_site, offering)
    with session_scope() as session:
        build_topology(session, bmw)
        mini_link = build_topology(session, mini).links[0]
        mini_link.status = "down"
    # when each customer's view is read
    with session_scope() as session:
        bmw_view = topology_of(session, bmw)
        mini_view = topology_of(session, mini)
    # then each sees only its own site and link, both on the Kiel PoP, with status
    assert [s["id"] for s in bmw_view["sites"]] == [bmw_site]
    assert [s["status"] for s in bmw_view["sites"]] == ["up"]
    assert [s["status"] for s in mini_view["sites"]] == ["down"]
    assert bmw_view["pops"] == [
        {"id": "pop-sh-1", "name": "PoP Kiel", "region": "SH", "status": "up"}
    ]
    assert {n["id"] for n in bmw_view["nodes"]} == {bmw_site, "pop-sh-1"}
    assert [(e["from"], e["to"]) for e in bmw_view["edges"]] == [(bmw_site, "pop-sh-1")]
    # and when the PoP goes down, every link on it shows down
    with session_scope() as session:
        pop = session.get(NetworkPopRow, "pop-sh-1")
        assert pop is not None
        pop.status = "down"
    with session_scope() as session:
        assert [e["status"] for e in topology_of(session, bmw)["edges"]] == ["down"]


@pytest.fixture
def two_links_on_one_pop(client: TestClient, admin: dict[str, str]) -> tuple[str, str, str]:
    bmw = factories.customer(client, admin)["id"]
    offering = access_offering(client, admin, 100)["id"]
    for city in ("Bremen", "Bremerhaven"):
        site = located_site(client, admin, bmw, city, stateOrProvince="Bremen")
        product(client, admin, bmw, site, offering)
    with session_scope() as session:
        links = sorted(link.id for link in build_topology(session, bmw).links)
    return "pop-hb-1", links[0], links[1]


def test_maintenance_on_a_pop_applies_to_all_its_links_and_is_announced_before(
    two_links_on_one_pop: tuple[str, str, str],
) -> None:
    pop, first, second = two_links_on_one_pop
    # given a PoP window on Sunday night, announced a week ahead, and one on the first
    # link only, announced the day before
    with session_scope() as session:
        pop_window = announce_maintenance(
            session,
            pop_id=pop,
            starts_at=T0 + timedelta(hours=1),
            ends_at=T0 + timedelta(hours=3),
            description="Router software upgrade",
            announced_at=T0 - timedelta(days=7),
        )
        announce_maintenance(
            session,
            link_id=first,
            starts_at=T0 + timedelta(hours=2),
            ends_at=T0 + timedelta(hours=4),
            description="Line card swap",
            announced_at=T0 - timedelta(days=1),
        )
        # announcing the same work again changes nothing
        again = announce_maintenance(
            session,
            pop_id=pop,
            starts_at=T0 + timedelta(hours=1),
            ends_at=T0 + timedelta(hours=3),
            description="Router software upgrade",
            announced_at=T0 - timedelta(days=7),
        )
    # when the SLA side asks for the day
    with session_scope() as session:
        windows = maintenance_for(session, [first, second], T0, T0 + timedelta(days=1))
        rows = session.scalars(select(MaintenanceWindowRow)).all()
    # then the PoP window counts for both links, merged with the link's own
    assert again == pop_window and len(rows) == 2
    assert all(row.announced_at < row.starts_at for row in rows)
    assert windows == {
        first: [(T0 + timedelta(hours=1), T0 + timedelta(hours=4))],
        second: [(T0 + timedelta(hours=1), T0 + timedelta(hours=3))],
    }
    # and a window reaching past the period is clipped to it
    with session_scope() as session:
        clipped = maintenance_for(
            session, [second], T0 + timedelta(hours=2), T0 + timedelta(days=1)
        )
    assert clipped == {second: [(T0 + timedelta(hours=2), T0 + timedelta(hours=3))]}


def test_maintenance_announced_late_or_on_nothing_is_refused(
    two_links_on_one_pop: tuple[str, str, str],
) -> None:
    pop, first, _ = two_links_on_one_pop
    with session_scope() as session:
        with pytest.raises(InvalidRequest, match="announced before it starts"):
            announce_maintenance(
                session,
                link_id=first,
                starts_at=T0,
                ends_at=T0 + timedelta(hours=1),
                description="Too late",
                announced_at=T0,
            )
        with pytest.raises(InvalidRequest, match="exactly one"):
            announce_maintenance(
                session,
                pop_id=pop,
                link_id=first,
                starts_at=T0,
                ends_at=T0 + timedelta(hours=1),
                description="Both",
                announced_at=T0 - timedelta(days=1),
            )
        with pytest.raises(InvalidRequest, match="ends after it starts"):
            announce_maintenance(
                session,
                pop_id=pop,
                starts_at=T0,
                ends_at=T0,
                description="Empty",
                announced_at=T0 - timedelta(days=1),
            )


def test_a_site_with_access_router_and_installation_gets_one_link_for_the_access(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a site with its access product and the router and installation sold with it
    bmw = factories.customer(client, admin)["id"]
    munich = located_site(client, admin, bmw, "München", stateOrProvince="Bayern")
    router = post(
        client, f"{factories.CATALOG}/productOffering", {"name": "Managed router"}, admin
    )["id"]
    access = product(client, admin, bmw, munich, access_offering(client, admin, 100)["id"])
    product(client, admin, bmw, munich, router)
    product(client, admin, bmw, munich, router)
    # when the topology is built
    with session_scope() as session:
        built = build_topology(session, bmw, seed=7)
        links = [(link.site_id, link.product_id, link.bandwidth_mbits) for link in built.links]
    # then the site has one link, carrying the access product's bandwidth
    assert links == [(munich, access, 100)]
