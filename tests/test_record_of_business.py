"""The record of business (orders, products, tickets, messages, interactions) is closed
or cancelled through its life cycle, never deleted (issue 12)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from etomcrm.bootstrap import KINDS
from tests.factories import INTERACTION, customer, interaction

RECORD_OF_BUSINESS = {
    "productOrder",
    "cancelProductOrder",
    "product",
    "troubleTicket",
    "partyInteraction",
    "communicationMessage",
}


def test_every_record_of_business_kind_answers_delete_with_405_and_says_what_to_do(
    client: TestClient, admin: dict[str, str]
) -> None:
    kinds = {k.name: k for k in KINDS}
    assert {name for name, k in kinds.items() if k.ended_not_deleted} >= RECORD_OF_BUSINESS
    for name in RECORD_OF_BUSINESS:
        # when an admin deletes one (the refusal does not depend on the record)
        response = client.delete(f"{kinds[name].path}/any-id", headers=admin)
        # then 405 with a TMF error that says how it ends instead
        assert response.status_code == 405, name
        assert "never deleted" in response.json()["message"], name


def test_a_deleted_interaction_stays_in_the_contact_history(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given an interaction in a customer's contact history
    who = customer(client, admin)
    logged = interaction(client, admin, who["id"])
    href = f"{INTERACTION}/partyInteraction/{logged['id']}"
    # when an admin deletes it
    response = client.delete(href, headers=admin)
    # then it is refused and the interaction is still there, unchanged
    assert response.status_code == 405
    assert "close it through its status" in response.json()["message"]
    kept = client.get(href, headers=admin)
    assert kept.status_code == 200
    assert kept.json()["reason"] == logged["reason"]
