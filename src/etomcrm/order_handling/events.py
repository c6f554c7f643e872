"""What order handling (3.5) states for the other areas and the flows."""

from __future__ import annotations

from dataclasses import dataclass

from etomcrm.core.bus import DomainEvent


@dataclass(frozen=True)
class OrderAcknowledged(DomainEvent):
    """A product order was accepted (3.5.3): its Fulfillment flow is due."""

    order_id: str


@dataclass(frozen=True)
class OrderReleased(DomainEvent):
    """Staff resumed or cancelled an order its flow may be waiting on (3.5.4)."""

    order_id: str
