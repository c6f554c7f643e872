"""3.7.1 SLA arithmetic: availability, time to repair and penalty credits, exact.

Pure functions (no database, no clock) that the assessment (3.7.1) and the violation
handling (3.7.2) build on:

* :func:`availability` — percent with 4 decimals, rounded half-even from the exact
  ratio of microseconds (no float, no intermediate rounding);
* :func:`time_to_repair` — business time from opening to restoration;
* :func:`penalty` — the credit an SLA's penalty rule grants, to the cent (rounded
  half-up, like every amount the quotes compute).

Intervals are ``(begin, end)`` pairs of timezone-aware datetimes; overlapping ones
count once. A naive datetime or an interval ending before it starts is a
programming error (``ValueError``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from etomcrm.core.calendar import BusinessCalendar, Interval, merge_intervals
from etomcrm.core.errors import InvalidRequest

CENT = Decimal("0.01")
HUNDRED_PERCENT = Decimal("100.0000")
_SCALE = 10**4  # four decimals of a percentage
_MICROSECOND = timedelta(microseconds=1)


def _microseconds(span: timedelta) -> int:
    return span // _MICROSECOND


def _percent_half_even(numerator: int, denominator: int) -> Decimal:
    """``100 * numerator / denominator`` with 4 decimals, rounded half-even, exactly."""
    quotient, remainder = divmod(100 * _SCALE * numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2):
        quotient += 1
    return Decimal(quotient).scaleb(-4)


def availability(
    period_start: datetime,
    period_end: datetime,
    outages: Sequence[Interval],
    maintenance: Sequence[Interval] = (),
    calendar: BusinessCalendar | None = None,
) -> Decimal:
    """3.7.1 Assess QoS Performance (eTOM 1.1.1.7.1): the availability of a service
    over a period, in percent with 4 decimals (rounded half-even).

    ``100 * (measured - downtime) / measured``, where measured time is the period
    minus planned maintenance and downtime is the union of the outages, clipped to
    the period, outside maintenance. With a calendar only its business time counts
    (an outage at night does not hurt a business-hours SLA); without one every
    minute does. A period with nothing to measure (all maintenance, or no business
    hours) had no downtime that counts: 100.0000.
    """
    clock = calendar or BusinessCalendar.round_the_clock()
    # between() first: it refuses naive datetimes before they are compared here
    measured = _microseconds(clock.between(period_start, period_end, maintenance))
    if period_end <= period_start:
        raise ValueError(
            f"the period ends ({period_end.isoformat()}) before it starts "
            f"({period_start.isoformat()})"
        )
    if measured == 0:
        return HUNDRED_PERCENT
    pauses = merge_intervals(maintenance, "maintenance window")
    down = sum(
        (
            clock.between(max(begin, period_start), min(end, period_end), pauses)
            for begin, end in merge_intervals(outages, "outage")
        ),
        timedelta(0),
    )
    return _percent_half_even(measured - _microseconds(down), measured)


def time_to_repair(
    opened: datetime,
    restored: datetime,
    calendar: BusinessCalendar,
    pauses: Sequence[Interval] = (),
) -> timedelta:
    """3.7.1 Assess QoS Performance (eTOM 1.1.1.7.1): the time a repair took on the
    SLA's calendar, without the time the ticket waited for the customer (``pauses``).
    """
    if restored < opened:
        raise ValueError(f"restored ({restored.isoformat()}) before opened ({opened.isoformat()})")
    return calendar.between(opened, restored, pauses)


@dataclass(frozen=True)
class PenaltyRule:
    """A credit of ``percent_per_metric`` % of the monthly recurring charge per
    violated metric, at most ``cap_percent`` % (no cap when None)."""

    percent_per_metric: Decimal
    cap_percent: Decimal | None = None

    def __post_init__(self) -> None:
        if self.percent_per_metric < 0:
            raise InvalidRequest("a penalty rule's percentage per violated metric is negative")
        if self.cap_percent is not None and not 0 <= self.cap_percent <= 100:
            raise InvalidRequest("a penalty rule's cap is a percentage from 0 to 100")


_PERCENT = r"(\d+(?:[.,]\d+)?)\s*%"
_PER_METRIC = re.compile(_PERCENT + r"[^%]*?\bper\b", re.IGNORECASE)
_CAP = re.compile(r"\b(?:max(?:imum)?|cap(?:ped)?(?:\s+at)?|at\s+most)\b\s*" + _PERCENT, re.I)
_RULE_HELP = "e.g. '10% of MRC per violated metric, max 30%'"


def _percent(text: str) -> Decimal:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        raise InvalidRequest(f"{text!r} is not a percentage") from None


def penalty_rule(rule: PenaltyRule | str | Mapping[str, Any]) -> PenaltyRule:
    """The penalty rule as the catalog writes it (the ``penaltyRule`` characteristic,
    ``"10% of MRC per violated metric, max 30%"``), given as that text, as an SLA's
    characteristics (name -> value) holding it, or already read."""
    if isinstance(rule, PenaltyRule):
        return rule
    if isinstance(rule, Mapping):
        if rule.get("penaltyRule") in (None, ""):
            raise InvalidRequest(f"the SLA has no penaltyRule characteristic ({_RULE_HELP})")
        rule = str(rule["penaltyRule"])
    per_metric = _PER_METRIC.search(rule)
    if per_metric is None:
        raise InvalidRequest(f"cannot read the penalty rule {rule!r}; {_RULE_HELP}")
    cap = _CAP.search(rule)
    return PenaltyRule(
        percent_per_metric=_percent(per_metric.group(1)),
        cap_percent=None if cap is None else _percent(cap.group(1)),
    )


def penalty(
    monthly_recurring_charge: Decimal,
    violated_metrics: int,
    rule: PenaltyRule | str | Mapping[str, Any],
) -> Decimal:
    """3.7.1 Assess QoS Performance (eTOM 1.1.1.7.1): the credit owed for a period,
    in the charge's currency, to the cent (rounded half-up):
    ``MRC * min(percent per metric * violated metrics, cap) / 100``."""
    if violated_metrics < 0:
        raise ValueError(f"violated metrics cannot be negative, got {violated_metrics}")
    if monthly_recurring_charge < 0:
        raise InvalidRequest("a monthly recurring charge cannot be negative")
    read = penalty_rule(rule)
    percent = read.percent_per_metric * violated_metrics
    if read.cap_percent is not None:
        percent = min(percent, read.cap_percent)
    return (monthly_recurring_charge * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
