"""The staff workspace's Customer 360 over plain HTTP (issue 11): a customer's story on
one page, as the role may read it, bounded whatever the number of items."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from etomcrm.db import session_scope, utcnow
from etomcrm.problem_handling.models import TroubleTicketRow
from tests import factories
from tests.test_pages_portal import network, sign_in, user


def test_staff_open_a_customers_360_with_each_section_linked(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given BMW with three sites and products, a phone call, an open ticket, a billing account
    bmw = network(client, admin, 3)
    factories.interaction(client, admin, bmw.customer_id)
    ticket = client.post(
        "/tmf-api/troubleTicket/v4/troubleTicket",
        json={
            "name": "Slow access at the second site",
            "description": "Throughput far below the booked bandwidth",
            "severity": "minor",
            "ticketType": "network",
            "relatedParty": [
                {"id": bmw.customer_id, "@referredType": "Customer", "role": "customer"}
            ],
        },
        headers=admin,
    )
    assert ticket.status_code == 201, ticket.text
    with session_scope() as session:  # and a ticket closed after it was opened
        session.add(
            TroubleTicketRow(
                id=f"closed-{bmw.customer_id}"[:64],
                at_type="TroubleTicket",
                name="Closed later",
                status="closed",
                owner_customer_id=bmw.customer_id,
                body={"id": "closed", "@type": "TroubleTicket", "status": "closed"},
                created_at=utcnow() + timedelta(minutes=1),
            )
        )
    account = factories.billing_account(client, admin, bmw.customer_id)
    other = network(client, admin, 1, "X")
    user("sven.koch", role="admin")
    assert sign_in(client, "sven.koch").status_code == 303
    # when an administrator opens BMW's 360
    page = client.get(f"/ui/customers/{bmw.customer_id}")
    # then every section is there with its count and its items linked on
    assert page.status_code == 200, page.text
    text = page.text
    assert "<h1>BMW AG</h1>" in text
    assert "Sites (3)" in text and "Products (3)" in text
    for site_id in bmw.site_ids:  # a site leads to its page
        assert f'href="/ui/customers/{bmw.customer_id}/sites/{site_id}"' in text
    assert "Contact history (1)" in text and "phone" in text
    assert "Trouble tickets (2)" in text
    assert text.index("Slow access at the second site") < text.index("Closed later")  # open first
    # a ticket leads to its page on the staff ticket desk
    assert f'href="/ui/desk/tickets/{ticket.json()["id"]}"' in text
    assert "Billing accounts (1)" in text and account["id"] in text
    assert "Open balance" in text and "SLA credits owed" in text
    assert "SLA standing in" in text and "missed" in text  # the first product's availability
    assert "Orders (0)" in text and "Quotes (0)" in text
    # and nothing of the other customer
    assert other.site_ids[0] not in text


def test_a_role_sees_only_the_sections_it_may_read(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given BMW and a marketing user, who may not read tickets
    bmw = network(client, admin, 1)
    user("mia.wagner", role="marketing")
    assert sign_in(client, "mia.wagner").status_code == 303
    # when she opens BMW's 360
    page = client.get(f"/ui/customers/{bmw.customer_id}")
    # then the tickets are left out, and said so
    assert page.status_code == 200
    assert "Trouble tickets (" not in page.text
    assert "Not shown (your role may not read them):" in page.text
    # and in German, as her browser asks
    german = client.get(f"/ui/customers/{bmw.customer_id}", headers={"Accept-Language": "de"})
    assert "Kontakthistorie (0)" in german.text and "Standorte (1)" in german.text
    assert "Nicht angezeigt (Ihre Rolle darf sie nicht lesen):" in german.text


def test_a_customers_user_never_sees_a_360(client: TestClient, admin: dict[str, str]) -> None:
    # given BMW and another customer, and BMW's portal user
    bmw = network(client, admin, 1)
    other = network(client, admin, 1, "O")
    user("katrin.weber", customer_id=bmw.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    # when she types the 360's address: another customer's is not there at all
    assert client.get(f"/ui/customers/{other.customer_id}").status_code == 404
    # and her own is the staff's
    assert client.get(f"/ui/customers/{bmw.customer_id}").status_code == 403
    # and a customer that does not exist is a 404 page for staff too
    user("sven.koch", role="admin")
    client.cookies.clear()
    assert sign_in(client, "sven.koch").status_code == 303
    missing = client.get("/ui/customers/no-such-customer")
    assert missing.status_code == 404 and "<html" in missing.text


def test_the_360_needs_as_many_queries_for_thirty_items_as_for_three(
    client: TestClient, admin: dict[str, str], count_queries: Callable[[], Any]
) -> None:
    # given one customer with three sites and products, another with thirty
    small, large = network(client, admin, 3, "S"), network(client, admin, 30, "L")
    for _ in range(3):
        factories.interaction(client, admin, small.customer_id)
    for _ in range(30):
        factories.interaction(client, admin, large.customer_id)
    user("olaf.berger", role="admin")
    assert sign_in(client, "olaf.berger").status_code == 303

    def queries(customer_id: str) -> tuple[int, str]:
        with count_queries() as counter:
            page = client.get(f"/ui/customers/{customer_id}")
        assert page.status_code == 200
        return counter.count, page.text

    queries(small.customer_id)  # the session's user is looked up once, then cached
    # when staff open each one's 360
    (few, _), (many, text) = queries(small.customer_id), queries(large.customer_id)
    # then both take the same queries: one per section, and at most ten items each
    assert few == many <= 20
    assert "Sites (30)" in text and "Contact history (30)" in text
    assert "The newest 10 of 30." in text
