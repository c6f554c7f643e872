"""3.8.2 The arithmetic of charges: pure functions on ``Decimal``, no database.

Rounding, stated once: every line is rounded on its own, half up, to the cent
(``ROUND_HALF_UP``); sums of lines are exact sums of rounded lines.

- Proration by day: a monthly charge for part of a billing month is
  ``monthly * days charged / days of that billing month``, rounded per line. A
  billing month runs from the cycle day to the day before the next one. Days are
  half-open: the day a price starts is charged, the day it ends (termination, or
  the change to another price) is not, so the parts of a month never overlap and
  add up to the monthly charge within one cent per part.
- Usage: the volume beyond the included volume, priced by tiers (each tier's price
  for the volume inside it); one price is one tier without an upper bound.
- Discount: a percentage of the list line, its own negative line.
- VAT: ``vat_rate_percent`` (19 %) per line, category S; reverse charge (§13b UStG)
  0 %, category AE, for a customer with a valid VAT id of another EU state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from stdnum.eu import vat

CENT = Decimal("0.01")
ZERO = Decimal(0)
HUNDRED = Decimal(100)


def cents(amount: Decimal) -> Decimal:
    """``amount`` rounded half up to the cent."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (cycle days are 1..28, so the day always exists;
    a later day is clamped to the month's last)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


@dataclass(frozen=True)
class Cycle:
    """One billing month: ``start`` to ``end`` inclusive."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def cycles(period_start: date, period_end: date) -> list[Cycle]:
    """The billing months that cover ``period_start``..``period_end`` (inclusive), each
    a full month from ``period_start``'s day; a final bill's short period is the first
    part of its month, so its days are prorated against the whole month."""
    result: list[Cycle] = []
    start = period_start
    while start <= period_end:
        following = add_months(period_start, len(result) + 1)
        result.append(Cycle(start, following - timedelta(days=1)))
        start = following
    return result


def prorate(monthly: Decimal, days: int, month_days: int) -> Decimal:
    """The part of a monthly charge for ``days`` of a billing month of ``month_days``."""
    if not 0 <= days <= month_days or month_days <= 0:
        raise ValueError(f"{days} days of a month of {month_days} days")
    if days == month_days:
        return cents(monthly)
    return cents(monthly * days / month_days)


def overlap(
    start: date, end: date, active_from: date, active_until: date | None
) -> tuple[date, date] | None:
    """The days of ``start``..``end`` (inclusive) a price is charged for, when it is
    charged from ``active_from`` (inclusive) to ``active_until`` (exclusive)."""
    first = max(start, active_from)
    last = end if active_until is None else min(end, active_until - timedelta(days=1))
    return (first, last) if first <= last else None


def discount(list_amount: Decimal, percent: Decimal) -> Decimal:
    """The negative discount line of a list line (``percent`` of it, rounded)."""
    return -cents(list_amount * percent / HUNDRED)


@dataclass(frozen=True)
class Tier:
    """Volume up to ``up_to`` (beyond the included volume; None: unbounded) at
    ``unit_price`` per unit."""

    up_to: Decimal | None
    unit_price: Decimal


@dataclass(frozen=True)
class UsageLine:
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


def usage_cost(volume: Decimal, included: Decimal, tiers: Sequence[Tier]) -> Decimal:
    """The exact (unrounded) price of ``volume`` when ``included`` is free and the rest
    is priced by ``tiers`` in order."""
    rest = max(ZERO, volume - included)
    cost, floor = ZERO, ZERO
    for tier in tiers:
        top = rest if tier.up_to is None else min(rest, tier.up_to)
        if top > floor:
            cost += (top - floor) * tier.unit_price
        if tier.up_to is None or rest <= tier.up_to:
            break
        floor = tier.up_to
    return cost


def rate_usage(
    volume: Decimal, included: Decimal, tiers: Sequence[Tier], *, already: Decimal = ZERO
) -> list[UsageLine]:
    """The lines for ``volume`` more usage in a month where ``already`` was charged
    before (late or corrected usage charges only the difference): one line per tier
    the new volume reaches, rounded per line; a correction downwards is a negative
    line."""
    lines: list[UsageLine] = []
    low, high = already - included, already + volume - included
    sign = Decimal(1)
    if high < low:
        low, high, sign = high, low, Decimal(-1)
    floor = ZERO
    for tier in tiers:
        top = tier.up_to
        start = max(low, floor)
        stop = high if top is None else min(high, top)
        if stop > start:
            quantity = (stop - start) * sign
            lines.append(UsageLine(quantity, tier.unit_price, cents(quantity * tier.unit_price)))
        if top is None or high <= top:
            break
        floor = top
    return lines


@dataclass(frozen=True)
class Tax:
    rate: Decimal  # percent
    category: str  # S standard, AE reverse charge


def is_reverse_charge(vat_id: str | None, provider_country: str) -> bool:
    """A customer with a valid VAT id of another EU state than the provider's pays no
    German VAT: the tax is reverse charged (§13b UStG)."""
    if not vat_id or not vat.is_valid(vat_id):
        return False
    country = vat.compact(vat_id)[:2].upper()
    # Greece's VAT ids start with EL, its ISO code is GR.
    return {"EL": "GR"}.get(country, country) != provider_country.upper()


def tax_for(reverse_charge: bool, vat_rate_percent: str | Decimal) -> Tax:
    if reverse_charge:
        return Tax(ZERO, "AE")
    return Tax(Decimal(str(vat_rate_percent)), "S")


def tax_amount(net: Decimal, rate: Decimal) -> Decimal:
    """The VAT of one line, rounded half up to the cent."""
    return cents(net * rate / HUNDRED)
