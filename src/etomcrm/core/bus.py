"""Domain events and the message bus that hands them to their handlers.

A service function states what happened as a domain event (a fact, named in the past
tense: ``OrderCompleted``) and records it on its unit of work with :func:`record`. Once
the outermost transaction has committed, the bus hands each event to the handlers the
composition root (``etomcrm.bootstrap``) subscribed to its type; on a rollback the
events are dropped with the change they reported. A handler does its work in its own
transaction, or starts or signals a flow.

The area that records an event never knows who acts on it: that is what keeps the
areas from calling up into each other or into the flows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from etomcrm.db import after_commit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DomainEvent:
    """A fact one area states for the others."""


E = TypeVar("E", bound=DomainEvent)
Handler = Callable[[Any], None]


class MessageBus:
    """Event type → handlers, as the composition root wired them."""

    def __init__(self) -> None:
        self._handlers: dict[type[DomainEvent], list[Handler]] = {}

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        handlers = self._handlers.setdefault(event_type, [])
        if handler not in handlers:
            handlers.append(handler)

    def unsubscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        handlers = self._handlers.get(event_type, [])
        if handler in handlers:
            handlers.remove(handler)

    def handlers_for(self, event_type: type[DomainEvent]) -> list[Handler]:
        return list(self._handlers.get(event_type, ()))

    def subscribed(self) -> dict[type[DomainEvent], list[Handler]]:
        return {kind: list(handlers) for kind, handlers in self._handlers.items()}

    def clear(self) -> None:
        self._handlers.clear()

    def handle(self, event: DomainEvent) -> None:
        """Hand one committed event to each of its handlers.

        The change the event reports is already durable, so a failing handler is logged
        and the others still run; every handler's effect is also reached by a sweep
        (unstarted flows, the work lists), so a failure delays work but loses none.
        """
        for handler in self.handlers_for(type(event)):
            try:
                handler(event)
            except Exception:
                log.exception("handler %s failed on %r", _name(handler), event)


BUS = MessageBus()


def record(session: Session, event: DomainEvent) -> None:
    """Record ``event`` on the unit of work: the bus hands it on after the outermost
    commit, and never if the transaction rolls back."""
    session.info.setdefault("domain_events", []).append(event)
    after_commit(session, partial(_dispatch, session, event))


def recorded(session: Session) -> list[DomainEvent]:
    """The events this unit of work has recorded so far (for tests and traces)."""
    return list(session.info.get("domain_events", ()))


def _dispatch(session: Session, event: DomainEvent) -> None:
    pending: list[DomainEvent] = session.info.get("domain_events", [])
    if event in pending:
        pending.remove(event)
    BUS.handle(event)


def _name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", repr(handler))
