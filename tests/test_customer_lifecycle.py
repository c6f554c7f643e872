"""3.9.1 Establish and end the relationship: the customer's life cycle states."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import CUSTOMER, PARTY, customer, organization, site


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
