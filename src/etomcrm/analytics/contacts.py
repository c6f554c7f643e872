"""3.2.3 Report and analyse customer contacts, on the analytical store's contact facts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.analytics.models import AnContactFact
from etomcrm.config import get_settings
from etomcrm.core.errors import InvalidRequest

ContactGrouping = Literal["channel", "reason", "customer", "total"]
GROUPINGS: tuple[str, ...] = ("channel", "reason", "customer", "total")
TOTAL = "(all)"


def _mean_minutes(seconds: Sequence[int]) -> Decimal | None:
    if not seconds:
        return None
    return (Decimal(sum(seconds)) / Decimal(60 * len(seconds))).quantize(
        Decimal("0.1"), ROUND_HALF_UP
    )


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
    stmt = select(
        AnContactFact.customer_id,
        AnContactFact.channel,
        AnContactFact.reason,
        AnContactFact.direction,
        AnContactFact.response_seconds,
        AnContactFact.handling_seconds,
        AnContactFact.ended,
        AnContactFact.first_contact_resolved,
    )
    if start is not None:
        stmt = stmt.where(AnContactFact.received_at >= datetime.combine(start, time(), UTC))
    if end is not None:
        stmt = stmt.where(
            AnContactFact.received_at < datetime.combine(end + timedelta(days=1), time(), UTC)
        )
    if customer_id is not None:
        stmt = stmt.where(AnContactFact.customer_id == customer_id)
    groups: dict[str, list[Any]] = defaultdict(list)
    everything: list[Any] = []
    for row in session.execute(stmt):
        key = {"channel": row.channel, "reason": row.reason, "customer": row.customer_id}.get(
            by, TOTAL
        )
        groups[key].append(row)
        everything.append(row)

    def figures(key: str, rows: list[Any]) -> ContactFigures:
        responses = [r.response_seconds for r in rows if r.response_seconds is not None]
        handlings = [r.handling_seconds for r in rows if r.handling_seconds is not None]
        inbound = [r for r in rows if r.direction == "inbound"]
        ended = [r for r in inbound if r.ended]
        resolved = sum(1 for r in ended if r.first_contact_resolved)
        return ContactFigures(
            key=key,
            contacts=len(rows),
            inbound=len(inbound),
            outbound=sum(1 for r in rows if r.direction == "outbound"),
            responded=len(responses),
            mean_response_minutes=_mean_minutes(responses),
            response_within_target=_share(
                sum(1 for s in responses if s <= response_target), len(responses)
            ),
            handled=len(handlings),
            mean_handling_minutes=_mean_minutes(handlings),
            handling_within_target=_share(
                sum(1 for s in handlings if s <= handling_target), len(handlings)
            ),
            inbound_ended=len(ended),
            first_contact_resolved=resolved,
            first_contact_resolution=_share(resolved, len(ended)),
        )

    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return ContactReport(
        grouping=by,
        start=start,
        end=end,
        response_target_minutes=settings.analytics_response_target_minutes,
        handling_target_minutes=settings.analytics_handling_target_minutes,
        groups=[figures(key, rows) for key, rows in ordered],
        total=figures(TOTAL, everything),
    )
