"""What problem handling (3.6) states for the other areas and the flows."""

from __future__ import annotations

from dataclasses import dataclass

from etomcrm.core.bus import DomainEvent


@dataclass(frozen=True)
class AlarmCleared(DomainEvent):
    """The network cleared an alarm of this cause (``link:<id>``, ``pop:<id>``): the
    problem flows of the cause look again whether their repair is done."""

    alarm_id: str
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


@dataclass(frozen=True)
class ServiceProblemRaisedForTicket(DomainEvent):
    """3.6.1 found a fault behind a customer's ticket and opened a service problem for
    it: the problem needs its flow (correlation starts the flows of its own problems)."""

    problem_id: str
    ticket_id: str


@dataclass(frozen=True)
class ServiceProblemReported(DomainEvent):
    """3.6.2: a problem was reported to the network side (its repair requested); SLA
    management learns which products are affected since when."""

    problem_id: str
    affected_products: tuple[str, ...]
    since: str


@dataclass(frozen=True)
class ServiceProblemRepaired(DomainEvent):
    """A service problem became resolved: the network side reported the repair (or its
    flow saw the alarms clear). Its waiting flow looks again."""

    problem_id: str
