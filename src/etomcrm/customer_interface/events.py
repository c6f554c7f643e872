"""What the customer interface (3.2) states for the other areas and the flows."""

from __future__ import annotations

from dataclasses import dataclass

from etomcrm.core.bus import DomainEvent


@dataclass(frozen=True)
class SellingRequestLogged(DomainEvent):
    """A customer asked to buy (3.2.2): the Pre-Sale flow takes it from here."""

    request_id: str
    customer_id: str
    owner: str


@dataclass(frozen=True)
class CustomerTerminated(DomainEvent):
    """3.9.1: the relationship with the customer ended (its status became terminated);
    what it still has in service is to be disconnected."""

    customer_id: str
