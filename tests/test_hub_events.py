"""TMF hub: listeners register, events come from an outbox, delivery survives outages."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from etomcrm.core.events import deliver_due, http_poster, subscription_matches
from etomcrm.core.models import EventDelivery
from etomcrm.db import session_scope, utcnow
from tests.conftest import TokenFactory
from tests.factories import CUSTOMER, customer, site


class Listener:
    """A real HTTP listener on loopback that records what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.up = True
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = orjson.loads(self.rfile.read(length))
                if listener.up:
                    listener.received.append((self.path, body))
                self.send_response(201 if listener.up else 503)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/listener-base"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener()
    yield running
    running.close()


def _deliver() -> tuple[int, int]:
    with httpx.Client(timeout=5.0) as http:
        return deliver_due(http_poster(http))


def _make_due() -> None:
    # Stands in for the passing of time: back-off waits are over.
    with session_scope() as session:
        session.execute(
            update(EventDelivery).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


def test_listener_receives_create_change_and_state_events(
    client: TestClient, admin: dict[str, str], listener: Listener
) -> None:
    # given a listener registered on the customer API
    response = client.post(f"{CUSTOMER}/hub", json={"callback": listener.url}, headers=admin)
    assert response.status_code == 201
    assert response.json()["callback"] == listener.url
    # when a customer is created and activated
    created = customer(client, admin)
    client.patch(f"{CUSTOMER}/customer/{created['id']}", json={"status": "active"}, headers=admin)
    delivered, failed = _deliver()
    # then the listener got each event at callback/listener/<eventType>, in TMF shape
    assert (delivered, failed) == (3, 0)
    paths = [path for path, _ in listener.received]
    assert sorted(paths) == sorted(
        [
            "/listener-base/listener/customerCreateEvent",
            "/listener-base/listener/customerAttributeValueChangeEvent",
            "/listener-base/listener/customerStateChangeEvent",
        ]
    )
    state = next(body for path, body in listener.received if path.endswith("StateChangeEvent"))
    assert state["eventType"] == "CustomerStateChangeEvent"
    assert state["event"]["customer"]["status"] == "active"
    assert state["eventId"] and state["eventTime"].endswith("Z")
    # and nothing is sent twice
    assert _deliver() == (0, 0)


def test_a_listener_that_is_down_loses_nothing(
    client: TestClient, admin: dict[str, str], listener: Listener
) -> None:
    client.post(f"{CUSTOMER}/hub", json={"callback": listener.url}, headers=admin)
    # given the listener is down while two customers are created
    listener.up = False
    customer(client, admin, "A")
    customer(client, admin, "B")
    assert _deliver() == (0, 2)
    # then the failures are recorded and retried later, with growing back-off
    with session_scope() as session:
        rows = session.scalars(select(EventDelivery)).all()
        assert all(r.attempts == 1 and r.last_error == "listener answered HTTP 503" for r in rows)
        assert all(r.next_attempt_at > utcnow() for r in rows)
    assert _deliver() == (0, 0)  # not due yet
    _make_due()
    assert _deliver() == (0, 2)
    # when it comes back, every event arrives
    listener.up = True
    _make_due()
    assert _deliver() == (2, 0)
    assert sorted(body["event"]["customer"]["name"] for _, body in listener.received) == ["A", "B"]


def test_query_filters_what_a_listener_hears(
    client: TestClient, admin: dict[str, str], listener: Listener
) -> None:
    client.post(
        f"{CUSTOMER}/hub",
        json={"callback": listener.url, "query": "eventType=CustomerStateChangeEvent"},
        headers=admin,
    )
    created = customer(client, admin)
    client.patch(f"{CUSTOMER}/customer/{created['id']}", json={"status": "active"}, headers=admin)
    _deliver()
    assert [body["eventType"] for _, body in listener.received] == ["CustomerStateChangeEvent"]


def test_unregistered_listener_hears_nothing_more(
    client: TestClient, admin: dict[str, str], listener: Listener
) -> None:
    hub = client.post(f"{CUSTOMER}/hub", json={"callback": listener.url}, headers=admin).json()
    assert client.delete(f"{CUSTOMER}/hub/{hub['id']}", headers=admin).status_code == 204
    customer(client, admin)
    assert _deliver() == (0, 0)
    assert client.delete(f"{CUSTOMER}/hub/{hub['id']}", headers=admin).status_code == 404


def test_customer_listener_hears_only_its_own_resources(
    client: TestClient, admin: dict[str, str], auth: TokenFactory, listener: Listener
) -> None:
    mine = customer(client, admin, "BMW AG")
    theirs = customer(client, admin, "Daimler AG")
    token = auth("customer", customer_id=mine["id"])
    assert (
        client.post(
            "/tmf-api/geographicSiteManagement/v4/hub",
            json={"callback": listener.url},
            headers=token,
        ).status_code
        == 201
    )
    site(client, admin, mine["id"], "München")
    site(client, admin, theirs["id"], "Stuttgart")
    _deliver()
    assert [body["event"]["geographicSite"]["name"] for _, body in listener.received] == [
        "Dealer München"
    ]


def test_bad_callbacks_are_refused(client: TestClient, admin: dict[str, str]) -> None:
    for body in ({"callback": "not a url"}, {"callback": "ftp://x/y"}, {"query": "x"}):
        response = client.post(f"{CUSTOMER}/hub", json=body, headers=admin)
        assert response.status_code == 400, body


def test_query_matching() -> None:
    event = {"customer": {"status": "active", "name": "BMW AG"}}
    assert subscription_matches(None, "CustomerCreateEvent", event)
    assert subscription_matches(
        "eventType=CustomerCreateEvent,CustomerDeleteEvent", "CustomerDeleteEvent", event
    )
    assert not subscription_matches("eventType=CustomerDeleteEvent", "CustomerCreateEvent", event)
    assert subscription_matches("customer.status=active", "CustomerCreateEvent", event)
    assert not subscription_matches("event.customer.status=prospect", "CustomerCreateEvent", event)


def test_the_service_delivers_events_by_itself(
    db_url: str, admin: dict[str, str], listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the service running with its delivery thread
    import time

    from etomcrm.bootstrap import create_app
    from etomcrm.config import get_settings

    monkeypatch.setenv("ETOMCRM_HUB_DELIVERY_INTERVAL_SECONDS", "0.05")
    get_settings.cache_clear()
    with TestClient(create_app(deliver_events=True, run_flows=False)) as service:
        service.post(f"{CUSTOMER}/hub", json={"callback": listener.url}, headers=admin)
        # when a customer is created
        customer(service, admin)
        deadline = time.monotonic() + 10
        while not listener.received and time.monotonic() < deadline:
            time.sleep(0.05)
    # then the listener hears of it without anyone running a delivery by hand
    assert [body["eventType"] for _, body in listener.received] == ["CustomerCreateEvent"]
