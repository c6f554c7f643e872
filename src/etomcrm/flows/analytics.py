"""The analytical store's catch-up on the clock: what the bus marked since the last tick
is derived again (seed 5.3), in the process that runs the flows, never in a request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dbos import DBOS

from etomcrm.analytics import store

SCHEDULE = "45 * * * * *"  # every minute: the figures lag the operational data by one


@DBOS.step(name="analytics-catch-up-step")
def catch_up_step() -> int:
    return store.catch_up_all()


@DBOS.workflow(name="analytics-catch-up")
def analytics_tick(scheduled_at: datetime, context: Any) -> None:
    """Derive what changed; a tick that finds nothing costs one query."""
    catch_up_step()
