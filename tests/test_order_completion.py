"""3.5.5 Complete the order: every hand-off of completion received. SLAs made for the
access products, routers out of stock (allotted at acceptance, released on
cancellation, reordered below the minimum), billing handed the products, and the
customer's acceptance, given or deemed, before the satisfaction survey."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from etomcrm.catalog.stock import receive_stock
from etomcrm.core.bus import BUS
from etomcrm.db import session_scope
from etomcrm.order_handling import service as orders
from etomcrm.order_handling.events import ProductsActivated
from etomcrm.qos_sla.service import establish_slas, start_sla_monitoring
from etomcrm.security.service import SYSTEM
from tests import factories
from tests.conftest import TokenFactory
from tests.polling import flow_in_state, until
from tests.qos_helpers import sla_level
from tests.test_fulfillment_flow import contractable_customer, wait_for_state

ORDERING = "/tmf-api/productOrderingManagement/v4"
INVENTORY = "/tmf-api/productInventory/v4"
SLAS = "/tmf-api/slaManagement/v2/sla"
STOCK = f"{factories.STOCK}/productStock"
FLOWS = "/tmf-api/processFlowManagement/v4/processFlow"
SURVEYS = f"{factories.INTERACTION}/partyInteraction"
MERGE = {"Content-Type": "application/merge-patch+json"}


def catalog(
    client: TestClient, admin: dict[str, str], *, routers: int, minimum: int, reorder: int
) -> dict[str, Any]:
    """Site access (with a bandwidth), a managed router kept in stock, installation,
    traffic and the SLA level Gold."""
    sla_level(client, admin)
    access = factories.post(
        client,
        f"{factories.CATALOG}/productOffering",
        {
            "name": "Site access 100 Mbit/s",
            "lifecycleStatus": "Launched",
            "prodSpecCharValueUse": [
                {
                    "name": "bandwidth",
                    "valueType": "number",
                    "productSpecCharacteristicValue": [
                        {"value": 100, "unitOfMeasure": "Mbit/s", "isDefault": True}
                    ],
                }
            ],
        },
        admin,
    )
    router_spec = factories.post(
        client, f"{factories.CATALOG}/productSpecification", {"name": "Managed router"}, admin
    )
    router = factories.post(
        client,
        f"{factories.CATALOG}/productOffering",
        {
            "name": "Managed router",
            "lifecycleStatus": "Launched",
            "productSpecification": {"id": router_spec["id"], "name": "Managed router"},
        },
        admin,
    )
    warehouse = factories.post(
        client,
        STOCK,
        {
            "name": "Managed router in the central warehouse",
            "productStockStatusType": "available",
            "productStockLevel": {"amount": routers, "units": "unit"},
            "minStockLevel": {"amount": minimum, "units": "unit"},
            "reorderQuantity": {"amount": reorder, "units": "unit"},
            "stockedProduct": {
                "name": "Managed router",
                "productSpecification": {"id": router_spec["id"], "name": "Managed router"},
            },
        },
        admin,
    )
    installation, traffic = (
        factories.post(
            client,
            f"{factories.CATALOG}/productOffering",
            {"name": name, "lifecycleStatus": "Launched"},
            admin,
        )
        for name in ("Installation", "Traffic volume beyond included volume")
    )
    return {
        "access": access,
        "router": router,
        "installation": installation,
        "traffic": traffic,
        "warehouse": warehouse,
    }


def order_for(customer_id: str, offerings: dict[str, Any], site_ids: list[str]) -> dict[str, Any]:
    """Per site: access, router, installation and traffic, each sold with SLA Gold (as a
    quote marks every item of a site with the site's SLA level)."""
    items: list[dict[str, Any]] = []
    for site_id in site_ids:
        for kind, price_type, amount in (
            ("access", "recurring", 429.0),
            ("router", "oneTime", 690.0),
            ("installation", "oneTime", 950.0),
            ("traffic", "usage", 0.09),
        ):
            price: dict[str, Any] = {
                "name": f"{kind} charge",
                "priceType": price_type,
                "price": {"dutyFreeAmount": {"unit": "EUR", "value": amount}},
            }
            if price_type == "recurring":
                price["recurringChargePeriod"] = "month"
            items.append(
                {
                    "id": str(len(items) + 1),
                    "action": "add",
                    "quantity": 1,
                    "productOffering": {
                        "id": offerings[kind]["id"],
                        "name": offerings[kind]["name"],
                    },
                    "product": {
                        "place": [
                            {
                                "id": site_id,
                                "@referredType": "GeographicSite",
                                "role": "installationAddress",
                            }
                        ],
                        "productCharacteristic": [
                            {"name": "slaLevel", "valueType": "string", "value": "SLA Gold"}
                        ],
                    },
                    "itemPrice": [price],
                }
            )
    return {
        "description": "Extranet sites",
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "productOrderItem": items,
    }


def level(client: TestClient, headers: dict[str, str], stock_id: str) -> float:
    body = client.get(f"{STOCK}/{stock_id}", headers=headers).json()
    return float(body["productStockLevel"]["amount"])


def reserved(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get(STOCK, params={"productStockStatusType": "reserved"}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def task_outcomes(client: TestClient, headers: dict[str, str], flow_id: str) -> list[str]:
    tasks = client.get(f"{FLOWS}/{flow_id}/taskFlow", headers=headers).json()
    return [
        next(c["value"] for c in t["characteristic"] if c["name"] == "seedNumber")
        + " "
        + next(c["value"] for c in t["characteristic"] if c["name"] == "outcome")
        for t in tasks
    ]


def place_and_complete(
    client: TestClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = client.post(f"{ORDERING}/productOrder", json=body, headers=headers)
    assert response.status_code == 201, response.text
    order = wait_for_state(client, headers, response.json()["id"], {"completed", "partial"})
    assert order["state"] == "completed", order
    return order


def one_site_completed(
    client: TestClient, admin: dict[str, str], manager: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A contractable customer whose one-site order completed: (customer, order)."""
    offerings = catalog(client, admin, routers=5, minimum=1, reorder=5)
    customer = contractable_customer(client, admin)
    site = factories.site(client, admin, customer["id"])
    order = place_and_complete(client, manager, order_for(customer["id"], offerings, [site["id"]]))
    return customer, order


def accept(client: TestClient, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    response = client.patch(
        f"{ORDERING}/productOrder/{order_id}",
        json={"customerAcceptance": {"state": "accepted", "note": "all sites work"}},
        headers={**headers, **MERGE},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_completion_makes_one_sla_per_access_product_and_takes_the_routers_from_stock(
    client: TestClient, auth: TokenFactory, flows: None, network: dict[str, Any]
) -> None:
    activated: list[ProductsActivated] = []
    BUS.subscribe(ProductsActivated, activated.append)
    # given five routers in stock (minimum three, reorder ten) and a customer with three
    # sites, each ordered with access, router, installation and traffic under SLA Gold
    admin, manager = auth("admin"), auth("order_manager")
    offerings = catalog(client, admin, routers=5, minimum=3, reorder=10)
    warehouse = offerings["warehouse"]["id"]
    customer = contractable_customer(client, admin)
    sites = [factories.site(client, admin, customer["id"], c) for c in ("München", "Ulm", "Hof")]

    # when the order runs to completion
    order = place_and_complete(
        client, manager, order_for(customer["id"], offerings, [s["id"] for s in sites])
    )

    # then there is exactly one SLA per access product, referencing it, and none for
    # the routers, installations and traffic
    products = client.get(
        f"{INVENTORY}/product", params={"relatedParty.id": customer["id"]}, headers=manager
    ).json()
    assert len(products) == 12
    access = {p["id"] for p in products if p["productOffering"]["id"] == offerings["access"]["id"]}
    slas = client.get(SLAS, headers=manager).json()
    assert len(slas) == 3
    assert {s["product"]["id"] for s in slas} == access
    assert {s["slaSpecification"]["name"] for s in slas} == {"SLA Gold"}
    # the three routers left the stock: allotted at acceptance, taken out at completion
    assert level(client, manager, warehouse) == 2
    assert reserved(client, manager) == []
    # and the stock fell below its minimum once: one reorder of ten on the work list
    reorders = client.get(STOCK, params={"reorder.state": "raised"}, headers=manager).json()
    assert [(r["id"], r["reorder"]["quantity"]["amount"]) for r in reorders] == [(warehouse, 10)]
    # and billing was handed every product with its charges
    assert [e.order_id for e in activated] == [order["id"]]
    handed = activated[0]
    assert handed.customer_id == customer["id"] and len(handed.products) == 12
    router_charge = next(
        p.charges[0] for p in handed.products if p.offering_id == offerings["router"]["id"]
    )
    assert (router_charge.price_type, str(router_charge.amount)) == ("oneTime", "690.0")
    # and the trace says what happened, no more
    outcomes = task_outcomes(client, manager, f"post-ordering-{order['id']}")
    assert any(o.startswith("3.7 SLA monitoring started: 3 SLA(s)") for o in outcomes), outcomes
    assert any(o.startswith("3.8 charging start handed to billing") for o in outcomes), outcomes
    assert any("3 unit(s) of material taken from stock" in o for o in outcomes), outcomes

    # when a second order takes the stock further down (2 → 1)
    more = factories.site(client, admin, customer["id"], "Passau")
    second = place_and_complete(client, manager, order_for(customer["id"], offerings, [more["id"]]))
    # then the stock went down by its router, and no second reorder is raised: the
    # stock crossed its minimum once
    assert level(client, manager, warehouse) == 1
    again = client.get(STOCK, params={"reorder.state": "raised"}, headers=manager).json()
    assert [r["reorder"]["raisedDate"] for r in again] == [reorders[0]["reorder"]["raisedDate"]]
    assert len(client.get(SLAS, headers=manager).json()) == 4

    # and the monthly QoS run's safety net finds nothing left to make, and monitoring
    # started again (a completion step replayed after a crash) makes no second SLA
    with session_scope() as session:
        assert establish_slas(session) == 0
        replayed = start_sla_monitoring(session, sorted(access))
    assert {s["id"] for s in replayed} == {s["id"] for s in slas}
    assert len(client.get(SLAS, headers=manager).json()) == 4

    for done in (order, second):
        accept(client, manager, done["id"])
    flow_ids = [f"post-ordering-{done['id']}" for done in (order, second)]
    assert until(lambda: all(flow_in_state(client, manager, f, "completed") for f in flow_ids))


def test_a_cancelled_order_gives_its_routers_back_and_a_stock_never_goes_negative(
    client: TestClient, auth: TokenFactory
) -> None:
    # given two routers in stock and an order for three sites, accepted (3.5.3)
    admin, manager = auth("admin"), auth("order_manager")
    offerings = catalog(client, admin, routers=2, minimum=0, reorder=5)
    warehouse = offerings["warehouse"]["id"]
    customer = contractable_customer(client, admin)
    sites = [factories.site(client, admin, customer["id"], c) for c in ("Bonn", "Kiel", "Jena")]
    order = factories.post(
        client,
        f"{ORDERING}/productOrder",
        order_for(customer["id"], offerings, [s["id"] for s in sites]),
        manager,
    )
    with session_scope() as session:
        assert orders.accept_order(session, order["id"]).accepted
    # then the two routers there are allotted to two sites, the third waits for
    # replenishment, and the stock reads zero, not minus one
    allotted = reserved(client, manager)
    assert len(allotted) == 2
    assert {a["reservedFor"]["productOrder"]["id"] for a in allotted} == {order["id"]}
    assert {a["reservedFor"]["place"]["id"] for a in allotted} < {s["id"] for s in sites}
    assert level(client, manager, warehouse) == 0
    accepted = client.get(f"{ORDERING}/productOrder/{order['id']}", headers=manager).json()
    assert any("waiting for replenishment" in n["text"] for n in accepted["note"])
    # and a change that would make the stock negative is refused, saying why
    negative = client.patch(
        f"{STOCK}/{warehouse}",
        json={"productStockLevel": {"amount": -1, "units": "unit"}},
        headers={**manager, **MERGE},
    )
    assert negative.status_code == 409, negative.text
    assert "never negative" in negative.json()["message"]

    # when the customer cancels the order
    cancel = factories.post(
        client,
        f"{ORDERING}/cancelProductOrder",
        {"productOrder": {"id": order["id"]}, "cancellationReason": "project stopped"},
        auth("customer", customer_id=customer["id"]),
    )
    assert cancel["state"] == "done"
    # then its allotment is back in the warehouse
    assert reserved(client, manager) == []
    assert level(client, manager, warehouse) == 2


def test_the_customer_accepts_the_completed_order_before_the_survey(
    client: TestClient, auth: TokenFactory, flows: None, network: dict[str, Any]
) -> None:
    # given a completed order awaiting the customer's acceptance
    admin, manager = auth("admin"), auth("order_manager")
    customer, order = one_site_completed(client, admin, manager)
    acceptance = order["customerAcceptance"]
    assert acceptance["state"] == "awaiting"
    completed_at = datetime.fromisoformat(order["completionDate"])
    assert datetime.fromisoformat(acceptance["dueDate"]) == orders.acceptance_due(completed_at, 5)
    flow_id = f"post-ordering-{order['id']}"
    assert until(
        lambda: any(
            "awaiting the customer's acceptance" in o
            for o in task_outcomes(client, manager, flow_id)
        )
    )
    assert survey_of(client, manager, customer["id"]) is None
    katrin = auth("customer", customer_id=customer["id"])
    # a customer changes nothing else on its order
    other = client.patch(
        f"{ORDERING}/productOrder/{order['id']}",
        json={"description": "mine now"},
        headers={**katrin, **MERGE},
    )
    assert other.status_code == 403, other.text

    # when the customer accepts it through the API
    accepted = accept(client, katrin, order["id"])

    # then the acceptance is on the order with its date and who gave it
    assert accepted["customerAcceptance"]["state"] == "accepted"
    assert accepted["customerAcceptance"]["note"] == "all sites work"
    assert accepted["customerAcceptance"]["by"]["role"] == "customer"
    # and it is given once: the same word again changes nothing, taking it back is refused
    again = accept(client, katrin, order["id"])
    assert again["customerAcceptance"]["date"] == accepted["customerAcceptance"]["date"]
    back = client.patch(
        f"{ORDERING}/productOrder/{order['id']}",
        json={"customerAcceptance": {"state": "awaiting"}},
        headers={**katrin, **MERGE},
    )
    assert back.status_code == 409, back.text
    assert "recorded once" in back.json()["message"]
    # and the flow, woken, records the acceptance and then sends the survey
    assert until(lambda: flow_in_state(client, manager, flow_id, "completed"))
    outcomes = task_outcomes(client, manager, flow_id)
    accepted_at = next(i for i, o in enumerate(outcomes) if "customer accepted the order" in o)
    surveyed_at = next(i for i, o in enumerate(outcomes) if o.startswith("3.9.5"))
    assert accepted_at < surveyed_at, outcomes
    assert outcomes[accepted_at].startswith("3.5.5")
    assert survey_of(client, manager, customer["id"]) is not None


def test_an_order_not_objected_to_is_deemed_accepted_at_the_end_of_the_period(
    client: TestClient, auth: TokenFactory, flows: None, network: dict[str, Any]
) -> None:
    # given a completed order awaiting acceptance until its due date
    admin, manager = auth("admin"), auth("order_manager")
    customer, order = one_site_completed(client, admin, manager)
    due = datetime.fromisoformat(order["customerAcceptance"]["dueDate"])
    flow_id = f"post-ordering-{order['id']}"
    # when the order is looked at a second before the period ends, nothing changes
    with session_scope() as session:
        early = orders.settle_acceptance(session, order["id"], due - timedelta(seconds=1))
    assert early.state == "awaiting"
    # and when it is looked at after the period ended (the clock injected, not waited)
    with session_scope() as session:
        late = orders.settle_acceptance(session, order["id"], due + timedelta(minutes=1))
    # then the order is deemed accepted on the due date, the flow goes on, records it and
    # sends the survey after it
    assert (late.state, late.date) == ("deemedAccepted", due)
    current = client.get(f"{ORDERING}/productOrder/{order['id']}", headers=manager).json()
    assert current["customerAcceptance"]["state"] == "deemedAccepted"
    assert datetime.fromisoformat(current["customerAcceptance"]["date"]) == due
    assert until(lambda: flow_in_state(client, manager, flow_id, "completed"))
    outcomes = task_outcomes(client, manager, flow_id)
    deemed = next(i for i, o in enumerate(outcomes) if "deemed accepted on" in o)
    assert outcomes[deemed].startswith("3.5.5") and "5 business days" in outcomes[deemed]
    assert deemed < next(i for i, o in enumerate(outcomes) if o.startswith("3.9.5"))
    assert survey_of(client, manager, customer["id"]) is not None


def test_the_acceptance_period_counts_business_days_in_bavaria() -> None:
    # Thursday 24 December 2026, 10:00 in Berlin: Christmas, the weekend and New Year
    # are not business days
    completed = datetime(2026, 12, 24, 9, 0, tzinfo=UTC)
    assert orders.acceptance_due(completed, 5) == datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    # 6 January (Epiphany) is a holiday in Bavaria
    assert orders.acceptance_due(datetime(2027, 1, 5, 9, 0, tzinfo=UTC), 1) == datetime(
        2027, 1, 7, 9, 0, tzinfo=UTC
    )
    assert orders.acceptance_due(completed, 0) == completed


def survey_of(
    client: TestClient, headers: dict[str, str], customer_id: str
) -> dict[str, Any] | None:
    surveys = client.get(
        SURVEYS,
        params={"@type": "SatisfactionSurvey", "relatedParty.id": customer_id},
        headers=headers,
    ).json()
    return surveys[0] if surveys else None


def test_a_stock_counted_below_its_minimum_raises_one_reorder_until_it_is_received(
    client: TestClient, auth: TokenFactory
) -> None:
    # given twelve routers in stock, minimum ten, reorder thirty
    admin, manager = auth("admin"), auth("order_manager")
    warehouse = catalog(client, admin, routers=12, minimum=10, reorder=30)["warehouse"]["id"]
    counted = {**manager, **MERGE}

    def count(amount: int) -> dict[str, Any]:
        response = client.patch(
            f"{STOCK}/{warehouse}",
            json={"productStockLevel": {"amount": amount, "units": "unit"}},
            headers=counted,
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    # when a count finds ten (not below the minimum), then nine, then eight
    assert "reorder" not in count(10)
    raised = count(9)["reorder"]
    still = count(8)["reorder"]
    # then one reorder of thirty is raised, at the crossing, and on the work list
    assert (raised["state"], raised["quantity"]["amount"]) == ("raised", 30)
    assert still == raised
    listed = client.get(STOCK, params={"reorder.state": "raised"}, headers=manager).json()
    assert [s["id"] for s in listed] == [warehouse]
    # and when the delivery is booked, the reorder is received and off the work list
    with session_scope() as session:
        received = receive_stock(session, SYSTEM, warehouse, Decimal(30))
    assert received["productStockLevel"]["amount"] == 38
    assert received["reorder"]["state"] == "received"
    assert client.get(STOCK, params={"reorder.state": "raised"}, headers=manager).json() == []
