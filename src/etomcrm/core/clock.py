"""The moment a service function works at: the clock, unless a caller (a test, a
replay, the demo) sets one for the duration of a call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from etomcrm.db import utcnow


class ServiceClock:
    """``now()`` inside ``at(moment)`` is ``moment``; elsewhere (the API path) the clock."""

    def __init__(self, name: str) -> None:
        self._moment: ContextVar[datetime | None] = ContextVar(name, default=None)

    @contextmanager
    def at(self, now: datetime | None) -> Iterator[None]:
        token = self._moment.set(now)
        try:
            yield
        finally:
            self._moment.reset(token)

    def now(self) -> datetime:
        return self._moment.get() or utcnow()


def iso(moment: datetime) -> str:
    """An aware instant as the TMF documents write it: ISO 8601, UTC as ``Z``."""
    return moment.isoformat().replace("+00:00", "Z")


class FlowClock:
    """The clock flow steps read: the wall clock, moved forward by a test that must not
    wait for a deadline (a silence period). Flows run in DBOS's threads, so this is one
    offset for the whole process, not a context variable."""

    def __init__(self) -> None:
        self._ahead = timedelta(0)

    def now(self) -> datetime:
        return utcnow() + self._ahead

    def advance(self, by: timedelta) -> None:
        self._ahead += by

    def reset(self) -> None:
        self._ahead = timedelta(0)


FLOW_CLOCK = FlowClock()
