"""Facts the customer interface area states for the others (see etomcrm.core.bus)."""

from __future__ import annotations

from dataclasses import dataclass

from etomcrm.core.bus import DomainEvent


@dataclass(frozen=True)
class CustomerTerminated(DomainEvent):
    """3.9.1: the relationship with the customer ended (its status became terminated);
    what it still has in service is to be disconnected."""

    customer_id: str
