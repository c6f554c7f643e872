"""3.4.2 Educate the customer: effort and risks per site, recorded before acceptance."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from etomcrm.db import new_id, session_scope
from etomcrm.selling.education import education_brief
from etomcrm.selling.models import ProductOfferingQualificationRow
from tests.conftest import TokenFactory
from tests.factories import INTERACTION, customer, site
from tests.quote_helpers import QUOTES, Bmw, draft, educate, load_bmw


@pytest.fixture
def bmw(db_url: str) -> Bmw:
    return load_bmw()


def _qualification(customer_id: str, site_id: str, item: dict[str, Any]) -> None:
    """A TMF679 answer as the feasibility process stores it (3.5.1)."""
    body = {
        "id": new_id(),
        "@type": "ProductOfferingQualification",
        "state": "done",
        "productOfferingQualificationDate": "2026-03-02T08:00:00Z",
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "productOfferingQualificationItem": [
            {
                "id": "1",
                "product": {"place": [{"id": site_id, "role": "installationAddress"}]},
                **item,
            }
        ],
    }
    with session_scope() as session:
        session.add(
            ProductOfferingQualificationRow(
                id=body["id"],
                at_type=body["@type"],
                status="done",
                owner_customer_id=customer_id,
                body=body,
                version=1,
            )
        )


def test_brief_gives_lead_time_effort_prerequisites_and_risks_per_site(bmw: Bmw) -> None:
    # given three sites: one with a special build taking 30 days, one the network cannot
    # serve, one not yet checked
    hq, munich, augsburg = bmw.site_ids[:3]
    _qualification(
        bmw.customer_id,
        hq,
        {
            "qualificationItemResult": "qualified",
            "product": {
                "place": [{"id": hq, "role": "installationAddress"}],
                "productCharacteristic": [
                    {"name": "leadTimeDays", "value": 30},
                    {"name": "specialBuild", "value": True},
                ],
            },
        },
    )
    _qualification(
        bmw.customer_id,
        munich,
        {
            "qualificationItemResult": "unqualified",
            "eligibilityUnavailabilityReason": [{"code": "notServiceable", "label": "no fibre"}],
        },
    )
    quote = draft(bmw, sites=3)
    # when the brief is computed
    with session_scope() as session:
        brief = education_brief(session, quote["id"])
    sites = {s["siteId"]: s for s in brief["sites"]}
    # then lead time is the longer of network and material (routers are in stock)
    assert sites[hq]["leadTimeDays"] == 30 and sites[hq]["materialLeadTimeDays"] == 0
    assert any("special build" in r for r in sites[hq]["risks"])
    assert any("unserviceable" in r and "no fibre" in r for r in sites[munich]["risks"])
    assert any("not yet checked" in r for r in sites[augsburg]["risks"])
    assert sites[augsburg]["networkLeadTimeDays"] is None
    # and effort: access 2 h (default) + router 1 h (default) + installation 4 h (its
    # appointment window) + SLA 0 h
    assert sites[hq]["installationEffortHours"] == 7
    assert brief["totalInstallationEffortHours"] == 21
    assert any("power" in p for p in sites[hq]["prerequisites"])
    assert any("rack space" in p for p in sites[hq]["prerequisites"])
    assert sites[hq]["prerequisites"][0].startswith("building access")
    assert brief["longestLeadTimeDays"] == 30 and brief["sitesAtRisk"] == 3


def test_material_shortage_sets_the_lead_time_when_the_network_is_faster(bmw: Bmw) -> None:
    # given 45 sites, each needing a router, 40 in stock; the last site is qualified with
    # an activation 10 days after the qualification
    last = bmw.site_ids[44]
    _qualification(
        bmw.customer_id,
        last,
        {
            "qualificationItemResult": "qualified",
            "expectedActivationDate": "2026-03-12T00:00:00Z",
        },
    )
    quote = draft(bmw, sites=45, offerings=("Site access 10 Mbit/s", "Managed router"), sla=None)
    with session_scope() as session:
        brief = education_brief(session, quote["id"])
    final = brief["sites"][44]
    # then the router's 21 days of replenishment outrun the network's 10
    assert final["siteId"] == last
    assert final["networkLeadTimeDays"] == 10 and final["materialLeadTimeDays"] == 21
    assert final["leadTimeDays"] == 21
    assert any("not in stock" in r for r in final["risks"])


def test_education_is_recorded_as_a_party_interaction_the_customer_can_read(
    client: TestClient, auth: TokenFactory, bmw: Bmw
) -> None:
    quote = draft(bmw, sites=1)
    # when sales records that the brief was presented
    recorded = educate(client, quote["id"], auth("sales"))
    # then it is a TMF683 interaction of @type CustomerEducation on BMW, naming the quote
    assert recorded["@type"] == "CustomerEducation"
    assert recorded["relatedParty"][0]["id"] == bmw.customer_id
    assert recorded["interactionItem"][0]["item"]["id"] == quote["id"]
    assert recorded["note"][0]["text"].startswith("Longest lead time")
    assert recorded["educationBrief"]["quoteVersion"] == "1"
    bmw_user = auth("customer", customer_id=bmw.customer_id)
    read = client.get(f"{INTERACTION}/partyInteraction/{recorded['id']}", headers=bmw_user)
    assert read.status_code == 200 and read.json()["presentedTo"] == "Katrin Weber"


def test_brief_and_record_are_scoped_to_the_customer(
    client: TestClient, auth: TokenFactory, admin: dict[str, str], bmw: Bmw
) -> None:
    quote = draft(bmw, sites=1)
    bmw_user = auth("customer", customer_id=bmw.customer_id)
    other = customer(client, admin, "Audi AG")
    site(client, admin, other["id"], "Ingolstadt")
    audi_user = auth("customer", customer_id=other["id"])
    # BMW reads the brief of its own quote
    own = client.get(f"{QUOTES}/{quote['id']}/educationBrief", headers=bmw_user)
    assert own.status_code == 200 and own.json()["quoteId"] == quote["id"]
    # another customer gets 404 for BMW's quote, on the brief and on the record
    assert (
        client.get(f"{QUOTES}/{quote['id']}/educationBrief", headers=audi_user).status_code == 404
    )
    response = client.post(
        f"{QUOTES}/{quote['id']}/education",
        json={"presentedTo": "x", "channel": "meeting"},
        headers=audi_user,
    )
    assert response.status_code == 404


def test_record_needs_whom_and_a_known_channel(
    client: TestClient, auth: TokenFactory, bmw: Bmw
) -> None:
    quote = draft(bmw, sites=1)
    sales = auth("sales")
    response = client.post(
        f"{QUOTES}/{quote['id']}/education",
        json={"presentedTo": "Katrin Weber", "channel": "pigeon"},
        headers=sales,
    )
    assert response.status_code == 400 and "meeting" in response.json()["message"]
    response = client.post(
        f"{QUOTES}/{quote['id']}/education",
        json={"presentedTo": " ", "channel": "phone"},
        headers=sales,
    )
    assert response.status_code == 400 and "to whom" in response.json()["message"]
