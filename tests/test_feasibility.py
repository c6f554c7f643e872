"""3.5.1 Check feasibility before contract: TMF679 productOfferingQualification."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from etomcrm.db import session_scope, utcnow
from etomcrm.network.port import business_date, use_network
from etomcrm.network.simulator import Override, SimulatedNetwork
from etomcrm.security.service import SYSTEM
from etomcrm.selling.feasibility import qualify_sites
from tests import factories
from tests.conftest import TokenFactory
from tests.factories import CATALOG, STOCK, post
from tests.test_network import access_offering

POQ = "/tmf-api/productOfferingQualification/v4/productOfferingQualification"


@pytest.fixture
def forced() -> Iterator[dict[str, Override]]:
    """Overrides of the simulated network the test fills in, per site id."""
    overrides: dict[str, Override] = {}
    use_network(SimulatedNetwork(overrides=overrides))
    yield overrides
    use_network(None)


def poq_body(offering_id: str, *site_ids: str, customer_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "description": "Feasibility of the dealer sites",
        "productOfferingQualificationItem": [
            {
                "id": str(n),
                "productOffering": {"id": offering_id},
                "product": {
                    "place": [
                        {
                            "id": site_id,
                            "role": "installationAddress",
                            "@referredType": "GeographicSite",
                        }
                    ]
                },
            }
            for n, site_id in enumerate(site_ids, start=1)
        ],
    }
    if customer_id:
        body["relatedParty"] = [
            {"id": customer_id, "@referredType": "Customer", "role": "customer"}
        ]
    return body


def characteristic(item: dict[str, Any], name: str) -> Any:
    found = [c["value"] for c in item["product"]["productCharacteristic"] if c["name"] == name]
    assert len(found) == 1, item
    return found[0]


def activation_date(item: dict[str, Any]) -> date:
    return datetime.fromisoformat(item["expectedActivationDate"]).date()


def router_stock(client: TestClient, headers: dict[str, str], available: int, days: int) -> None:
    router = post(client, f"{CATALOG}/productSpecification", {"name": "Managed router"}, headers)
    post(
        client,
        f"{STOCK}/productStock",
        {
            "name": "Managed router in the central warehouse",
            "productStockStatusType": "available",
            "productStockLevel": {"amount": available, "units": "unit"},
            "stockedProduct": {
                "name": "Managed router",
                "productSpecification": {"id": router["id"]},
                "productCharacteristic": [{"name": "replenishmentLeadTimeDays", "value": days}],
            },
        },
        headers,
    )


def test_sites_are_qualified_from_the_network_with_lead_times_and_reasons(
    client: TestClient, admin: dict[str, str], auth: TokenFactory, forced: dict[str, Override]
) -> None:
    # given a customer with three sites: one plain, one unreachable, one needing a special build
    customer = factories.customer(client, admin)
    plain, unreachable, special = (
        factories.site(client, admin, customer["id"], city)["id"]
        for city in ("München", "Passau", "Bayreuth")
    )
    forced.update({plain: "on_time", unreachable: "unserviceable", special: "special_build"})
    offering = access_offering(client, admin, 100)["id"]
    router_stock(client, admin, available=10, days=21)
    # when sales asks for feasibility
    response = client.post(
        POQ, json=poq_body(offering, plain, unreachable, special), headers=auth("sales")
    )
    # then it is answered at once, one item per site
    assert response.status_code == 201, response.text
    poq = response.json()
    assert poq["state"] == "done" and poq["instantSyncQualification"] is True
    assert poq["qualificationResult"] == "yellow"
    assert poq["relatedParty"] == [
        {"id": customer["id"], "@referredType": "Customer", "role": "customer"}
    ]
    first, second, third = poq["productOfferingQualificationItem"]
    assert first["qualificationItemResult"] == "qualified" and first["state"] == "done"
    assert characteristic(first, "specialBuild") is False
    lead = characteristic(first, "leadTimeDays")
    assert 14 <= lead <= 24 and characteristic(first, "materialLeadTimeDays") == 0
    assert activation_date(first) == business_date(utcnow()) + timedelta(days=lead)
    # the unreachable site is unqualified with the network's reason
    assert second["qualificationItemResult"] == "unqualified"
    assert "expectedActivationDate" not in second
    (reason,) = second["eligibilityUnavailabilityReason"]
    assert reason["code"] == "notServiceable"
    assert "no access network within reach" in reason["label"]
    # the special build is qualified, flagged, and explained
    assert third["qualificationItemResult"] == "qualified"
    assert characteristic(third, "specialBuild") is True
    assert "special build" in third["note"][0]["text"]
    # and it is stored as answered
    stored = client.get(f"{POQ}/{poq['id']}", headers=admin).json()
    assert stored["productOfferingQualificationItem"] == poq["productOfferingQualificationItem"]


def test_a_special_build_adds_lead_time(
    client: TestClient, admin: dict[str, str], forced: dict[str, Override]
) -> None:
    customer = factories.customer(client, admin)
    site = factories.site(client, admin, customer["id"])["id"]
    offering = access_offering(client, admin, 10)["id"]
    forced[site] = "on_time"
    plain = post(client, POQ, poq_body(offering, site), admin)
    forced[site] = "special_build"
    special = post(client, POQ, poq_body(offering, site), admin)
    plain_days = characteristic(plain["productOfferingQualificationItem"][0], "leadTimeDays")
    special_days = characteristic(special["productOfferingQualificationItem"][0], "leadTimeDays")
    assert 10 <= special_days - plain_days <= 20


def test_the_same_site_gets_the_same_answer_twice(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given the network as configured (no overrides) and several sites
    customer = factories.customer(client, admin)
    sites = [
        factories.site(client, admin, customer["id"], city)["id"]
        for city in ("Köln", "Stuttgart", "Karlsruhe", "Ingolstadt")
    ]
    offering = access_offering(client, admin, 1000)["id"]

    def answers() -> list[tuple[Any, ...]]:
        items = post(client, POQ, poq_body(offering, *sites), admin)[
            "productOfferingQualificationItem"
        ]
        return [
            (
                item["qualificationItemResult"],
                item.get("expectedActivationDate"),
                item.get("eligibilityUnavailabilityReason"),
                item["product"].get("productCharacteristic"),
                item["note"][0]["text"],
            )
            for item in items
        ]

    # when asked twice, then the answers are the same
    assert answers() == answers()


def test_router_stock_is_allotted_and_sites_beyond_it_wait_for_replenishment(
    client: TestClient, admin: dict[str, str], forced: dict[str, Override]
) -> None:
    # given one router in stock, replenished in 45 days, and two plain sites
    customer = factories.customer(client, admin)
    first_site, second_site = (
        factories.site(client, admin, customer["id"], city)["id"] for city in ("Ulm", "Hof")
    )
    forced.update({first_site: "on_time", second_site: "on_time"})
    router_stock(client, admin, available=1, days=45)
    offering = access_offering(client, admin, 10)["id"]
    # when both are qualified
    first, second = post(client, POQ, poq_body(offering, first_site, second_site), admin)[
        "productOfferingQualificationItem"
    ]
    # then the first takes the router in stock, the second waits for replenishment
    assert characteristic(first, "materialLeadTimeDays") == 0
    assert characteristic(first, "leadTimeDays") == characteristic(first, "networkLeadTimeDays")
    assert characteristic(second, "materialLeadTimeDays") == 45
    assert characteristic(second, "leadTimeDays") == 45
    assert "replenishment takes 45 days" in second["note"][1]["text"]


def test_an_item_with_several_sites_is_answered_per_site_and_the_customer_is_inferred(
    client: TestClient, admin: dict[str, str], forced: dict[str, Override]
) -> None:
    customer = factories.customer(client, admin)
    sites = [factories.site(client, admin, customer["id"], c)["id"] for c in ("Bonn", "Trier")]
    forced.update({s: "unserviceable" for s in sites})
    offering = access_offering(client, admin, 10)["id"]
    body = {
        "productOfferingQualificationItem": [
            {"id": "A", "productOffering": {"id": offering}},
        ],
        "place": [{"id": s, "role": "installationAddress"} for s in sites],
    }
    poq = post(client, POQ, body, admin)
    items = poq["productOfferingQualificationItem"]
    assert [i["id"] for i in items] == ["A.1", "A.2"]
    assert [i["product"]["place"][0]["id"] for i in items] == sites
    assert poq["qualificationResult"] == "red"
    assert poq["relatedParty"][0]["id"] == customer["id"]


def test_a_customer_sees_and_qualifies_only_its_own(
    client: TestClient, admin: dict[str, str], auth: TokenFactory, forced: dict[str, Override]
) -> None:
    # given two customers, each with a site and a qualification
    mine = factories.customer(client, admin, "BMW AG")
    theirs = factories.customer(client, admin, "Audi AG")
    my_site = factories.site(client, admin, mine["id"])["id"]
    their_site = factories.site(client, admin, theirs["id"])["id"]
    offering = access_offering(client, admin, 100)["id"]
    me = auth("customer", customer_id=mine["id"])
    # when the customer asks about its own site, it may
    own = post(client, POQ, poq_body(offering, my_site), me)
    assert own["relatedParty"][0]["id"] == mine["id"]
    other = post(client, POQ, poq_body(offering, their_site), admin)
    # then it sees only its own
    listed = client.get(POQ, headers=me)
    assert [p["id"] for p in listed.json()] == [own["id"]]
    assert listed.headers["X-Total-Count"] == "1"
    assert client.get(f"{POQ}/{own['id']}", headers=me).status_code == 200
    assert client.get(f"{POQ}/{other['id']}", headers=me).status_code == 404
    # and may not ask about another customer's site, nor in another customer's name
    assert client.post(POQ, json=poq_body(offering, their_site), headers=me).status_code == 422
    response = client.post(
        POQ, json=poq_body(offering, my_site, customer_id=theirs["id"]), headers=me
    )
    assert response.status_code == 403
    # nor change an answer
    assert (
        client.patch(f"{POQ}/{own['id']}", json={"description": "x"}, headers=me).status_code == 403
    )


def test_an_answer_is_not_rewritten_but_a_note_may_be_added(
    client: TestClient, admin: dict[str, str], auth: TokenFactory, forced: dict[str, Override]
) -> None:
    customer = factories.customer(client, admin)
    site = factories.site(client, admin, customer["id"])["id"]
    forced[site] = "unserviceable"
    offering = access_offering(client, admin, 100)["id"]
    poq = post(client, POQ, poq_body(offering, site), admin)
    sales = auth("sales")
    item = dict(poq["productOfferingQualificationItem"][0], qualificationItemResult="qualified")
    response = client.patch(
        f"{POQ}/{poq['id']}", json={"productOfferingQualificationItem": [item]}, headers=sales
    )
    assert response.status_code == 409
    assert "Ask again with a new one" in response.json()["message"]
    response = client.patch(
        f"{POQ}/{poq['id']}",
        json={"note": [{"id": "1", "text": "customer told: site cannot be connected"}]},
        headers=sales,
    )
    assert response.status_code == 200
    assert (
        response.json()["productOfferingQualificationItem"]
        == poq["productOfferingQualificationItem"]
    )


def test_bad_requests_say_what_to_fix(
    client: TestClient, admin: dict[str, str], auth: TokenFactory, forced: dict[str, Override]
) -> None:
    customer = factories.customer(client, admin)
    other = factories.customer(client, admin, "Audi AG")
    site = factories.site(client, admin, customer["id"])["id"]
    offering = access_offering(client, admin, 100)["id"]
    sales = auth("sales")

    def refused(body: dict[str, Any], status: int, words: str) -> None:
        response = client.post(POQ, json=body, headers=sales)
        assert response.status_code == status, response.text
        assert words in response.json()["message"]

    refused({"description": "nothing"}, 400, "at least one productOfferingQualificationItem")
    refused(
        {"productOfferingQualificationItem": [{"id": "1", "productOffering": {"id": offering}}]},
        400,
        "names no site",
    )
    refused(poq_body("no-such-offering", site), 422, "productOffering no-such-offering")
    refused(poq_body(offering, "no-such-site"), 422, "geographicSite no-such-site")
    refused(poq_body(offering, site, customer_id=other["id"]), 400, "do not belong to customer")
    body = poq_body(offering, site)
    body["productOfferingQualificationItem"][0]["product"]["place"][0]["@referredType"] = (
        "GeographicAddress"
    )
    refused(body, 400, "must reference a GeographicSite")
    # a role that does not sell may not ask
    response = client.post(POQ, json=poq_body(offering, site), headers=auth("billing"))
    assert response.status_code == 403


def test_qualify_sites_is_the_service_function_behind_it(
    client: TestClient, admin: dict[str, str], forced: dict[str, Override]
) -> None:
    customer = factories.customer(client, admin)
    sites = [factories.site(client, admin, customer["id"], c)["id"] for c in ("Fulda", "Kiel")]
    forced.update({sites[0]: "on_time", sites[1]: "unserviceable"})
    offering = access_offering(client, admin, 100)["id"]
    with session_scope() as session:
        poq = qualify_sites(
            session, SYSTEM, customer_id=customer["id"], site_ids=sites, offering_id=offering
        )
    assert poq["state"] == "done" and poq["qualificationResult"] == "yellow"
    assert [i["qualificationItemResult"] for i in poq["productOfferingQualificationItem"]] == [
        "qualified",
        "unqualified",
    ]
    stored = client.get(f"{POQ}/{poq['id']}", headers=admin).json()
    assert stored["productOfferingQualificationItem"] == poq["productOfferingQualificationItem"]
