"""Every operation of every API answers with bodies valid under the official v4 schema.

The test client validates each response against the schema its route documents, which
is the official TM Forum definition (see ``tests/schema_check.py``); this test makes
sure every resource goes through create, read, list, patch, delete and the hub.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    CATALOG,
    CUSTOMER,
    INTERACTION,
    PARTY,
    SITE,
    STOCK,
    customer,
    organization,
)
from tests.schema_check import ConformingClient


def _bodies(
    client: TestClient, admin: dict[str, str]
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """path -> (create body, patch body)"""
    owner = customer(client, admin)
    owner_ref = {"id": owner["id"], "@referredType": "Customer", "role": "customer"}
    spec = client.post(
        f"{CATALOG}/productSpecification", json={"name": "Router"}, headers=admin
    ).json()
    return {
        f"{PARTY}/individual": (
            {"givenName": "Katrin", "familyName": "Weber", "birthDate": "1980-04-01T00:00:00Z"},
            {"title": "Dr."},
        ),
        f"{PARTY}/organization": (
            {"tradingName": "Autohaus Brenner", "isLegalEntity": True},
            {"nameType": "GmbH"},
        ),
        f"{CUSTOMER}/customer": (
            {
                "name": "MINI",
                "engagedParty": {
                    "id": organization(client, admin)["id"],
                    "@referredType": "Organization",
                },
            },
            {"statusReason": "pilot"},
        ),
        f"{SITE}/geographicSite": (
            {
                "name": "Dealer Augsburg",
                "relatedParty": [owner_ref],
                "place": [{"city": "Augsburg", "postcode": "86150"}],
            },
            {"description": "showroom and workshop"},
        ),
        f"{INTERACTION}/partyInteraction": (
            {
                "reason": "site list",
                "direction": "inbound",
                "channel": [{"id": "email"}],
                "relatedParty": [owner_ref],
            },
            {"status": "completed"},
        ),
        f"{CATALOG}/catalog": (
            {"name": "Extranet", "catalogType": "productCatalog"},
            {"lifecycleStatus": "Active"},
        ),
        f"{CATALOG}/category": (
            {"name": "Site access", "isRoot": True},
            {"description": "access lines"},
        ),
        f"{CATALOG}/productSpecification": (
            {"name": "Access", "productNumber": "ACC-100"},
            {"brand": "ESG"},
        ),
        f"{CATALOG}/productOffering": (
            {"name": "Access 100", "productSpecification": {"id": spec["id"]}, "isSellable": True},
            {"lifecycleStatus": "Launched"},
        ),
        f"{CATALOG}/productOfferingPrice": (
            {
                "name": "Access 100 monthly",
                "priceType": "recurring",
                "price": {"unit": "EUR", "value": 349.0},
            },
            {"recurringChargePeriodType": "month"},
        ),
        f"{STOCK}/productStock": (
            {
                "name": "Routers Munich",
                "productStockStatusType": "available",
                "productStockLevel": {"amount": 40, "units": "unit"},
                "stockedProduct": {"productSpecification": {"id": spec["id"]}},
            },
            {"productStockStatusType": "reserved"},
        ),
    }


def test_every_operation_answers_with_schema_valid_bodies(
    client: ConformingClient, admin: dict[str, str]
) -> None:
    for path, (create, change) in _bodies(client, admin).items():
        before = ConformingClient.checked
        created = client.post(path, json=create, headers=admin)
        assert created.status_code == 201, (path, created.text)
        href = f"{path}/{created.json()['id']}"
        assert client.get(href, headers=admin).status_code == 200
        assert client.get(path, headers=admin).status_code in (200, 206)
        first_attribute = next(iter(create))
        assert client.get(f"{path}?fields={first_attribute}", headers=admin).status_code in (
            200,
            206,
        )
        patched = client.patch(href, json=change, headers=admin)
        assert patched.status_code == 200, (path, patched.text)
        for key, value in change.items():
            assert patched.json()[key] == value
        assert client.get(f"{path}/missing-id", headers=admin).status_code == 404
        # six bodies above, each checked against its official schema
        assert ConformingClient.checked - before == 6, path
        if path.endswith("/partyInteraction"):
            # the contact history is kept: closed, never deleted
            assert client.delete(href, headers=admin).status_code == 405
        elif not path.endswith("/customer"):
            assert client.delete(href, headers=admin).status_code == 204


@pytest.mark.parametrize("api", [PARTY, CUSTOMER, SITE, INTERACTION, CATALOG, STOCK])
def test_every_api_has_a_hub(client: ConformingClient, admin: dict[str, str], api: str) -> None:
    before = ConformingClient.checked
    registered = client.post(
        f"{api}/hub", json={"callback": "http://listener.example.com/etomcrm"}, headers=admin
    )
    assert registered.status_code == 201
    assert ConformingClient.checked == before + 1
    assert client.delete(f"{api}/hub/{registered.json()['id']}", headers=admin).status_code == 204
