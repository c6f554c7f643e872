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
from etomcrm.flows.handlers import wake_post_ordering_on_acceptance
from etomcrm.order_handling.events import OrderAccepted

_lock = threading.Lock()
_done = False

# Event type → the handlers acting on it, in order. A handler does its work in its own
# transaction or starts or signals a flow (DESIGN.md section 3, "Events").
EVENT_HANDLERS: dict[type[DomainEvent], list[Callable[[Any], None]]] = {
    # ----- 3.5.5 order completion (the customer's acceptance) -----------------------
    # ProductsActivated (order_handling.events) awaits the billing work list's handler.
    OrderAccepted: [wake_post_ordering_on_acceptance],
    # ----- end of 3.5.5 order completion ------------------------------------------------
}


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
