"""The record of business (orders, products, tickets, messages, interactions) is closed
or cancelled through its life cycle, never deleted (issue 12)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from etomcrm.bootstrap import KINDS
from tests import factories
from tests.conftest import TokenFactory
from tests.factories import CUSTOMER, INTERACTION, SITE, customer, interaction
from tests.test_fulfillment_flow import contractable_customer
from tests.test_order_completion import ORDERING, catalog, order_for

RECORD_OF_BUSINESS = {
    "productOrder",
    "cancelProductOrder",
    "product",
    "troubleTicket",
    "partyInteraction",
    "communicationMessage",
}


def test_every_record_of_business_kind_answers_delete_with_405_and_says_what_to_do(
    client: TestClient, admin: dict[str, str]
) -> None:
    kinds = {k.name: k for k in KINDS}
    assert {name for name, k in kinds.items() if k.ended_not_deleted} >= RECORD_OF_BUSINESS
    for name in RECORD_OF_BUSINESS:
        # when an admin deletes one (the refusal does not depend on the record)
        response = client.delete(f"{kinds[name].path}/any-id", headers=admin)
        # then 405 with a TMF error that says how it ends instead
        assert response.status_code == 405, name
        assert "never deleted" in response.json()["message"], name


def test_a_deleted_interaction_stays_in_the_contact_history(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given an interaction in a customer's contact history
    who = customer(client, admin)
    logged = interaction(client, admin, who["id"])
    href = f"{INTERACTION}/partyInteraction/{logged['id']}"
    # when an admin deletes it
    response = client.delete(href, headers=admin)
    # then it is refused and the interaction is still there, unchanged
    assert response.status_code == 405
    assert "close it through its status" in response.json()["message"]
    kept = client.get(href, headers=admin)
    assert kept.status_code == 200
    assert kept.json()["reason"] == logged["reason"]


def test_the_type_of_a_customer_is_fixed_when_it_is_created(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer
    who = customer(client, admin)
    href = f"{CUSTOMER}/customer/{who['id']}"
    # when a client changes its @type
    response = client.patch(href, json={"@type": "Organization"}, headers=admin)
    # then it is refused and the customer stays a Customer
    assert response.status_code == 400
    assert "@type is fixed" in response.json()["message"]
    assert client.get(href, headers=admin).json()["@type"] == "Customer"


def test_a_site_of_nobody_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    # when staff post an empty geographic site
    response = client.post(f"{SITE}/geographicSite", json={}, headers=admin)
    # then it is refused with what to add
    assert response.status_code == 400
    assert "relatedParty" in response.json()["message"]


def test_when_an_order_was_placed_is_recorded_by_etomcrm_not_by_the_client(
    client: TestClient, auth: TokenFactory
) -> None:
    # given an order posted with a back-dated orderDate and a completionDate
    admin, manager = auth("admin"), auth("order_manager")
    offerings = catalog(client, admin, routers=2, minimum=0, reorder=5)
    buyer = contractable_customer(client, admin)
    place = factories.site(client, admin, buyer["id"], "Bonn")
    body = order_for(buyer["id"], offerings, [place["id"]])
    body |= {"orderDate": "2020-01-01T00:00:00Z", "completionDate": "2020-01-02T00:00:00Z"}
    order = client.post(f"{ORDERING}/productOrder", json=body, headers=manager).json()
    # then etomcrm recorded when it received the order, and no completion
    assert not order["orderDate"].startswith("2020")
    assert "completionDate" not in order
    # and neither can be changed afterwards
    href = f"{ORDERING}/productOrder/{order['id']}"
    for attribute in ("orderDate", "completionDate"):
        changed = client.patch(href, json={attribute: "2020-01-01T00:00:00Z"}, headers=admin)
        assert changed.status_code == 400, attribute
        assert f"{attribute} is set by etomcrm" in changed.json()["message"]
