"""3.4.3 Negotiate the sale: the provider's internal cost estimate of a quote and its margin.

Seed 5.2 asks for "prices and cost estimates" beside the materials: before a discount is
granted, the sales person (and the manager who approves it) sees what the quote costs
the provider and what is left. The estimate is internal: it is never part of the TMF648
quote a customer reads, nor of its PDF.

Where the costs come from:

- a material (an item with ``materialAvailability``): the purchase cost per unit kept
  with its stock, the ``unitCost`` characteristic of the stocked product (TMF687 stock
  is not readable by customers); a material without one is named as not costed;
- work on site: the installation effort hours of 3.4.2
  (:func:`etomcrm.selling.education.effort_per_offering`) at
  ``quote_labour_rate_per_hour``;
- a recurring charge (access, SLA level): ``quote_recurring_cost_percent`` of its list
  price each month (wholesale line, backbone share, operations);
- usage is charged as used and is left out, as it is of the quote's totals.

The margin is taken over the contract term: one-time plus monthly times the months,
net of the discount, less the one-time and monthly costs over the same months.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.catalog.models import ProductOfferingRow, ProductStockRow
from etomcrm.config import get_settings
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.selling.education import DEFAULT_EFFORT_HOURS, effort_per_offering

CENT = Decimal("0.01")
COST_CHARACTERISTIC = "unitCost"
ZERO = Decimal("0.00")


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineCost:
    """What one quote item costs the provider, beside what the customer pays for it."""

    item_id: str
    site_id: str
    offering: str
    quantity: int
    one_time_price: Decimal
    monthly_price: Decimal
    one_time_cost: Decimal
    monthly_cost: Decimal
    # Why a line has no cost figure (a material without a purchase cost on record).
    missing: str = ""


@dataclass
class CostEstimate:
    months: int
    lines: list[LineCost] = field(default_factory=list)

    @property
    def one_time_price(self) -> Decimal:
        return sum((line.one_time_price for line in self.lines), ZERO)

    @property
    def monthly_price(self) -> Decimal:
        return sum((line.monthly_price for line in self.lines), ZERO)

    @property
    def one_time_cost(self) -> Decimal:
        return sum((line.one_time_cost for line in self.lines), ZERO)

    @property
    def monthly_cost(self) -> Decimal:
        return sum((line.monthly_cost for line in self.lines), ZERO)

    @property
    def revenue(self) -> Decimal:
        """What the customer pays over the contract term, net of the discount."""
        return self.one_time_price + self.monthly_price * self.months

    @property
    def cost(self) -> Decimal:
        return self.one_time_cost + self.monthly_cost * self.months

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        if not self.revenue:
            return None
        return (self.margin * 100 / self.revenue).quantize(Decimal("0.1"), ROUND_HALF_UP)

    @property
    def not_costed(self) -> list[LineCost]:
        return [line for line in self.lines if line.missing]

    def per_site(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Site id → (revenue, cost) over the contract term."""
        sites: dict[str, tuple[Decimal, Decimal]] = {}
        for line in self.lines:
            revenue, cost = sites.get(line.site_id, (ZERO, ZERO))
            sites[line.site_id] = (
                revenue + line.one_time_price + line.monthly_price * self.months,
                cost + line.one_time_cost + line.monthly_cost * self.months,
            )
        return sites


def _characteristic(item: JsonDict, name: str) -> Any:
    for ch in (item.get("product") or {}).get("productCharacteristic", []) or []:
        if isinstance(ch, dict) and ch.get("name") == name:
            return ch.get("value")
    return None


def _net(item: JsonDict, price_type: str) -> Decimal:
    total = ZERO
    for price in item.get("quoteItemPrice", []) or []:
        if isinstance(price, dict) and price.get("priceType") == price_type:
            total += Decimal(str(price["price"]["dutyFreeAmount"]["value"]))
    return total


def _list_price(item: JsonDict, price_type: str) -> Decimal:
    """The line's price before the discount: the net plus what the discount took off."""
    total = _net(item, price_type)
    for price in item.get("quoteItemPrice", []) or []:
        if isinstance(price, dict) and price.get("priceType") == price_type:
            for alteration in price.get("priceAlteration", []) or []:
                off = (alteration.get("price") or {}).get("dutyFreeAmount") or {}
                total -= Decimal(str(off.get("value", 0)))
    return total


def _material_costs(session: Session, specification_ids: set[str]) -> dict[str, Decimal]:
    """Specification id → purchase cost per unit, from its stock records (one query)."""
    if not specification_ids:
        return {}
    spec = ProductStockRow.body["stockedProduct", "productSpecification", "id"].as_string()
    costs: dict[str, Decimal] = {}
    for body in session.scalars(select(ProductStockRow.body).where(spec.in_(specification_ids))):
        stocked = body.get("stockedProduct") or {}
        spec_id = (stocked.get("productSpecification") or {}).get("id")
        for ch in stocked.get("productCharacteristic", []) or []:
            if (
                isinstance(ch, dict)
                and ch.get("name") == COST_CHARACTERISTIC
                and isinstance(spec_id, str)
                and spec_id not in costs
            ):
                costs[spec_id] = Decimal(str(ch.get("value")))
    return costs


def cost_estimate(session: Session, quote: JsonDict) -> CostEstimate:
    """3.4.3 Negotiate the sale (eTOM 1.1.1.4.3): the internal cost and margin of a quote.

    ``quote`` is the TMF648 body as the caller was allowed to read it; the estimate is
    for the provider's staff only. Four queries whatever the number of items.
    """
    settings = get_settings()
    rate = Decimal(str(settings.quote_labour_rate_per_hour))
    share = Decimal(str(settings.quote_recurring_cost_percent)) / 100
    items = [i for i in quote.get("quoteItem", []) or [] if isinstance(i, dict)]
    offering_ids = {str(i["productOffering"]["id"]) for i in items}
    spec_of: dict[str, str] = {}
    if offering_ids:
        for offering_id, body in session.execute(
            select(ProductOfferingRow.id, ProductOfferingRow.body).where(
                ProductOfferingRow.id.in_(offering_ids)
            )
        ):
            spec = body.get("productSpecification")
            if isinstance(spec, dict) and isinstance(spec.get("id"), str):
                spec_of[offering_id] = spec["id"]
    hours = effort_per_offering(session, offering_ids) if offering_ids else {}
    materials = {
        spec_of[str(i["productOffering"]["id"])]
        for i in items
        if _characteristic(i, "materialAvailability") is not None
        and str(i["productOffering"]["id"]) in spec_of
    }
    purchase = _material_costs(session, materials)
    estimate = CostEstimate(months=int(quote.get("contractDurationMonths") or 1))
    for item in items:
        offering_id = str(item["productOffering"]["id"])
        quantity = int(item.get("quantity", 1))
        is_material = _characteristic(item, "materialAvailability") is not None
        # The same hours on site as the education brief tells the customer (3.4.2).
        effort = hours.get(offering_id)
        if effort is None:
            effort = DEFAULT_EFFORT_HOURS["material" if is_material else "service"]
        one_time_cost = _cents(effort * quantity * rate)
        missing = ""
        if is_material:
            unit = purchase.get(spec_of.get(offering_id, ""))
            if unit is None:
                missing = "no purchase cost on record"
            else:
                one_time_cost += _cents(unit * quantity)
        estimate.lines.append(
            LineCost(
                item_id=str(item.get("id")),
                site_id=str(item["product"]["place"][0]["id"]),
                offering=str(item["productOffering"].get("name") or offering_id),
                quantity=quantity,
                one_time_price=_net(item, "oneTime"),
                monthly_price=_net(item, "recurring"),
                one_time_cost=one_time_cost,
                monthly_cost=_cents(_list_price(item, "recurring") * share),
                missing=missing,
            )
        )
    return estimate
