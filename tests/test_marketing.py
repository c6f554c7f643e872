"""3.3.1 Issue and distribute marketing collateral, 3.3.2 Track campaign results."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from etomcrm.db import session_scope
from etomcrm.marketing.service import record_campaign_response
from etomcrm.security.service import Principal, Role
from etomcrm.selling.prospects import close_opportunity, qualify_lead
from tests.conftest import TokenFactory
from tests.factories import SITE, customer, post
from tests.test_communication import COMMUNICATION, customer_with_contacts

MARKETING = "/tmf-api/marketing/v4"
DOCUMENTS = "/tmf-api/document/v4"
SALES = "/tmf-api/sales/v4"
MARKETER = Principal(id="u-mkt", name="mia.marketing", role=Role.MARKETING)
SELLER = Principal(id="u-sales", name="sarah.sales", role=Role.SALES)


def site_in(client: TestClient, headers: dict[str, str], customer_id: str, region: str) -> None:
    post(
        client,
        f"{SITE}/geographicSite",
        {
            "name": f"Dealer {region}",
            "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
            "place": [
                {
                    "@type": "GeographicAddress",
                    "city": "X",
                    "country": "DE",
                    "stateOrProvince": region,
                }
            ],
        },
        headers,
    )


def brochure(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    return post(
        client,
        f"{DOCUMENTS}/document",
        {
            "name": "Dealer extranet brochure",
            "documentType": "brochure",
            "lifecycleState": "published",
            "binaryAttachment": [
                {
                    "@type": "Attachment",
                    "url": "https://extranet-services.example/brochure.pdf",
                    "mimeType": "application/pdf",
                }
            ],
        },
        headers,
    )


def campaign_body(collateral_id: str, **segment: Any) -> dict[str, Any]:
    return {
        "name": "Extranet for Bavarian dealers",
        "description": "One network for all your dealer sites.",
        "budget": {"unit": "EUR", "value": 3000},
        "targetSegment": segment,
        "collateral": [{"id": collateral_id, "@referredType": "Document"}],
    }


def test_campaign_reaches_the_segment_without_opted_out_contacts(
    client: TestClient, auth: TokenFactory
) -> None:
    admin, marketing = auth("admin"), auth("marketing")
    # given three customers in Bavaria (one opted out entirely) and one in Hesse
    bmw = customer_with_contacts(client, admin, "BMW AG")
    audi = customer_with_contacts(client, admin, "Audi AG", contact_opt_out=True)
    mini = customer_with_contacts(client, admin, "Mini GmbH", company_opt_out=True)
    opel = customer_with_contacts(client, admin, "Opel AG")
    for who, region in ((bmw, "Bayern"), (audi, "Bayern"), (mini, "Bayern"), (opel, "Hessen")):
        site_in(client, admin, who["id"], region)
    doc = brochure(client, marketing)
    campaign = post(
        client,
        f"{MARKETING}/campaign",
        campaign_body(doc["id"], stateOrProvince=["bayern"]),
        marketing,
    )
    assert campaign["status"] == "planned"
    # when it is distributed twice
    path = f"{MARKETING}/campaign/{campaign['id']}/distribute"
    first = client.post(path, headers=marketing)
    assert first.status_code == 200, first.text
    again = client.post(path, headers=marketing)
    # then BMW's two contacts and Audi's company address got it, the second run sent nothing
    distribution = again.json()["distribution"]
    assert again.json()["status"] == "active"
    assert distribution["customerCount"] == 3
    assert distribution["messageCount"] == 2
    assert distribution["recipientCount"] == 3
    assert distribution["optedOutCount"] == 3  # Audi's contact, both of Mini's
    messages = client.get(f"{COMMUNICATION}/communicationMessage", headers=admin).json()
    receivers = sorted(r["email"] for m in messages for r in m["receiver"])
    assert receivers == ["anna@bmw.example", "info@audi.example", "info@bmw.example"]
    assert messages[0]["attachment"][0]["url"].endswith("brochure.pdf")
    assert "Dealer extranet brochure" in messages[0]["content"]


def test_results_count_responses_leads_wins_and_cost_per_lead(
    client: TestClient, auth: TokenFactory
) -> None:
    admin, marketing = auth("admin"), auth("marketing")
    bmw = customer_with_contacts(client, admin, "BMW AG")
    doc = brochure(client, marketing)
    campaign = post(
        client,
        f"{MARKETING}/campaign",
        campaign_body(doc["id"], customer=[{"id": bmw["id"]}]),
        marketing,
    )
    client.post(f"{MARKETING}/campaign/{campaign['id']}/distribute", headers=marketing)
    # given three responses: one won, one lost in qualification, one rejected
    with session_scope() as session:
        leads = [
            record_campaign_response(
                session, MARKETER, campaign["id"], customer_id=bmw["id"], name=f"Response {i}"
            )
            for i in range(3)
        ]
        won = qualify_lead(
            session,
            SELLER,
            leads[0]["id"],
            owner="sarah",
            probability=40,
            expected_revenue=Decimal("50000.25"),
        )
        lost = qualify_lead(
            session,
            SELLER,
            leads[1]["id"],
            owner="sarah",
            probability=10,
            expected_revenue=Decimal("9000"),
        )
        close_opportunity(session, SELLER, lost["id"], won=False, reason="no budget")
    client.patch(f"{SALES}/salesLead/{leads[2]['id']}", json={"status": "rejected"}, headers=admin)
    with session_scope() as session:
        from etomcrm.selling.prospects import advance_opportunity

        advance_opportunity(session, SELLER, won["id"], stage="proposal")
        close_opportunity(session, SELLER, won["id"], won=True, reason="fits")
    # when the results are read
    response = client.get(f"{MARKETING}/campaign/{campaign['id']}/result", headers=marketing)
    assert response.status_code == 200, response.text
    result = response.json()
    # then
    assert result["sent"] == 1 and result["recipients"] == 2
    assert (result["responses"], result["leads"], result["opportunities"], result["won"]) == (
        3,
        2,
        2,
        1,
    )
    assert Decimal(str(result["costPerLead"]["value"])) == Decimal("1500.00")
    assert Decimal(str(result["revenueAttributed"]["value"])) == Decimal("50000.25")
    # the lead names its campaign
    lead = client.get(f"{SALES}/salesLead/{leads[0]['id']}", headers=admin).json()
    assert lead["marketingCampaign"]["id"] == campaign["id"]


def test_campaign_rules(client: TestClient, auth: TokenFactory) -> None:
    marketing = auth("marketing")
    doc = brochure(client, marketing)
    # a segment is needed
    response = client.post(
        f"{MARKETING}/campaign", json=campaign_body(doc["id"]), headers=marketing
    )
    assert response.status_code == 400 and "targetSegment" in response.json()["message"]
    body = campaign_body(doc["id"], stateOrProvince=["Bayern"])
    # collateral must exist
    response = client.post(
        f"{MARKETING}/campaign",
        json={**body, "collateral": [{"id": "nope", "@referredType": "Document"}]},
        headers=marketing,
    )
    assert response.status_code == 422
    campaign = post(client, f"{MARKETING}/campaign", body, marketing)
    path = f"{MARKETING}/campaign/{campaign['id']}"
    response = client.patch(path, json={"status": "completed"}, headers=marketing)
    assert response.status_code == 409
    assert "allowed from 'planned': active, cancelled" in response.json()["message"]
    response = client.patch(path, json={"distribution": {"messageCount": 99}}, headers=marketing)
    assert response.status_code == 400
    assert client.patch(path, json={"status": "cancelled"}, headers=marketing).status_code == 200
    response = client.post(f"{path}/distribute", headers=marketing)
    assert response.status_code == 409 and "cancelled" in response.json()["message"]
    # responses to a campaign that never ran are refused
    with session_scope() as session:
        from etomcrm.core.errors import Conflict

        try:
            record_campaign_response(session, MARKETER, campaign["id"], customer_id=None, name="x")
        except Conflict as error:
            assert "active or completed" in error.message
        else:
            raise AssertionError("a response to a cancelled campaign was recorded")
    # sales staff read campaigns but do not run them; customers see none
    assert client.get(path, headers=auth("sales")).status_code == 200
    assert client.post(f"{path}/distribute", headers=auth("sales")).status_code == 403
    cust = customer(client, auth("admin"), "C")
    assert client.get(path, headers=auth("customer", customer_id=cust["id"])).status_code == 403


def test_customer_reads_only_its_own_documents(client: TestClient, auth: TokenFactory) -> None:
    admin = auth("admin")
    bmw = customer(client, admin, "BMW AG")
    audi = customer(client, admin, "Audi AG")

    def report(customer_id: str) -> dict[str, Any]:
        return post(
            client,
            f"{DOCUMENTS}/document",
            {
                "name": "SLA report October",
                "documentType": "slaReport",
                "relatedParty": [
                    {"id": customer_id, "@referredType": "Customer", "role": "customer"}
                ],
            },
            admin,
        )

    mine, theirs = report(bmw["id"]), report(audi["id"])
    brochure(client, admin)  # the provider's own: no customer sees it in its list
    as_bmw = auth("customer", customer_id=bmw["id"])
    listed = client.get(f"{DOCUMENTS}/document", headers=as_bmw)
    assert [d["id"] for d in listed.json()] == [mine["id"]]
    assert client.get(f"{DOCUMENTS}/document/{theirs['id']}", headers=as_bmw).status_code == 404
    assert client.get(f"{DOCUMENTS}/document/{mine['id']}", headers=as_bmw).status_code == 200
