"""What QoS/SLA management (3.7) states for the other areas and the flows."""

from __future__ import annotations

from dataclasses import dataclass

from etomcrm.core.bus import DomainEvent


@dataclass(frozen=True)
class ViolationRecorded(DomainEvent):
    """An SLA violation was recorded (3.7.2): its flow follows it to its end."""

    violation_id: str
