"""What a customer reads is in its words (issue 12, the demo's first hour): no API key
names in its messages, the provider named as the provider's settings name it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.config import get_settings
from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope
from tests import factories
from tests.conftest import TokenFactory
from tests.test_qos_report import _pdf_text

TICKETS = "/tmf-api/troubleTicket/v4/troubleTicket"
REPORT = "/tmf-api/slaManagement/v2/qosReport"


def _messages_to(customer_id: str) -> list[str]:
    with session_scope() as session:
        return [
            str(body.get("content"))
            for body in session.scalars(
                select(CommunicationMessageRow.body)
                .where(CommunicationMessageRow.owner_customer_id == customer_id)
                .order_by(CommunicationMessageRow.id)
            )
        ]


def test_ticket_messages_name_no_api_key_and_pass_on_a_reason_given_in_words(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given a customer whose portal (an API key) opens a ticket about its site
    customer = factories.customer(client, admin)
    site = factories.site(client, admin, customer["id"])
    portal = auth("customer", customer_id=customer["id"])
    opened = client.post(
        TICKETS,
        json={
            "description": "The dealer is offline",
            "severity": "Major",
            "ticketType": "network",
            "relatedEntity": [
                {"id": site["id"], "@referredType": "GeographicSite", "role": "affectedSite"}
            ],
        },
        headers=portal,
    )
    assert opened.status_code == 201, opened.text
    ticket = opened.json()
    # when support takes it into work without a reason, then resolves it with one
    support = auth("support")
    for change in (
        {"status": "inProgress"},
        {"status": "resolved", "statusChangeReason": "Line card at the exchange replaced"},
    ):
        current = client.get(f"{TICKETS}/{ticket['id']}", headers=support)
        patched = client.patch(
            f"{TICKETS}/{ticket['id']}",
            json=change,
            headers={**support, "If-Match": current.headers["ETag"]},
        )
        assert patched.status_code == 200, patched.text
    # then the customer's messages name no API key and no status arrows,
    messages = [m for m in _messages_to(customer["id"]) if "ticket" in m]
    assert len(messages) >= 3, messages
    assert not [m for m in messages if "apikey:" in m or "received from" in m or "->" in m]
    # and the reason support gave in words is passed on
    assert any("Reason: Line card at the exchange replaced" in m for m in messages), messages
    # while staff still see who did what in the ticket's history
    history = client.get(f"{TICKETS}/{ticket['id']}", headers=admin).json()["statusChange"]
    assert history[0]["changeReason"].startswith("received from apikey:")


@pytest.fixture
def provider_named(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("ETOMCRM_PROVIDER_NAME", "Netz Sued Telekommunikation GmbH")
    get_settings.cache_clear()
    yield "Netz Sued Telekommunikation GmbH"
    monkeypatch.delenv("ETOMCRM_PROVIDER_NAME")
    get_settings.cache_clear()


def test_the_qos_report_names_the_provider_its_settings_name(
    client: TestClient, admin: dict[str, str], provider_named: str
) -> None:
    # given a provider that calls itself Netz Sued
    customer = factories.customer(client, admin)
    # when its QoS report for a customer is fetched as data and as a PDF
    params = {"customerId": customer["id"], "period": "2026-10"}
    report = client.get(REPORT, params=params, headers=admin)
    pdf = client.get(REPORT + ".pdf", params=params, headers=admin)
    # then both name the provider as its settings do
    assert report.status_code == 200, report.text
    assert report.json()["provider"] == provider_named
    assert pdf.status_code == 200
    assert provider_named in _pdf_text(pdf.content)
