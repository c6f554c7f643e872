"""Customer profitability (seed 5.3, "measure"): billed revenue minus cost to serve."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    Integer,
    case,
    cast,
    distinct,
    func,
    literal_column,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from etomcrm.analytics.contacts import check_period
from etomcrm.analytics.models import (
    MONEY,
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
    customers: int = 0  # distinct customers with a fact in the group

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

    def as_row(self) -> dict[str, Any]:
        def money(value: Decimal) -> str:
            return str(value.quantize(CENT, ROUND_HALF_UP))

        return {
            "key": self.key,
            "customers": self.customers,
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

    def narrowed(stmt: Any, customer: Any, month: Any) -> Any:
        """The period and the customer asked for, in each fact's query: a month's report
        (the workspace's index) then reads that month's facts, not every month's."""
        stmt = stmt.where(month.is_not(None))
        if first:
            stmt = stmt.where(month >= first)
        if last:
            stmt = stmt.where(month <= last)
        if customer_id is not None:
            stmt = stmt.where(customer == customer_id)
        return stmt

    # Constants inline (not bound parameters): PostgreSQL must know a UNION's column types.
    zero_money = cast(literal_column("0"), MONEY)
    zero = literal_column("0", Integer)
    one = literal_column("1", Integer)

    def line(
        customer: Any,
        month: Any,
        *,
        revenue: Any = zero_money,
        credits: Any = zero_money,
        sites: Any = zero,
        tickets: Any = zero,
        repair: Any = zero,
        dunning: Any = zero,
    ) -> Any:
        """One fact as a line of the same columns, so the four facts are summed together."""
        return select(
            customer.label("customer_id"),
            month.label("month"),
            type_coerce(revenue, MONEY).label("revenue"),
            type_coerce(credits, MONEY).label("credits"),
            sites.label("sites"),
            tickets.label("tickets"),
            repair.label("repair"),
            dunning.label("dunning"),
        )

    revenue_fact, order_fact = AnRevenueFact, AnOrderFact
    ticket_fact, dunning_fact = AnTicketFact, AnDunningFact
    lines = union_all(
        narrowed(
            line(
                revenue_fact.customer_id,
                revenue_fact.month,
                revenue=case(
                    (revenue_fact.rate_type.in_(sorted(NOT_REVENUE)), zero_money),
                    else_=revenue_fact.amount,
                ),
                credits=case(
                    (revenue_fact.rate_type == CREDIT, -revenue_fact.amount), else_=zero_money
                ),
            ),
            revenue_fact.customer_id,
            revenue_fact.month,
        ),
        narrowed(
            line(
                order_fact.customer_id, order_fact.completed_month, sites=order_fact.site_count
            ).where(order_fact.state == "completed"),
            order_fact.customer_id,
            order_fact.completed_month,
        ),
        narrowed(
            line(
                ticket_fact.customer_id,
                ticket_fact.month,
                tickets=one,
                repair=func.coalesce(ticket_fact.repair_seconds, 0),
            ),
            ticket_fact.customer_id,
            ticket_fact.month,
        ),
        narrowed(
            line(dunning_fact.customer_id, dunning_fact.month, dunning=one),
            dunning_fact.customer_id,
            dunning_fact.month,
        ),
    ).subquery("lines")
    segment_of = func.coalesce(AnCustomer.segment, UNSEGMENTED)
    groupings: dict[str, list[Any]] = {
        "customer": [lines.c.customer_id],
        "segment": [segment_of],
        "month": [lines.c.month],
        "customerMonth": [lines.c.customer_id, lines.c.month],
    }
    keys = groupings[by]

    def summed(group_by: list[Any]) -> Any:
        # Grouped in the database: one row per group (and one for the total), not one
        # per fact. Sums of cents and of whole seconds and counts, so the figures are
        # the same exact Decimals as from the facts one by one.
        stmt = select(
            *group_by,
            func.count(distinct(lines.c.customer_id)),
            type_coerce(func.sum(lines.c.revenue), MONEY),
            type_coerce(func.sum(lines.c.credits), MONEY),
            func.sum(lines.c.sites),
            func.sum(lines.c.tickets),
            func.sum(lines.c.repair),
            func.sum(lines.c.dunning),
        ).select_from(lines)
        if by == "segment" or segment is not None:
            stmt = stmt.outerjoin(AnCustomer, AnCustomer.customer_id == lines.c.customer_id)
        if segment is not None:
            stmt = stmt.where(segment_of == segment)
        if group_by:
            stmt = stmt.group_by(*group_by)
        return stmt

    def profit(key: str, figures: Sequence[Any]) -> Profit:
        customers, revenue, credits, sites, tickets, repair, dunning = figures
        sites, tickets, dunning = int(sites or 0), int(tickets or 0), int(dunning or 0)
        hours = Decimal(int(repair or 0)) / HOUR
        return Profit(
            key=key,
            customers=int(customers),
            revenue=Decimal(revenue or 0),
            sla_credits=Decimal(credits or 0),
            sites_installed=sites,
            installation_cost=rates.installation * sites,
            router_cost=rates.router * sites,
            tickets=tickets,
            repair_hours=hours,
            ticket_cost=rates.ticket * tickets + rates.repair_hour * hours,
            dunning_cases=dunning,
            dunning_cost=rates.dunning_case * dunning,
        )

    width = len(keys)
    rows = [(row[:width], row[width:]) for row in session.execute(summed(keys))]
    groups = [profit(" ".join(str(part) for part in key), figures) for key, figures in rows]
    # The total is the groups' sums (every figure is a sum); only its distinct customers
    # need the facts again where one customer falls in several groups (months).
    if by == "month":
        customers = session.execute(summed([])).one()[0]
    elif by == "customerMonth":
        customers = len({key[0] for key, _ in rows})
    else:  # a customer is in one group: its own, or its segment's
        customers = sum(int(figures[0]) for _, figures in rows)
    sums = [
        sum((figures[n] or 0 for _, figures in rows), start=Decimal(0) if n < 3 else 0)
        for n in range(1, 7)
    ]
    total = profit("(all)", [customers, *sums])
    currency_query = narrowed(
        select(revenue_fact.currency).distinct(), revenue_fact.customer_id, revenue_fact.month
    )
    if segment is not None:
        currency_query = currency_query.outerjoin(
            AnCustomer, AnCustomer.customer_id == revenue_fact.customer_id
        ).where(segment_of == segment)
    currencies = sorted(session.scalars(currency_query))
    if len(currencies) > 1:
        raise InvalidRequest(
            f"the billed revenue is in several currencies ({', '.join(currencies)}); "
            "profitability adds one currency"
        )
    return ProfitabilityReport(
        grouping=by,
        start_month=first,
        end_month=last,
        rates=rates,
        currency=currencies[0] if currencies else "EUR",
        groups=sorted(groups, key=lambda p: (p.profit, p.key)),
        total=total,
    )
