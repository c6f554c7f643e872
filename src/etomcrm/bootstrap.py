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
from etomcrm.problem_handling.events import AlarmCleared

_lock = threading.Lock()
_done = False

# Event type → the handlers acting on it, in order. A handler does its work in its own
# transaction or starts or signals a flow (DESIGN.md section 3, "Events").
EVENT_HANDLERS: dict[type[DomainEvent], list[Callable[[Any], None]]] = {}

# ----- network feed (alarms from a real or simulated OSS) -----------------------------
EVENT_HANDLERS[AlarmCleared] = [flow_handlers.wake_problem_flows_on_clear]
# ----- end network feed ---------------------------------------------------------------


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
