"""TMF681 communicationMessage: messages to a customer's contacts, written and sent once."""

from __future__ import annotations

import email
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from etomcrm.customer_interface.communication import (
    FileChannel,
    deliver_pending_messages,
    inform_customer,
    message_id_for,
)
from etomcrm.db import session_scope
from tests.conftest import TokenFactory
from tests.factories import CUSTOMER, PARTY, customer, post

COMMUNICATION = "/tmf-api/communicationManagement/v4"


def email_medium(address: str, **extra: Any) -> dict[str, Any]:
    return {"mediumType": "email", "characteristic": {"emailAddress": address}, **extra}


def customer_with_contacts(
    client: TestClient,
    headers: dict[str, str],
    name: str = "BMW AG",
    *,
    contact_opt_out: bool = False,
    company_opt_out: bool = False,
) -> dict[str, Any]:
    """A customer with an address of its own and one contact person with another."""
    created = customer(client, headers, name)
    slug = name.split()[0].lower()
    contact_body: dict[str, Any] = {
        "givenName": "Anna",
        "familyName": f"Einkauf {name}",
        "contactMedium": [email_medium(f"anna@{slug}.example")],
    }
    if contact_opt_out:
        contact_body["partyCharacteristic"] = [{"name": "marketingOptOut", "value": True}]
    contact = post(client, f"{PARTY}/individual", contact_body, headers)
    changes: dict[str, Any] = {
        "contactMedium": [email_medium(f"info@{slug}.example")],
        "relatedParty": [{"id": contact["id"], "@referredType": "Individual", "role": "contact"}],
    }
    if company_opt_out:
        changes["characteristic"] = [{"name": "marketingOptOut", "value": True}]
    response = client.patch(f"{CUSTOMER}/customer/{created['id']}", json=changes, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


class Recording:
    """A channel that remembers what it was given."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, EmailMessage]] = []
        self.fail = fail

    def send(self, message: EmailMessage, message_id: str) -> None:
        if self.fail:
            raise ConnectionError("mail server unreachable")
        self.sent.append((message_id, message))


def test_inform_customer_is_exactly_once_per_key_and_reaches_every_contact(
    client: TestClient, admin: dict[str, str], tmp_path: Path
) -> None:
    # given a customer with its own address and a contact person
    bmw = customer_with_contacts(client, admin)
    # when a flow step informs it twice with the same key (a rerun after a crash)
    with session_scope() as session:
        first = inform_customer(
            session,
            customer_id=bmw["id"],
            subject="Your order is in progress",
            content="We have started work on order 42.",
            key="order:42:accepted",
            related_entity=[{"id": "42", "@referredType": "ProductOrder", "role": "order"}],
        )
    with session_scope() as session:
        again = inform_customer(
            session,
            customer_id=bmw["id"],
            subject="Your order is in progress",
            content="We have started work on order 42.",
            key="order:42:accepted",
        )
    # then one message exists, addressed to both contacts, waiting to be sent
    assert again["id"] == first["id"] == message_id_for("order:42:accepted")
    assert sorted(r["email"] for r in first["receiver"]) == [
        "anna@bmw.example",
        "info@bmw.example",
    ]
    listed = client.get(f"{COMMUNICATION}/communicationMessage", headers=admin)
    assert listed.headers["X-Total-Count"] == "1"
    assert listed.json()[0]["state"] == "initial"
    # when delivery runs twice into the file sink
    channel = FileChannel(tmp_path)
    with session_scope() as session:
        assert deliver_pending_messages(session, channel) == 1
    with session_scope() as session:
        assert deliver_pending_messages(session, channel) == 0
    # then one RFC 5322 file, named by the message id, and the message is completed
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [f"{first['id']}.eml"]
    parsed = email.message_from_bytes(files[0].read_bytes())
    assert parsed["Subject"] == "Your order is in progress"
    assert parsed["Message-ID"] == f"<{first['id']}@etomcrm.local>"
    assert "anna@bmw.example" in parsed["To"]
    sent = client.get(f"{COMMUNICATION}/communicationMessage/{first['id']}", headers=admin).json()
    assert sent["state"] == "completed" and sent["sendTimeComplete"]


def test_service_message_goes_despite_opt_out_but_marketing_does_not(
    client: TestClient, admin: dict[str, str]
) -> None:
    from etomcrm.customer_interface.communication import MARKETING, write_message

    # given a customer that opted out of marketing as a whole
    bmw = customer_with_contacts(client, admin, company_opt_out=True)
    with session_scope() as session:
        service_message = inform_customer(
            session, customer_id=bmw["id"], subject="Outage", content="Fixed.", key="ticket:1"
        )
        offer = write_message(
            session,
            admin_principal(),
            customer_id=bmw["id"],
            subject="Gold SLA at half price",
            content="Only this month.",
            key="campaign:x",
            category=MARKETING,
        )
    # then the service message is written to every contact and the offer not at all
    assert len(service_message["receiver"]) == 2
    assert offer is None


def test_one_contact_opted_out_keeps_the_others(client: TestClient, admin: dict[str, str]) -> None:
    from etomcrm.customer_interface.communication import MARKETING, write_message

    bmw = customer_with_contacts(client, admin, contact_opt_out=True)
    with session_scope() as session:
        offer = write_message(
            session,
            admin_principal(),
            customer_id=bmw["id"],
            subject="Offer",
            content="Offer",
            key="campaign:y",
            category=MARKETING,
        )
    assert offer is not None
    assert [r["email"] for r in offer["receiver"]] == ["info@bmw.example"]


def test_failed_sends_are_retried_then_marked_failed(
    client: TestClient, admin: dict[str, str]
) -> None:
    bmw = customer_with_contacts(client, admin)
    with session_scope() as session:
        message = inform_customer(
            session, customer_id=bmw["id"], subject="Bill", content="Your bill", key="bill:7"
        )
    broken = Recording(fail=True)
    for _ in range(3):
        with session_scope() as session:
            assert deliver_pending_messages(session, broken) == 0
    body = client.get(f"{COMMUNICATION}/communicationMessage/{message['id']}", headers=admin).json()
    assert body["state"] == "failed"
    errors = [c["value"] for c in body["characteristic"] if c["name"] == "deliveryError"]
    assert "mail server unreachable" in errors[0]
    # a failed message is not picked up again
    working = Recording()
    with session_scope() as session:
        assert deliver_pending_messages(session, working) == 0
    assert working.sent == []


def test_customer_without_address_gets_a_failed_record(
    client: TestClient, admin: dict[str, str]
) -> None:
    bare = customer(client, admin, "No Mail GmbH")
    with session_scope() as session:
        message = inform_customer(
            session, customer_id=bare["id"], subject="Hello", content="Hi", key="k"
        )
    assert message["state"] == "failed"
    assert any("no e-mail address" in str(c["value"]) for c in message["characteristic"])


def _message_body(customer_id: str) -> dict[str, Any]:
    return {
        "messageType": "email",
        "subject": "Site survey on Monday",
        "content": "Our technician arrives at 9:00.",
        "sender": {"email": "service@extranet-services.example"},
        "receiver": [{"email": "info@bmw.example"}],
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
    }


def test_staff_write_and_cancel_a_message_but_not_claim_it_sent(
    client: TestClient, auth: TokenFactory
) -> None:
    support = auth("support")
    bmw = customer_with_contacts(client, auth("admin"))
    created = post(
        client, f"{COMMUNICATION}/communicationMessage", _message_body(bmw["id"]), support
    )
    assert created["state"] == "initial"
    path = f"{COMMUNICATION}/communicationMessage/{created['id']}"
    response = client.patch(path, json={"state": "completed"}, headers=support)
    assert response.status_code == 409
    assert "allowed from 'initial': cancelled" in response.json()["message"]
    assert client.patch(path, json={"state": "cancelled"}, headers=support).status_code == 200
    response = client.patch(path, json={"subject": "changed"}, headers=support)
    assert response.status_code == 409 and "is a record" in response.json()["message"]
    # a message must say whom it is for
    body = _message_body(bmw["id"])
    del body["relatedParty"]
    response = client.post(f"{COMMUNICATION}/communicationMessage", json=body, headers=support)
    assert response.status_code == 400 and "relatedParty" in response.json()["message"]
    # analysts read but do not write
    response = client.post(
        f"{COMMUNICATION}/communicationMessage",
        json=_message_body(bmw["id"]),
        headers=auth("analyst"),
    )
    assert response.status_code == 403


def test_customer_sees_only_its_own_messages(client: TestClient, auth: TokenFactory) -> None:
    admin = auth("admin")
    bmw = customer_with_contacts(client, admin, "BMW AG")
    audi = customer_with_contacts(client, admin, "Audi AG")
    mine = post(client, f"{COMMUNICATION}/communicationMessage", _message_body(bmw["id"]), admin)
    theirs = post(client, f"{COMMUNICATION}/communicationMessage", _message_body(audi["id"]), admin)
    as_bmw = auth("customer", customer_id=bmw["id"])
    listed = client.get(f"{COMMUNICATION}/communicationMessage", headers=as_bmw)
    assert [m["id"] for m in listed.json()] == [mine["id"]]
    assert (
        client.get(
            f"{COMMUNICATION}/communicationMessage/{theirs['id']}", headers=as_bmw
        ).status_code
        == 404
    )
    assert (
        client.get(f"{COMMUNICATION}/communicationMessage/{mine['id']}", headers=as_bmw).status_code
        == 200
    )
    response = client.post(
        f"{COMMUNICATION}/communicationMessage", json=_message_body(bmw["id"]), headers=as_bmw
    )
    assert response.status_code == 403


@pytest.mark.parametrize("url", ["smtp://host", "smtps://u:p@mail.example:2465?starttls=false"])
def test_smtp_channel_reads_its_url(url: str) -> None:
    from etomcrm.customer_interface.communication import SmtpChannel

    channel = SmtpChannel(url)
    assert channel.host in ("host", "mail.example")
    assert channel.port in (25, 2465)


def admin_principal() -> Any:
    from etomcrm.security.service import SYSTEM

    return SYSTEM
