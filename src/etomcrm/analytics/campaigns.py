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
    # Targets per group (treated, control); the customers themselves only for a
    # drill-down into one campaign.
    group_sizes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def has_control(self) -> bool:
        return self.group_sizes[CONTROL] > 0 and self.group_sizes[TREATED] > 0

    def uplift(self) -> tuple[float, float, float] | None:
        if not self.has_control:
            return None
        return newcombe(
            len(self.customers["treatedConverted"]),
            self.group_sizes[TREATED],
            len(self.customers["controlConverted"]),
            self.group_sizes[CONTROL],
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
            "treated": self.group_sizes[TREATED],
            "treatedConverted": len(self.customers["treatedConverted"]),
            "treatedConversion": None,
            "control": self.group_sizes[CONTROL],
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
    its 95 % interval. At most six queries whatever the number of campaigns (the customers
    behind the treated and control figures are kept for one campaign asked for only)."""
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

    # Every campaign: the targets counted per group in the database; one campaign (a
    # drill-down): its targets themselves.
    if campaign_id is None:
        for cid, group, count in session.execute(
            select(AnCampaignTarget.campaign_id, AnCampaignTarget.group, func.count()).group_by(
                AnCampaignTarget.campaign_id, AnCampaignTarget.group
            )
        ):
            if cid in results and group in (TREATED, CONTROL):
                results[cid].group_sizes[group] = int(count)
    else:
        for customer, group in session.execute(
            select(AnCampaignTarget.customer_id, AnCampaignTarget.group).where(
                AnCampaignTarget.campaign_id == campaign_id
            )
        ):
            if group in (TREATED, CONTROL):
                results[campaign_id].customers[group].add(customer)
        for group in (TREATED, CONTROL):
            results[campaign_id].group_sizes[group] = len(results[campaign_id].customers[group])
    # Conversions: the targets' orders placed on the day the targets were set or later
    # (the window's end is checked here, as date arithmetic differs between engines).
    window = timedelta(days=settings.analytics_campaign_conversion_days)
    for cid, customer, group, assigned_on, ordered_on in session.execute(
        ours(
            AnCampaignTarget.campaign_id,
            select(
                AnCampaignTarget.campaign_id,
                AnCampaignTarget.customer_id,
                AnCampaignTarget.group,
                AnCampaignTarget.assigned_on,
                AnOrderFact.ordered_on,
            )
            .join(AnOrderFact, AnOrderFact.customer_id == AnCampaignTarget.customer_id)
            .where(AnOrderFact.ordered_on >= AnCampaignTarget.assigned_on),
        )
    ):
        if cid in results and group in (TREATED, CONTROL) and ordered_on <= assigned_on + window:
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
    times, overall otherwise. One query, counted per segment in the database."""
    reached = (
        select(AnCampaignTouchFact.campaign_id, AnCampaignTouchFact.customer_id)
        .where(AnCampaignTouchFact.kind == "message")
        .distinct()
        .subquery()
    )
    responded = (
        select(AnCampaignLeadFact.campaign_id, AnCampaignLeadFact.customer_id).distinct().subquery()
    )
    counts = {
        str(seg): (int(n), int(hits))
        for seg, n, hits in session.execute(
            select(AnCustomer.segment, func.count(), func.count(responded.c.customer_id))
            .select_from(reached)
            .join(AnCustomer, AnCustomer.customer_id == reached.c.customer_id)
            .outerjoin(
                responded,
                (responded.c.campaign_id == reached.c.campaign_id)
                & (responded.c.customer_id == reached.c.customer_id),
            )
            .group_by(AnCustomer.segment)
        )
    }
    in_segment, hits_in_segment = counts.get(segment, (0, 0))
    if in_segment >= get_settings().analytics_plan_min_reached:
        return ResponseRate(hits_in_segment / in_segment, "segment", in_segment, hits_in_segment)
    everyone = sum(n for n, _ in counts.values())
    if not everyone:
        return ResponseRate(None, "none", 0, 0)
    hits = sum(h for _, h in counts.values())
    return ResponseRate(hits / everyone, "overall", everyone, hits)
