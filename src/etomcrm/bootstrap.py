"""The composition root: the one place where etomcrm is put together.

Resource kinds, API routers, flows, schedules and the handlers of every domain event
are wired here, and nowhere else; nothing registers itself by being imported. Entry
points (the API, the CLI, the demo, the worker) call :func:`bootstrap` first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from etomcrm.core.bus import BUS, DomainEvent
from etomcrm.flows import handlers as flow_handlers
from etomcrm.problem_handling.events import ServiceProblemRaisedForTicket, ServiceProblemRepaired
from etomcrm.retention import handlers as retention_handlers
from etomcrm.retention.events import CustomerRiskRaised

_lock = threading.Lock()
_done = False

# Event type → the handlers acting on it, in order. A handler does its work in its own
# transaction or starts or signals a flow (DESIGN.md section 3, "Events").
EVENT_HANDLERS: dict[type[DomainEvent], list[Callable[[Any], None]]] = {}

# ----- assurance: problem isolation and repair (3.6.1, 3.6.2) ----------------------------
EVENT_HANDLERS[ServiceProblemRaisedForTicket] = [flow_handlers.start_flow_of_ticket_problem]
EVENT_HANDLERS[ServiceProblemRepaired] = [flow_handlers.wake_repaired_problem]
# 3.9.3: a churn risk that became high is the account manager's retention task.
EVENT_HANDLERS[CustomerRiskRaised] = [retention_handlers.task_account_manager]
# ----- end of assurance ---------------------------------------------------------------


def bootstrap() -> None:
    """Wire the system once per process (idempotent)."""
    global _done
    with _lock:
        if _done:
            return
        for event_type, handlers in EVENT_HANDLERS.items():
            for handler in handlers:
                BUS.subscribe(event_type, handler)
        _done = True
