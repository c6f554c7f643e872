"""The staff ticket desk over plain HTTP (issue 11): open tickets by time left on their
SLA clock, a ticket with its clock, paused time, service problem and alarms, and its
actions (take up, resolve with a resolution, message the customer) through the same
service functions and roles as the API; bad input shows the form again with the error
beside the field; a bounded number of queries whatever the number of tickets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope
from etomcrm.pages import desk_views
from etomcrm.problem_handling.models import AlarmRow, ServiceProblemRow, TroubleTicketRow
from tests.test_pages_portal import csrf_of, network, sign_in, user
from tests.test_pages_tickets_bills import _ticket_for

DESK = "/ui/desk/tickets"


def _staff(client: TestClient, username: str, role: str) -> None:
    user(username, role=role)
    client.cookies.clear()
    assert sign_in(client, username).status_code == 303


def _ticket(ticket_id: str) -> dict[str, Any]:
    with session_scope(readonly=True) as session:
        row = session.get(TroubleTicketRow, ticket_id)
        assert row is not None
        return dict(row.body)


def test_support_works_a_ticket_from_the_desk_to_its_resolution(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer with two sites, the first one's access down, a ticket on each
    bmw = network(client, admin, 2)
    down = _ticket_for(client, admin, bmw.customer_id, bmw.site_ids[0])
    up = _ticket_for(client, admin, bmw.customer_id, bmw.site_ids[1])
    _staff(client, "sabine.support", "support")
    # when support opens the desk
    desk = client.get(DESK)
    # then both tickets are listed with their customer and SLA clock
    assert desk.status_code == 200
    assert f'href="{DESK}/{down}"' in desk.text and f'href="{DESK}/{up}"' in desk.text
    assert f'href="/ui/customers/{bmw.customer_id}"' in desk.text
    assert "2 open tickets" in desk.text
    assert "min left" in desk.text or "overdue by" in desk.text
    german = client.get(DESK, headers={"Accept-Language": "de"})
    assert "Störungsannahme" in german.text and "2 offene Störungsmeldungen" in german.text
    # and the home page's work list links to the desk
    home = client.get("/ui/").text
    assert f'href="{DESK}"' in home
    # and the ticket due first is a click away from it
    assert (
        f'href="{DESK}/{down}">the ticket</a>' in home
        or f'href="{DESK}/{up}">the ticket</a>' in home
    )
    # and the network raised an alarm on the link the ticket's service problem is about
    problem_id = _ticket(down)["diagnosis"]["serviceProblem"]["id"]
    with session_scope() as session:
        problem = session.get(ServiceProblemRow, problem_id)
        assert problem is not None and problem.correlation_key
        link = problem.correlation_key.split(":", 1)[1]
        session.add(
            AlarmRow(
                id="alarm-desk-1",
                at_type="Alarm",
                name="LOS",
                status="raised",
                body={
                    "id": "alarm-desk-1",
                    "state": "raised",
                    "perceivedSeverity": "critical",
                    "alarmedObject": {"id": link},
                    "alarmRaisedTime": "2026-12-01T06:00:00Z",
                    "probableCause": "lossOfSignal",
                },
                alarmed_object_id=link,
                correlation_key=problem.correlation_key,
            )
        )
    # when she opens the ticket of the site that is down
    page = client.get(f"{DESK}/{down}")
    # then it shows its clock, the time it stood still, its service problem and alarms
    assert page.status_code == 200
    assert 'id="clock"' in page.text and 'id="paused"' in page.text and "0 h 0 min" in page.text
    assert f'/serviceProblem/{problem_id}"' in page.text
    alarms = page.text.split('id="alarms"')[1].split("</section>")[0]
    assert "lossOfSignal" in alarms and link in alarms and "critical" in alarms
    assert "acknowledged" in page.text
    # and it cannot be resolved before it is taken up
    assert 'action="/ui/desk/tickets/' + down + '/resolve"' not in page.text
    taken = client.post(
        f"{DESK}/{down}/take-up", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert taken.status_code == 303
    assert _ticket(down)["status"] == "inProgress"
    # when she sends the resolution form empty
    page = client.get(f"{DESK}/{down}")
    refused = client.post(
        f"{DESK}/{down}/resolve", data={"resolution": "  ", "csrf_token": csrf_of(page.text)}
    )
    # then the form comes back with the reason beside the field
    assert refused.status_code == 400
    assert 'id="resolution-error"' in refused.text and "Say what was done" in refused.text
    # when she resolves it with what was done
    resolved = client.post(
        f"{DESK}/{down}/resolve",
        data={"resolution": "Line card replaced at the PoP", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    # then it is resolved through the state machine, the customer told the resolution
    assert resolved.status_code == 303
    body = _ticket(down)
    assert body["status"] == "resolved"
    assert body["statusChange"][-1]["changeReason"] == "Line card replaced at the PoP"
    with session_scope(readonly=True) as session:
        contents = list(
            session.scalars(
                select(CommunicationMessageRow.body).where(
                    CommunicationMessageRow.owner_customer_id == bmw.customer_id
                )
            )
        )
    assert any("Line card replaced at the PoP" in m["content"] for m in contents)
    # and its clock stands still, waiting for the customer
    page = client.get(f"{DESK}/{down}")
    assert "clock stopped: waiting for the customer" in page.text
    assert "stopped since" in page.text
    # and only the customer's answer sends it back to work, not a button on the desk
    assert "/take-up" not in page.text
    again = client.post(f"{DESK}/{down}/take-up", data={"csrf_token": csrf_of(page.text)})
    assert again.status_code == 409 and _ticket(down)["status"] == "resolved"


def test_support_messages_the_customer_and_a_bad_form_keeps_what_was_typed(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer's ticket and support signed in
    bmw = network(client, admin, 1)
    ticket_id = _ticket_for(client, admin, bmw.customer_id, bmw.site_ids[0])
    _staff(client, "sabine.support", "support")
    page = client.get(f"{DESK}/{ticket_id}")
    assert 'for="subject"' in page.text and 'for="content"' in page.text
    token = csrf_of(page.text)
    # when she sends a message with a subject and no text
    refused = client.post(
        f"{DESK}/{ticket_id}/message",
        data={"subject": "Technician on Monday", "content": "", "csrf_token": token},
    )
    # then the form comes back, the subject kept and the reason beside the text
    assert refused.status_code == 400
    assert 'value="Technician on Monday"' in refused.text
    assert 'id="content-error"' in refused.text
    # when she writes it in full
    sent = client.post(
        f"{DESK}/{ticket_id}/message",
        data={
            "subject": "Technician on Monday",
            "content": "Our technician arrives at 9:00.",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    # then a TMF681 message to the customer is written, about the ticket, and noted on it
    assert sent.status_code == 303
    with session_scope(readonly=True) as session:
        messages = [
            body
            for body in session.scalars(
                select(CommunicationMessageRow.body).where(
                    CommunicationMessageRow.owner_customer_id == bmw.customer_id
                )
            )
            if body["subject"] == "Technician on Monday"
        ]
    assert len(messages) == 1
    assert messages[0]["relatedEntity"][0]["id"] == ticket_id
    assert messages[0]["content"] == "Our technician arrives at 9:00."
    notes = client.get(f"{DESK}/{ticket_id}").text.split('id="notes"')[1]
    assert f"Message {messages[0]['id']} to the customer: Technician on Monday" in notes


def test_the_desk_respects_the_roles_of_the_api(client: TestClient, admin: dict[str, str]) -> None:
    # given a customer's ticket in progress
    bmw = network(client, admin, 1)
    ticket_id = _ticket_for(client, admin, bmw.customer_id, bmw.site_ids[0])
    client.patch(
        f"/tmf-api/troubleTicket/v4/troubleTicket/{ticket_id}",
        json={"status": "inProgress"},
        headers={**admin, "Content-Type": "application/merge-patch+json"},
    )
    # when a sales person (who reads tickets, not works them) opens it
    _staff(client, "sven.sales", "sales")
    page = client.get(f"{DESK}/{ticket_id}")
    # then the ticket shows, without its actions, and without the network's problems
    assert page.status_code == 200
    assert "/resolve" not in page.text and "/message" not in page.text
    assert "Your role may not read service problems." in page.text
    # and a post is refused as the API refuses it
    refused = client.post(
        f"{DESK}/{ticket_id}/resolve",
        data={"resolution": "done", "csrf_token": csrf_of(page.text)},
    )
    assert refused.status_code == 403 and "<html" in refused.text
    assert _ticket(ticket_id)["status"] == "inProgress"
    # and a marketing person, who may not read tickets, gets 403
    _staff(client, "mara.marketing", "marketing")
    assert client.get(DESK).status_code == 403
    # and a customer's user is sent to its portal
    user("katrin.weber", customer_id=bmw.customer_id)
    client.cookies.clear()
    assert sign_in(client, "katrin.weber").status_code == 303
    assert client.get(DESK).status_code == 403
    assert client.get(f"{DESK}/{ticket_id}").status_code == 403


def test_the_desk_filters_by_state_and_severity(client: TestClient, admin: dict[str, str]) -> None:
    # given two tickets of a customer, one in progress
    bmw = network(client, admin, 2)
    first = _ticket_for(client, admin, bmw.customer_id, bmw.site_ids[0])
    second = _ticket_for(client, admin, bmw.customer_id, bmw.site_ids[1])
    client.patch(
        f"/tmf-api/troubleTicket/v4/troubleTicket/{second}",
        json={"status": "inProgress"},
        headers={**admin, "Content-Type": "application/merge-patch+json"},
    )
    _staff(client, "sabine.support", "support")
    # when she filters by state
    progress = client.get(DESK, params={"state": "inProgress"})
    # then only the ticket in that state is listed
    assert f'href="{DESK}/{second}"' in progress.text
    assert f'href="{DESK}/{first}"' not in progress.text
    assert '<option value="inProgress" selected>' in progress.text
    # and by severity, whatever its case
    assert f'href="{DESK}/{first}"' in client.get(DESK, params={"severity": "Major"}).text
    assert "No open tickets." in client.get(DESK, params={"severity": "Critical"}).text
    # when she types a state that is not one
    bad = client.get(DESK, params={"state": "closed", "page": "x"})
    # then the filter comes back with the reason beside it
    assert bad.status_code == 400 and 'id="state-error"' in bad.text
    assert 'id="page-error"' in bad.text


def test_the_desk_and_a_ticket_take_as_many_queries_for_thirty_tickets_as_for_three(
    client: TestClient, admin: dict[str, str], count_queries: Callable[[], Any]
) -> None:
    bmw = network(client, admin, 1)
    tickets = [_ticket_for(client, admin, bmw.customer_id, bmw.site_ids[0]) for _ in range(3)]
    _staff(client, "sabine.support", "support")

    def queries(path: str) -> int:
        with count_queries() as counter:
            assert client.get(path).status_code == 200
        return int(counter.count)

    queries(DESK)  # the session's user is looked up once, then cached
    few = queries(DESK)
    other = network(client, admin, 1, "L")
    for _ in range(27):
        _ticket_for(client, admin, other.customer_id, other.site_ids[0])
    many = queries(DESK)
    assert few == many <= 4
    assert queries(f"{DESK}/{tickets[0]}") <= 6


def test_an_internal_ticket_shows_on_the_desk_without_a_customer_to_write_to(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a ticket staff opened for no customer (an internal one)
    answer = client.post(
        "/tmf-api/troubleTicket/v4/troubleTicket",
        json={
            "description": "Backbone maintenance check",
            "severity": "Minor",
            "ticketType": "network",
        },
        headers=admin,
    )
    assert answer.status_code == 201, answer.text
    ticket_id = answer.json()["id"]
    _staff(client, "sabine.support", "support")
    # when support opens the desk and the ticket
    desk = client.get(DESK)
    page = client.get(f"{DESK}/{ticket_id}")
    # then it is listed as internal, and its page offers no message to a customer
    assert f'href="{DESK}/{ticket_id}"' in desk.text and "internal" in desk.text
    assert page.status_code == 200 and "/message" not in page.text
    refused = client.post(
        f"{DESK}/{ticket_id}/message",
        data={"subject": "Hello", "content": "Hi", "csrf_token": csrf_of(page.text)},
    )
    assert refused.status_code == 403
    # and an unknown ticket is a 404 page
    assert client.get(f"{DESK}/no-such-ticket").status_code == 404


def test_the_desk_pages_its_list(
    client: TestClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given three open tickets and a desk of two tickets a page
    bmw = network(client, admin, 1)
    for _ in range(3):
        _ticket_for(client, admin, bmw.customer_id, bmw.site_ids[0])
    monkeypatch.setattr(desk_views, "PAGE_SIZE", 2)
    _staff(client, "sabine.support", "support")
    # when support opens the desk, then its second page
    first = client.get(DESK, params={"severity": "Major"})
    second = client.get(DESK, params={"severity": "Major", "page": "2"})
    # then the first shows two with a link on, keeping the filter, the second the third
    assert first.text.count('<tr class="ticket') == 2
    assert (
        "page 1 of 2" in first.text
        and 'href="/ui/desk/tickets?page=2&amp;severity=Major"' in first.text
    )
    assert second.text.count('<tr class="ticket') == 1 and 'rel="prev"' in second.text
    assert "3 open tickets" in second.text
