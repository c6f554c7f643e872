"""3.2.3 Report and analyse customer contacts, on the analytical store's contact facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session

from etomcrm.analytics.models import AnContactFact
from etomcrm.config import get_settings
from etomcrm.core.errors import InvalidRequest

ContactGrouping = Literal["channel", "reason", "customer", "total"]
GROUPINGS: tuple[str, ...] = ("channel", "reason", "customer", "total")
TOTAL = "(all)"


def _mean_minutes(total_seconds: int, count: int) -> Decimal | None:
    if count == 0:
        return None
    return (Decimal(total_seconds) / Decimal(60 * count)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def _share(part: int, whole: int) -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.001"), ROUND_HALF_UP)


@dataclass(frozen=True)
class ContactFigures:
    """The contact figures of one group (a channel, a reason, a customer, or all)."""

    key: str
    contacts: int
    inbound: int
    outbound: int
    responded: int  # contacts whose response time is known
    mean_response_minutes: Decimal | None
    response_within_target: Decimal | None  # share of ``responded``
    handled: int  # contacts whose handling time is known
    mean_handling_minutes: Decimal | None
    handling_within_target: Decimal | None  # share of ``handled``
    inbound_ended: int
    first_contact_resolved: int
    first_contact_resolution: Decimal | None  # share of ``inbound_ended``

    def as_row(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "contacts": self.contacts,
            "inbound": self.inbound,
            "outbound": self.outbound,
            "responded": self.responded,
            "meanResponseMinutes": _text(self.mean_response_minutes),
            "responseWithinTarget": _text(self.response_within_target),
            "handled": self.handled,
            "meanHandlingMinutes": _text(self.mean_handling_minutes),
            "handlingWithinTarget": _text(self.handling_within_target),
            "inboundEnded": self.inbound_ended,
            "firstContactResolved": self.first_contact_resolved,
            "firstContactResolution": _text(self.first_contact_resolution),
        }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass
class _Tally:
    """The counts and sums of one group, as the database grouped them."""

    NAMES = (
        "contacts",
        "inbound",
        "outbound",
        "responded",
        "response_sum",
        "response_within",
        "handled",
        "handling_sum",
        "handling_within",
        "inbound_ended",
        "resolved",
    )

    key: str
    counts: list[int]

    def figures(self) -> ContactFigures:
        (
            contacts,
            inbound,
            outbound,
            responded,
            response_sum,
            response_within,
            handled,
            handling_sum,
            handling_within,
            inbound_ended,
            resolved,
        ) = self.counts
        return ContactFigures(
            key=self.key,
            contacts=contacts,
            inbound=inbound,
            outbound=outbound,
            responded=responded,
            mean_response_minutes=_mean_minutes(response_sum, responded),
            response_within_target=_share(response_within, responded),
            handled=handled,
            mean_handling_minutes=_mean_minutes(handling_sum, handled),
            handling_within_target=_share(handling_within, handled),
            inbound_ended=inbound_ended,
            first_contact_resolved=resolved,
            first_contact_resolution=_share(resolved, inbound_ended),
        )


@dataclass(frozen=True)
class ContactReport:
    grouping: str
    start: date | None
    end: date | None
    response_target_minutes: int
    handling_target_minutes: int
    groups: list[ContactFigures]
    total: ContactFigures


def check_period(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidRequest(f"the period ends ({end}) before it starts ({start})")


def contact_statistics(
    session: Session,
    *,
    by: str = "channel",
    start: date | None = None,
    end: date | None = None,
    customer_id: str | None = None,
) -> ContactReport:
    """3.2.3 Report and analyse customer contacts (eTOM 1.1.1.2.3): contact volumes per
    channel, reason or customer (or in total), response and handling times against the
    targets (settings ``analytics_response_target_minutes`` and
    ``analytics_handling_target_minutes``), and first-contact resolution, for the
    contacts that arrived from ``start`` to ``end`` (both included, UTC days)."""
    if by not in GROUPINGS:
        raise InvalidRequest(f"contacts are grouped by one of {', '.join(GROUPINGS)}, not {by!r}")
    check_period(start, end)
    settings = get_settings()
    response_target = settings.analytics_response_target_minutes * 60
    handling_target = settings.analytics_handling_target_minutes * 60
    fact = AnContactFact
    key_column: Any = {
        "channel": fact.channel,
        "reason": fact.reason,
        "customer": fact.customer_id,
    }.get(by, literal(TOTAL))
    inbound = fact.direction == "inbound"
    ended = and_(inbound, fact.ended.is_(True))

    def count_where(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    # Grouped in the database: only one row per group comes back, whatever the number
    # of contacts. Every figure is a count or a sum of whole seconds, so the means and
    # shares below are the same exact Decimals as from the contacts one by one.
    stmt = select(
        key_column.label("key"),
        func.count().label("contacts"),
        count_where(inbound).label("inbound"),
        count_where(fact.direction == "outbound").label("outbound"),
        func.count(fact.response_seconds).label("responded"),
        func.sum(fact.response_seconds).label("response_sum"),
        count_where(fact.response_seconds <= response_target).label("response_within"),
        func.count(fact.handling_seconds).label("handled"),
        func.sum(fact.handling_seconds).label("handling_sum"),
        count_where(fact.handling_seconds <= handling_target).label("handling_within"),
        count_where(ended).label("inbound_ended"),
        count_where(and_(ended, fact.first_contact_resolved.is_(True))).label("resolved"),
    )
    if by != "total":
        stmt = stmt.group_by(key_column)
    if start is not None:
        stmt = stmt.where(fact.received_at >= datetime.combine(start, time(), UTC))
    if end is not None:
        stmt = stmt.where(fact.received_at < datetime.combine(end + timedelta(days=1), time(), UTC))
    if customer_id is not None:
        stmt = stmt.where(fact.customer_id == customer_id)
    tallies = [
        _Tally(
            key=TOTAL if by == "total" else str(row.key),
            counts=[int(getattr(row, name) or 0) for name in _Tally.NAMES],
        )
        for row in session.execute(stmt)
    ]
    # An aggregate without GROUP BY answers one row even where nothing matched.
    tallies = [t for t in tallies if t.counts[0] > 0]
    total = _Tally(key=TOTAL, counts=[0] * len(_Tally.NAMES))
    for tally in tallies:
        total.counts = [a + b for a, b in zip(total.counts, tally.counts, strict=True)]
    tallies.sort(key=lambda t: (-t.counts[0], t.key))
    return ContactReport(
        grouping=by,
        start=start,
        end=end,
        response_target_minutes=settings.analytics_response_target_minutes,
        handling_target_minutes=settings.analytics_handling_target_minutes,
        groups=[t.figures() for t in tallies],
        total=total.figures(),
    )
