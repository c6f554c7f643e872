"""3.9.4 Optimise: what an offer is worth to the provider for one customer.

The next best offer (:mod:`etomcrm.retention.recommendations`) ranks its proposals by
**expected value** = P(accept) times margin over the term.

**Margin over the term** (EUR, net of VAT), with the cost assumptions of the quote's
internal estimate (:mod:`etomcrm.selling.quote_costs`):

- the offering's one-time price, less the installation effort of 3.4.2
  (:func:`etomcrm.selling.education.effort_per_offering`, else 2 hours of service work)
  at ``quote_labour_rate_per_hour``;
- plus, for each of ``nbo_term_months`` months, the monthly price it adds (its
  recurring price less the recurring price of the product it replaces, e.g. the
  10 Mbit/s access a 100 Mbit/s access replaces) less ``quote_recurring_cost_percent``
  of that added price (wholesale line, backbone share, operations).

An offering without a price in the catalog has an unknown margin, counted as 0 and said.

**P(accept)** is the provider's own record: of the decided TMF648 quotes (accepted,
rejected or cancelled) that carried the offering, the share accepted — counted in the
customer's segment (the analytical store's ``an_customer.segment``) when that segment
has at least ``nbo_min_decided`` such quotes, else over all customers when they have,
else the stated prior ``nbo_prior_acceptance``. Which of the three was used is part of
every explanation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.analytics.models import AnCustomer
from etomcrm.analytics.store import UNSEGMENTED
from etomcrm.catalog.models import ProductOfferingPriceRow, ProductOfferingRow
from etomcrm.config import get_settings
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.selling.education import DEFAULT_EFFORT_HOURS, effort_per_offering
from etomcrm.selling.models import QuoteRow
from etomcrm.selling.quotes import DECIDED_STATES

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def percent(value: Decimal) -> str:
    return f"{(value * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} %"


@dataclass(frozen=True)
class Prices:
    """An offering's list prices: one-time and monthly (EUR)."""

    one_time: Decimal = ZERO
    monthly: Decimal = ZERO
    known: bool = False


@dataclass(frozen=True)
class Margin:
    """What the provider keeps from an offer over the term."""

    offering: str
    months: int
    one_time_price: Decimal
    one_time_cost: Decimal
    added_monthly: Decimal  # the offering's monthly price less the replaced product's
    monthly_cost: Decimal
    priced: bool

    @property
    def value(self) -> Decimal:
        return cents(
            self.one_time_price
            - self.one_time_cost
            + (self.added_monthly - self.monthly_cost) * self.months
        )

    def words(self) -> str:
        if not self.priced:
            return f"{self.offering} has no price in the catalog: its margin is unknown, counted 0"
        return (
            f"margin {self.value} EUR over {self.months} months = one-time "
            f"{self.one_time_price} EUR less {self.one_time_cost} EUR installation work, plus "
            f"{self.months} times ({self.added_monthly} EUR added per month less "
            f"{self.monthly_cost} EUR its running cost)"
        )


@dataclass(frozen=True)
class Acceptance:
    """P(accept) of an offering for a customer, and where it comes from."""

    probability: Decimal
    accepted: int
    decided: int
    basis: str  # "segment", "all", "prior"
    segment: str

    def words(self) -> str:
        p = percent(self.probability)
        if self.basis == "segment":
            return (
                f"P(accept) {p}: {self.accepted} of {self.decided} decided quotes with it "
                f"accepted in segment {self.segment}"
            )
        if self.basis == "all":
            return (
                f"P(accept) {p}: {self.accepted} of {self.decided} decided quotes with it "
                f"accepted over all customers (segment {self.segment} has too few)"
            )
        return (
            f"P(accept) {p}: the prior, as only {self.decided} decided quote(s) carried it "
            f"(fewer than {get_settings().nbo_min_decided})"
        )


@dataclass(frozen=True)
class Valuation:
    acceptance: Acceptance
    margin: Margin

    @property
    def expected_value(self) -> Decimal:
        return cents(self.acceptance.probability * self.margin.value)

    def words(self) -> str:
        return (
            f"expected value {self.expected_value} EUR = "
            f"{percent(self.acceptance.probability)} times {self.margin.value} EUR; "
            f"{self.acceptance.words()}; {self.margin.words()}"
        )


def offering_prices(session: Session, offerings: dict[str, JsonDict]) -> dict[str, Prices]:
    """Offering id → its list prices, in one query for all their prices."""
    refs = {
        offering_id: [
            r["id"]
            for r in body.get("productOfferingPrice") or []
            if isinstance(r, dict) and isinstance(r.get("id"), str)
        ]
        for offering_id, body in offerings.items()
    }
    wanted = {p for ids in refs.values() for p in ids}
    bodies: dict[str, JsonDict] = (
        dict(
            session.execute(
                select(ProductOfferingPriceRow.id, ProductOfferingPriceRow.body).where(
                    ProductOfferingPriceRow.id.in_(wanted)
                )
            ).all()
        )
        if wanted
        else {}
    )
    found: dict[str, Prices] = {}
    for offering_id, ids in refs.items():
        one_time = monthly = ZERO
        known = False
        for price_id in ids:
            body = bodies.get(price_id)
            if body is None:
                continue
            amount = _amount(body)
            if amount is None:
                continue
            kind = body.get("priceType")
            if kind == "recurring":
                monthly, known = monthly + amount, True
            elif kind == "oneTime":
                one_time, known = one_time + amount, True
        found[offering_id] = Prices(one_time, monthly, known)
    return found


def _amount(price: JsonDict) -> Decimal | None:
    value = (price.get("price") or {}).get("value")
    try:
        return Decimal(str(value)) if value is not None else None
    except ArithmeticError:
        return None


def margins(
    session: Session,
    offers: dict[str, tuple[str, str | None]],
) -> dict[str, Margin]:
    """Offer key → its margin over the term. ``offers``: key → (offering id, id of the
    offering of the product it replaces or None). A fixed number of queries."""
    settings = get_settings()
    months = settings.nbo_term_months
    rate = Decimal(str(settings.quote_labour_rate_per_hour))
    share = Decimal(str(settings.quote_recurring_cost_percent)) / 100
    ids = {i for pair in offers.values() for i in pair if i is not None}
    bodies: dict[str, JsonDict] = (
        dict(
            session.execute(
                select(ProductOfferingRow.id, ProductOfferingRow.body).where(
                    ProductOfferingRow.id.in_(ids)
                )
            ).all()
        )
        if ids
        else {}
    )
    prices = offering_prices(session, bodies)
    new_ids = {offering for offering, _ in offers.values()}
    hours = effort_per_offering(session, new_ids) if new_ids else {}
    found: dict[str, Margin] = {}
    for key, (offering_id, replaced_id) in offers.items():
        price = prices.get(offering_id, Prices())
        replaced = prices.get(replaced_id, Prices()) if replaced_id else Prices()
        added = max(price.monthly - replaced.monthly, ZERO)
        effort = hours.get(offering_id)
        if effort is None:
            effort = DEFAULT_EFFORT_HOURS["service"]
        if not price.known:
            # Unknown: neither a gain nor a loss to rank by.
            effort, added = ZERO, ZERO
        found[key] = Margin(
            offering=str(bodies.get(offering_id, {}).get("name") or offering_id),
            months=months,
            one_time_price=cents(price.one_time),
            one_time_cost=cents(effort * rate),
            added_monthly=cents(added),
            monthly_cost=cents(added * share),
            priced=price.known,
        )
    return found


def segment_of(session: Session, customer_id: str) -> str:
    segment = session.scalar(
        select(AnCustomer.segment).where(AnCustomer.customer_id == customer_id)
    )
    return segment or UNSEGMENTED


def acceptance_record(session: Session) -> dict[str, dict[str, tuple[int, int]]]:
    """Offering id → segment → (accepted, decided) quotes carrying it: one query.

    A quote counts once per offering, however many of its items carry it."""
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    rows = session.execute(
        select(QuoteRow.status, QuoteRow.body, AnCustomer.segment)
        .outerjoin(AnCustomer, AnCustomer.customer_id == QuoteRow.owner_customer_id)
        .where(QuoteRow.status.in_(DECIDED_STATES))
    )
    for status, body, segment in rows:
        offerings = {
            str(item["productOffering"]["id"])
            for item in body.get("quoteItem") or []
            if isinstance(item, dict)
            and isinstance(item.get("productOffering"), dict)
            and item["productOffering"].get("id")
        }
        for offering_id in offerings:
            cell = counts[offering_id][segment or UNSEGMENTED]
            cell[0] += 1 if status == "accepted" else 0
            cell[1] += 1
    return {o: {s: (a, d) for s, (a, d) in by.items()} for o, by in counts.items()}


def acceptance(
    record: dict[str, dict[str, tuple[int, int]]], offering_id: str | None, segment: str
) -> Acceptance:
    """P(accept) of an offering in a segment, by the rule of the module docstring."""
    settings = get_settings()
    enough = settings.nbo_min_decided
    by_segment = record.get(offering_id or "", {})
    accepted, decided = by_segment.get(segment, (0, 0))
    if decided >= enough:
        return Acceptance(Decimal(accepted) / decided, accepted, decided, "segment", segment)
    accepted = sum(a for a, _ in by_segment.values())
    decided = sum(d for _, d in by_segment.values())
    if decided >= enough:
        return Acceptance(Decimal(accepted) / decided, accepted, decided, "all", segment)
    prior = Decimal(settings.nbo_prior_acceptance)
    return Acceptance(prior, accepted, decided, "prior", segment)


def as_characteristics(valuation: Valuation) -> list[dict[str, Any]]:
    """The figures of a valuation as TMF680 product characteristics."""
    a, m = valuation.acceptance, valuation.margin
    return [
        {"name": "expectedValue", "valueType": "number", "value": float(valuation.expected_value)},
        {"name": "acceptanceProbability", "valueType": "number", "value": float(a.probability)},
        {"name": "acceptanceBasis", "valueType": "string", "value": a.basis},
        {"name": "acceptedQuotes", "valueType": "integer", "value": a.accepted},
        {"name": "decidedQuotes", "valueType": "integer", "value": a.decided},
        {"name": "marginOverTerm", "valueType": "number", "value": float(m.value)},
        {"name": "termMonths", "valueType": "integer", "value": m.months},
        {"name": "expectedValueExplanation", "valueType": "string", "value": valuation.words()},
    ]
