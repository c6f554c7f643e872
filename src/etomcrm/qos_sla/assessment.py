"""3.7.1 Assess QoS performance: measured quality against each SLA, per calendar month.

Per product and metric, over the month so far (the whole month once it has ended):

``availability``  :func:`etomcrm.qos_sla.sla.availability` of the product's links'
                  outages, planned maintenance excluded, on the SLA's calendar;
``latency``       mean latency of the month's intervals weighted by their length,
                  intervals with the link wholly down left out (a down link has no
                  latency; its downtime counts against availability);
``loss``          mean packet loss, weighted the same way;
``timeToRepair``  the longest repair among the month's incidents of the product, in
                  hours with 2 decimals (rounded up) on the SLA's calendar, without
                  the time the ticket waited for the customer; 0 without incidents.

Latency and loss count the intervals that begin within the SLA's business hours (all
of them for a round-the-clock SLA): a business-hours SLA promises its quality while
the customer works, and a slow night does not break it. They are averaged in SQL, one
aggregate query per distinct calendar (SLAs share a few), so the assessment keeps to
a bounded number of queries however many products there are.

An incident is a trouble ticket whose ``relatedEntity`` names the product, resolved
(``resolutionDate``) within the month; tickets that follow up a violation
(``ticketType`` "slaViolation") are not incidents. A repair over the target is a miss
at once: no later incident makes the month's longest repair shorter.

Outages and maintenance come from the network side
(:func:`etomcrm.network.telemetry.outages_for`, read from the measurements, and
:func:`etomcrm.network.maintenance.maintenance_for`, the windows of the link or its
point of presence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from etomcrm.core.calendar import BusinessCalendar, Interval, merge_intervals
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.communication import inform_customer
from etomcrm.network.maintenance import maintenance_for
from etomcrm.network.models import NetworkLinkRow as L
from etomcrm.network.models import NetworkMeasurementRow as M
from etomcrm.network.telemetry import outages_for
from etomcrm.problem_handling.models import TroubleTicketRow as T
from etomcrm.problem_handling.tickets import waiting_intervals
from etomcrm.qos_sla import sla
from etomcrm.qos_sla.models import QosAssessmentRow, SlaRow
from etomcrm.qos_sla.service import (
    AVAILABILITY,
    LATENCY,
    LOSS,
    TIME_TO_REPAIR,
    SlaTerms,
    terms_of,
)

FOUR_PLACES = Decimal("0.0001")
TWO_PLACES = Decimal("0.01")
MICROSECOND = timedelta(microseconds=1)
MICROSECONDS_PER_HOUR = 3_600_000_000
# tickets that follow up a violation (3.7.2), not incidents of the product
SLA_VIOLATION_TICKET = "slaViolation"
LinkIntervals = dict[str, list[Interval]]


@dataclass(frozen=True)
class Assessment:
    """One metric of one product's SLA for one period."""

    product_id: str
    period: str
    metric: str
    measured: Decimal
    target: Decimal
    met: bool
    final: bool  # the period has ended
    # the target is missed whatever the rest of the period brings
    certain_miss: bool
    # availability only: the month's value if it goes on as so far
    projected: Decimal | None = None

    @property
    def violated(self) -> bool:
        return not self.met and (self.final or self.certain_miss)


def period_bounds(period: str, calendar_zone: str = "Europe/Berlin") -> tuple[datetime, datetime]:
    """The calendar month ``YYYY-MM`` in the SLA's zone, as UTC instants."""
    try:
        year, month = (int(part) for part in period.split("-"))
        zone = ZoneInfo(calendar_zone)
        start = datetime(year, month, 1, tzinfo=zone)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    except ValueError:
        raise InvalidRequest(f"period must be a month like 2026-11, not {period!r}") from None
    if len(period) != 7:
        raise InvalidRequest(f"period must be a month like 2026-11, not {period!r}")
    return start.astimezone(UTC), end.astimezone(UTC)


def _intervals(
    session: Session, link_ids: Sequence[str], start: datetime, end: datetime, until: datetime
) -> tuple[LinkIntervals, LinkIntervals]:
    """Outages up to ``until`` and planned maintenance over the whole period, per link,
    from the network side (one query each)."""

    outages = outages_for(session, link_ids, start, until)
    planned = maintenance_for(session, link_ids, start, end)
    return (
        {link: list(spans) for link, spans in outages.items()},
        {link: list(spans) for link, spans in planned.items()},
    )


def _quality(
    session: Session, slas: Sequence[SlaTerms], period: str, now: datetime
) -> dict[str, tuple[Decimal, Decimal]]:
    """Mean latency and loss per product over the period's intervals so far that
    begin within its SLA's business hours: one aggregate query per distinct calendar."""
    by_calendar: dict[BusinessCalendar, list[str]] = {}
    for terms in slas:
        by_calendar.setdefault(terms.calendar, []).append(terms.product_id)
    quality: dict[str, tuple[Decimal, Decimal]] = {}
    for calendar, product_ids in by_calendar.items():
        start, end = period_bounds(period, calendar.timezone)
        until = min(now, end)
        windows = calendar.open_windows(start, until)
        if windows:
            quality.update(_mean_quality(session, product_ids, windows))
    return quality


def _mean_quality(
    session: Session, product_ids: Sequence[str], windows: Sequence[Interval]
) -> dict[str, tuple[Decimal, Decimal]]:
    """Mean latency and loss per product of the intervals beginning within ``windows``,
    in one aggregate query."""

    up = M.availability > 0
    weight = case((up, M.interval_seconds), else_=0)
    within = or_(*(and_(M.at >= begin, M.at < end) for begin, end in windows))
    rows = session.execute(
        select(
            L.product_id,
            func.sum(M.latency_ms * weight),
            func.sum(M.loss_percent * weight),
            func.sum(weight),
        )
        .join(L, L.id == M.link_id)
        .where(and_(L.product_id.in_(product_ids), within))
        .group_by(L.product_id)
    )
    quality: dict[str, tuple[Decimal, Decimal]] = {}
    for product_id, latency, loss, seconds in rows:
        if seconds:
            quality[product_id] = (
                (Decimal(str(latency)) / Decimal(seconds)).quantize(FOUR_PLACES, ROUND_HALF_EVEN),
                (Decimal(str(loss)) / Decimal(seconds)).quantize(FOUR_PLACES, ROUND_HALF_EVEN),
            )
    return quality


def _incidents(
    session: Session, slas: Sequence[SlaTerms], since: datetime
) -> dict[str, list[tuple[datetime, JsonDict]]]:
    """Per product, the tickets naming it that were resolved at or after ``since`` and
    are incidents (not the follow-up of a violation), with their resolution time: one
    query for the tickets of all the SLAs' customers, matched to the products by
    ``relatedEntity`` here."""

    products = {terms.product_id for terms in slas}
    customers = sorted({terms.customer_id for terms in slas if terms.customer_id})
    found: dict[str, list[tuple[datetime, JsonDict]]] = {}
    if not customers:
        return found
    bodies = session.scalars(
        select(T.body).where(
            T.owner_customer_id.in_(customers),
            T.status.in_(("resolved", "closed")),
            # a ticket is last written at or after its resolution
            T.updated_at >= since,
        )
    )
    for body in bodies:
        resolved = body.get("resolutionDate")
        if not resolved or body.get("ticketType") == SLA_VIOLATION_TICKET:
            continue
        named = {
            str(entity.get("id"))
            for entity in body.get("relatedEntity") or []
            if isinstance(entity, dict)
        }
        for product_id in named & products:
            found.setdefault(product_id, []).append((datetime.fromisoformat(str(resolved)), body))
    return found


def longest_repair(tickets: Sequence[JsonDict], calendar: BusinessCalendar) -> timedelta:
    """3.7.1 Assess QoS Performance (eTOM 1.1.1.7.1): the longest time to repair among
    resolved tickets, from creation to resolution on ``calendar``, without the time each
    waited for the customer; zero without tickets."""

    longest = timedelta(0)
    for ticket in tickets:
        opened, restored = (
            datetime.fromisoformat(ticket["creationDate"]),
            datetime.fromisoformat(ticket["resolutionDate"]),
        )
        pauses, _ = waiting_intervals(ticket.get("statusChange") or [], restored)
        longest = max(longest, sla.time_to_repair(opened, restored, calendar, pauses))
    return longest


def repair_hours(span: timedelta) -> Decimal:
    """Hours with 2 decimals, rounded up: a repair shown within the target was."""
    hours = Decimal(span // MICROSECOND) / Decimal(MICROSECONDS_PER_HOUR)
    return hours.quantize(TWO_PLACES, ROUND_CEILING)


def _slas(session: Session, product_ids: Sequence[str] | None) -> list[SlaTerms]:
    stmt = select(SlaRow).where(SlaRow.product_id.is_not(None)).order_by(SlaRow.product_id)
    if product_ids is not None:
        stmt = stmt.where(SlaRow.product_id.in_(product_ids))
    return [terms_of(row) for row in session.scalars(stmt)]


def assess(
    session: Session,
    *,
    period: str,
    now: datetime,
    product_ids: Sequence[str] | None = None,
) -> list[Assessment]:
    """3.7.1 Assess QoS Performance (eTOM 1.1.1.7.1): every SLA's metrics (of the
    given products, else all) for ``period`` (``"2026-11"``) as measured up to ``now``,
    stored per product, period and metric (final once the period has ended).

    A fixed number of queries whatever the number of products and tickets (one more
    per distinct SLA calendar).
    """

    slas = _slas(session, product_ids)
    if not slas:
        return []
    start, end = period_bounds(period, slas[0].calendar.timezone)
    if now <= start:
        raise InvalidRequest(f"period {period} has not begun at {now.isoformat()}")
    until = min(now, end)
    final = now >= end
    ids = [terms.product_id for terms in slas]
    links: dict[str, list[str]] = {}
    for link_id, product_id in session.execute(
        select(L.id, L.product_id).where(L.product_id.in_(ids)).order_by(L.id)
    ):
        links.setdefault(str(product_id), []).append(link_id)
    link_ids = [link for spans in links.values() for link in spans]
    outages, maintenance = _intervals(session, link_ids, start, end, until)
    quality = _quality(session, slas, period, now)
    bounds = {terms.product_id: period_bounds(period, terms.calendar.timezone) for terms in slas}
    incidents = _incidents(session, slas, min(begin for begin, _ in bounds.values()))
    results: list[Assessment] = []
    for terms in slas:
        product_start, product_end = bounds[terms.product_id]
        own_until = min(now, product_end)
        down = merge_intervals(
            [span for link in links.get(terms.product_id, []) for span in outages.get(link, [])]
        )
        planned = merge_intervals(
            [span for link in links.get(terms.product_id, []) for span in maintenance.get(link, [])]
        )
        so_far = sla.availability(product_start, own_until, down, planned, terms.calendar)
        # the best the month can still end with: no more downtime from now on
        best = sla.availability(product_start, product_end, down, planned, terms.calendar)
        target = terms.availability_target
        results.append(
            Assessment(
                terms.product_id,
                period,
                AVAILABILITY,
                so_far,
                target,
                so_far >= target,
                final,
                best < target,
                projected=so_far,
            )
        )
        latency, loss = quality.get(terms.product_id, (Decimal(0), Decimal(0)))
        for metric, measured in ((LATENCY, latency), (LOSS, loss)):
            bound = terms.target(metric)
            results.append(
                Assessment(
                    terms.product_id,
                    period,
                    metric,
                    measured,
                    bound,
                    measured <= bound,
                    final,
                    False,
                )
            )
        repaired = [
            ticket
            for resolved, ticket in incidents.get(terms.product_id, [])
            if product_start <= resolved < own_until
        ]
        repair = longest_repair(repaired, terms.calendar)
        repair_target = terms.time_to_repair_hours
        missed = Decimal(repair // MICROSECOND) > repair_target * MICROSECONDS_PER_HOUR
        results.append(
            Assessment(
                terms.product_id,
                period,
                TIME_TO_REPAIR,
                repair_hours(repair),
                repair_target,
                not missed,
                final,
                missed,
            )
        )
    _store(session, results, period)
    return results


def _store(session: Session, results: list[Assessment], period: str) -> None:
    product_ids = sorted({a.product_id for a in results})
    existing = {
        (row.product_id, row.metric): row
        for row in session.scalars(
            select(QosAssessmentRow).where(
                QosAssessmentRow.period == period, QosAssessmentRow.product_id.in_(product_ids)
            )
        )
    }
    for result in results:
        row = existing.get((result.product_id, result.metric))
        if row is None:
            session.add(
                QosAssessmentRow(
                    product_id=result.product_id,
                    period=period,
                    metric=result.metric,
                    measured=result.measured,
                    target=result.target,
                    met=result.met,
                    final=result.final,
                )
            )
        elif not row.final:
            row.measured, row.target = result.measured, result.target
            row.met, row.final = result.met, result.final
    session.flush()


def trend_warning(session: Session, assessments: Sequence[Assessment]) -> list[Assessment]:
    """3.7.1 Assess QoS Performance (eTOM 1.1.1.7.1), within the period: warn the
    customer (and the SLA managers, by an internal ``SlaTrendWarningEvent``) when the
    month's availability, projected linearly from the downtime so far, will miss its
    target before it is missed for certain. Once per product, metric and period;
    returns the warnings given by this call."""

    due = [
        a
        for a in assessments
        if a.metric == AVAILABILITY
        and not a.final
        and not a.certain_miss
        and a.projected is not None
        and a.projected < a.target
    ]
    if not due:
        return []
    rows = {
        row.product_id: row
        for row in session.scalars(
            select(SlaRow)
            .where(SlaRow.product_id.in_([a.product_id for a in due]))
            .with_for_update()
        )
    }
    given: list[Assessment] = []
    for warning in due:
        row = rows[warning.product_id]
        key = f"{warning.metric}/{warning.period}"
        body: JsonDict = dict(row.body)
        if key in body.get("trendWarnings", []):
            continue
        body["trendWarnings"] = [*body.get("trendWarnings", []), key]
        row.body = body
        row.version += 1
        content = (
            f"The availability of {body.get('name')} is {warning.measured} % so far in "
            f"{warning.period}. If it goes on like this the month ends below the agreed "
            f"{warning.target} %. We are working on it and will keep you informed."
        )
        if row.owner_customer_id:
            inform_customer(
                session,
                customer_id=row.owner_customer_id,
                subject=f"SLA warning for {warning.period}: availability trending below target",
                content=content,
                key=f"sla-warning/{warning.product_id}/{key}",
            )
        given.append(warning)
    return given
