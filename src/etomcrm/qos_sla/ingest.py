"""3.7.1 assessed continuously as performance data arrives, and 3.7.2 at once when a
target is missed for certain.

A batch of measurements is stored exactly as a plain bulk insert would store it. Only
its rows that show downtime cost more: for the products on those links, the period's
downtime so far (outside maintenance) is compared with what the SLA allows for the
whole month; when it is already more, the month is lost whatever comes, and the
violation is recorded in the same transaction as the measurement that broke it.

SLAs on business-hour calendars are left to the periodic assessment (3.7.1's
``assess``), which weighs downtime by the calendar; the continuous check covers the
round-the-clock ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from etomcrm.network.models import NetworkLinkRow, NetworkMeasurementRow
from etomcrm.qos_sla.assessment import Assessment, period_bounds
from etomcrm.qos_sla.calendar import merge_intervals
from etomcrm.qos_sla.models import SlaRow
from etomcrm.qos_sla.service import AVAILABILITY, terms_of
from etomcrm.qos_sla.violations import record_violation

FOUR_PLACES = Decimal("0.0001")


@dataclass
class Ingested:
    rows: int = 0
    rows_with_downtime: int = 0
    violations: list[str] = field(default_factory=list)


def ingest_measurements(session: Session, rows: Sequence[Mapping[str, Any]]) -> Ingested:
    """3.7.1 Assess QoS Performance (eTOM 1.1.1.7.1), continuously: store a batch of
    performance data and record at once any violation it makes certain (3.7.2)."""
    result = Ingested(rows=len(rows))
    if not rows:
        return result
    session.execute(insert(NetworkMeasurementRow), list(rows))
    down = [r for r in rows if r["availability"] < 1]
    result.rows_with_downtime = len(down)
    if not down:
        return result
    periods = {(r["link_id"], _period(r["at"])) for r in down}
    link_ids = {link for link, _ in periods}
    slas = session.execute(
        select(NetworkLinkRow.id, SlaRow)
        .join(SlaRow, SlaRow.product_id == NetworkLinkRow.product_id)
        .where(NetworkLinkRow.id.in_(link_ids))
    ).all()
    for link_id, sla_row in slas:
        terms = terms_of(sla_row)
        if not terms.calendar.always:
            continue
        for period in sorted(p for link, p in periods if link == link_id):
            assessment = _availability_so_far(session, link_id, terms, period)
            if assessment is not None and assessment.violated:
                recorded = record_violation(session, assessment)
                if recorded is not None:
                    result.violations.append(str(recorded["id"]))
    return result


def _period(at: datetime) -> str:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m")


def _availability_so_far(
    session: Session, link_id: str, terms: Any, period: str
) -> Assessment | None:
    """The month's availability if nothing more went down: when even that misses the
    target, the miss is certain."""
    from etomcrm.network.maintenance import maintenance_for

    start, end = period_bounds(period)
    downtime_rows = session.execute(
        select(
            NetworkMeasurementRow.at,
            NetworkMeasurementRow.interval_seconds,
            NetworkMeasurementRow.availability,
        ).where(
            NetworkMeasurementRow.link_id == link_id,
            NetworkMeasurementRow.at >= start,
            NetworkMeasurementRow.at < end,
            NetworkMeasurementRow.availability < 1,
        )
    ).all()
    windows = merge_intervals(
        maintenance_for(session, [link_id], start, end).get(link_id, []), "maintenance"
    )
    maintenance = sum(((b - a) for a, b in windows), timedelta())
    down = timedelta()
    for at, seconds, availability in downtime_rows:
        interval = (at, at + timedelta(seconds=seconds))
        inside = sum(
            (max(timedelta(), min(interval[1], b) - max(interval[0], a)) for a, b in windows),
            timedelta(),
        )
        share = 1 - inside / timedelta(seconds=seconds)
        down += timedelta(seconds=seconds * (1 - availability) * share)
    measured = (end - start) - maintenance
    if measured <= timedelta():
        return None
    micro = timedelta(microseconds=1)
    up, total = (measured - down) // micro, measured // micro
    best = (Decimal(100) * Decimal(up) / Decimal(total)).quantize(FOUR_PLACES)
    target = terms.availability_target
    return Assessment(
        product_id=terms.product_id,
        period=period,
        metric=AVAILABILITY,
        measured=best,
        target=target,
        met=best >= target,
        final=False,
        certain_miss=best < target,
    )
