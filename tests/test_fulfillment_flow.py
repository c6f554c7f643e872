"""The Ordering and Post-Ordering flows, end to end through the API, on DBOS."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from etomcrm.cli import app as cli
from etomcrm.core import resources
from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope
from etomcrm.network.models import NetworkServiceOrderRow
from etomcrm.network.port import use_network
from etomcrm.network.simulator import SimulatedNetwork
from etomcrm.order_handling.service import PRODUCT_ORDER_KIND
from etomcrm.security.service import SYSTEM
from tests import factories
from tests.conftest import TokenFactory
from tests.polling import flow_in_state, until

ORDERING = "/tmf-api/productOrderingManagement/v4"
INVENTORY = "/tmf-api/productInventory/v4"
FLOWS = "/tmf-api/processFlowManagement/v4"


def contractable_customer(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    customer = factories.customer(client, headers)
    complete_contract_data(client, headers, customer["id"])
    return customer


def complete_contract_data(client: TestClient, headers: dict[str, str], customer_id: str) -> None:
    response = client.patch(
        f"{factories.CUSTOMER}/customer/{customer_id}",
        json={
            "characteristic": [
                {"name": "legalName", "value": "Bayerische Motoren Werke AG"},
                {"name": "vatId", "value": "DE129273398"},
            ],
            "contactMedium": [
                {
                    "mediumType": "email",
                    "contactType": "billing",
                    "characteristic": {
                        "emailAddress": "rechnung@bmw.example",
                        "contactType": "billing",
                    },
                },
                {
                    "mediumType": "postalAddress",
                    "contactType": "billing",
                    "characteristic": {
                        "street1": "Petuelring 130",
                        "postCode": "80809",
                        "city": "München",
                        "country": "DE",
                        "contactType": "billing",
                    },
                },
            ],
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    factories.paying_account(client, headers, customer_id)


def access_offering(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    return factories.post(
        client,
        f"{factories.CATALOG}/productOffering",
        {"name": "Site access 100 Mbit/s", "lifecycleStatus": "Launched"},
        headers,
    )


def order_body(customer_id: str, offering: dict[str, Any], site_ids: list[str]) -> dict[str, Any]:
    return {
        "description": "Extranet access",
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "productOrderItem": [
            {
                "id": str(number),
                "action": "add",
                "quantity": 1,
                "productOffering": {"id": offering["id"], "name": offering["name"]},
                "product": {
                    "place": [
                        {
                            "id": site_id,
                            "@referredType": "GeographicSite",
                            "role": "installationAddress",
                        }
                    ]
                },
                "itemPrice": [
                    {
                        "priceType": "recurring",
                        "recurringChargePeriod": "month",
                        "price": {"dutyFreeAmount": {"unit": "EUR", "value": 129.0}},
                    }
                ],
            }
            for number, site_id in enumerate(site_ids, start=1)
        ],
    }


def wait_for_state(
    client: TestClient,
    headers: dict[str, str],
    order_id: str,
    states: set[str],
    seconds: float = 180,
) -> dict[str, Any]:
    def order() -> dict[str, Any]:
        return client.get(f"{ORDERING}/productOrder/{order_id}", headers=headers).json()  # type: ignore[no-any-return]

    until(lambda: order()["state"] in states, seconds)
    return order()


def test_an_order_runs_to_active_products_with_delays_announced_and_a_failure_retried(
    client: TestClient, auth: TokenFactory, flows: None, network: dict[str, Any]
) -> None:
    # given a customer whose data is complete, three sites: one on time, one late, one
    # whose first activation fails
    admin = auth("admin")
    customer = contractable_customer(client, admin)
    sites = [
        factories.site(client, admin, customer["id"], city)
        for city in ("München", "Leipzig", "Köln")
    ]
    network[sites[1]["id"]] = "late"
    network[sites[2]["id"]] = "fail"
    offering = access_offering(client, admin)

    # when the order manager places the order
    manager = auth("order_manager")
    response = client.post(
        f"{ORDERING}/productOrder",
        json=order_body(customer["id"], offering, [s["id"] for s in sites]),
        headers=manager,
    )
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "acknowledged"
    order_id = response.json()["id"]

    # then the flow completes it
    order = wait_for_state(client, manager, order_id, {"completed", "partial", "failed"})
    assert order["state"] == "completed", order
    assert all(item["state"] == "completed" for item in order["productOrderItem"])
    late_item = next(
        i for i in order["productOrderItem"] if i["product"]["place"][0]["id"] == sites[1]["id"]
    )
    assert late_item["jeopardy"]["expectedDate"] > late_item["jeopardy"]["committedDate"]
    # the jeopardy showed on the order (the order manager's list) and is cleared now
    assert any(note["text"].startswith("Jeopardy: site") for note in order["note"])
    assert order["inJeopardy"] is False
    for flag, expected in (("true", []), ("false", [order_id])):
        listed = client.get(
            f"{ORDERING}/productOrder", params={"inJeopardy": flag}, headers=manager
        )
        assert listed.status_code == 200, listed.text
        assert [o["id"] for o in listed.json()] == expected

    # the products are active in the customer's inventory
    products = client.get(
        f"{INVENTORY}/product", params={"relatedParty.id": customer["id"]}, headers=manager
    ).json()
    assert sorted(p["place"][0]["id"] for p in products) == sorted(s["id"] for s in sites)
    assert {p["status"] for p in products} == {"active"}

    # the relationship is established
    customer_now = client.get(
        f"{factories.CUSTOMER}/customer/{customer['id']}", headers=admin
    ).json()
    assert customer_now["status"] == "active"

    # the network got one service order per site, plus one retry for the failed site
    with session_scope() as session:
        sent = session.scalar(select(func.count()).select_from(NetworkServiceOrderRow))
        subjects = sorted(
            session.scalars(select(CommunicationMessageRow.body["subject"].as_string()))
        )
    assert sent == 4
    assert "A site of your order will be late" in subjects
    assert "An activation of your order failed" in subjects
    assert "Your service is active" in subjects
    assert subjects.count("Your order is confirmed") == 1

    # and every step is on record with its seed number (TMF701 and the trace command); the
    # order is completed, the customer accepts it, and post-ordering sends its survey and
    # ends
    assert order["customerAcceptance"]["state"] == "awaiting"
    accepted = client.patch(
        f"{ORDERING}/productOrder/{order_id}",
        json={"customerAcceptance": {"state": "accepted"}},
        headers=auth("customer", customer_id=customer["id"]),
    )
    assert accepted.status_code == 200, accepted.text
    until(
        lambda: (
            {f["state"] for f in client.get(f"{FLOWS}/processFlow", headers=manager).json()}
            == {"completed"}
        ),
        seconds=60,
    )
    process_flows = client.get(f"{FLOWS}/processFlow", headers=manager).json()
    assert {f["processFlowSpecification"] for f in process_flows} == {"ordering", "post-ordering"}
    assert {f["state"] for f in process_flows} == {"completed"}
    seeds: set[str] = set()
    for flow in process_flows:
        tasks = client.get(f"{FLOWS}/processFlow/{flow['id']}/taskFlow", headers=manager)
        assert tasks.status_code == 200
        for task in tasks.json():
            seeds.update(c["value"] for c in task["characteristic"] if c["name"] == "seedNumber")
    assert {"3.4.4", "3.5.2", "3.5.3", "3.5.4", "3.5.5", "3.9.1", "3.9.5", "3.2.2"} <= seeds
    trace = CliRunner().invoke(cli, ["trace", order_id])
    assert trace.exit_code == 0, trace.output
    assert "3.5.5" in trace.output and "post-ordering" in trace.output


def test_an_order_for_a_customer_with_missing_data_is_refused_with_the_list(
    client: TestClient, auth: TokenFactory
) -> None:
    admin = auth("admin")
    customer = factories.customer(client, admin)
    site = factories.site(client, admin, customer["id"])
    offering = access_offering(client, admin)
    response = client.post(
        f"{ORDERING}/productOrder",
        json=order_body(customer["id"], offering, [site["id"]]),
        headers=admin,
    )
    assert response.status_code == 409
    message = response.json()["message"]
    assert "VAT id" in message and "billing contact" in message


def test_an_illegal_state_change_names_the_allowed_ones(
    client: TestClient, auth: TokenFactory
) -> None:
    admin = auth("admin")
    customer = contractable_customer(client, admin)
    site = factories.site(client, admin, customer["id"])
    order = factories.post(
        client,
        f"{ORDERING}/productOrder",
        order_body(customer["id"], access_offering(client, admin), [site["id"]]),
        admin,
    )
    response = client.patch(
        f"{ORDERING}/productOrder/{order['id']}", json={"state": "completed"}, headers=admin
    )
    assert response.status_code == 409
    assert "allowed from 'acknowledged'" in response.json()["message"]
    held = client.patch(
        f"{ORDERING}/productOrder/{order['id']}", json={"state": "held"}, headers=admin
    )
    assert held.status_code == 200 and held.json()["state"] == "held"


def test_the_order_manager_lists_the_orders_in_jeopardy(
    client: TestClient, auth: TokenFactory
) -> None:
    # given two orders, one with a late site (marked as the tracking step marks it)
    admin = auth("admin")
    customer = contractable_customer(client, admin)
    offering = access_offering(client, admin)
    orders = [
        factories.post(
            client,
            f"{ORDERING}/productOrder",
            order_body(
                customer["id"], offering, [factories.site(client, admin, customer["id"])["id"]]
            ),
            admin,
        )
        for _ in range(2)
    ]
    with session_scope() as session:
        resources.patch(session, PRODUCT_ORDER_KIND, SYSTEM, orders[1]["id"], {"inJeopardy": True})
    # when the order manager asks for the orders in jeopardy
    manager = auth("order_manager")
    listed = client.get(f"{ORDERING}/productOrder", params={"inJeopardy": "true"}, headers=manager)
    # then only the late one is listed
    assert listed.status_code == 200, listed.text
    assert [o["id"] for o in listed.json()] == [orders[1]["id"]]


def test_an_order_not_yet_active_is_cancelled_and_one_that_is_cannot_be(
    client: TestClient, auth: TokenFactory
) -> None:
    admin = auth("admin")
    customer = contractable_customer(client, admin)
    site = factories.site(client, admin, customer["id"])
    order = factories.post(
        client,
        f"{ORDERING}/productOrder",
        order_body(customer["id"], access_offering(client, admin), [site["id"]]),
        admin,
    )
    cancel = factories.post(
        client,
        f"{ORDERING}/cancelProductOrder",
        {
            "productOrder": {"id": order["id"], "@referredType": "ProductOrder"},
            "cancellationReason": "budget",
        },
        admin,
    )
    assert cancel["state"] == "done"
    cancelled = client.get(f"{ORDERING}/productOrder/{order['id']}", headers=admin).json()
    assert cancelled["state"] == "cancelled" and cancelled["cancellationReason"] == "budget"
    again = factories.post(
        client, f"{ORDERING}/cancelProductOrder", {"productOrder": {"id": order["id"]}}, admin
    )
    assert again["state"] == "terminatedWithError" and "cancelled" in again["description"]


def test_a_customer_sees_and_orders_only_for_itself(client: TestClient, auth: TokenFactory) -> None:
    admin = auth("admin")
    mine, theirs = contractable_customer(client, admin), contractable_customer(client, admin)
    offering = access_offering(client, admin)
    my_site = factories.site(client, admin, mine["id"])
    their_site = factories.site(client, admin, theirs["id"])
    their_order = factories.post(
        client,
        f"{ORDERING}/productOrder",
        order_body(theirs["id"], offering, [their_site["id"]]),
        admin,
    )
    me = auth("customer", customer_id=mine["id"])
    my_order = factories.post(
        client, f"{ORDERING}/productOrder", order_body(mine["id"], offering, [my_site["id"]]), me
    )
    assert client.get(f"{ORDERING}/productOrder/{their_order['id']}", headers=me).status_code == 404
    assert [o["id"] for o in client.get(f"{ORDERING}/productOrder", headers=me).json()] == [
        my_order["id"]
    ]
    # naming another customer's site is an unknown reference for this customer
    response = client.post(
        f"{ORDERING}/productOrder",
        json=order_body(mine["id"], offering, [their_site["id"]]),
        headers=me,
    )
    assert response.status_code == 422


def test_an_order_beyond_the_customer_s_credit_is_rejected_with_the_reason(
    client: TestClient, auth: TokenFactory, flows: None, network: dict[str, Any]
) -> None:
    # given a customer with a poor payment history (three late payments)
    admin = auth("admin")
    customer = contractable_customer(client, admin)
    current = client.get(f"{factories.CUSTOMER}/customer/{customer['id']}", headers=admin).json()
    client.patch(
        f"{factories.CUSTOMER}/customer/{customer['id']}",
        json={
            "characteristic": [
                *current["characteristic"],
                {"name": "latePaymentsLast12Months", "value": 3},
            ]
        },
        headers=admin,
    )
    site = factories.site(client, admin, customer["id"])
    # when it orders
    order = factories.post(
        client,
        f"{ORDERING}/productOrder",
        order_body(customer["id"], access_offering(client, admin), [site["id"]]),
        admin,
    )
    # then the flow rejects the order, says why on the order and tells the customer
    rejected = wait_for_state(client, admin, order["id"], {"rejected", "inProgress", "completed"})
    assert rejected["state"] == "rejected"
    assert "credit refused: 3 late payments" in rejected["note"][-1]["text"]
    with session_scope() as session:
        subjects = list(
            session.scalars(select(CommunicationMessageRow.body["subject"].as_string()))
        )
        sent = session.scalar(select(func.count()).select_from(NetworkServiceOrderRow))
    assert "Your order could not be accepted" in subjects and sent == 0


def test_an_order_cancelled_while_the_network_builds_stops_its_flow(
    client: TestClient, auth: TokenFactory, flows: None
) -> None:
    # given an order whose sites take a few seconds to build
    use_network(
        SimulatedNetwork(
            day_seconds=0.3, late_rate=0, failure_rate=0, unserviceable_rate=0, special_build_rate=0
        )
    )
    try:
        admin = auth("admin")
        customer = contractable_customer(client, admin)
        site = factories.site(client, admin, customer["id"])
        order = factories.post(
            client,
            f"{ORDERING}/productOrder",
            order_body(customer["id"], access_offering(client, admin), [site["id"]]),
            admin,
        )
        issued = wait_for_state(client, admin, order["id"], {"inProgress"})
        assert issued["state"] == "inProgress"
        # when the customer cancels it before the site is active
        cancel = factories.post(
            client,
            f"{ORDERING}/cancelProductOrder",
            {"productOrder": {"id": order["id"]}, "cancellationReason": "project stopped"},
            auth("customer", customer_id=customer["id"]),
        )
        assert cancel["state"] == "done"
        # then the flow stops at its next look: no product, the flow cancelled
        flow_id = f"ordering-{order['id']}"

        def stopped() -> bool:
            flow = client.get(f"{FLOWS}/processFlow/{flow_id}", headers=admin).json()
            return bool(flow["state"] == "cancelled")

        assert until(stopped)
        products = client.get(f"{INVENTORY}/product", headers=admin).json()
        assert products == []
    finally:
        use_network(None)


def test_a_held_order_waits_for_the_order_manager_and_completes_when_resumed(
    client: TestClient, auth: TokenFactory, flows: None
) -> None:
    # given an order whose site takes a few seconds to build
    use_network(
        SimulatedNetwork(
            day_seconds=0.15,
            late_rate=0,
            failure_rate=0,
            unserviceable_rate=0,
            special_build_rate=0,
        )
    )
    try:
        admin, manager = auth("admin"), auth("order_manager")
        customer = contractable_customer(client, admin)
        site = factories.site(client, admin, customer["id"])
        order = factories.post(
            client,
            f"{ORDERING}/productOrder",
            order_body(customer["id"], access_offering(client, admin), [site["id"]]),
            admin,
        )
        assert wait_for_state(client, manager, order["id"], {"inProgress"})["state"] == "inProgress"
        # when the order manager holds it (the site is not accessible, say)
        held = client.patch(
            f"{ORDERING}/productOrder/{order['id']}", json={"state": "held"}, headers=manager
        )
        assert held.status_code == 200, held.text
        # then the flow, looking when the network is ready, waits instead of completing
        flow_tasks = f"{FLOWS}/processFlow/ordering-{order['id']}/taskFlow"

        def waiting() -> bool:
            tasks = client.get(flow_tasks, headers=manager).json()
            return any(
                "waiting for the order manager" in c["value"]
                for t in tasks
                for c in t["characteristic"]
                if c["name"] == "outcome"
            )

        assert until(waiting)
        current = client.get(f"{ORDERING}/productOrder/{order['id']}", headers=manager).json()
        assert current["state"] == "held"
        # and when the order manager resumes it, the flow wakes and completes the order
        resumed = client.patch(
            f"{ORDERING}/productOrder/{order['id']}", json={"state": "inProgress"}, headers=manager
        )
        assert resumed.status_code == 200, resumed.text
        done = wait_for_state(client, manager, order["id"], {"completed", "partial", "failed"})
        assert done["state"] == "completed"
        # (the order manager records the customer's acceptance, given by phone)
        accepted = client.patch(
            f"{ORDERING}/productOrder/{order['id']}",
            json={"customerAcceptance": {"state": "accepted", "note": "by phone"}},
            headers=manager,
        )
        assert accepted.status_code == 200, accepted.text
        flow_id = f"post-ordering-{order['id']}"
        assert until(lambda: flow_in_state(client, manager, flow_id, "completed"))
    finally:
        use_network(None)
