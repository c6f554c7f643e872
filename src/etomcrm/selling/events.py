"""What selling (3.4) states for the other areas and the flows."""

from __future__ import annotations

from dataclasses import dataclass

from etomcrm.core.bus import DomainEvent


@dataclass(frozen=True)
class QuoteDecided(DomainEvent):
    """A quote was accepted, rejected or cancelled (3.4.3)."""

    quote_id: str
    customer_id: str | None
    state: str
