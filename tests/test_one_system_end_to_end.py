"""Issue 9, one system: from an empty database, through the HTTP API only, a customer's
request becomes a quote, an order and active sites under SLA Gold (SLAs, stock and
billing told); then the network's alarm and its measurements reach the same customer
as a ticket and an SLA violation, whose credit reaches billing once the repair is
confirmed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from etomcrm.db import utcnow
from etomcrm.flows import assurance
from etomcrm.flows.sla_violation import violation_workflow_id
from tests import factories
from tests.conftest import TokenFactory
from tests.polling import flow_in_state, until
from tests.qos_helpers import last_day_in_one_month, sla_level
from tests.test_fulfillment_flow import complete_contract_data

CATALOG = f"{factories.CATALOG}"
STOCK = f"{factories.STOCK}/productStock"
REQUESTS = f"{factories.INTERACTION}/customerRequest"
INTERACTIONS = f"{factories.INTERACTION}/partyInteraction"
QUOTES = "/tmf-api/quoteManagement/v4/quote"
ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
PRODUCTS = "/tmf-api/productInventory/v4/product"
SLAS = "/tmf-api/slaManagement/v2/sla"
VIOLATIONS = "/tmf-api/slaManagement/v2/slaViolation"
FLOWS = "/tmf-api/processFlowManagement/v4/processFlow"
NETWORK_VIEW = "/tmf-api/customerNetworkView/v1/customer"
ALARMS = "/tmf-api/alarmManagement/v4/alarm"
PROBLEMS = "/tmf-api/serviceProblemManagement/v4/serviceProblem"
TICKETS = "/tmf-api/troubleTicket/v4/troubleTicket"
MESSAGES = "/tmf-api/communicationManagement/v4/communicationMessage"
BATCH = "/etomcrm/v1/performance/measurementBatch"
MERGE = {"Content-Type": "application/merge-patch+json"}
CITIES = ("München", "Ulm", "Hof")
ROUTERS_IN_STOCK = 10


def _price(client: TestClient, admin: dict[str, str], name: str, kind: str, value: float) -> str:
    body: dict[str, Any] = {
        "name": name,
        "priceType": kind,
        "price": {"unit": "EUR", "value": value},
    }
    if kind == "recurring":
        body["recurringChargePeriodType"] = "month"
    return str(factories.post(client, f"{CATALOG}/productOfferingPrice", body, admin)["id"])


def _offering(
    client: TestClient, admin: dict[str, str], name: str, prices: list[str], **extra: Any
) -> dict[str, Any]:
    return factories.post(
        client,
        f"{CATALOG}/productOffering",
        {
            "name": name,
            "lifecycleStatus": "Launched",
            "productOfferingPrice": [{"id": p} for p in prices],
            **extra,
        },
        admin,
    )


def build_catalog(client: TestClient, admin: dict[str, str]) -> dict[str, dict[str, Any]]:
    """SLA Gold (level and offering), site access with a bandwidth, a managed router
    kept in stock and installation, each with its catalog prices."""
    sla_level(client, admin)
    gold_spec = client.get(
        f"{CATALOG}/productSpecification", params={"name": "SLA Gold"}, headers=admin
    ).json()[0]
    gold = _offering(
        client,
        admin,
        "SLA Gold",
        [_price(client, admin, "SLA Gold monthly", "recurring", 149.0)],
        productSpecification={"id": gold_spec["id"], "name": "SLA Gold"},
    )
    access = _offering(
        client,
        admin,
        "Site access 100 Mbit/s",
        [_price(client, admin, "Access monthly", "recurring", 429.0)],
        prodSpecCharValueUse=[
            {
                "name": "bandwidth",
                "valueType": "number",
                "productSpecCharacteristicValue": [
                    {"value": 100, "unitOfMeasure": "Mbit/s", "isDefault": True}
                ],
            }
        ],
    )
    router_spec = factories.post(
        client, f"{CATALOG}/productSpecification", {"name": "Managed router"}, admin
    )
    router = _offering(
        client,
        admin,
        "Managed router",
        [_price(client, admin, "Router purchase", "oneTime", 690.0)],
        productSpecification={"id": router_spec["id"], "name": "Managed router"},
    )
    warehouse = factories.post(
        client,
        STOCK,
        {
            "name": "Managed router in the central warehouse",
            "productStockStatusType": "available",
            "productStockLevel": {"amount": ROUTERS_IN_STOCK, "units": "unit"},
            "minStockLevel": {"amount": 3, "units": "unit"},
            "reorderQuantity": {"amount": 10, "units": "unit"},
            "stockedProduct": {
                "name": "Managed router",
                "productSpecification": {"id": router_spec["id"], "name": "Managed router"},
            },
        },
        admin,
    )
    installation = _offering(
        client,
        admin,
        "Installation",
        [_price(client, admin, "Installation per site", "oneTime", 950.0)],
    )
    return {
        "gold": gold,
        "access": access,
        "router": router,
        "installation": installation,
        "warehouse": warehouse,
    }


def new_customer(
    client: TestClient, sales: dict[str, str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """BMW AG (organization and customer) with complete contract data, and its sites."""
    bmw = factories.customer(client, sales)
    complete_contract_data(client, sales, bmw["id"])
    sites = [factories.site(client, sales, bmw["id"], city) for city in CITIES]
    return bmw, sites


def _seeds(client: TestClient, admin: dict[str, str], flow_id: str) -> list[str]:
    """The seed numbers of a flow's tasks so far (none before it begins)."""
    response = client.get(f"{FLOWS}/{flow_id}/taskFlow", headers=admin)
    if response.status_code != 200:
        return []
    return [
        c["value"]
        for t in response.json()
        for c in t["characteristic"]
        if c["name"] == "seedNumber"
    ]


def _flow_of(client: TestClient, admin: dict[str, str], spec: str) -> dict[str, Any] | None:
    for flow in client.get(FLOWS, headers=admin).json():
        if flow["processFlowSpecification"] == spec:
            return flow  # type: ignore[no-any-return]
    return None


def sell(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    bmw: dict[str, Any],
    sites: list[dict[str, Any]],
    catalog: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The customer's request through the Pre-Sale flow to a completed order."""
    admin, sales, portal = headers["admin"], headers["sales"], headers["portal"]
    # given BMW's request for an offer, which starts the Pre-Sale flow
    asked = client.post(
        REQUESTS,
        json={
            "channel": "portal",
            "subject": "Offer for extranet access at our dealers",
            "description": "Access, router and installation for three dealers, SLA Gold",
        },
        headers=portal,
    )
    assert asked.status_code == 201, asked.text
    presale = until(lambda: _flow_of(client, admin, "presale"))
    assert presale is not None and presale["state"] == "active", presale

    # when sales drafts the quote (access, router, installation per site; SLA Gold),
    # submits it and presents effort and risks, and BMW accepts it
    items = [
        {
            "productOffering": {"id": catalog[kind]["id"]},
            "quantity": 1,
            "product": {
                "place": [
                    {
                        "id": site["id"],
                        "@referredType": "GeographicSite",
                        "role": "installationAddress",
                    }
                ]
            },
        }
        for site in sites
        for kind in ("access", "router", "installation", "gold")
    ]
    drafted = client.post(
        QUOTES,
        json={
            "relatedParty": [{"id": bmw["id"], "@referredType": "Customer", "role": "customer"}],
            "quoteItem": items,
        },
        headers=sales,
    )
    assert drafted.status_code == 201, drafted.text
    quote = drafted.json()
    assert {i["quoteItemPrice"][0]["priceType"] for i in quote["quoteItem"]} == {
        "recurring",
        "oneTime",
    }
    levels = {
        c["value"]
        for i in quote["quoteItem"]
        for c in i["product"]["productCharacteristic"]
        if c["name"] == "slaLevel"
    }
    assert levels == {"SLA Gold"}
    submitted = client.post(f"{QUOTES}/{quote['id']}/submit", headers=sales)
    assert submitted.status_code == 200 and submitted.json()["state"] == "approved", submitted.text
    educated = client.post(
        f"{QUOTES}/{quote['id']}/education",
        json={"presentedTo": "Katrin Weber", "channel": "meeting"},
        headers=sales,
    )
    assert educated.status_code == 201, educated.text
    accepted = client.patch(f"{QUOTES}/{quote['id']}", json={"state": "accepted"}, headers=portal)
    assert accepted.status_code == 200, accepted.text

    # then the Pre-Sale flow places the order and the Ordering flow completes it
    def completed() -> dict[str, Any] | None:
        for order in client.get(ORDERS, headers=admin).json():
            if order["quote"][0]["id"] == quote["id"] and order["state"] == "completed":
                return order  # type: ignore[no-any-return]
        return None

    order = until(completed)
    assert order is not None, [
        (o["state"], o.get("jeopardyAlert")) for o in client.get(ORDERS, headers=admin).json()
    ]
    assert until(lambda: flow_in_state(client, admin, presale["id"], "completed"))
    return order


def check_completion(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    bmw: dict[str, Any],
    catalog: dict[str, dict[str, Any]],
    order: dict[str, Any],
) -> None:
    """SLAs, stock and billing after completion; the customer's acceptance ends the
    post-ordering flow."""
    admin, billing, portal = headers["admin"], headers["billing"], headers["portal"]
    # then each access product has exactly one SLA at once, and nothing else has one
    products = client.get(PRODUCTS, params={"relatedParty.id": bmw["id"]}, headers=admin).json()
    access = {p["id"] for p in products if p["productOffering"]["id"] == catalog["access"]["id"]}
    assert len(access) == len(CITIES)
    slas = client.get(SLAS, headers=admin).json()
    assert sorted(s["product"]["id"] for s in slas) == sorted(access)
    assert {s["slaSpecification"]["name"] for s in slas} == {"SLA Gold"}
    # and the routers installed left the stock
    warehouse = client.get(f"{STOCK}/{catalog['warehouse']['id']}", headers=admin).json()
    assert warehouse["productStockLevel"]["amount"] == ROUTERS_IN_STOCK - len(CITIES)

    # and billing's work list holds the charging start of the order (handed over just
    # after the completion's commit)
    def charging() -> list[dict[str, Any]]:
        tasks = client.get(INTERACTIONS, params={"routedTo": "billing"}, headers=billing).json()
        return [
            t
            for t in tasks
            if t["@type"] == "BillingTask"
            and {"id": order["id"], "@referredType": "ProductOrder", "role": "order"}
            in [i["item"] for i in t["interactionItem"]]
        ]

    assert [t["reason"] for t in until(charging)] == [
        f"Start charging {len(products)} product(s) of order {order['id']}"
    ]

    # when BMW accepts what was delivered
    factories.accept_delivery(client, portal, order["id"])
    # then the post-ordering flow sends the survey and ends
    post_ordering = f"post-ordering-{order['id']}"
    assert until(lambda: flow_in_state(client, admin, post_ordering, "completed"))
    assert "3.9.5" in _seeds(client, admin, post_ordering)


def access_link_of(
    client: TestClient, portal: dict[str, str], bmw: dict[str, Any], site: dict[str, Any]
) -> str:
    """The site's access link, as the customer network view shows it."""

    def links() -> list[dict[str, Any]]:
        view = client.get(f"{NETWORK_VIEW}/{bmw['id']}", headers=portal)
        assert view.status_code == 200, view.text
        return view.json()["topology"]["links"]  # type: ignore[no-any-return]

    shown = until(lambda: len(links()) == len(CITIES))
    assert shown, links()
    (link,) = [link for link in links() if link["siteId"] == site["id"]]
    return str(link["id"])


def raise_alarm(
    client: TestClient, headers: dict[str, dict[str, str]], bmw: dict[str, Any], link_id: str
) -> tuple[str, dict[str, Any], int]:
    """The OSS reports the link down and the scheduled correlation finds it: (service
    problem id, the customer's ticket, the alarm id)."""
    admin, network = headers["admin"], headers["network"]
    # when the network reports the site's access link down
    raised = utcnow().replace(microsecond=0)
    posted = client.post(
        ALARMS,
        json=factories.link_down_alarm(link_id, raised),
        headers=network,
    )
    assert posted.status_code == 201, posted.text
    # and the correlation schedule fires three minutes on, past the hold-down
    (problem_id,) = assurance.detect(raised - timedelta(minutes=5), raised + timedelta(minutes=3))

    # then a service problem names the link, and BMW has a ticket in work about it
    problem = client.get(f"{PROBLEMS}/{problem_id}", headers=network).json()
    assert problem["affectedResource"][0]["id"] == link_id

    def in_work() -> list[dict[str, Any]]:
        listed = client.get(TICKETS, params={"relatedParty.id": bmw["id"]}, headers=admin)
        return [t for t in listed.json() if t["status"] == "inProgress"]

    tickets = until(in_work)
    assert len(tickets) == 1, tickets
    assert {"id": problem_id, "@referredType": "ServiceProblem", "role": "cause"} in tickets[0][
        "relatedEntity"
    ]
    return problem_id, tickets[0], int(posted.json()["id"])


def break_the_sla(
    client: TestClient, headers: dict[str, dict[str, str]], link_id: str, ticket_id: str
) -> dict[str, Any]:
    """The OSS posts the link's last day, down all the time: the month is lost."""
    admin, network, portal = headers["admin"], headers["network"], headers["portal"]
    end = last_day_in_one_month()
    first = end - timedelta(hours=24)
    batch = [
        {
            "id": f"oss-{link_id}-{n}",
            "linkId": link_id,
            "intervalStart": (first + timedelta(minutes=5 * n)).isoformat(),
            "intervalSeconds": 300,
            "availability": 0.0,
            "latencyMs": 0.0,
            "lossPercent": 100.0,
            "bytesIn": 0,
            "bytesOut": 0,
        }
        for n in range(288)
    ]
    # when the batch arrives
    posted = client.post(BATCH, json={"measurement": batch}, headers=network)
    # then one SLA violation is recorded, carried by the open ticket (its cause is known)
    assert posted.status_code == 201, posted.text
    assert posted.json()["violationsRecorded"] == 1, posted.json()
    violation_id = posted.json()["slaViolation"][0]["id"]
    violation = client.get(f"{VIOLATIONS}/{violation_id}", headers=admin).json()
    assert violation["status"] == "open" and violation["credit"]["status"] == "owed"
    assert violation["troubleTicket"]["id"] == ticket_id
    assert violation["troubleTicket"]["linked"] is True
    # and BMW is told
    told = client.get(MESSAGES, headers=portal).json()
    assert [m for m in told if m["subject"].startswith("SLA not met in ")], told
    # and the violation's flow forwarded it (3.7.2, 3.6.2) and waits for the ticket
    flow_id = violation_workflow_id(str(violation_id))
    waiting = ["3.7.2", "3.6.2", "3.6.4"]
    assert until(lambda: _seeds(client, admin, flow_id) == waiting), _seeds(client, admin, flow_id)
    return violation  # type: ignore[no-any-return]


def repair_and_confirm(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    problem_id: str,
    ticket_id: str,
    alarm_id: int,
) -> None:
    """The network reports the repair (TMF656), BMW confirms, the OSS clears the alarm."""
    network, portal, admin = headers["network"], headers["portal"], headers["admin"]
    # when the network side reports the repair
    reported = client.patch(
        f"{PROBLEMS}/{problem_id}",
        json={
            "status": "resolved",
            "statusChangeReason": "fibre cut by street works near the site; spliced",
        },
        headers={**network, **MERGE},
    )
    assert reported.status_code == 200, reported.text
    # then the problem's flow resolves BMW's ticket and asks it to confirm
    resolved = until(
        lambda: client.get(f"{TICKETS}/{ticket_id}", headers=admin).json()["status"] == "resolved"
    )
    assert resolved, client.get(f"{TICKETS}/{ticket_id}", headers=admin).json()
    # when BMW confirms, and the OSS clears the alarm
    confirmed = client.post(f"{TICKETS}/{ticket_id}/confirmResolution", headers=portal)
    assert confirmed.status_code == 200, confirmed.text
    cleared = client.patch(f"{ALARMS}/{alarm_id}", json={"state": "cleared"}, headers=network)
    assert cleared.status_code == 200, cleared.text
    # then the problem's flow closes it
    assert until(
        lambda: flow_in_state(client, admin, assurance.problem_workflow_id(problem_id), "completed")
    )


def check_credit(
    client: TestClient, headers: dict[str, dict[str, str]], violation: dict[str, Any]
) -> None:
    """The violation closed, its credit on billing's work list once."""
    admin, billing = headers["admin"], headers["billing"]
    flow_id = violation_workflow_id(str(violation["id"]))
    assert until(lambda: flow_in_state(client, admin, flow_id, "completed"))
    assert "3.8.2" in _seeds(client, admin, flow_id)
    closed = client.get(f"{VIOLATIONS}/{violation['id']}", headers=admin).json()
    assert closed["status"] == "closed" and "confirmed" in closed["resolution"], closed
    assert closed["credit"]["status"] == "handedToBilling"
    tasks = client.get(INTERACTIONS, params={"routedTo": "billing"}, headers=billing).json()
    credits = [
        t
        for t in tasks
        if t["@type"] == "BillingTask"
        and any(i["item"]["@referredType"] == "SlaViolation" for i in t["interactionItem"])
    ]
    assert len(credits) == 1, credits
    assert credits[0]["interactionItem"][0]["item"]["id"] == str(violation["id"])
    credit = closed["credit"]
    assert credits[0]["reason"] == (
        f"SLA credit {credit['value']} {credit['unit']} for {closed['period']}"
    )


def test_a_request_becomes_active_sites_whose_outage_and_lost_sla_reach_support_and_billing(
    client: TestClient, auth: TokenFactory, flows: None, network: dict[str, Any]
) -> None:
    # given an empty system (the simulated network never late nor failing, so the
    # outcome does not hang on random site ids): admin builds the catalog, sales the
    # customer and its sites
    headers = {role: auth(role) for role in ("admin", "sales", "billing", "network")}
    catalog = build_catalog(client, headers["admin"])
    bmw, sites = new_customer(client, headers["sales"])
    headers["portal"] = auth("customer", customer_id=bmw["id"])

    # when BMW's request runs through Pre-Sale and Ordering
    order = sell(client, headers, bmw, sites, catalog)

    # then SLAs, stock and billing follow the completion, and BMW's acceptance ends it
    check_completion(client, headers, bmw, catalog, order)

    # when the network reports the first site's access link down
    link_id = access_link_of(client, headers["portal"], bmw, sites[0])
    problem_id, ticket, alarm_id = raise_alarm(client, headers, bmw, link_id)

    # and its measurements show the month's availability lost
    violation = break_the_sla(client, headers, link_id, ticket["id"])

    # when the network repairs and BMW confirms
    repair_and_confirm(client, headers, problem_id, ticket["id"], alarm_id)

    # then the violation closes and its credit reaches billing once
    check_credit(client, headers, violation)
