"""Two portal forms over plain HTTP (issue 11): a customer's user sends a request (3.2.2,
logged, classified and routed as the API's POST customerRequest logs it) and accepts
what a completed order delivered (3.5.5, as the API's PATCH of customerAcceptance).
Scoped as the API (another customer's user gets 404), CSRF on both forms, bad input
the form again with the reason beside the field and nothing typed lost, a bounded
number of queries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from etomcrm.customer_interface.models import PartyInteractionRow
from etomcrm.db import session_scope
from etomcrm.order_handling import service as orders
from tests import factories
from tests.conftest import TokenFactory
from tests.test_pages_orders import placed
from tests.test_pages_portal import csrf_of, sign_in, user

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"


def test_a_customer_sends_a_request_that_sales_finds_in_its_work_list(
    client: TestClient, auth: TokenFactory, count_queries: Callable[[], Any]
) -> None:
    # given BMW with Katrin, another customer's user, and Anna of sales
    admin = auth("admin")
    bmw = factories.customer(client, admin)["id"]
    other = factories.customer(client, admin, "Other GmbH")["id"]
    user("katrin.weber", customer_id=bmw)
    user("someone.else", customer_id=other)
    user("anna.sales", role="sales")
    assert sign_in(client, "katrin.weber").status_code == 303
    form = client.get(f"/ui/customers/{bmw}/requests/new")
    assert form.status_code == 200
    assert '<label for="subject">' in form.text and '<label for="description">' in form.text
    token = csrf_of(form.text)
    new = f"/ui/customers/{bmw}/requests"

    # when she sends it without the form's token, then it is refused
    assert client.post(new, data={"subject": "Offer"}).status_code == 403
    # when she leaves out the subject, then the form comes back with the reason and
    # what she typed
    empty = client.post(
        new, data={"csrf_token": token, "subject": " ", "description": "Three dealers"}
    )
    assert empty.status_code == 400
    assert 'id="subject-error"' in empty.text and "Three dealers</textarea>" in empty.text

    # when she sends a request for an offer
    with count_queries() as counter:
        sent = client.post(
            new,
            data={
                "csrf_token": token,
                "subject": "Offer for extranet access at our dealers",
                "description": "Access, router and installation at three dealers",
            },
            follow_redirects=False,
        )
    # then it is logged through the portal, classified as selling, routed to sales
    assert sent.status_code == 303, sent.text
    assert counter.count <= 25, counter.statements
    request_id = sent.headers["location"].rsplit("sent=", 1)[1]
    with session_scope() as session:
        row = session.get(PartyInteractionRow, request_id)
        assert row is not None
        logged = dict(row.body)
    assert logged["channel"][0]["id"] == "portal"
    assert logged["reason"] == "Offer for extranet access at our dealers"
    assert (logged["classification"], logged["routedTo"]) == ("selling", "sales")
    shown = client.get(sent.headers["location"])
    assert request_id in shown.text and 'id="request-sent"' in shown.text
    # and Anna of sales has it in her work list
    assert sign_in(client, "anna.sales").status_code == 303
    home = client.get("/ui/")
    assert "Offer for extranet access at our dealers" in home.text
    # and another customer's user cannot send one for BMW, nor see its form
    assert sign_in(client, "someone.else").status_code == 303
    assert client.get(f"/ui/customers/{bmw}/requests/new").status_code == 404
    token = csrf_of(client.get(f"/ui/customers/{other}/requests/new").text)
    refused = client.post(new, data={"csrf_token": token, "subject": "Offer"})
    assert refused.status_code == 404


def test_a_customer_accepts_the_delivery_of_its_completed_order(
    client: TestClient,
    admin: dict[str, str],
    network: dict[str, Any],
    count_queries: Callable[[], Any],
) -> None:
    # given BMW's order for two sites, completed and awaiting its acceptance
    order = placed(client, admin, network, 2)
    with session_scope() as session:
        orders.complete_order(session, order.order_id)
    other = factories.customer(client, admin, "Other GmbH")["id"]
    user("katrin.weber", customer_id=order.customer_id)
    user("someone.else", customer_id=other)
    page_url = f"/ui/customers/{order.customer_id}/orders/{order.order_id}"
    accept = f"{page_url}/acceptance"
    assert sign_in(client, "someone.else").status_code == 303
    stranger_token = csrf_of(client.get(f"/ui/customers/{other}/orders").text)
    # when another customer's user tries to accept it, then it is refused as unknown
    assert client.post(accept, data={"csrf_token": stranger_token}).status_code == 404
    # when Katrin opens it, then its acceptance is awaited with the form to give it
    assert sign_in(client, "katrin.weber").status_code == 303
    page = client.get(page_url)
    assert 'id="acceptance">awaited<' in page.text
    assert '<label for="note">' in page.text and "Accept the delivery" in page.text
    token = csrf_of(page.text)
    # and without the form's token it is refused
    assert client.post(accept, data={"note": "fine"}).status_code == 403
    # when she accepts it with a note
    with count_queries() as counter:
        accepted = client.post(
            accept, data={"csrf_token": token, "note": "Online, thank you."}, follow_redirects=False
        )
    # then the order is accepted, with her note, and the page says so without the form
    assert accepted.status_code == 303 and accepted.headers["location"] == page_url
    assert counter.count <= 15, counter.statements
    body = client.get(f"{ORDERS}/{order.order_id}", headers=admin).json()
    assert body["customerAcceptance"]["state"] == "accepted"
    assert body["customerAcceptance"]["note"] == "Online, thank you."
    again = client.get(page_url)
    assert 'id="acceptance">given<' in again.text and "Accept the delivery" not in again.text


def test_sales_takes_a_request_up_from_its_queue(
    client: TestClient, auth: TokenFactory, count_queries: Callable[[], Any]
) -> None:
    # given two requests for an offer from BMW and one for support, Anna of sales
    admin = auth("admin")
    bmw = factories.customer(client, admin)["id"]
    user("katrin.weber", customer_id=bmw)
    user("anna.sales", role="sales")
    assert sign_in(client, "katrin.weber").status_code == 303
    token = csrf_of(client.get(f"/ui/customers/{bmw}/requests/new").text)
    for subject in ("Offer for a new site", "Offer for more bandwidth", "Our link is down"):
        sent = client.post(
            f"/ui/customers/{bmw}/requests",
            data={"csrf_token": token, "subject": subject},
            follow_redirects=False,
        )
        assert sent.status_code == 303, sent.text
    # when Anna opens her queue from the work list
    assert sign_in(client, "anna.sales").status_code == 303
    assert 'href="/ui/requests">handle them</a>' in client.get("/ui/").text
    with count_queries() as counter:
        queue = client.get("/ui/requests")
    # then it holds the two offers, oldest first, with BMW's name, not the support one
    assert queue.status_code == 200
    assert counter.count <= 6, counter.statements
    assert queue.text.count('<tr class="request"') == 2
    assert queue.text.index("Offer for a new site") < queue.text.index("Offer for more")
    assert "Our link is down" not in queue.text and ">BMW AG</a>" in queue.text
    first = queue.text.split('<tr class="request" id="request-')[1].split('"')[0]
    # when she takes the first one up without the form's token, then it is refused
    assert client.post(f"/ui/requests/{first}/take-up").status_code == 403
    # when she takes it up
    taken = client.post(
        f"/ui/requests/{first}/take-up",
        data={"csrf_token": csrf_of(queue.text)},
        follow_redirects=False,
    )
    # then she is led to BMW, and the request is in progress with a quote to start
    assert taken.status_code == 303 and taken.headers["location"] == f"/ui/customers/{bmw}"
    with session_scope() as session:
        row = session.get(PartyInteractionRow, first)
        assert row is not None and row.body["status"] == "inProgress"
    after = client.get("/ui/requests").text
    assert f'href="/ui/customers/{bmw}/quotes/new">Start a quote</a>' in after
    # and Katrin, a customer's user, has no staff queue
    assert sign_in(client, "katrin.weber").status_code == 303
    assert client.get("/ui/requests").status_code == 403
