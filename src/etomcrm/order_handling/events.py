"""What order handling states for the other areas (domain events, past tense)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from etomcrm.core.bus import DomainEvent


@dataclass(frozen=True)
class ChargeLine:
    """One price of an activated product, as the order item carried it."""

    name: str | None
    price_type: str  # oneTime, recurring or usage
    recurring_charge_period: str | None  # "month" for a monthly charge
    amount: Decimal  # duty free, after the discount
    currency: str


@dataclass(frozen=True)
class ActivatedProduct:
    """A product of the customer's inventory (TMF637) that is now active."""

    product_id: str
    order_item_id: str
    offering_id: str
    offering_name: str | None
    site_id: str | None
    charges: tuple[ChargeLine, ...]


@dataclass(frozen=True)
class ProductsActivated(DomainEvent):
    """3.5.5: an order completed and these products are active from ``activated_at``:
    billing starts charging them (one-time charges once, recurring ones from that
    date)."""

    order_id: str
    customer_id: str
    billing_account_id: str | None
    activated_at: datetime
    products: tuple[ActivatedProduct, ...]


@dataclass(frozen=True)
class OrderAccepted(DomainEvent):
    """3.5.5: the customer accepted what the order delivered, explicitly (``by`` names
    who recorded it) or deemed after the acceptance period passed without objection."""

    order_id: str
    customer_id: str
    accepted_at: datetime
    deemed: bool
    by: str | None
