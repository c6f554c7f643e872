"""3.9.1 Establish and end the relationship: the customer's life cycle states."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope
from etomcrm.flows.models import TaskFlowRow
from etomcrm.network.models import NetworkServiceOrderRow
from tests.conftest import TokenFactory
from tests.factories import (
    CUSTOMER,
    INTERACTION,
    PARTY,
    accept_delivery,
    customer,
    organization,
    post,
    site,
)
from tests.polling import PROCESS_FLOWS, until
from tests.quote_helpers import QUOTES, action, draft, educate, load_bmw
from tests.test_fulfillment_flow import (
    INVENTORY,
    ORDERING,
    access_offering,
    complete_contract_data,
    contractable_customer,
    order_body,
    wait_for_state,
)


def _status(client: TestClient, headers: dict[str, str], customer_id: str, status: str) -> int:
    return client.patch(
        f"{CUSTOMER}/customer/{customer_id}", json={"status": status}, headers=headers
    ).status_code


def test_customer_starts_as_prospect_and_moves_along_the_life_cycle(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = customer(client, admin)
    assert created["status"] == "prospect"
    for status in ("active", "suspended", "active", "terminated"):
        assert _status(client, admin, created["id"], status) == 200, status


def test_illegal_transition_names_the_allowed_ones(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = customer(client, admin)
    response = client.patch(
        f"{CUSTOMER}/customer/{created['id']}", json={"status": "suspended"}, headers=admin
    )
    assert response.status_code == 409
    assert response.json()["code"] == "ILLEGAL_TRANSITION"
    assert "allowed from 'prospect': active, terminated" in response.json()["message"]
    _status(client, admin, created["id"], "terminated")
    response = client.patch(
        f"{CUSTOMER}/customer/{created['id']}", json={"status": "active"}, headers=admin
    )
    assert response.status_code == 409 and "final state" in response.json()["message"]


@pytest.mark.parametrize("status", ["suspended", "terminated", "whatever"])
def test_new_customer_cannot_start_in_a_later_state(
    client: TestClient, admin: dict[str, str], status: str
) -> None:
    org = organization(client, admin)
    response = client.post(
        f"{CUSTOMER}/customer",
        json={
            "name": "X",
            "status": status,
            "engagedParty": {"id": org["id"], "@referredType": "Organization"},
        },
        headers=admin,
    )
    assert response.status_code == 400


def test_active_customer_or_one_with_sites_is_not_deleted(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = customer(client, admin)
    _status(client, admin, created["id"], "active")
    response = client.delete(f"{CUSTOMER}/customer/{created['id']}", headers=admin)
    assert response.status_code == 409 and "terminate it first" in response.json()["message"]
    _status(client, admin, created["id"], "terminated")
    site(client, admin, created["id"])
    response = client.delete(f"{CUSTOMER}/customer/{created['id']}", headers=admin)
    assert response.status_code == 409 and "geographicSite" in response.json()["message"]


def test_engaged_party_is_not_deleted_under_its_customer(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = customer(client, admin)
    response = client.delete(f"{PARTY}/organization/{created['engagedParty']['id']}", headers=admin)
    assert response.status_code == 409
    assert "engaged party" in response.json()["message"]


def test_a_terminated_customer_cannot_order_as_staff_or_itself(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a customer able to contract, with a site, whose relationship has ended
    admin = auth("admin")
    ended = contractable_customer(client, admin)
    place = site(client, admin, ended["id"])
    offering = access_offering(client, admin)
    assert _status(client, admin, ended["id"], "terminated") == 200
    # when the order manager, or the customer itself, orders for it
    for headers in (auth("order_manager"), auth("customer", customer_id=ended["id"])):
        response = client.post(
            f"{ORDERING}/productOrder",
            json=order_body(ended["id"], offering, [place["id"]]),
            headers=headers,
        )
        # then the order is refused with the reason, and nothing is ordered
        assert response.status_code == 409, response.text
        assert response.json()["reason"] == "Customer relationship ended"
        assert f"customer {ended['id']} is terminated" in response.json()["message"]
    assert client.get(f"{ORDERING}/productOrder", headers=admin).json() == []


def test_a_terminated_customer_cannot_accept_a_quote(
    client: TestClient, auth: TokenFactory
) -> None:
    # given BMW with complete contract data and an approved quote it was educated on
    bmw = load_bmw()
    admin, sales = auth("admin"), auth("sales")
    complete_contract_data(client, admin, bmw.customer_id)
    quote = draft(bmw, sites=1)
    assert action(client, quote["id"], "submit", sales).json()["state"] == "approved"
    educate(client, quote["id"], sales)
    # when the relationship ends and BMW then accepts the quote
    assert _status(client, admin, bmw.customer_id, "terminated") == 200
    response = action(client, quote["id"], "accept", auth("customer", customer_id=bmw.customer_id))
    # then the acceptance is refused, saying why
    assert response.status_code == 409, response.text
    assert "is terminated: it cannot accept a quote" in response.json()["message"]
    assert client.get(f"{QUOTES}/{quote['id']}", headers=sales).json()["state"] == "approved"


def test_terminating_a_customer_disconnects_its_active_products(
    client: TestClient, auth: TokenFactory, flows: None, network: dict[str, Any]
) -> None:
    # given a customer with two sites in service (its order ran to active products)
    admin = auth("admin")
    leaving = contractable_customer(client, admin)
    sites = [site(client, admin, leaving["id"], city) for city in ("Ulm", "Hof")]
    order = post(
        client,
        f"{ORDERING}/productOrder",
        order_body(leaving["id"], access_offering(client, admin), [s["id"] for s in sites]),
        admin,
    )
    assert wait_for_state(client, admin, order["id"], {"completed", "failed"})["state"] == (
        "completed"
    )
    products = client.get(
        f"{INVENTORY}/product", params={"relatedParty.id": leaving["id"]}, headers=admin
    ).json()
    assert {p["status"] for p in products} == {"active"} and len(products) == 2
    accept_delivery(client, admin, order["id"])
    assert until(lambda: _all_flows_completed(client, admin), seconds=120)

    # when sales terminates the customer
    assert _status(client, admin, leaving["id"], "terminated") == 200

    # then the system places a disconnect order for both products, which the ordering
    # flow runs to its end
    def disconnect() -> dict[str, Any] | None:
        for candidate in client.get(f"{ORDERING}/productOrder", headers=admin).json():
            if candidate["id"] != order["id"] and candidate["state"] == "completed":
                return candidate  # type: ignore[no-any-return]
        return None

    done = until(disconnect, seconds=120)
    assert done is not None, client.get(f"{ORDERING}/productOrder", headers=admin).json()
    assert sorted(i["product"]["id"] for i in done["productOrderItem"]) == sorted(
        p["id"] for p in products
    )
    assert {i["action"] for i in done["productOrderItem"]} == {"delete"}
    # and the network ceased each site
    with session_scope() as session:
        ceased = session.scalars(
            select(NetworkServiceOrderRow.body).where(
                NetworkServiceOrderRow.body["externalId"].as_string().startswith(done["id"])
            )
        ).all()
    assert len(ceased) == 2
    assert {c["serviceOrderItem"][0]["action"] for c in ceased} == {"delete"}
    assert {c["serviceOrderItem"][0]["service"]["state"] for c in ceased} == {"terminated"}
    # and the products are terminated in the inventory
    ended = client.get(
        f"{INVENTORY}/product", params={"relatedParty.id": leaving["id"]}, headers=admin
    ).json()
    assert {p["status"] for p in ended} == {"terminated"}
    assert all("terminationDate" in p for p in ended)
    # and the disconnect's flows end without SLA monitoring or a survey
    assert until(lambda: _all_flows_completed(client, admin), seconds=120)
    with session_scope() as session:
        seeds = set(
            session.scalars(
                select(TaskFlowRow.seed_number).where(
                    TaskFlowRow.process_flow_id.in_(
                        [f"ordering-{done['id']}", f"post-ordering-{done['id']}"]
                    )
                )
            )
        )
        subjects = list(
            session.scalars(select(CommunicationMessageRow.body["subject"].as_string()))
        )
    assert "3.5.5" in seeds and "3.9.1" in seeds
    assert not seeds & {"3.7", "3.9.5"}
    assert "Your services are disconnected" in subjects
    # and billing's work list says to stop charging the ended products, once
    handed = client.get(
        f"{INTERACTION}/partyInteraction", params={"routedTo": "billing"}, headers=admin
    ).json()
    stops = [t for t in handed if t["reason"].startswith("Stop charging")]
    assert [t["reason"] for t in stops] == [f"Stop charging 2 product(s) of order {done['id']}"]


def _all_flows_completed(client: TestClient, headers: dict[str, str]) -> bool:
    flows = client.get(PROCESS_FLOWS, headers=headers).json()
    return bool(flows) and {f["state"] for f in flows} == {"completed"}


def test_terminating_a_customer_cancels_its_orders_not_yet_in_service(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a customer whose order is acknowledged but not yet worked on
    admin = auth("admin")
    leaving = contractable_customer(client, admin)
    place = site(client, admin, leaving["id"])
    order = post(
        client,
        f"{ORDERING}/productOrder",
        order_body(leaving["id"], access_offering(client, admin), [place["id"]]),
        admin,
    )
    # when the customer is terminated
    assert _status(client, admin, leaving["id"], "terminated") == 200
    # then the order is cancelled, saying why, and no disconnect order is placed (it has
    # no products yet)
    cancelled = client.get(f"{ORDERING}/productOrder/{order['id']}", headers=admin).json()
    assert cancelled["state"] == "cancelled"
    assert "customer relationship ended" in cancelled["cancellationReason"]
    assert [o["id"] for o in client.get(f"{ORDERING}/productOrder", headers=admin).json()] == [
        order["id"]
    ]


def test_a_disconnect_order_names_active_products_of_its_customer_once(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a customer with an active product at a site
    admin = auth("admin")
    leaving = contractable_customer(client, admin)
    place = site(client, admin, leaving["id"])
    offering = access_offering(client, admin)
    product = post(
        client,
        f"{INVENTORY}/product",
        {
            "name": offering["name"],
            "status": "active",
            "productOffering": {"id": offering["id"], "name": offering["name"]},
            "place": [{"id": place["id"], "@referredType": "GeographicSite", "role": "site"}],
            "relatedParty": [{"id": leaving["id"], "@referredType": "Customer"}],
        },
        admin,
    )

    def disconnect(product_id: str) -> Any:
        return client.post(
            f"{ORDERING}/productOrder",
            json={
                "relatedParty": [{"id": leaving["id"], "@referredType": "Customer"}],
                "productOrderItem": [
                    {"id": "1", "action": "delete", "product": {"id": product_id}}
                ],
            },
            headers=admin,
        )

    # when the order manager orders the product's disconnection
    placed = disconnect(product["id"])
    # then it is acknowledged, the item carrying the product's site and offering for the
    # network
    assert placed.status_code == 201, placed.text
    item = placed.json()["productOrderItem"][0]
    assert item["product"]["place"][0]["id"] == place["id"]
    assert item["productOffering"]["id"] == offering["id"]
    # and the same product is not disconnected twice, nor an unknown one at all
    twice = disconnect(product["id"])
    assert twice.status_code == 409 and "being disconnected" in twice.json()["message"]
    unknown = disconnect("no-such-product")
    assert unknown.status_code == 422 and "has no product" in unknown.json()["message"]
    # and an action other than add, delete or modify (suspend, resume) is refused,
    # saying what to do instead
    response = client.post(
        f"{ORDERING}/productOrder",
        json={
            "relatedParty": [{"id": leaving["id"], "@referredType": "Customer"}],
            "productOrderItem": [{"id": "1", "action": "noChange", "product": {"id": "x"}}],
        },
        headers=admin,
    )
    assert response.status_code == 400 and "'delete'" in response.json()["message"]
