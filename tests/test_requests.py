"""3.2.2 Handle customer requests: logged, classified, routed, worked; status visible."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from etomcrm.customer_interface.requests import classify
from tests.conftest import TokenFactory
from tests.factories import INTERACTION, customer

REQUESTS = f"{INTERACTION}/customerRequest"


def _file(client: TestClient, headers: dict[str, str], **body: Any) -> tuple[int, dict[str, Any]]:
    response = client.post(REQUESTS, json=body, headers=headers)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("subject", "description", "expected"),
    [
        ("Site Munich is down", "No connection since 8:00, packet loss before", "problemHandling"),
        ("Question about invoice 2026-11", "We were charged twice", "billing"),
        ("Installation appointment", "When is the installation of our order?", "orderHandling"),
        ("Extranet for our dealers", "We would like a quote for 50 new sites", "selling"),
        ("Hello", "Please call me back", "selling"),
        ("Rechnung falsch", "Die Gutschrift fehlt", "billing"),
    ],
)
def test_keyword_rules_classify_requests(subject: str, description: str, expected: str) -> None:
    assert classify(subject, description)[0] == expected


def test_a_fault_outranks_a_bill_on_a_tie() -> None:
    # one problem keyword and one billing keyword: the fault wins
    cls, hits = classify("Outage", "see invoice")
    assert cls == "problemHandling" and hits == ["outage"]


def test_customer_files_a_request_and_follows_its_status(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given a customer with a portal token
    bmw = customer(client, admin)
    portal = auth("customer", customer_id=bmw["id"])
    # when it reports a fault through the portal
    status, request = _file(
        client,
        portal,
        channel="portal",
        subject="Dealer site Munich is down",
        description="No connection since 8:00",
    )
    # then the request is classified and routed to support, open
    assert status == 201, request
    assert request["@type"] == "CustomerRequest"
    assert request["classification"] == "problemHandling"
    assert request["classifiedBy"] == "rule" and "down" in request["classificationReason"]
    assert request["routedTo"] == "support" and request["status"] == "open"
    # and support works it; the customer sees each status
    support = auth("support")
    for step in ("inProgress", "resolved"):
        response = client.patch(
            f"{REQUESTS}/{request['id']}", json={"status": step}, headers=support
        )
        assert response.status_code == 200, response.text
        seen = client.get(f"{INTERACTION}/partyInteraction/{request['id']}", headers=portal)
        assert seen.status_code == 200 and seen.json()["status"] == step
    mine = client.get(REQUESTS, params={"status": "resolved"}, headers=portal)
    assert [r["id"] for r in mine.json()] == [request["id"]]


def test_another_customer_cannot_see_or_file_for_a_customer(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    bmw, audi = customer(client, admin, "BMW AG"), customer(client, admin, "Audi AG")
    bmw_portal = auth("customer", customer_id=bmw["id"])
    audi_portal = auth("customer", customer_id=audi["id"])
    _, request = _file(client, bmw_portal, channel="portal", subject="Invoice question")
    # another customer's request is not found, nor is it in its list
    assert (
        client.get(f"{INTERACTION}/partyInteraction/{request['id']}", headers=audi_portal)
    ).status_code == 404
    assert client.get(REQUESTS, headers=audi_portal).json() == []
    # and a customer cannot file a request in another customer's name
    status, error = _file(
        client, audi_portal, customerId=bmw["id"], channel="portal", subject="Invoice"
    )
    assert status == 404, error


def test_staff_log_phone_requests_and_override_the_classification(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    bmw = customer(client, admin)
    support = auth("support")
    # when support logs a call and decides it is a billing matter
    status, request = _file(
        client,
        support,
        customerId=bmw["id"],
        channel="phone",
        subject="Site Leipzig slow",
        description="Customer asks why the usage charge is so high",
        classification="billing",
    )
    # then the staff choice wins over the keywords
    assert status == 201, request
    assert request["classification"] == "billing" and request["classifiedBy"] == "staff"
    assert request["routedTo"] == "billing"
    # and billing re-routes it to support with a note
    response = client.patch(
        f"{REQUESTS}/{request['id']}",
        json={"classification": "problemHandling", "note": "actually a congested line"},
        headers=auth("billing"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["routedTo"] == "support"
    assert response.json()["note"][0]["text"] == "actually a congested line"
    # and it is on support's work list now, not on billing's
    for department, expected in (("support", [request["id"]]), ("billing", [])):
        listed = client.get(
            f"{INTERACTION}/partyInteraction", params={"routedTo": department}, headers=support
        )
        assert listed.status_code == 200, listed.text
        assert [i["id"] for i in listed.json()] == expected


def test_customer_may_not_classify_nor_use_staff_channels(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    bmw = customer(client, admin)
    portal = auth("customer", customer_id=bmw["id"])
    status, error = _file(client, portal, channel="portal", subject="x", classification="billing")
    assert status == 403 and "staff" in error["message"]
    status, error = _file(client, portal, channel="phone", subject="x")
    assert status == 400 and "logged by our staff" in error["message"]
    status, error = _file(client, admin, customerId=bmw["id"], channel="fax", subject="x")
    assert status == 400 and "portal, api, phone, email" in error["message"]


def test_status_follows_the_request_life_cycle(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    bmw = customer(client, admin)
    _, request = _file(client, admin, customerId=bmw["id"], channel="email", subject="Bill")
    path = f"{REQUESTS}/{request['id']}"
    response = client.patch(path, json={"status": "resolved"}, headers=admin)
    assert response.status_code == 409
    assert "allowed from 'open': closed, inProgress" in response.json()["message"]
    assert client.patch(path, json={"status": "closed"}, headers=admin).status_code == 200
    response = client.patch(path, json={"status": "inProgress"}, headers=admin)
    assert response.status_code == 409 and "final state" in response.json()["message"]
    # the customer reads but does not work requests
    portal = auth("customer", customer_id=bmw["id"])
    assert client.patch(path, json={"note": "hi"}, headers=portal).status_code == 403


def test_queue_shows_each_role_its_own_requests(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    bmw = customer(client, admin)
    _, fault = _file(client, admin, customerId=bmw["id"], channel="phone", subject="Outage")
    _, bill = _file(client, admin, customerId=bmw["id"], channel="email", subject="Invoice")
    support, billing = auth("support"), auth("billing")
    assert [r["id"] for r in client.get(REQUESTS, headers=support).json()] == [fault["id"]]
    assert [r["id"] for r in client.get(REQUESTS, headers=billing).json()] == [bill["id"]]
    everything = client.get(REQUESTS, headers=admin)
    assert everything.headers["X-Total-Count"] == "2"
    page = client.get(REQUESTS, params={"limit": 1}, headers=admin)
    assert page.status_code == 206 and len(page.json()) == 1
    response = client.get(REQUESTS, params={"queue": "nobody"}, headers=admin)
    assert response.status_code == 400 and "queues are" in response.json()["message"]


def test_queue_page_takes_two_statements(
    client: TestClient,
    admin: dict[str, str],
    auth: TokenFactory,
    count_queries: Callable[[], Any],
) -> None:
    bmw = customer(client, admin)
    for n in range(5):
        _file(client, admin, customerId=bmw["id"], channel="phone", subject=f"Outage {n}")
    support = auth("support")
    client.get(REQUESTS, headers=support)  # signs the token in once
    with count_queries() as counter:
        response = client.get(REQUESTS, headers=support)
    assert len(response.json()) == 5
    assert counter.count == 2, counter.statements


def test_a_selling_request_opens_a_sales_lead(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given a prospect asking for extranet access through the portal
    bmw = customer(client, admin)
    portal = auth("customer", customer_id=bmw["id"])
    status, request = _file(
        client,
        portal,
        channel="portal",
        subject="Extranet access for 50 dealer sites",
        description="Please send us a quote",
    )
    # then it is routed to sales and a lead names the customer
    assert status == 201, request
    assert request["classification"] == "selling" and request["routedTo"] == "sales"
    lead_ref = request["interactionItem"][0]["item"]
    assert lead_ref["@referredType"] == "SalesLead"
    lead = client.get(f"/tmf-api/sales/v4/salesLead/{lead_ref['id']}", headers=auth("sales"))
    assert lead.status_code == 200, lead.text
    assert lead.json()["name"] == "Extranet access for 50 dealer sites"
    assert any(p["id"] == bmw["id"] for p in lead.json()["relatedParty"])


def test_a_request_status_follows_its_machine_through_the_plain_tmf_patch_too(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a filed request
    admin = auth("admin")
    requester = customer(client, admin)
    filed = client.post(
        "/tmf-api/partyInteraction/v4/customerRequest",
        json={"customerId": requester["id"], "channel": "phone", "subject": "Invoice question"},
        headers=admin,
    )
    assert filed.status_code == 201, filed.text
    # when support jumps it straight to resolved through the generic TMF683 PATCH
    response = client.patch(
        f"/tmf-api/partyInteraction/v4/partyInteraction/{filed.json()['id']}",
        json={"status": "resolved"},
        headers=auth("support"),
    )
    # then it is refused, naming the allowed moves
    assert response.status_code == 409
    assert "allowed from 'open': closed, inProgress" in response.json()["message"]


def test_a_tmf683_customer_request_naming_the_customer_in_related_party_is_accepted(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given a customer and support staff who log its call
    bmw = customer(client, admin)
    support = auth("support")
    # when support files the request in the shape TMF683 defines
    status, request = _file(
        client,
        support,
        reason="Dealer site Munich is down",
        description="No connection since 8:00",
        channel=[{"id": "phone", "name": "phone"}],
        relatedParty=[{"id": bmw["id"], "@referredType": "Customer", "role": "customer"}],
    )
    # then it is filed for that customer, classified and routed
    assert status == 201, request
    assert request["reason"] == "Dealer site Munich is down"
    assert request["channel"][0]["id"] == "phone"
    assert request["relatedParty"][0]["id"] == bmw["id"]
    assert request["routedTo"] == "support"
    # and a body that names no customer and no reason gets a 400 that says what to add
    status, error = _file(client, support, reason="x", channel=[{"id": "phone"}])
    assert status == 400 and "relatedParty" in error["message"]
    status, error = _file(
        client,
        support,
        channel=[{"id": "phone"}],
        relatedParty=[{"id": bmw["id"], "@referredType": "Customer"}],
    )
    assert status == 400 and "reason" in error["message"]
