"""3.4.4 Acquire customer data: what contracting needs, checked and completed."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from etomcrm.db import session_scope
from etomcrm.selling.customer_data import missing_contract_data
from tests.conftest import TokenFactory
from tests.factories import CUSTOMER, customer, paying_account, post

ADDRESS = {"street1": "Petuelring 130", "postCode": "80809", "city": "München", "country": "DE"}
VALID_VAT = "DE129273398"


def _readiness(client: TestClient, headers: dict[str, str], customer_id: str) -> Any:
    return client.get(f"{CUSTOMER}/customer/{customer_id}/contractReadiness", headers=headers)


def _complete(
    client: TestClient, headers: dict[str, str], customer_id: str, body: dict[str, Any]
) -> Any:
    return client.patch(
        f"{CUSTOMER}/customer/{customer_id}/contractData", json=body, headers=headers
    )


def test_a_new_customer_lacks_everything_a_contract_needs(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer whose organization is not marked as a legal entity
    org = post(
        client,
        "/tmf-api/party/v4/organization",
        {"tradingName": "BMW", "name": "BMW", "isLegalEntity": False},
        admin,
    )
    created = post(
        client,
        f"{CUSTOMER}/customer",
        {"name": "BMW", "engagedParty": {"id": org["id"], "@referredType": "Organization"}},
        admin,
    )
    # when its readiness is read
    response = _readiness(client, admin, created["id"])
    # then five sentences say what to add
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is False and len(body["missing"]) == 5
    text = " ".join(body["missing"])
    for what in ("legal name", "VAT id", "billing contact", "billing address", "billing account"):
        assert what in text


def test_completed_data_makes_the_customer_ready(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given a customer (its organization is a legal entity with a name)
    bmw = customer(client, admin)
    sales = auth("sales")
    # when sales records VAT id, billing contact and billing address,
    response = _complete(
        client,
        sales,
        bmw["id"],
        {
            "vatId": "DE 129 273 398",
            "billingContact": {"emailAddress": "invoices@bmw.example", "name": "Accounts"},
            "billingAddress": ADDRESS,
        },
    )
    # and a billing account that pays by SEPA direct debit
    paying_account(client, sales, bmw["id"])
    # then the VAT id is stored compact and nothing is missing
    assert response.status_code == 200, response.text
    values = {c["name"]: c["value"] for c in response.json()["characteristic"]}
    assert values["vatId"] == VALID_VAT
    assert _readiness(client, sales, bmw["id"]).json() == {
        "customerId": bmw["id"],
        "ready": True,
        "missing": [],
    }
    with session_scope() as session:
        assert missing_contract_data(session, bmw["id"]) == []


def test_an_invalid_vat_id_is_refused_naming_it(client: TestClient, admin: dict[str, str]) -> None:
    bmw = customer(client, admin)
    response = _complete(client, admin, bmw["id"], {"vatId": "DE123456789"})
    assert response.status_code == 400
    assert "DE123456789" in response.json()["message"]
    # and a VAT id entered elsewhere that does not check out is reported, not accepted
    client.patch(
        f"{CUSTOMER}/customer/{bmw['id']}",
        json={"characteristic": [{"name": "vatId", "value": "DE123456789"}]},
        headers=admin,
    )
    missing = _readiness(client, admin, bmw["id"]).json()["missing"]
    assert any("'DE123456789' is not a valid EU VAT id" in m for m in missing)


def test_incomplete_billing_address_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    bmw = customer(client, admin)
    address = {k: v for k, v in ADDRESS.items() if k != "postCode"}
    response = _complete(client, admin, bmw["id"], {"billingAddress": address})
    assert response.status_code == 400 and "postCode" in response.json()["message"]
    response = _complete(client, admin, bmw["id"], {})
    assert response.status_code == 400 and "at least one" in response.json()["message"]


def test_a_billing_site_counts_as_billing_address(
    client: TestClient, admin: dict[str, str]
) -> None:
    bmw = customer(client, admin)
    post(
        client,
        "/tmf-api/geographicSiteManagement/v4/geographicSite",
        {
            "name": "Headquarters",
            "relatedParty": [{"id": bmw["id"], "@referredType": "Customer", "role": "billing"}],
            "place": [
                {
                    "@type": "GeographicAddress",
                    "street1": "Petuelring 130",
                    "postcode": "80809",
                    "city": "München",
                    "country": "DE",
                }
            ],
        },
        admin,
    )
    missing = _readiness(client, admin, bmw["id"]).json()["missing"]
    assert not any("billing address" in m for m in missing)


def test_a_customer_completes_its_own_data_only(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    bmw, audi = customer(client, admin, "BMW AG"), customer(client, admin, "Audi AG")
    portal = auth("customer", customer_id=bmw["id"])
    response = _complete(client, portal, bmw["id"], {"legalName": "Bayerische Motoren Werke AG"})
    assert response.status_code == 200, response.text
    assert _readiness(client, portal, bmw["id"]).status_code == 200
    assert _readiness(client, portal, audi["id"]).status_code == 404
    assert _complete(client, portal, audi["id"], {"legalName": "X"}).status_code == 404
