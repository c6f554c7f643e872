"""Campaign success (seed 5.3, "measure"; 3.3.2 grown) and the response rates campaign
planning expects, read from the analytical store.

Per campaign:

- ``sent``: marketing messages written (touches of kind ``message``);
- ``responses``: customers' leads naming the campaign; ``leads``: those not rejected or
  cancelled; ``opportunities``: leads qualified into an opportunity; ``won``: those
  closed as won, ``wonCustomers`` the distinct customers behind them;
- ``billedRevenue``: attribution rule — the billed revenue (issued bills' charges,
  discounts taken off, SLA credits left out) of each won customer's products that were
  first billed in the month of the win or later, over the months from the month of the
  win for ``analytics_campaign_attribution_months`` months. A product the customer was
  billed for before the win was not brought by the campaign;
- ``costPerLead`` and ``costPerWonCustomer``: the campaign's budget over them;
- with a control group kept (targets set with a control share): ``conversion`` of the
  treated and of the control targets — a target converted when it placed a product
  order within ``analytics_campaign_conversion_days`` days after the targets were set,
  whatever the order's origin, so both groups are measured alike — and ``uplift``, the
  difference of the two rates (treated minus control) with its 95 % confidence interval
  by Newcombe's hybrid score method (Newcombe 1998, method 10: from the two Wilson score
  intervals), which keeps to [-1, 1] and holds its coverage for small groups and rates
  near 0 where the Wald interval does not.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.analytics.models import (
    AnCampaign,
    AnCampaignLeadFact,
    AnCampaignTarget,
    AnCampaignTouchFact,
    AnCustomer,
    AnOrderFact,
    AnRevenueFact,
)
from etomcrm.analytics.profitability import NOT_REVENUE
from etomcrm.config import get_settings
from etomcrm.core.errors import InvalidRequest, NotFound
from etomcrm.marketing.service import CONTROL, NOT_A_LEAD, TREATED

CENT = Decimal("0.01")
Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
WON = "closedWon"
NO_CONTROL = "no control group kept"
# The sets of customers behind the figures a page drills down into.
FIGURES: tuple[str, ...] = (
    "responses",
    "leads",
    "opportunities",
    "won",
    "treated",
    "treatedConverted",
    "control",
    "controlConverted",
)


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion."""
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    scale = 1 + z * z / trials
    return (centre - spread) / scale, (centre + spread) / scale


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """The difference p1 - p2 of two independent proportions and its confidence
    interval by Newcombe's hybrid score method (method 10)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, lower, upper


def _rate(value: float) -> str:
    return str(Decimal(repr(value)).quantize(Decimal("0.0001"), ROUND_HALF_UP))


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, ROUND_HALF_UP))


def _add_months(month: str, count: int) -> str:
    year, number = int(month[:4]), int(month[5:7]) - 1 + count
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


@dataclass
class CampaignSuccess:
    """The figures of one campaign and the customers behind them."""

    campaign_id: str
    name: str | None
    status: str | None
    budget: Decimal | None
    sent: int = 0
    responses: int = 0
    leads: int = 0
    opportunities: int = 0
    won: int = 0
    billed_revenue: Decimal = Decimal(0)
    customers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    won_on: dict[str, date] = field(default_factory=dict)

    @property
    def has_control(self) -> bool:
        return bool(self.customers["control"]) and bool(self.customers["treated"])

    def uplift(self) -> tuple[float, float, float] | None:
        if not self.has_control:
            return None
        return newcombe(
            len(self.customers["treatedConverted"]),
            len(self.customers["treated"]),
            len(self.customers["controlConverted"]),
            len(self.customers["control"]),
        )

    def as_row(self) -> dict[str, Any]:
        """The figures, flat (a CSV line); rates as decimals of 4 places, money of 2."""
        won_customers = len(self.customers["won"])
        row: dict[str, Any] = {
            "campaignId": self.campaign_id,
            "name": self.name,
            "status": self.status,
            "sent": self.sent,
            "responses": self.responses,
            "leads": self.leads,
            "opportunities": self.opportunities,
            "won": self.won,
            "wonCustomers": won_customers,
            "billedRevenue": _money(self.billed_revenue),
            "budget": None if self.budget is None else _money(self.budget),
            "costPerLead": None,
            "costPerWonCustomer": None,
            "treated": len(self.customers["treated"]),
            "treatedConverted": len(self.customers["treatedConverted"]),
            "treatedConversion": None,
            "control": len(self.customers["control"]),
            "controlConverted": len(self.customers["controlConverted"]),
            "controlConversion": None,
            "uplift": None,
            "upliftLower95": None,
            "upliftUpper95": None,
            "controlGroup": "kept" if self.has_control else NO_CONTROL,
        }
        if self.budget is not None:
            if self.leads:
                row["costPerLead"] = _money(self.budget / self.leads)
            if won_customers:
                row["costPerWonCustomer"] = _money(self.budget / won_customers)
        if row["treated"]:
            row["treatedConversion"] = _rate(row["treatedConverted"] / row["treated"])
        if row["control"]:
            row["controlConversion"] = _rate(row["controlConverted"] / row["control"])
        uplift = self.uplift()
        if uplift is not None:
            row["uplift"], row["upliftLower95"], row["upliftUpper95"] = map(_rate, uplift)
        return row


def campaign_success(session: Session, campaign_id: str | None = None) -> list[CampaignSuccess]:
    """Campaign success (seed 5.3, 3.3.2 grown): per campaign (or the one named),
    responses, leads, opportunities, wins, the billed revenue attributed, cost per lead
    and per won customer, and conversion of treated against control with the uplift and
    its 95 % interval. Seven queries whatever the number of campaigns."""
    settings = get_settings()
    campaigns_query = select(
        AnCampaign.campaign_id, AnCampaign.name, AnCampaign.status, AnCampaign.budget
    ).order_by(AnCampaign.campaign_id)
    if campaign_id is not None:
        campaigns_query = campaigns_query.where(AnCampaign.campaign_id == campaign_id)
    results = {
        cid: CampaignSuccess(cid, name, status, None if budget is None else Decimal(budget))
        for cid, name, status, budget in session.execute(campaigns_query)
    }
    if campaign_id is not None and not results:
        raise NotFound(f"no campaign {campaign_id} in the analytical store")

    def ours(column: Any, stmt: Any) -> Any:
        return stmt if campaign_id is None else stmt.where(column == campaign_id)

    for cid, sent in session.execute(
        ours(
            AnCampaignTouchFact.campaign_id,
            select(AnCampaignTouchFact.campaign_id, func.count())
            .where(AnCampaignTouchFact.kind == "message")
            .group_by(AnCampaignTouchFact.campaign_id),
        )
    ):
        if cid in results:
            results[cid].sent = int(sent)

    for cid, customer, status, opportunity, stage, won_on in session.execute(
        ours(
            AnCampaignLeadFact.campaign_id,
            select(
                AnCampaignLeadFact.campaign_id,
                AnCampaignLeadFact.customer_id,
                AnCampaignLeadFact.lead_status,
                AnCampaignLeadFact.opportunity_id,
                AnCampaignLeadFact.opportunity_stage,
                AnCampaignLeadFact.won_on,
            ),
        )
    ):
        result = results.get(cid)
        if result is None:
            continue
        result.responses += 1
        result.customers["responses"].add(customer)
        if status not in NOT_A_LEAD:
            result.leads += 1
            result.customers["leads"].add(customer)
        if opportunity is not None:
            result.opportunities += 1
            result.customers["opportunities"].add(customer)
        if stage == WON and won_on is not None:
            result.won += 1
            result.customers["won"].add(customer)
            first = result.won_on.get(customer)
            result.won_on[customer] = won_on if first is None else min(first, won_on)

    assigned: dict[tuple[str, str], tuple[str, date]] = {}
    for cid, customer, group, assigned_on in session.execute(
        ours(
            AnCampaignTarget.campaign_id,
            select(
                AnCampaignTarget.campaign_id,
                AnCampaignTarget.customer_id,
                AnCampaignTarget.group,
                AnCampaignTarget.assigned_on,
            ),
        )
    ):
        if cid in results and group in (TREATED, CONTROL):
            results[cid].customers[group].add(customer)
            assigned[(cid, customer)] = (group, assigned_on)
    if assigned:
        # The targets' orders: one query over the targets of the campaigns asked for.
        targets = ours(AnCampaignTarget.campaign_id, select(AnCampaignTarget.customer_id))
        orders: dict[str, list[date]] = defaultdict(list)
        for customer, ordered_on in session.execute(
            select(AnOrderFact.customer_id, AnOrderFact.ordered_on).where(
                AnOrderFact.customer_id.in_(targets)
            )
        ):
            orders[customer].append(ordered_on)
        window = timedelta(days=settings.analytics_campaign_conversion_days)
        for (cid, customer), (group, assigned_on) in assigned.items():
            if any(assigned_on <= day <= assigned_on + window for day in orders[customer]):
                results[cid].customers[f"{group}Converted"].add(customer)

    winners = {c for r in results.values() for c in r.won_on}
    if winners:
        _attribute_revenue(
            session, results, campaign_id, settings.analytics_campaign_attribution_months
        )
    return list(results.values())


def _attribute_revenue(
    session: Session, results: dict[str, CampaignSuccess], campaign_id: str | None, months: int
) -> None:
    """Billed revenue of the won customers' new products, by the rule of the module."""
    won = select(AnCampaignLeadFact.customer_id).where(AnCampaignLeadFact.opportunity_stage == WON)
    if campaign_id is not None:
        won = won.where(AnCampaignLeadFact.campaign_id == campaign_id)
    billed: dict[str, list[tuple[str, str, Decimal]]] = defaultdict(list)
    first_billed: dict[tuple[str, str], str] = {}
    for customer, product, month, rate_type, amount in session.execute(
        select(
            AnRevenueFact.customer_id,
            AnRevenueFact.product_id,
            AnRevenueFact.month,
            AnRevenueFact.rate_type,
            AnRevenueFact.amount,
        ).where(AnRevenueFact.customer_id.in_(won), AnRevenueFact.product_id.is_not(None))
    ):
        key = (customer, str(product))
        first_billed[key] = min(first_billed.get(key, month), month)
        if rate_type not in NOT_REVENUE:
            billed[customer].append((str(product), month, Decimal(amount)))
    for result in results.values():
        for customer, won_on in result.won_on.items():
            start = f"{won_on.year:04d}-{won_on.month:02d}"
            end = _add_months(start, months - 1)
            result.billed_revenue += sum(
                (
                    amount
                    for product, month, amount in billed[customer]
                    if start <= month <= end and first_billed[(customer, product)] >= start
                ),
                Decimal(0),
            )


def figure_customers(
    session: Session, campaign_id: str, figure: str
) -> list[tuple[str, str | None, str]]:
    """Drill-down: the customers behind one figure of one campaign (id, name, segment),
    by name."""
    if figure not in FIGURES:
        raise InvalidRequest(f"figure is one of {', '.join(FIGURES)}, not {figure!r}")
    (result,) = campaign_success(session, campaign_id)
    ids = sorted(result.customers[figure])
    if not ids:
        return []
    found = {
        cid: (name, segment)
        for cid, name, segment in session.execute(
            select(AnCustomer.customer_id, AnCustomer.name, AnCustomer.segment).where(
                AnCustomer.customer_id.in_(ids)
            )
        )
    }
    rows = [(cid, *found.get(cid, (None, ""))) for cid in ids]
    return sorted(rows, key=lambda r: (r[1] or "", r[0]))


@dataclass(frozen=True)
class ResponseRate:
    """How many of the customers past campaigns reached responded: ``basis`` says
    whether the segment's own rate was used, the overall one, or none is known."""

    rate: float | None
    basis: str  # "segment", "overall" or "none"
    reached: int
    responded: int


def response_rate(session: Session, segment: str) -> ResponseRate:
    """The response rate of past campaigns: customers who responded (a lead naming the
    campaign) over customers a campaign's message reached, counted once per campaign —
    in ``segment`` when its customers were reached at least ``analytics_plan_min_reached``
    times, overall otherwise."""
    reached: Iterable[tuple[str, str, str]] = session.execute(
        select(AnCampaignTouchFact.campaign_id, AnCampaignTouchFact.customer_id, AnCustomer.segment)
        .join(AnCustomer, AnCustomer.customer_id == AnCampaignTouchFact.customer_id)
        .where(AnCampaignTouchFact.kind == "message")
        .distinct()
    ).all()
    reached_set = set(reached)
    responded = {
        (cid, customer)
        for cid, customer in session.execute(
            select(AnCampaignLeadFact.campaign_id, AnCampaignLeadFact.customer_id).distinct()
        ).all()
    }
    in_segment = {(c, cu) for c, cu, s in reached_set if s == segment}
    if len(in_segment) >= get_settings().analytics_plan_min_reached:
        hits = len(in_segment & responded)
        return ResponseRate(hits / len(in_segment), "segment", len(in_segment), hits)
    everyone = {(c, cu) for c, cu, _ in reached_set}
    if not everyone:
        return ResponseRate(None, "none", 0, 0)
    hits = len(everyone & responded)
    return ResponseRate(hits / len(everyone), "overall", len(everyone), hits)
