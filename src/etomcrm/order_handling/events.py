"""What order handling (3.5) states for the other areas and the flows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from etomcrm.core.bus import DomainEvent


@dataclass(frozen=True)
class OrderAcknowledged(DomainEvent):
    """A product order was accepted (3.5.3): its Fulfillment flow is due."""

    order_id: str


@dataclass(frozen=True)
class OrderReleased(DomainEvent):
    """Staff resumed or cancelled an order its flow may be waiting on (3.5.4)."""

    order_id: str


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


@dataclass(frozen=True)
class ProductsEnded(DomainEvent):
    """3.5.5 for a disconnect order (3.9.1): these products left service at
    ``ended_at``; billing stops charging them."""

    order_id: str
    customer_id: str
    ended_at: datetime
    product_ids: tuple[str, ...]
