"""The Pre-Sale flow: from a customer's request through feasibility, education and a
negotiated quote to the order, with every step and the people who took it on record."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from etomcrm.cli import app as cli
from tests import factories
from tests.conftest import TokenFactory
from tests.polling import until
from tests.quote_helpers import QUOTES, action, educate, load_bmw
from tests.test_fulfillment_flow import FLOWS, ORDERING, complete_contract_data

REQUESTS = "/tmf-api/partyInteraction/v4/customerRequest"
POQ = "/tmf-api/productOfferingQualification/v4/productOfferingQualification"


def _place(site_id: str) -> dict[str, Any]:
    return {
        "place": [{"id": site_id, "role": "installationAddress", "@referredType": "GeographicSite"}]
    }


def test_a_request_becomes_an_order_through_feasibility_education_and_a_negotiated_quote(
    client: TestClient, auth: TokenFactory, flows: None, network: dict[str, Any]
) -> None:
    # given BMW (contract data complete) and its sites in the catalog's world
    bmw = load_bmw()
    admin, anna, bernd = auth("admin"), auth("sales"), auth("sales")
    complete_contract_data(client, admin, bmw.customer_id)
    bmw_user = auth("customer", customer_id=bmw.customer_id)
    sites = bmw.site_ids[:3]
    access = bmw.offerings["Site access 100 Mbit/s"]

    # when BMW asks for extranet access through the portal
    request = client.post(
        REQUESTS,
        json={
            "channel": "portal",
            "subject": "Offer for extranet access at our dealers",
            "description": "quote please",
        },
        headers=bmw_user,
    )
    assert request.status_code == 201, request.text
    request_id = request.json()["id"]

    # then a pre-sale flow takes it up and waits for a decision on a quote
    def presale() -> dict[str, Any] | None:
        for flow in client.get(f"{FLOWS}/processFlow", headers=admin).json():
            if flow["processFlowSpecification"] == "presale":
                return flow  # type: ignore[no-any-return]
        return None

    flow = until(presale, seconds=180)
    assert flow is not None and flow["state"] == "active"

    # when sales checks feasibility, drafts a quote with 15 % off, revises it, has it
    # approved by a second person, and presents effort and risks
    poq = client.post(
        POQ,
        json={
            "relatedParty": [
                {"id": bmw.customer_id, "@referredType": "Customer", "role": "customer"}
            ],
            "productOfferingQualificationItem": [
                {"id": str(n), "productOffering": {"id": access}, "product": _place(site)}
                for n, site in enumerate(sites, start=1)
            ],
        },
        headers=anna,
    )
    assert poq.status_code == 201, poq.text
    draft = client.post(
        QUOTES,
        json={
            "relatedParty": [
                {"id": bmw.customer_id, "@referredType": "Customer", "role": "customer"}
            ],
            "discountPercent": 15,
            "quoteItem": [
                {"productOffering": {"id": access}, "product": _place(s)} for s in sites[:2]
            ],
        },
        headers=anna,
    )
    assert draft.status_code == 201, draft.text
    quote_id = draft.json()["id"]
    revised = client.patch(
        f"{QUOTES}/{quote_id}",
        json={
            "quoteItem": [{"productOffering": {"id": access}, "product": _place(s)} for s in sites]
        },
        headers=anna,
    )
    assert revised.status_code == 200 and revised.json()["version"] == "2", revised.text
    assert action(client, quote_id, "submit", anna).json()["state"] == "pending"
    assert action(client, quote_id, "approve", bernd).json()["state"] == "approved"
    educate(client, quote_id, anna)
    # (meanwhile anna checks feasibility for another customer too: not BMW's case)
    other = factories.customer(client, admin, "Audi AG")
    other_site = factories.site(client, admin, other["id"], "Ingolstadt")
    other_poq = client.post(
        POQ,
        json={
            "relatedParty": [{"id": other["id"], "@referredType": "Customer", "role": "customer"}],
            "productOfferingQualificationItem": [
                {"id": "1", "productOffering": {"id": access}, "product": _place(other_site["id"])}
            ],
        },
        headers=anna,
    )
    assert other_poq.status_code == 201, other_poq.text

    # and BMW accepts
    accepted = client.patch(f"{QUOTES}/{quote_id}", json={"state": "accepted"}, headers=bmw_user)
    assert accepted.status_code == 200, accepted.text

    # then the flow places the order, and the order runs to completion
    def order() -> dict[str, Any] | None:
        for candidate in client.get(f"{ORDERING}/productOrder", headers=admin).json():
            if candidate["quote"][0]["id"] == quote_id and candidate["state"] == "completed":
                return candidate  # type: ignore[no-any-return]
        return None

    placed = until(order, seconds=180)
    assert placed is not None, client.get(f"{ORDERING}/productOrder", headers=admin).json()
    assert len(placed["productOrderItem"]) == 3
    # (and BMW accepts what was delivered, 3.5.5)
    accepted_order = client.patch(
        f"{ORDERING}/productOrder/{placed['id']}",
        json={"customerAcceptance": {"state": "accepted"}},
        headers=bmw_user,
    )
    assert accepted_order.status_code == 200, accepted_order.text

    def surveyed() -> bool:
        flows = client.get(f"{FLOWS}/processFlow", headers=admin).json()
        return any(
            f["processFlowSpecification"] == "post-ordering" and f["state"] == "completed"
            for f in flows
        )

    assert until(surveyed, seconds=180)

    # and the case reads as one timeline from the request (or the quote) to the survey,
    # naming the people who took the steps they took
    trace = CliRunner().invoke(cli, ["trace", quote_id], terminal_width=200)
    assert trace.exit_code == 0, trace.output
    for expected in (
        "presale",
        "ordering",
        "post-ordering",
        "3.2.2",
        "3.4.1",
        "3.3.1",
        "3.5.1",
        "3.4.2",
        "3.4.3",
        "3.5.3",
        "3.5.5",
        "3.9.5",
    ):
        assert expected in trace.output, (expected, trace.output)
    by_request = CliRunner().invoke(cli, ["trace", request_id], terminal_width=200)
    assert by_request.output == trace.output
    presale_tasks = client.get(f"{FLOWS}/processFlow/{flow['id']}/taskFlow", headers=admin).json()
    outcomes = [
        c["value"] for t in presale_tasks for c in t["characteristic"] if c["name"] == "outcome"
    ]
    assert "quote revised to version 2" in outcomes and "quote approved" in outcomes
    # only BMW's own feasibility check is on BMW's record
    assert [o for o in outcomes if "site(s) checked" in o] == ["3 site(s) checked, 0 not qualified"]
    actors = {p["id"] for t in presale_tasks for p in t["relatedParty"]}
    assert len(actors) >= 3  # etomcrm, the two sales people (and BMW's user)
    assert (
        client.get(f"{FLOWS}/processFlow/{flow['id']}", headers=admin).json()["state"]
        == "completed"
    )
