"""3.9.2 segments, computed from the analytical store's facts, never typed in.

A customer's segment names its value, its usage and, where it stands out, its
behaviour, in words a marketer reads without a legend ("High value · heavy usage ·
pays late"). The rule (:func:`segment_for`) takes the customer's figures over the last
``analytics_segment_months`` complete months before today (the window): thresholds are
absolute (settings), so a customer's segment depends on its own figures only and a
refresh of one customer never moves another.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from etomcrm.analytics.models import (
    AnContactFact,
    AnCustomer,
    AnDunningFact,
    AnRevenueFact,
    AnTicketFact,
    AnUsageFact,
)
from etomcrm.config import get_settings
from etomcrm.core.clock import ServiceClock

# The clock the segment window is taken from (a test sets it; the API path reads it).
CLOCK = ServiceClock("analytics_segments")
NO_DATA = "New · no data yet"
# What is not billed revenue: SLA credits are a cost, a carried credit was counted before.
NOT_REVENUE = ("credit", "carriedCredit")
# The usage a segment's "usage" is: traffic volume (the usage records' traffic, in GB).
TRAFFIC = "traffic"
CHUNK = 500
# From this many customers a recomputation reads the whole store in six queries.
WHOLE_STORE_FROM = 2_000


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def add_months(month: str, n: int) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + (mon - 1) + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last``, both included."""
    out: list[str] = []
    month = first
    while month <= last:
        out.append(month)
        month = add_months(month, 1)
    return out


def last_complete_month(today: date) -> str:
    """The month before today's: today's month is not over, its figures would fall."""
    return add_months(month_key(today), -1)


def clock_today() -> date:
    return CLOCK.now().date()


@dataclass(frozen=True)
class SegmentRule:
    """The thresholds of the rule (settings ``analytics_segment_*``)."""

    months: int
    high_value: Decimal
    mid_value: Decimal
    heavy_usage: Decimal
    care_contacts: Decimal

    @classmethod
    def from_settings(cls) -> SegmentRule:
        s = get_settings()
        return cls(
            months=s.analytics_segment_months,
            high_value=Decimal(s.analytics_segment_high_value_eur),
            mid_value=Decimal(s.analytics_segment_mid_value_eur),
            heavy_usage=Decimal(s.analytics_segment_heavy_usage),
            care_contacts=Decimal(s.analytics_segment_care_contacts),
        )

    def window(self, today: date) -> tuple[str, str]:
        """The first and last month of the figures: the last complete months."""
        last = last_complete_month(today)
        return add_months(last, 1 - self.months), last

    def as_dict(self) -> dict[str, Any]:
        return {
            "windowMonths": self.months,
            "highValueEurPerMonth": str(self.high_value),
            "midValueEurPerMonth": str(self.mid_value),
            "heavyUsagePerMonth": str(self.heavy_usage),
            "needsCareContactsPerMonth": str(self.care_contacts),
        }


@dataclass
class Figures:
    """One customer's figures over the window (totals; ``per_month`` divides)."""

    customer_id: str
    revenue: Decimal = Decimal(0)
    usage: Decimal = Decimal(0)
    contacts: int = 0
    tickets: int = 0
    dunning_cases: int = 0
    # Any billed revenue or usage at all, in or before the window.
    has_data: bool = False


def segment_for(figures: Figures, rule: SegmentRule) -> str:
    """3.9.2 Understand customers and trends: the customer's segment from its figures.

    - No billed revenue and no usage ever: ``New · no data yet``.
    - Value, from the billed revenue per month over the window (charges of issued bills,
      discounts taken off, credits not counted): ``High value`` from ``high_value`` EUR,
      ``Mid value`` from ``mid_value`` EUR, ``Low value`` below.
    - Usage, from the traffic volume per month over the window: ``heavy usage`` from
      ``heavy_usage``, ``light usage`` below.
    - Behaviour, only where it stands out: ``pays late`` when a dunning case opened in
      the window; otherwise ``needs care`` when inbound contacts and trouble tickets
      together reach ``care_contacts`` per month.

    The parts are joined with `` · ``: "High value · heavy usage", "Low value · light
    usage · needs care"."""
    if not figures.has_data:
        return NO_DATA
    months = Decimal(rule.months)
    value = figures.revenue / months
    tier = (
        "High value"
        if value >= rule.high_value
        else "Mid value"
        if value >= rule.mid_value
        else "Low value"
    )
    usage = "heavy usage" if figures.usage / months >= rule.heavy_usage else "light usage"
    parts = [tier, usage]
    if figures.dunning_cases:
        parts.append("pays late")
    elif Decimal(figures.contacts + figures.tickets) / months >= rule.care_contacts:
        parts.append("needs care")
    return " · ".join(parts)


def _parts(ids: Sequence[str] | None) -> Iterable[Sequence[str] | None]:
    if ids is None:
        yield None
        return
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def figures_of(
    session: Session, ids: Sequence[str] | None, today: date, rule: SegmentRule
) -> dict[str, Figures]:
    """The figures of these customers (every customer of the store when None): six
    grouped queries per 500 customers, whatever their facts."""
    first, last = rule.window(today)
    start = date.fromisoformat(f"{first}-01")
    end = date.fromisoformat(f"{add_months(last, 1)}-01")
    out: dict[str, Figures] = {}

    def of(customer_id: str) -> Figures:
        if customer_id not in out:
            out[customer_id] = Figures(customer_id)
        return out[customer_id]

    for part in _parts(ids):

        def only(stmt: Any, column: Any, part: Sequence[str] | None = part) -> Any:
            return stmt if part is None else stmt.where(column.in_(part))

        if part is None:
            for (customer_id,) in session.execute(select(AnCustomer.customer_id)):
                of(customer_id)
        else:
            for customer_id in part:
                of(customer_id)
        queries: list[tuple[str, Any]] = [
            (
                "revenue",
                only(
                    select(AnRevenueFact.customer_id, func.sum(AnRevenueFact.amount))
                    .where(
                        AnRevenueFact.month >= first,
                        AnRevenueFact.month <= last,
                        AnRevenueFact.rate_type.not_in(NOT_REVENUE),
                    )
                    .group_by(AnRevenueFact.customer_id),
                    AnRevenueFact.customer_id,
                ),
            ),
            (
                "usage",
                only(
                    select(AnUsageFact.customer_id, func.sum(AnUsageFact.volume))
                    .where(
                        AnUsageFact.day >= start,
                        AnUsageFact.day < end,
                        AnUsageFact.usage_type == TRAFFIC,
                    )
                    .group_by(AnUsageFact.customer_id),
                    AnUsageFact.customer_id,
                ),
            ),
            (
                "contacts",
                only(
                    select(AnContactFact.customer_id, func.count())
                    .where(
                        AnContactFact.day >= start,
                        AnContactFact.day < end,
                        AnContactFact.direction == "inbound",
                    )
                    .group_by(AnContactFact.customer_id),
                    AnContactFact.customer_id,
                ),
            ),
            (
                "tickets",
                only(
                    select(AnTicketFact.customer_id, func.count())
                    .where(AnTicketFact.month >= first, AnTicketFact.month <= last)
                    .group_by(AnTicketFact.customer_id),
                    AnTicketFact.customer_id,
                ),
            ),
            (
                "dunning_cases",
                only(
                    select(AnDunningFact.customer_id, func.count())
                    .where(AnDunningFact.month >= first, AnDunningFact.month <= last)
                    .group_by(AnDunningFact.customer_id),
                    AnDunningFact.customer_id,
                ),
            ),
        ]
        for name, stmt in queries:
            counted = name in ("contacts", "tickets", "dunning_cases")
            for customer_id, amount in session.execute(stmt):
                if customer_id in out:
                    setattr(out[customer_id], name, int(amount) if counted else Decimal(amount))
        with_data = only(
            select(AnRevenueFact.customer_id).distinct(), AnRevenueFact.customer_id
        ).union(only(select(AnUsageFact.customer_id).distinct(), AnUsageFact.customer_id))
        for (customer_id,) in session.execute(with_data):
            if customer_id in out:
                out[customer_id].has_data = True
    return out


def segments_of(
    session: Session, ids: Sequence[str] | None, today: date | None = None
) -> dict[str, str]:
    """The segment of each of these customers (each of the store's when None)."""
    rule = SegmentRule.from_settings()
    figures = figures_of(session, ids, today or clock_today(), rule)
    return {customer_id: segment_for(f, rule) for customer_id, f in figures.items()}


def assign_segments(session: Session, ids: Sequence[str] | None) -> None:
    """Compute the segment of these customers (every customer when None) and write it
    into the customer dimension where it changed. Many customers at once (the hourly
    usage feed) are computed with the whole store's grouped queries, not in chunks."""
    whole = ids is None or len(ids) > WHOLE_STORE_FROM
    segments = segments_of(session, None if whole else ids)
    wanted = None if ids is None else set(ids)
    current = select(AnCustomer.customer_id, AnCustomer.segment)
    changed: dict[str, list[str]] = defaultdict(list)
    for part in _parts(None if whole or ids is None else list(ids)):
        stmt = current if part is None else current.where(AnCustomer.customer_id.in_(part))
        for customer_id, segment in session.execute(stmt):
            new = segments.get(customer_id, NO_DATA)
            if new != segment and (wanted is None or customer_id in wanted):
                changed[new].append(customer_id)
    for segment, members in changed.items():
        for part in _parts(sorted(members)):
            assert part is not None
            session.execute(
                update(AnCustomer).where(AnCustomer.customer_id.in_(part)).values(segment=segment)
            )
