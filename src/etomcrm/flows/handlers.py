"""Handlers of domain events that start or signal a flow (wired in ``etomcrm.bootstrap``)."""

from __future__ import annotations

from etomcrm.flows import assurance
from etomcrm.problem_handling.events import AlarmCleared

# ----- network feed: alarms cleared through the API ---------------------------------


def wake_problem_flows_on_clear(event: AlarmCleared) -> None:
    """An alarm of a cause was cleared: its problem flow looks again at once instead of
    at its next look by the clock."""
    assurance.wake_problem_flows(event.correlation_key)
