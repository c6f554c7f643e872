"""Domain events and the message bus that hands them to their handlers.

A service function states what happened as a domain event (a fact, named in the past
tense: ``OrderCompleted``) and records it on its unit of work with :func:`record`. Once
the outermost transaction has committed, the bus hands each event to the handlers the
composition root (``etomcrm.bootstrap``) subscribed to its type; on a rollback the
events are dropped with the change they reported. A handler does its work in its own
transaction, or starts or signals a flow.

The area that records an event never knows who acts on it: that is what keeps the
areas from calling up into each other or into the flows.

Bookkeeping that must commit with the change or not at all (the analytical store's
marks of what changed) subscribes *in the transaction* instead: such a handler gets the
unit of work's events of its type, together, just before the outermost commit, and
writes with the same session; it adds no transaction of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from etomcrm.db import after_commit, before_commit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DomainEvent:
    """A fact one area states for the others."""


E = TypeVar("E", bound=DomainEvent)
Handler = Callable[[Any], None]
TransactionHandler = Callable[[Session, list[Any]], None]


class MessageBus:
    """Event type → handlers, as the composition root wired them."""

    def __init__(self) -> None:
        self._handlers: dict[type[DomainEvent], list[Handler]] = {}
        self._in_transaction: dict[type[DomainEvent], list[TransactionHandler]] = {}

    def subscribe_in_transaction(self, event_type: type[E], handler: TransactionHandler) -> None:
        handlers = self._in_transaction.setdefault(event_type, [])
        if handler not in handlers:
            handlers.append(handler)

    def unsubscribe_in_transaction(self, event_type: type[E], handler: TransactionHandler) -> None:
        handlers = self._in_transaction.get(event_type, [])
        if handler in handlers:
            handlers.remove(handler)

    def handles_in_transaction(self, event_type: type[DomainEvent]) -> bool:
        return bool(self._in_transaction.get(event_type))

    def handle_in_transaction(self, session: Session, events: list[DomainEvent]) -> None:
        """Hand a unit of work's events to the in-transaction handlers, by type, in the
        order they were recorded; a failure rolls the change back with it."""
        by_type: dict[type[DomainEvent], list[DomainEvent]] = {}
        for event in events:
            by_type.setdefault(type(event), []).append(event)
        for event_type, of_type in by_type.items():
            for handler in self._in_transaction.get(event_type, ()):
                handler(session, of_type)

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
        self._in_transaction.clear()

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
    if BUS.handles_in_transaction(type(event)):
        if "bus" not in session.info.get("before_commit", {}):
            # A new unit of work (a rollback forgets the last one's action and events).
            session.info["in_transaction_events"] = []
            before_commit(session, "bus", partial(_hand_in_transaction, session))
        session.info["in_transaction_events"].append(event)


def recorded(session: Session) -> list[DomainEvent]:
    """The events this unit of work has recorded so far (for tests and traces)."""
    return list(session.info.get("domain_events", ()))


def _hand_in_transaction(session: Session) -> None:
    events: list[DomainEvent] = session.info.pop("in_transaction_events", [])
    if events:
        BUS.handle_in_transaction(session, events)


def _dispatch(session: Session, event: DomainEvent) -> None:
    pending: list[DomainEvent] = session.info.get("domain_events", [])
    # The events are handed on in the order they were recorded: the one handed on is
    # the first pending (searching the list by equality for each of a bill run chunk's
    # thousand events compared half a million pairs).
    if pending and pending[0] is event:
        del pending[0]
    elif event in pending:
        pending.remove(event)
    BUS.handle(event)


def _name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", repr(handler))
