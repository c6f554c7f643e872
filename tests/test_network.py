"""The simulated network side behind its port: coverage, lead times, service orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.core.errors import NotFound
from etomcrm.core.resources import validate_against
from etomcrm.core.tmf_schemas import SERVICE_ORDERING
from etomcrm.customer_interface.models import GeographicSiteRow
from etomcrm.db import session_scope
from etomcrm.network.api_kinds import SERVICE_ORDER_KIND
from etomcrm.network.models import NetworkServiceOrderRow
from etomcrm.network.port import (
    ServiceOrderStatus,
    business_date,
    get_network,
    service_order_id,
    use_network,
)
from etomcrm.network.simulator import SimulatedNetwork
from tests import factories
from tests.conftest import TokenFactory
from tests.factories import CATALOG, post

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = 60.0  # one simulated day lasts a minute of the test clock


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def access_offering(client: TestClient, headers: dict[str, str], mbits: int) -> dict[str, Any]:
    """A site access offering of the given bandwidth, as the catalog describes one."""
    spec = post(client, f"{CATALOG}/productSpecification", {"name": "Site access"}, headers)
    return post(
        client,
        f"{CATALOG}/productOffering",
        {
            "name": f"Site access {mbits} Mbit/s",
            "lifecycleStatus": "Active",
            "productSpecification": {"id": spec["id"]},
            "prodSpecCharValueUse": [
                {
                    "name": "bandwidth",
                    "valueType": "number",
                    "productSpecCharacteristicValue": [
                        {"value": mbits, "unitOfMeasure": "Mbit/s", "isDefault": True}
                    ],
                }
            ],
        },
        headers,
    )


@pytest.fixture
def site_and_offering(client: TestClient, admin: dict[str, str]) -> tuple[str, str, str]:
    customer = factories.customer(client, admin)
    site = factories.site(client, admin, customer["id"], "Augsburg")
    offering = access_offering(client, admin, 100)
    return customer["id"], site["id"], offering["id"]


def site_body(session: Session, site_id: str) -> dict[str, Any]:
    row = session.get(GeographicSiteRow, site_id)
    assert row is not None
    return dict(row.body)


def submit(
    network: SimulatedNetwork, ids: tuple[str, str, str], key: str, attempt: int = 1
) -> ServiceOrderStatus:
    customer_id, site_id, offering_id = ids
    with session_scope() as session:
        return network.submit_service_order(
            session,
            key=key,
            customer_id=customer_id,
            product_order_id="po-1",
            order_item_id="1",
            site_id=site_id,
            offering_id=offering_id,
            attempt=attempt,
        )


def status(network: SimulatedNetwork, order_id: str) -> ServiceOrderStatus:
    with session_scope() as session:
        return network.service_order_status(session, order_id)


def test_the_same_site_gets_the_same_answer_every_time(
    client: TestClient, admin: dict[str, str], site_and_offering: tuple[str, str, str]
) -> None:
    # given a site of a customer and a 100 Mbit/s offering
    _, site_id, offering_id = site_and_offering
    # when two networks with the same seed qualify it, and one of them asks twice
    with session_scope() as session:
        site = site_body(session, site_id)
        network = SimulatedNetwork(seed=7, unserviceable_rate=0.0, special_build_rate=0.0)
        first = network.qualify(session, site=site, offering_id=offering_id)
        again = SimulatedNetwork(seed=7, unserviceable_rate=0.0, special_build_rate=0.0).qualify(
            session, site=site, offering_id=offering_id
        )
    # then the answers are equal, with a lead time in the documented range
    assert first == again
    assert first.site_id == site_id and first.offering_id == offering_id
    assert first.serviceable and not first.special_build
    assert 14 <= first.lead_time_days <= 24
    assert "100 Mbit/s over" in first.reason


def test_coverage_follows_the_configured_rates_and_seed(db_url: str) -> None:
    # given 400 sites spread over postcode areas
    sites = [{"id": f"site-{n}", "place": [{"postcode": f"{10 + n % 80}000"}]} for n in range(400)]
    with session_scope() as session:
        # when a network that never refuses and never special-builds qualifies them
        plain = SimulatedNetwork(seed=1, unserviceable_rate=0.0, special_build_rate=0.0)
        answers = [plain.qualify(session, site=s, offering_id="none") for s in sites]
        # and one that refuses a quarter of them
        strict = SimulatedNetwork(seed=1, unserviceable_rate=0.25, special_build_rate=0.0)
        refused = [
            s for s in sites if not strict.qualify(session, site=s, offering_id="x").serviceable
        ]
        other_seed = SimulatedNetwork(seed=2, unserviceable_rate=0.25, special_build_rate=0.0)
        refused_other = [
            s for s in sites if not other_seed.qualify(session, site=s, offering_id="x").serviceable
        ]
    # then every site is served within 10 to 20 days (10 Mbit/s base, region and site)
    assert all(a.serviceable and not a.special_build for a in answers)
    assert {a.lead_time_days for a in answers} <= set(range(10, 21))
    assert len({a.lead_time_days for a in answers}) > 5
    # and about a quarter is refused, a different quarter under another seed
    assert 60 <= len(refused) <= 140
    assert refused != refused_other


def test_a_forced_unserviceable_site_is_refused_with_a_reason(
    client: TestClient, site_and_offering: tuple[str, str, str]
) -> None:
    _, site_id, offering_id = site_and_offering
    network = SimulatedNetwork(overrides={site_id: "unserviceable"})
    with session_scope() as session:
        answer = network.qualify(session, site=site_body(session, site_id), offering_id=offering_id)
    assert not answer.serviceable
    assert answer.lead_time_days == 0
    assert "no access network within reach" in answer.reason


def test_a_special_build_adds_days_to_the_lead_time(
    client: TestClient, admin: dict[str, str], site_and_offering: tuple[str, str, str]
) -> None:
    _, site_id, offering_id = site_and_offering
    with session_scope() as session:
        site = site_body(session, site_id)
        plain = SimulatedNetwork(overrides={site_id: "on_time"}).qualify(
            session, site=site, offering_id=offering_id
        )
        special = SimulatedNetwork(overrides={site_id: "special_build"}).qualify(
            session, site=site, offering_id=offering_id
        )
    assert not plain.special_build and special.special_build
    assert 10 <= special.lead_time_days - plain.lead_time_days <= 20
    assert "special build" in special.reason


def test_a_gigabit_site_without_fibre_needs_a_special_build(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a gigabit offering and sites of which some have copper only
    gigabit = access_offering(client, admin, 1000)["id"]
    network = SimulatedNetwork(seed=3, unserviceable_rate=0.0, special_build_rate=0.0)
    with session_scope() as session:
        answers = [
            network.qualify(session, site={"id": f"s{n}"}, offering_id=gigabit) for n in range(60)
        ]
    # then the copper sites are special builds for fibre, the others are not
    special = [a for a in answers if a.special_build]
    assert special and len(special) < len(answers)
    assert all("needs fibre" in a.reason and a.lead_time_days >= 30 for a in special)
    assert all(20 <= a.lead_time_days <= 30 for a in answers if not a.special_build)


def test_a_service_order_sent_twice_with_the_same_key_is_one_order(
    client: TestClient, site_and_offering: tuple[str, str, str]
) -> None:
    clock = Clock()
    network = SimulatedNetwork(day_seconds=DAY, overrides={}, now=clock)
    # when the same key is sent twice, in two transactions, by two network instances
    first = submit(network, site_and_offering, "po-1/1/1")
    second = submit(SimulatedNetwork(day_seconds=DAY, now=clock), site_and_offering, "po-1/1/1")
    # then it is one order with one row
    assert first == second
    assert first.id == service_order_id("po-1/1/1")
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(NetworkServiceOrderRow)) == 1
        row = session.get(NetworkServiceOrderRow, first.id)
        assert row is not None
        body = row.body
    # and its body is a TMF641 service order for the site
    assert body["@baseType"] == "ServiceOrder" and body["externalId"] == "po-1/1/1"
    assert body["serviceOrderItem"][0]["service"]["place"][0]["id"] == site_and_offering[1]
    assert row.owner_customer_id == site_and_offering[0]


def test_an_on_time_order_completes_at_its_ready_time(
    client: TestClient, site_and_offering: tuple[str, str, str]
) -> None:
    # given a site whose orders run on time, and a clock the test controls
    clock = Clock()
    network = SimulatedNetwork(
        day_seconds=DAY, overrides={site_and_offering[1]: "on_time"}, now=clock
    )
    # when the order is sent
    sent = submit(network, site_and_offering, "k-on-time")
    # then it is in progress until its lead time has passed in simulated days
    with session_scope() as session:
        lead = network.qualify(
            session,
            site=site_body(session, site_and_offering[1]),
            offering_id=site_and_offering[2],
        ).lead_time_days
    assert sent.state == "inProgress" and sent.detail == "on schedule"
    assert sent.ready_at == START + timedelta(seconds=lead * DAY)
    assert sent.expected_completion_date == business_date(START) + timedelta(days=lead)
    clock.advance(seconds=lead * DAY - 1)
    assert status(network, sent.id).state == "inProgress"
    clock.advance(seconds=1)
    done = status(network, sent.id)
    assert done.state == "completed"
    assert done.expected_completion_date == sent.expected_completion_date


def test_a_late_order_reports_its_delay_once_then_completes(
    client: TestClient, site_and_offering: tuple[str, str, str]
) -> None:
    clock = Clock()
    network = SimulatedNetwork(day_seconds=DAY, overrides={site_and_offering[1]: "late"}, now=clock)
    sent = submit(network, site_and_offering, "k-late")
    assert sent.state == "inProgress"
    # when the planned end has passed
    clock.at = sent.ready_at
    delayed = status(network, sent.id)
    # then the order is still in progress with a later expected date and the reason
    assert delayed.state == "inProgress"
    assert delayed.detail.startswith("delayed: ")
    extra = (delayed.expected_completion_date - sent.expected_completion_date).days
    assert 3 <= extra <= 15
    assert delayed.ready_at == sent.ready_at + timedelta(seconds=extra * DAY)
    # and asking again before the new time changes nothing
    assert status(network, sent.id) == delayed
    clock.at = delayed.ready_at
    done = status(network, sent.id)
    assert done.state == "completed"
    assert done.expected_completion_date == delayed.expected_completion_date


def test_a_failed_order_fails_and_a_retry_with_a_new_key_goes_through(
    client: TestClient, site_and_offering: tuple[str, str, str]
) -> None:
    clock = Clock()
    network = SimulatedNetwork(day_seconds=DAY, overrides={site_and_offering[1]: "fail"}, now=clock)
    sent = submit(network, site_and_offering, "k-fail/1")
    assert sent.state == "inProgress" and sent.ready_at > START
    clock.at = sent.ready_at
    failed = status(network, sent.id)
    assert failed.state == "failed"
    assert failed.detail.startswith("failed: ")
    # once failed, always failed: a later question gives the same answer
    clock.advance(days=30)
    assert status(network, sent.id) == failed
    # when the flow retries with a new key (attempt 2)
    retry = submit(network, site_and_offering, "k-fail/2", attempt=2)
    assert retry.id != sent.id and retry.attempt == 2
    clock.at = retry.ready_at
    assert status(network, retry.id).state == "completed"


def test_with_zero_day_seconds_answers_come_at_once_but_delays_still_show(
    client: TestClient, site_and_offering: tuple[str, str, str]
) -> None:
    site_id = site_and_offering[1]
    on_time = SimulatedNetwork(day_seconds=0, overrides={site_id: "on_time"})
    assert submit(on_time, site_and_offering, "zero/on-time").state == "completed"
    late = SimulatedNetwork(day_seconds=0, overrides={site_id: "late"})
    sent = submit(late, site_and_offering, "zero/late")
    assert sent.state == "inProgress"
    delayed = status(late, sent.id)
    assert delayed.state == "inProgress" and delayed.detail.startswith("delayed: ")
    assert delayed.expected_completion_date > sent.expected_completion_date
    assert status(late, sent.id).state == "completed"
    failing = SimulatedNetwork(day_seconds=0, overrides={site_id: "fail"})
    sent = submit(failing, site_and_offering, "zero/fail")
    assert sent.state == "inProgress"
    assert status(failing, sent.id).state == "failed"


def test_an_order_for_an_unserviceable_site_fails_at_once(
    client: TestClient, site_and_offering: tuple[str, str, str]
) -> None:
    network = SimulatedNetwork(day_seconds=DAY, overrides={site_and_offering[1]: "unserviceable"})
    sent = submit(network, site_and_offering, "k-unserviceable")
    assert sent.state == "failed"
    assert "no access network within reach" in sent.detail


def test_status_survives_a_restart_and_unknown_orders_are_not_found(
    client: TestClient, site_and_offering: tuple[str, str, str]
) -> None:
    clock = Clock()
    sent = submit(
        SimulatedNetwork(day_seconds=DAY, overrides={site_and_offering[1]: "late"}, now=clock),
        site_and_offering,
        "k-restart",
    )
    clock.at = sent.ready_at
    # a new process knows nothing but the database: no overrides, no memory
    restarted = SimulatedNetwork(day_seconds=DAY, now=clock)
    assert status(restarted, sent.id).detail.startswith("delayed: ")
    with pytest.raises(NotFound):
        status(restarted, "no-such-order")


def test_get_network_is_the_simulator_unless_another_is_installed(db_url: str) -> None:
    assert isinstance(get_network(), SimulatedNetwork)
    mine = SimulatedNetwork(seed=99)
    use_network(mine)
    try:
        assert get_network() is mine
    finally:
        use_network(None)
    assert get_network() is not mine


def test_staff_read_the_service_orders_the_network_received(
    site_and_offering: tuple[str, str, str], auth: TokenFactory, client: TestClient
) -> None:
    # given a service order the network received
    sent = submit(SimulatedNetwork(day_seconds=DAY, now=Clock()), site_and_offering, "api/1")
    path = f"{SERVICE_ORDER_KIND.path}"
    # when order management reads it
    response = client.get(f"{path}/{sent.id}", headers=auth("order_manager"))
    listed = client.get(path, params={"externalId": "api/1"}, headers=auth("order_manager"))
    # then it is a TMF641 service order
    assert response.status_code == 200
    body = response.json()
    validate_against(SERVICE_ORDERING, "ServiceOrder", body, "service order")
    assert body["externalId"] == "api/1" and body["state"] == sent.state
    assert [o["id"] for o in listed.json()] == [sent.id]
    # and nobody writes or deletes through the API (405), nor does a customer read it
    admin = auth("admin")
    assert client.post(path, json={"externalId": "x"}, headers=admin).status_code == 405
    assert client.delete(f"{path}/{sent.id}", headers=admin).status_code == 405
    customer = auth("customer", customer_id=site_and_offering[0])
    assert client.get(f"{path}/{sent.id}", headers=customer).status_code == 403
