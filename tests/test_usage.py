"""TMF635 usage: ingest idempotent by usage id, corrections, late usage, traffic per
site and hour from the performance data, the API and its scoping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from etomcrm.billing.models import UsageRecordRow
from etomcrm.billing.usage import (
    IngestResult,
    Usage,
    ingest_usage,
    mark_usage_billed,
    usage_for_billing,
    usage_from_measurements,
)
from etomcrm.core.errors import InvalidRequest, UnknownReference
from etomcrm.db import session_scope
from etomcrm.flows.usage import hours_before, traffic_usage_step
from etomcrm.network.models import NetworkLinkRow, NetworkMeasurementRow
from etomcrm.order_handling.models import ProductRow
from tests import factories
from tests.polling import until

PATH = "/tmf-api/usageManagement/v4/usage"
NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
Headers = dict[str, str]


def _customer_with_product(client: TestClient, admin: Headers, name: str) -> tuple[str, str]:
    customer_id = factories.customer(client, admin, name)["id"]
    product_id = f"{customer_id}-access"
    with session_scope() as session:
        session.add(
            ProductRow(
                id=product_id,
                at_type="Product",
                status="active",
                owner_customer_id=customer_id,
                body={"id": product_id, "@type": "Product", "status": "active"},
            )
        )
    return customer_id, product_id


def _body(
    usage_id: str,
    customer_id: str,
    product_id: str,
    volume: Any,
    start: datetime = NOV + timedelta(days=3),
    **changes: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": usage_id,
        "usageDate": start.isoformat(),
        "usageType": "traffic",
        "relatedParty": [{"id": customer_id, "role": "customer", "@referredType": "Customer"}],
        "ratedProductUsage": [{"productRef": {"id": product_id}}],
        "usageCharacteristic": [
            {"name": "volume", "value": volume},
            {"name": "unit", "value": "GB"},
            {"name": "siteId", "value": "site-muc"},
            {"name": "startDateTime", "value": start.isoformat()},
            {"name": "endDateTime", "value": (start + timedelta(hours=1)).isoformat()},
        ],
    }
    body.update(changes)
    return body


def _record(
    usage_id: str, customer_id: str, product_id: str, volume: str, start: datetime
) -> Usage:
    return Usage(
        usage_id=usage_id,
        customer_id=customer_id,
        product_id=product_id,
        site_id="site-muc",
        usage_type="traffic",
        start_at=start,
        end_at=start + timedelta(hours=1),
        volume=Decimal(volume),
    )


@pytest.fixture
def bmw(client: TestClient, admin: Headers) -> tuple[str, str]:
    return _customer_with_product(client, admin, "BMW AG")


def test_a_repeated_bulk_post_stores_each_record_once(
    client: TestClient, admin: Headers, bmw: tuple[str, str]
) -> None:
    # given three hourly records of a product
    customer_id, product_id = bmw
    batch = [
        _body(f"u-{n}", customer_id, product_id, 1.5, NOV + timedelta(hours=n)) for n in range(3)
    ]

    # when the network side posts them twice
    first = client.post(f"{PATH}/bulk", json=batch, headers=admin)
    again = client.post(f"{PATH}/bulk", json={"usage": batch}, headers=admin)

    # then the first stores them, the second only counts them
    assert first.status_code == 201, first.text
    assert first.json() | {"@type": None} == {
        "@type": None,
        "received": 3,
        "new": 3,
        "unchanged": 0,
        "corrected": 0,
    }
    assert (again.json()["new"], again.json()["unchanged"]) == (0, 3)
    with session_scope() as session:
        assert session.query(UsageRecordRow).count() == 3


def test_a_correction_of_unbilled_usage_replaces_its_volume(
    client: TestClient, admin: Headers, bmw: tuple[str, str]
) -> None:
    # given a record not yet billed
    customer_id, product_id = bmw
    client.post(PATH, json=_body("u-1", customer_id, product_id, 2), headers=admin)

    # when it is sent again with another volume, in MB
    corrected = _body("u-1", customer_id, product_id, 3500)
    corrected["usageCharacteristic"][1]["value"] = "MB"
    response = client.post(PATH, json=corrected, headers=admin)

    # then it holds the new volume in GB, version 2, still to be billed whole
    assert response.status_code == 201, response.text
    named = {c["name"]: c["value"] for c in response.json()["usageCharacteristic"]}
    assert (named["volume"], named["unit"], named["version"]) == (3.5, "GB", 2)
    with session_scope() as session:
        due = usage_for_billing(session, [product_id], NOV, DEC)
    assert due[product_id].volume == Decimal("3.5")


def test_a_correction_of_billed_usage_charges_only_the_difference(
    db_url: str, client: TestClient, admin: Headers, bmw: tuple[str, str]
) -> None:
    # given November's usage billed
    customer_id, product_id = bmw
    with session_scope() as session:
        ingest_usage(
            session,
            [
                _record("u-1", customer_id, product_id, "10", NOV + timedelta(days=1)),
                _record("u-2", customer_id, product_id, "4", NOV + timedelta(days=2)),
            ],
        )
    with session_scope() as session:
        due = usage_for_billing(session, [product_id], NOV, DEC)[product_id]
        assert due.volume == Decimal(14)
        assert mark_usage_billed(session, due.record_ids, "bill-nov") == 2

    # when u-1 is corrected upwards and u-2 downwards, and a late record arrives
    with session_scope() as session:
        result = ingest_usage(
            session,
            [
                _record("u-1", customer_id, product_id, "12.5", NOV + timedelta(days=1)),
                _record("u-2", customer_id, product_id, "3", NOV + timedelta(days=2)),
                _record("u-late", customer_id, product_id, "1", NOV + timedelta(days=20)),
                _record("u-dec", customer_id, product_id, "7", DEC + timedelta(days=1)),
            ],
        )

    # then December's bill charges the differences and the late record, as late usage
    assert (result.new, result.corrected, result.unchanged) == (2, 2, 0)
    with session_scope() as session:
        due = usage_for_billing(session, [product_id], DEC, DEC + timedelta(days=31))[product_id]
        rows = {r.usage_id: r for r in session.query(UsageRecordRow)}
    assert due.volume == Decimal("2.5") - 1 + 1 + 7
    assert due.late_volume == Decimal("2.5")
    assert (rows["u-1"].status, rows["u-1"].version, rows["u-1"].billed_volume) == (
        "received",
        2,
        Decimal(10),
    )
    # and once that bill takes them, nothing is left to charge
    with session_scope() as session:
        mark_usage_billed(session, due.record_ids, "bill-dec")
        assert usage_for_billing(session, [product_id], DEC, DEC + timedelta(days=31)) == {}
        assert session.get(UsageRecordRow, rows["u-1"].id).billed_volume == Decimal("12.5")  # type: ignore[union-attr]


def test_a_repeat_of_billed_usage_with_the_same_volume_stays_billed(
    client: TestClient, admin: Headers, bmw: tuple[str, str]
) -> None:
    customer_id, product_id = bmw
    record = _record("u-1", customer_id, product_id, "5", NOV)
    with session_scope() as session:
        ingest_usage(session, [record])
    with session_scope() as session:
        due = usage_for_billing(session, [product_id], NOV, DEC)[product_id]
        mark_usage_billed(session, due.record_ids, "bill-nov")

    with session_scope() as session:
        result = ingest_usage(session, [record])

    assert result.unchanged == 1
    with session_scope() as session:
        assert usage_for_billing(session, [product_id], NOV, DEC) == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"usageDate": "yesterday"}, "usageDate"),
        ({"usageDate": "2026-11-03T10:00:00"}, "usageDate"),
        ({"usageType": ""}, "usageType"),
        ({"relatedParty": []}, "relatedParty"),
        ({"id": "x" * 129}, "id"),
    ],
)
def test_hostile_bodies_are_refused_naming_the_record(
    client: TestClient, admin: Headers, bmw: tuple[str, str], change: dict[str, Any], message: str
) -> None:
    customer_id, product_id = bmw
    good = _body("u-ok", customer_id, product_id, 1)
    bad = _body("u-bad", customer_id, product_id, 1, **change)

    response = client.post(f"{PATH}/bulk", json=[good, bad], headers=admin)

    assert response.status_code == 400, response.text
    assert "usage[1]" in response.json()["message"] and message in response.json()["message"]
    assert client.get(PATH, headers=admin).json() == []


def test_negative_volumes_reversed_intervals_and_repeated_ids_are_refused(
    client: TestClient, admin: Headers, bmw: tuple[str, str]
) -> None:
    customer_id, product_id = bmw
    negative = _body("u-1", customer_id, product_id, -1)
    reversed_ = _body("u-2", customer_id, product_id, 1)
    reversed_["usageCharacteristic"][4]["value"] = "2026-11-01T00:00:00Z"
    not_a_number = _body("u-3", customer_id, product_id, "lots")
    repeated = _body("u-1", customer_id, product_id, 1)

    response = client.post(
        f"{PATH}/bulk", json=[negative, reversed_, not_a_number, repeated], headers=admin
    )

    assert response.status_code == 400
    message = response.json()["message"]
    assert "usage[0]: volume must be >= 0" in message or "usage[0]" in message
    assert "usage[1]: endDateTime lies before startDateTime" in message
    assert "usage[2]" in message and "usage[3]: id 'u-1' repeats usage[0]" in message


def test_a_bulk_post_beyond_the_limit_is_refused(client: TestClient, admin: Headers) -> None:
    response = client.post(f"{PATH}/bulk", json=[{}] * 1001, headers=admin)

    assert response.status_code == 413
    assert "at most 1000" in response.json()["message"]


def test_unknown_customers_and_foreign_products_are_refused(
    client: TestClient, admin: Headers, bmw: tuple[str, str]
) -> None:
    customer_id, product_id = bmw
    _, other_product = _customer_with_product(client, admin, "Audi AG")

    response = client.post(
        f"{PATH}/bulk",
        json=[
            _body("u-1", "nobody", product_id, 1),
            _body("u-2", customer_id, other_product, 1),
            _body("u-3", customer_id, "no-such-product", 1),
        ],
        headers=admin,
    )

    assert response.status_code == 422
    message = response.json()["message"]
    assert "usage[0]: customer 'nobody' is unknown" in message
    assert f"usage[1]: product {other_product!r} is not customer {customer_id!r}'s" in message
    assert "usage[2]: product 'no-such-product' is unknown" in message


def test_a_customer_reads_only_its_own_usage_and_cannot_write(
    client: TestClient,
    admin: Headers,
    auth: Callable[..., Headers],
    bmw: tuple[str, str],
) -> None:
    # given usage of two customers
    customer_id, product_id = bmw
    other_customer, other_product = _customer_with_product(client, admin, "Audi AG")
    client.post(PATH, json=_body("bmw-1", customer_id, product_id, 1), headers=admin)
    client.post(PATH, json=_body("audi-1", other_customer, other_product, 2), headers=admin)
    portal = auth("customer", customer_id=customer_id)

    # when BMW's portal user lists, reads and posts
    listed = client.get(PATH, headers=portal)
    foreign = client.get(f"{PATH}/audi-1", headers=portal)
    posted = client.post(PATH, json=_body("bmw-2", customer_id, product_id, 9), headers=portal)

    # then it sees its own only and may not post usage
    assert [u["id"] for u in listed.json()] == ["bmw-1"]
    assert client.get(f"{PATH}/bmw-1", headers=portal).status_code == 200
    assert foreign.status_code == 404
    assert posted.status_code == 403
    # while the network feed may post
    feed = client.post(
        PATH, json=_body("bmw-3", customer_id, product_id, 1), headers=auth("network")
    )
    assert feed.status_code == 201, feed.text


def test_the_list_pages_filters_and_holds_its_query_count(
    client: TestClient,
    admin: Headers,
    bmw: tuple[str, str],
    count_queries: Callable[[], Any],
) -> None:
    # given 30 records
    customer_id, product_id = bmw
    batch = [
        _body(f"u-{n:02d}", customer_id, product_id, n, NOV + timedelta(hours=n)) for n in range(30)
    ]
    assert client.post(f"{PATH}/bulk", json=batch, headers=admin).status_code == 201
    client.get(PATH, headers=admin)  # the principal is known from here on

    # when a page of 20 and a filtered page are read
    with count_queries() as counter:
        page = client.get(PATH, params={"limit": 20, "fields": "usageDate"}, headers=admin)
    with count_queries() as small:
        filtered = client.get(
            PATH,
            params={
                "usageDate.gte": (NOV + timedelta(hours=25)).isoformat(),
                "relatedParty.id": customer_id,
            },
            headers=admin,
        )

    # then each costs the same two queries, whatever the page size
    assert page.status_code == 206 and len(page.json()) == 20
    assert page.headers["X-Total-Count"] == "30"
    assert set(page.json()[0]) == {"id", "href", "@type", "usageDate"}
    assert [u["id"] for u in filtered.json()] == [f"u-{n}" for n in range(25, 30)]
    assert counter.count == small.count == 2
    assert client.get(PATH, params={"sort": "id"}, headers=admin).status_code == 400
    assert client.get(PATH, params={"color": "red"}, headers=admin).status_code == 400


def test_traffic_per_site_and_hour_comes_from_the_measurements(
    client: TestClient, admin: Headers, bmw: tuple[str, str]
) -> None:
    # given two links of a site measured every 15 minutes in one hour, one the hour after
    customer_id, product_id = bmw
    hour = datetime(2026, 11, 3, 9, tzinfo=UTC)
    with session_scope() as session:
        for link in ("l-1", "l-2"):
            session.add(
                NetworkLinkRow(
                    id=link,
                    customer_id=customer_id,
                    site_id="site-muc",
                    pop_id="pop-by-1",
                    product_id=product_id,
                    bandwidth_mbits=100,
                )
            )
        for n in range(5):
            session.add(_measurement("l-1", hour + timedelta(minutes=15 * n), 1_000_000_000))
        session.add(_measurement("l-2", hour, 500_000_000))

    # when the hour is taken, twice
    with session_scope() as session:
        first = usage_from_measurements(session, hour)
    with session_scope() as session:
        again = usage_from_measurements(session, hour + timedelta(minutes=5))

    # then the site's hour holds (in + out) of the four intervals in it, in GB, once
    assert (first.new, again.unchanged) == (1, 1)
    usage = client.get(f"{PATH}/traffic/site-muc/{product_id}/2026-11-03T09Z", headers=admin)
    assert usage.status_code == 200, usage.text
    named = {c["name"]: c["value"] for c in usage.json()["usageCharacteristic"]}
    assert named["volume"] == 4 * 1.5 + 0.75

    # and a late measurement corrects the hour on the next tick
    with session_scope() as session:
        session.add(_measurement("l-2", hour + timedelta(minutes=30), 1_000_000_000))
    with session_scope() as session:
        assert traffic_usage_step(session, "usage-tick", (hour + timedelta(hours=2)).isoformat())[
            0
        ] == {"new": 1, "unchanged": 0, "corrected": 1}


def _measurement(link: str, at: datetime, bytes_in: int) -> NetworkMeasurementRow:
    return NetworkMeasurementRow(
        link_id=link,
        site_id="site-muc",
        at=at,
        interval_seconds=900,
        availability=1.0,
        latency_ms=5.0,
        loss_percent=0.0,
        bytes_in=bytes_in,
        bytes_out=bytes_in // 2,
    )


def test_the_tick_takes_the_hours_before_it() -> None:
    at = datetime(2026, 11, 3, 10, 10, tzinfo=UTC)
    assert hours_before(at) == [datetime(2026, 11, 3, h, tzinfo=UTC) for h in (7, 8, 9)]


def test_a_large_batch_goes_the_bulk_path_and_stays_idempotent(
    client: TestClient, admin: Headers, bmw: tuple[str, str]
) -> None:
    # given more records than the COPY threshold
    customer_id, product_id = bmw
    records = [
        _record(f"r-{n}", customer_id, product_id, "0.25", NOV + timedelta(minutes=n))
        for n in range(6_000)
    ]

    with session_scope() as session:
        first = ingest_usage(session, records)
    records[7] = _record("r-7", customer_id, product_id, "0.5", NOV + timedelta(minutes=7))
    with session_scope() as session:
        again = ingest_usage(session, records)

    assert (first.new, first.unchanged) == (6_000, 0)
    assert (again.new, again.unchanged, again.corrected) == (0, 5_999, 1)
    # (a period given as dates starts at midnight in Berlin: 2 November is 23:00 UTC on
    # the 1st, so the 1,380 records of minutes before it count as late)
    with session_scope() as session:
        by_dates = usage_for_billing(session, [product_id], date(2026, 11, 2), date(2026, 12, 1))
    assert by_dates[product_id].late_volume == 1_380 * Decimal("0.25") + Decimal("0.25")
    with session_scope() as session:
        assert usage_for_billing(session, [product_id], NOV, DEC)[product_id].volume == Decimal(
            "1500.25"
        )


def test_a_bulk_batch_mixing_new_unchanged_and_corrected_records_is_counted_exactly(
    bmw: tuple[str, str],
) -> None:
    # given 6,000 stored records (a batch over the COPY threshold)
    customer_id, product_id = bmw
    hours = [NOV + timedelta(minutes=n) for n in range(9_000)]
    first = [_record(f"m-{n}", customer_id, product_id, "0.25", hours[n]) for n in range(6_000)]
    with session_scope() as session:
        assert ingest_usage(session, first).new == 6_000

    # when a batch sends 3,000 of them unchanged (one differing only beyond the column's
    # six places), 3,000 corrected and 3,000 new, in no particular order
    rounded_away = _record("m-2999", customer_id, product_id, "0.2500004", hours[2_999])
    unchanged = [*first[:2_999], rounded_away]
    corrected = [
        _record(f"m-{n}", customer_id, product_id, "1.5", hours[n]) for n in range(3_000, 6_000)
    ]
    new = [_record(f"m-{n}", customer_id, product_id, "2", hours[n]) for n in range(6_000, 9_000)]
    mixed = [*new[::2], *corrected, *unchanged, *new[1::2]]
    with session_scope() as session:
        result = ingest_usage(session, mixed)

    # then each is counted and stored as what it is
    assert (result.received, result.new, result.unchanged, result.corrected) == (
        9_000,
        3_000,
        3_000,
        3_000,
    )
    with session_scope() as session:
        rows = {
            usage_id: (volume, version, status)
            for usage_id, volume, version, status in session.execute(
                select(
                    UsageRecordRow.usage_id,
                    UsageRecordRow.volume,
                    UsageRecordRow.version,
                    UsageRecordRow.status,
                )
            )
        }
    assert len(rows) == 9_000
    assert rows["m-0"] == (Decimal("0.25"), 1, "received")
    assert rows["m-2999"] == (Decimal("0.25"), 1, "received")
    assert rows["m-3000"] == (Decimal("1.5"), 2, "received")
    assert rows["m-8999"] == (Decimal("2"), 1, "received")
    assert sum(volume for volume, _, _ in rows.values()) == Decimal("11250")


def _waiting_on_a_lock(application_name: str) -> int:
    # A transaction of its own per look: PostgreSQL keeps one snapshot of its activity
    # statistics per transaction.
    with session_scope() as session:
        return int(
            session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = :name AND wait_event_type = 'Lock'"
                ),
                {"name": application_name},
            )
            or 0
        )


def test_two_sessions_ingesting_overlapping_batches_store_each_record_once(
    db_url: str, bmw: tuple[str, str]
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite lets one writer in at a time: no two batches meet mid-way")
    # given session A has stored records 0..5,999 and not yet committed
    customer_id, product_id = bmw
    hours = [NOV + timedelta(minutes=n) for n in range(9_000)]
    batch_a = [_record(f"o-{n}", customer_id, product_id, "1", hours[n]) for n in range(6_000)]
    # (B sends 3,000 of A's records with another volume, and 3,000 of its own)
    batch_b = [
        _record(f"o-{n}", customer_id, product_id, "3", hours[n]) for n in range(3_000, 9_000)
    ]
    results: dict[str, Any] = {}

    def ingest_b() -> None:
        try:
            with session_scope() as session:
                session.execute(text("SET LOCAL application_name = 'usage-test-b'"))
                results["b"] = ingest_usage(session, batch_b)
        except Exception as error:  # shown by the assertion below
            results["b"] = error

    with session_scope() as session_a:
        results["a"] = ingest_usage(session_a, batch_a)
        # when session B ingests its batch meanwhile (it finds none of its ids stored,
        # and its COPY waits on A's first shared id) and A commits then
        other = threading.Thread(target=ingest_b)
        other.start()
        waiting = until(lambda: _waiting_on_a_lock("usage-test-b"), seconds=60)
        assert waiting == 1, results
    other.join(timeout=120)

    # then B's COPY met A's records, and B stored its batch the upsert way instead:
    # A's new records corrected, B's own new, each record once
    assert not other.is_alive()
    assert (results["a"].new, results["a"].corrected) == (6_000, 0)
    assert isinstance(results["b"], IngestResult), results["b"]
    assert (results["b"].new, results["b"].unchanged, results["b"].corrected) == (3_000, 0, 3_000)
    with session_scope() as session:
        stored = dict(
            session.execute(
                select(UsageRecordRow.usage_id, UsageRecordRow.version).where(
                    UsageRecordRow.usage_id.like("o-%")
                )
            ).all()
        )
        total = session.scalar(select(func.sum(UsageRecordRow.volume)))
    assert len(stored) == 9_000
    assert (stored["o-0"], stored["o-3000"], stored["o-8999"]) == (1, 2, 1)
    assert total == 3_000 * 1 + 6_000 * 3


def test_the_service_refuses_what_the_api_would(bmw: tuple[str, str]) -> None:
    customer_id, product_id = bmw
    with session_scope() as session, pytest.raises(InvalidRequest, match="volume must be >= 0"):
        ingest_usage(session, [_record("u", customer_id, product_id, "-1", NOV)])
    with session_scope() as session, pytest.raises(UnknownReference):
        ingest_usage(session, [_record("u", "ghost", product_id, "1", NOV)])
