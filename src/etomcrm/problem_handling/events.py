"""What problem handling (3.6) states for the other areas and the flows."""

from __future__ import annotations

from dataclasses import dataclass

from etomcrm.core.bus import DomainEvent


@dataclass(frozen=True)
class AlarmCleared(DomainEvent):
    """The network cleared an alarm of this cause (its correlation key)."""

    correlation_key: str


@dataclass(frozen=True)
class TicketEnded(DomainEvent):
    """A trouble ticket reached a final status (closed or cancelled; 3.6.4), naming the
    service problems behind it and the SLA violations it follows up."""

    ticket_id: str
    problem_ids: tuple[str, ...]
    violation_ids: tuple[str, ...]
    status: str = "closed"
    customer_id: str | None = None
