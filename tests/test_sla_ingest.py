"""3.7.1 continuously: performance data is stored as it comes, and the batch that makes
a month's availability target unreachable records the violation (3.7.2), once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from etomcrm.db import session_scope
from etomcrm.network.models import NetworkMeasurementRow
from etomcrm.qos_sla.ingest import ingest_measurements
from etomcrm.qos_sla.models import SlaViolationRow
from etomcrm.qos_sla.service import establish_sla
from tests import factories
from tests.conftest import TokenFactory
from tests.qos_helpers import link, maintenance, monitored_product, product, sla_level

NOVEMBER = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # 2026-11-01 00:00 in Berlin
OFFICE = "SLA Gold Office"  # 99.5 % on Mon-Fri 08:00-18:00, Bavarian holidays


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo("Europe/Berlin"))


def _rows(link_id: str, start: datetime, hours: float, availability: float) -> list[dict[str, Any]]:
    return [
        {
            "link_id": link_id,
            "site_id": "site-1",
            "at": start + timedelta(minutes=5 * i),
            "interval_seconds": 300,
            "availability": availability,
            "latency_ms": 11.0,
            "loss_percent": 0.1,
            "bytes_in": 10_000,
            "bytes_out": 20_000,
        }
        for i in range(round(hours * 12))
    ]


def _violations() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(SlaViolationRow)) or 0)


def test_the_batch_that_breaks_the_month_records_the_violation_once(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a product under a 99.5 % round-the-clock SLA: November allows 216 minutes down
    admin = auth("admin")
    _, _, link_id = monitored_product(client, admin)
    # and a maintenance window on 2 November: downtime in it does not count
    maintenance(link_id, NOVEMBER + timedelta(days=1), NOVEMBER + timedelta(days=1, hours=2))

    # when a day of normal data, then two hours down inside the window, then three
    # hours down outside it arrive, batch by batch
    steps = [
        (NOVEMBER, 24, 1.0),
        (NOVEMBER + timedelta(days=1), 2, 0.0),
        (NOVEMBER + timedelta(days=2), 3, 0.0),
    ]
    for start, hours, availability in steps:
        with session_scope() as session:
            result = ingest_measurements(session, _rows(link_id, start, hours, availability))
            assert result.violations == []
    # then 180 minutes counted, within the 216 allowed (of 43,080 measured): no violation
    assert _violations() == 0

    # when the next hour is down too (240 minutes: more than the month allows)
    with session_scope() as session:
        breaking = ingest_measurements(
            session, _rows(link_id, NOVEMBER + timedelta(days=3), 1, 0.0)
        )
    # then that very batch records the violation, with its credit
    assert len(breaking.violations) == 1 and breaking.rows_with_downtime == 12
    with session_scope() as session:
        violation = session.scalar(select(SlaViolationRow))
        assert violation is not None
        assert violation.body["violation"]["actualValue"] == "99.4429"  # 1 - 240/43,080
        assert "(certain before month end)" in violation.body["violation"]["comment"]
        assert "credit" in violation.body

    # and more downtime later in the month records nothing more
    with session_scope() as session:
        later = ingest_measurements(session, _rows(link_id, NOVEMBER + timedelta(days=9), 2, 0.5))
    assert later.violations == [] and _violations() == 1
    with session_scope() as session:
        stored = session.scalar(select(func.count()).select_from(NetworkMeasurementRow))
    assert stored == (24 + 2 + 3 + 1 + 2) * 12


def test_a_business_hours_sla_counts_downtime_in_its_hours_only(
    client: TestClient, auth: TokenFactory
) -> None:
    # given two products of one customer, one under 99.5 % round the clock (216 minutes
    # down allowed in November), one under 99.5 % on office hours (November has 21
    # working days, 12,600 minutes), each on its own link
    admin = auth("admin")
    sla_level(client, admin)
    sla_level(client, admin, OFFICE, service_hours="Mon-Fri 08:00-18:00")
    customer = factories.customer(client, admin)
    always = product(client, admin, customer["id"])["id"]
    office = product(client, admin, customer["id"], level=OFFICE)["id"]
    with session_scope() as session:
        establish_sla(session, always)
        establish_sla(session, office)
    always_link, office_link = link(customer["id"], always), link(customer["id"], office)
    # and maintenance on Tuesday 3 November 08:00-10:00 on the office link
    maintenance(office_link, berlin(3, 8), berlin(3, 10))

    # when both links are down five hours on Monday night (20:00-01:00), in one batch
    night = berlin(2, 20)
    with session_scope() as session:
        result = ingest_measurements(
            session, _rows(always_link, night, 5, 0.0) + _rows(office_link, night, 5, 0.0)
        )
    # then the round-the-clock month is lost (300 of 216 minutes), the office one not
    assert len(result.violations) == 1
    with session_scope() as session:
        (violation,) = session.scalars(select(SlaViolationRow)).all()
        assert violation.violation_key == f"{always}/availability/2026-11"

    # when the office link is then down in the maintenance window, and half an hour
    # after it: 30 minutes of the 62.4 allowed (0.5 % of 12,480 minutes outside it)
    for start, hours in ((berlin(3, 8), 2.0), (berlin(3, 10), 0.5)):
        with session_scope() as session:
            assert (
                ingest_measurements(session, _rows(office_link, start, hours, 0.0)).violations == []
            )
    assert _violations() == 1

    # when it is down another hour (90 minutes)
    with session_scope() as session:
        breaking = ingest_measurements(session, _rows(office_link, berlin(3, 10, 30), 1, 0.0))
        # then that batch records the violation in its own transaction
        assert len(breaking.violations) == 1
        recorded = session.scalar(
            select(SlaViolationRow).where(
                SlaViolationRow.violation_key == f"{office}/availability/2026-11"
            )
        )
        assert recorded is not None
        assert recorded.body["violation"]["actualValue"] == "99.2788"  # 1 - 90/12,480
        assert "credit" in recorded.body

    # and a second batch with more downtime in business hours records nothing more
    with session_scope() as session:
        later = ingest_measurements(session, _rows(office_link, berlin(4, 9), 1, 0.0))
    assert later.violations == [] and _violations() == 2
