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

from etomcrm.config import get_settings
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
def listener(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    # The test listener is on loopback: allowed as the provider's own internal listener.
    monkeypatch.setenv("ETOMCRM_HUB_INTERNAL_TARGETS", '["127.0.0.0/8"]')
    get_settings.cache_clear()
    running = Listener()
    yield running
    running.close()
    get_settings.cache_clear()


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
    assert _deliver() == (0, 1)
    # then the failure of the first is recorded and retried later, with growing back-off,
    # and the second waits behind it untried (a listener hears events in order)
    with session_scope() as session:
        first, second = session.scalars(select(EventDelivery).order_by(EventDelivery.event_id))
        assert first.attempts == 1 and first.last_error == "listener answered HTTP 503"
        assert first.next_attempt_at > utcnow()
        assert second.attempts == 0 and second.lease_owner is None
    assert _deliver() == (0, 0)  # not due yet
    _make_due()
    assert _deliver() == (0, 1)
    # when it comes back, every event arrives, in the order they happened
    listener.up = True
    _make_due()
    assert _deliver() == (2, 0)
    assert [body["event"]["customer"]["name"] for _, body in listener.received] == ["A", "B"]


def test_after_an_outage_a_listener_hears_its_events_in_order(
    client: TestClient, admin: dict[str, str], listener: Listener
) -> None:
    client.post(f"{CUSTOMER}/hub", json={"callback": listener.url}, headers=admin)
    # given twelve changes while the listener is down, each retried at its own time
    listener.up = False
    names = [f"Dealer {n:02d}" for n in range(12)]
    for name in names:
        customer(client, admin, name)
    for _ in range(3):
        _deliver()
        _make_due()
    # when it is back, deliveries in small batches bring them in the order they happened
    listener.up = True
    while _deliver() != (0, 0):
        _make_due()
    creates = [
        body["event"]["customer"]["name"]
        for _, body in listener.received
        if body["eventType"] == "CustomerCreateEvent"
    ]
    assert creates == names


def test_a_listener_backlogged_behind_a_failure_does_not_starve_another(
    client: TestClient, admin: dict[str, str], listener: Listener
) -> None:
    # given one listener that is down with a backlog larger than a delivery round
    down = Listener()
    try:
        down.up = False
        client.post(f"{CUSTOMER}/hub", json={"callback": down.url}, headers=admin)
        for n in range(60):
            customer(client, admin, f"Early {n}")
        _deliver()  # its first event fails and waits for a retry
        # when a second listener registers and a change happens
        client.post(f"{CUSTOMER}/hub", json={"callback": listener.url}, headers=admin)
        customer(client, admin, "Late")
        # then the second hears of it in the next round, even a round of two deliveries
        # while the first's backlog is thirty times that
        with httpx.Client(timeout=5.0) as http:
            assert deliver_due(http_poster(http), batch=2) == (1, 0)
        assert [body["event"]["customer"]["name"] for _, body in listener.received] == ["Late"]
    finally:
        down.close()


@pytest.mark.parametrize(
    "callback",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/listener",
        "http://localhost:5432/",
        "http://[::1]:8080/x",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://192.168.1.1/",
        "http://0.0.0.0:9/",
    ],
)
def test_a_listener_inside_the_providers_network_is_refused(
    client: TestClient, admin: dict[str, str], auth: TokenFactory, callback: str
) -> None:
    answer = client.post(f"{CUSTOMER}/hub", json={"callback": callback}, headers=admin)
    assert answer.status_code == 400, answer.text
    assert "etomcrm will not call" in answer.json()["message"]


def test_an_allowed_internal_listener_that_moved_inside_is_not_called(
    client: TestClient, admin: dict[str, str], listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a listener registered while its address was allowed
    client.post(f"{CUSTOMER}/hub", json={"callback": listener.url}, headers=admin)
    customer(client, admin, "A")
    # when the allowance is withdrawn before delivery (as a name resolving elsewhere would)
    monkeypatch.setenv("ETOMCRM_HUB_INTERNAL_TARGETS", "[]")
    get_settings.cache_clear()
    # then nothing is sent and the delivery records why
    assert _deliver() == (0, 1)
    assert listener.received == []
    with session_scope() as session:
        error = session.scalars(select(EventDelivery.last_error)).one()
    assert error is not None and error.startswith("not sent: ")


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
