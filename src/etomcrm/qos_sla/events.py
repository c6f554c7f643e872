"""What QoS/SLA management (3.7) states for the other areas and the flows."""

from __future__ import annotations

from dataclasses import dataclass

from etomcrm.core.bus import DomainEvent


@dataclass(frozen=True)
class ViolationRecorded(DomainEvent):
    """An SLA violation was recorded (3.7.2): its flow follows it to its end."""

    violation_id: str


@dataclass(frozen=True)
class SlaCreditOwed(DomainEvent):
    """A closed violation's credit is owed to the customer on its next bill (3.7.2 →
    3.8.2): ``amount`` is a decimal string in ``currency``."""

    violation_id: str
    customer_id: str | None
    product_id: str
    period: str
    metric: str
    amount: str
    currency: str
