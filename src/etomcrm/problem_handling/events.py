"""Facts problem handling states for the others (see :mod:`etomcrm.core.bus`)."""

from __future__ import annotations

from dataclasses import dataclass

from etomcrm.core.bus import DomainEvent


@dataclass(frozen=True)
class AlarmCleared(DomainEvent):
    """An alarm of this cause (``link:<id>``, ``pop:<id>``) was cleared through the API:
    the problem flows of the cause look again whether their repair is done."""

    alarm_id: str
    correlation_key: str
