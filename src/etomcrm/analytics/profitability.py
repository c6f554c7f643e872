"""Customer profitability (seed 5.3, "measure"): billed revenue minus cost to serve."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.analytics.contacts import check_period
from etomcrm.analytics.models import (
    AnCustomer,
    AnDunningFact,
    AnOrderFact,
    AnRevenueFact,
    AnTicketFact,
)
from etomcrm.analytics.store import UNSEGMENTED
from etomcrm.config import get_settings
from etomcrm.core.errors import InvalidRequest

CENT = Decimal("0.01")
HOUR = Decimal(3600)
GROUPINGS: tuple[str, ...] = ("customer", "segment", "month", "customerMonth")
# SLA credits are a cost of their own; a carried credit is money already counted.
CREDIT = "credit"
NOT_REVENUE = frozenset({CREDIT, "carriedCredit"})


@dataclass(frozen=True)
class CostRates:
    """What serving costs the provider, per unit (settings ``analytics_cost_*_eur``)."""

    installation: Decimal
    router: Decimal
    ticket: Decimal
    repair_hour: Decimal
    dunning_case: Decimal

    @classmethod
    def from_settings(cls) -> CostRates:
        s = get_settings()
        return cls(
            installation=Decimal(s.analytics_cost_installation_eur),
            router=Decimal(s.analytics_cost_router_eur),
            ticket=Decimal(s.analytics_cost_ticket_eur),
            repair_hour=Decimal(s.analytics_cost_repair_hour_eur),
            dunning_case=Decimal(s.analytics_cost_dunning_case_eur),
        )

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}


@dataclass
class Profit:
    """Revenue, cost to serve and profit of one group (EUR, net of VAT)."""

    key: str
    revenue: Decimal = Decimal(0)
    sla_credits: Decimal = Decimal(0)  # credited, as a positive amount
    sites_installed: int = 0
    installation_cost: Decimal = Decimal(0)
    router_cost: Decimal = Decimal(0)
    tickets: int = 0
    repair_hours: Decimal = Decimal(0)
    ticket_cost: Decimal = Decimal(0)
    dunning_cases: int = 0
    dunning_cost: Decimal = Decimal(0)
    customers: set[str] = field(default_factory=set)

    @property
    def cost_to_serve(self) -> Decimal:
        return (
            self.sla_credits
            + self.installation_cost
            + self.router_cost
            + self.ticket_cost
            + self.dunning_cost
        )

    @property
    def profit(self) -> Decimal:
        return self.revenue - self.cost_to_serve

    def add(self, other: Profit) -> None:
        for name in (
            "revenue",
            "sla_credits",
            "sites_installed",
            "installation_cost",
            "router_cost",
            "tickets",
            "repair_hours",
            "ticket_cost",
            "dunning_cases",
            "dunning_cost",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.customers |= other.customers

    def as_row(self) -> dict[str, Any]:
        def money(value: Decimal) -> str:
            return str(value.quantize(CENT, ROUND_HALF_UP))

        return {
            "key": self.key,
            "customers": len(self.customers),
            "revenue": money(self.revenue),
            "slaCredits": money(self.sla_credits),
            "sitesInstalled": self.sites_installed,
            "installationCost": money(self.installation_cost),
            "routerCost": money(self.router_cost),
            "tickets": self.tickets,
            "repairHours": str(self.repair_hours.quantize(Decimal("0.01"), ROUND_HALF_UP)),
            "ticketCost": money(self.ticket_cost),
            "dunningCases": self.dunning_cases,
            "dunningCost": money(self.dunning_cost),
            "costToServe": money(self.cost_to_serve),
            "profit": money(self.profit),
        }


@dataclass(frozen=True)
class ProfitabilityReport:
    grouping: str
    start_month: str | None
    end_month: str | None
    rates: CostRates
    currency: str
    groups: list[Profit]
    total: Profit


def _month(value: date | None) -> str | None:
    return None if value is None else f"{value.year:04d}-{value.month:02d}"


def customer_profitability(
    session: Session,
    *,
    by: str = "customer",
    start: date | None = None,
    end: date | None = None,
    customer_id: str | None = None,
    segment: str | None = None,
    rates: CostRates | None = None,
) -> ProfitabilityReport:
    """Customer profitability (seed 5.3): billed revenue (the charges of issued bills,
    discounts taken off) minus the cost to serve — SLA credits, each installed site's
    installation and router (in the month its order completed), each trouble ticket and
    its hours of repair (in the month it was opened), each dunning case — per customer,
    segment, month, or customer and month, for the months from ``start`` to ``end``."""
    if by not in GROUPINGS:
        raise InvalidRequest(
            f"profitability is grouped by one of {', '.join(GROUPINGS)}, not {by!r}"
        )
    check_period(start, end)
    rates = rates or CostRates.from_settings()
    first, last = _month(start), _month(end)
    segments = dict(session.execute(select(AnCustomer.customer_id, AnCustomer.segment)).all())
    cells: dict[tuple[str, str], Profit] = {}

    def cell(customer: str, month: str | None) -> Profit | None:
        if month is None or (first and month < first) or (last and month > last):
            return None
        if customer_id is not None and customer != customer_id:
            return None
        if segment is not None and segments.get(customer, UNSEGMENTED) != segment:
            return None
        key = (customer, month)
        if key not in cells:
            cells[key] = Profit(key=f"{customer} {month}", customers={customer})
        return cells[key]

    currencies: set[str] = set()

    def narrowed(stmt: Any, customer: Any, month: Any) -> Any:
        """The period and the customer asked for, in the query: a month's report (the
        workspace's index) then reads that month's facts, not every month's."""
        if first:
            stmt = stmt.where(month >= first)
        if last:
            stmt = stmt.where(month <= last)
        if customer_id is not None:
            stmt = stmt.where(customer == customer_id)
        return stmt

    for c, month, rate_type, amount, currency in session.execute(
        narrowed(
            select(
                AnRevenueFact.customer_id,
                AnRevenueFact.month,
                AnRevenueFact.rate_type,
                AnRevenueFact.amount,
                AnRevenueFact.currency,
            ),
            AnRevenueFact.customer_id,
            AnRevenueFact.month,
        )
    ):
        target = cell(c, month)
        if target is None:
            continue
        currencies.add(currency)
        if rate_type == CREDIT:
            target.sla_credits -= Decimal(amount)
        elif rate_type not in NOT_REVENUE:
            target.revenue += Decimal(amount)
    for c, completed, sites in session.execute(
        narrowed(
            select(
                AnOrderFact.customer_id, AnOrderFact.completed_month, AnOrderFact.site_count
            ).where(AnOrderFact.state == "completed"),
            AnOrderFact.customer_id,
            AnOrderFact.completed_month,
        )
    ):
        target = cell(c, completed)
        if target is not None:
            target.sites_installed += sites
            target.installation_cost += rates.installation * sites
            target.router_cost += rates.router * sites
    for c, month, repair in session.execute(
        narrowed(
            select(AnTicketFact.customer_id, AnTicketFact.month, AnTicketFact.repair_seconds),
            AnTicketFact.customer_id,
            AnTicketFact.month,
        )
    ):
        target = cell(c, month)
        if target is not None:
            hours = Decimal(repair or 0) / HOUR
            target.tickets += 1
            target.repair_hours += hours
            target.ticket_cost += rates.ticket + rates.repair_hour * hours
    for c, month in session.execute(
        narrowed(
            select(AnDunningFact.customer_id, AnDunningFact.month),
            AnDunningFact.customer_id,
            AnDunningFact.month,
        )
    ):
        target = cell(c, month)
        if target is not None:
            target.dunning_cases += 1
            target.dunning_cost += rates.dunning_case

    groups: dict[str, Profit] = {}
    total = Profit(key="(all)")
    for (c, month), profit in sorted(cells.items()):
        key = {
            "customer": c,
            "segment": segments.get(c, UNSEGMENTED),
            "month": month,
            "customerMonth": f"{c} {month}",
        }[by]
        groups.setdefault(key, Profit(key=key)).add(profit)
        total.add(profit)
    if len(currencies) > 1:
        raise InvalidRequest(
            f"the billed revenue is in several currencies ({', '.join(sorted(currencies))}); "
            "profitability adds one currency"
        )
    return ProfitabilityReport(
        grouping=by,
        start_month=first,
        end_month=last,
        rates=rates,
        currency=next(iter(currencies), "EUR"),
        groups=sorted(groups.values(), key=lambda p: (p.profit, p.key)),
        total=total,
    )
