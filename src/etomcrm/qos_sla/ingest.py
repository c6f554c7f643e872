"""3.7.1 assessed continuously as performance data arrives, and 3.7.2 at once when a
target is missed for certain.

A batch of measurements is stored exactly as a plain bulk insert would store it. Only
its rows that show downtime cost more: for the products on those links, the month's
availability is computed as if nothing more went down until its end
(:func:`etomcrm.qos_sla.sla.availability` of the downtime so far, outside planned
maintenance, on the SLA's calendar, the same computation as the periodic ``assess``).
When even that misses the target, the month is lost whatever comes, and the violation
is recorded in the same transaction as the measurement that broke it.

On a business-hours SLA only downtime within its business hours counts, against the
month's business time: a batch whose downtime lies wholly outside them (a night, a
weekend) changes nothing and costs nothing more. Nor does a month whose violation is
recorded already. Downtime is
read back from the measurements by :func:`etomcrm.network.telemetry.outages_for`,
as the periodic assessment reads it, so both reach the same figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, aliased

from etomcrm.core.calendar import merge_intervals
from etomcrm.network.maintenance import maintenance_for
from etomcrm.network.models import NetworkLinkRow, NetworkMeasurementRow
from etomcrm.network.telemetry import outages_for
from etomcrm.qos_sla import sla
from etomcrm.qos_sla.assessment import Assessment, period_bounds
from etomcrm.qos_sla.models import SlaRow, SlaViolationRow
from etomcrm.qos_sla.service import AVAILABILITY, SlaTerms, terms_of
from etomcrm.qos_sla.violations import record_violation, violation_key

# an SLA, a month ("2026-11") and all the links of the SLA's product
Check = tuple[SlaTerms, str, list[str]]


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
    due = _due(session, down)
    # per month (its bounds depend on the calendar's zone): every link's downtime and
    # maintenance at once
    by_period: dict[tuple[datetime, datetime], list[Check]] = {}
    for check in due:
        terms, period, _ = check
        by_period.setdefault(period_bounds(period, terms.calendar.timezone), []).append(check)
    for (start, end), checks in sorted(by_period.items(), key=lambda item: item[0]):
        for assessment in _best_cases(session, start, end, checks):
            if assessment.violated:
                recorded = record_violation(session, assessment)
                if recorded is not None:
                    result.violations.append(str(recorded["id"]))
    return result


def _due(session: Session, down: Sequence[Mapping[str, Any]]) -> list[Check]:
    """The SLAs and months to check, each with all the links of its product: where the
    batch's downtime falls in the SLA's business hours, in a month whose availability
    violation is not recorded yet. Two queries."""
    link = aliased(NetworkLinkRow)
    touched = {r["link_id"] for r in down}
    found = session.execute(
        select(NetworkLinkRow.id, NetworkLinkRow.product_id, SlaRow)
        .join(SlaRow, SlaRow.product_id == NetworkLinkRow.product_id)
        .where(NetworkLinkRow.product_id.in_(select(link.product_id).where(link.id.in_(touched))))
        .order_by(NetworkLinkRow.id)
    ).all()
    links: dict[str, list[str]] = {}
    terms: dict[str, SlaTerms] = {}
    for link_id, product_id, sla_row in found:
        links.setdefault(str(product_id), []).append(link_id)
        if str(product_id) not in terms:
            terms[str(product_id)] = terms_of(sla_row)
    product_of = {link_id: p for p, ids in links.items() for link_id in ids}
    candidates: set[tuple[str, str]] = set()
    for row in down:
        product_id = product_of.get(row["link_id"])
        if product_id is None:
            continue
        calendar = terms[product_id].calendar
        at: datetime = row["at"]
        # a downtime wholly outside business hours cannot make the month worse
        if calendar.always or calendar.between(at, at + timedelta(seconds=row["interval_seconds"])):
            candidates.add((product_id, _period(at, calendar.timezone)))
    if not candidates:
        return []
    recorded = set(
        session.scalars(
            select(SlaViolationRow.violation_key).where(
                SlaViolationRow.violation_key.in_(
                    [violation_key(p, AVAILABILITY, period) for p, period in candidates]
                )
            )
        )
    )
    return [
        (terms[product_id], period, links[product_id])
        for product_id, period in sorted(candidates)
        if violation_key(product_id, AVAILABILITY, period) not in recorded
    ]


def _period(at: datetime, timezone: str) -> str:
    return at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m")


def _best_cases(
    session: Session,
    start: datetime,
    end: datetime,
    checks: Sequence[Check],
) -> list[Assessment]:
    """Per SLA, the month's availability if nothing more went down: when even that
    misses the target, the miss is certain. Three queries for all the SLAs."""

    link_ids = sorted({link_id for _, _, ids in checks for link_id in ids})
    outages = outages_for(session, link_ids, start, end)
    maintenance = maintenance_for(session, link_ids, start, end)
    assessments = []
    for terms, period, ids in checks:
        down = merge_intervals([span for link_id in ids for span in outages.get(link_id, [])])
        planned = merge_intervals(
            [span for link_id in ids for span in maintenance.get(link_id, [])]
        )
        best = sla.availability(start, end, down, planned, terms.calendar)
        target = terms.availability_target
        assessments.append(
            Assessment(
                product_id=terms.product_id,
                period=period,
                metric=AVAILABILITY,
                measured=best,
                target=target,
                met=best >= target,
                final=False,
                certain_miss=best < target,
            )
        )
    return assessments
