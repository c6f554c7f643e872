"""The bus: a domain event reaches its handlers once its change is committed, never on a
rollback, and every event an area can state has a receiver wired in the composition
root."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import etomcrm
from etomcrm.bootstrap import EVENT_HANDLERS, IN_TRANSACTION_HANDLERS
from etomcrm.core.bus import BUS, DomainEvent, record
from etomcrm.core.models import AuditRecord
from etomcrm.db import session_scope
from tests.conftest import Handled
from tests.test_after_commit import _audit


@dataclass(frozen=True)
class SomethingHappened(DomainEvent):
    what: str


def test_an_event_is_handed_on_after_the_commit_and_dropped_on_rollback(
    db_url: str, handled: Handled
) -> None:
    # given a handler watching the event type
    seen: list[SomethingHappened] = handled(SomethingHappened)
    # when one unit of work records an event and commits, and another rolls back
    with session_scope() as session:
        session.add(_audit("kept"))
        record(session, SomethingHappened("kept"))
        # then nothing is handed on before the commit
        assert seen == []
    with pytest.raises(RuntimeError), session_scope() as session:
        record(session, SomethingHappened("lost"))
        raise RuntimeError("the unit of work fails")
    # then only the committed fact reached the handler, once
    assert seen == [SomethingHappened("kept")]


def test_an_in_transaction_handler_writes_with_the_change_and_is_rolled_back_with_it(
    db_url: str,
) -> None:
    # given bookkeeping subscribed in the transaction, writing an audit row per batch
    batches: list[list[str]] = []

    def book(session: Session, events: list[SomethingHappened]) -> None:
        batches.append([event.what for event in events])
        session.add(_audit("booked " + ",".join(event.what for event in events)))

    BUS.subscribe_in_transaction(SomethingHappened, book)
    try:
        # when one unit of work states two facts and commits, and another rolls back
        with session_scope() as session:
            record(session, SomethingHappened("a"))
            record(session, SomethingHappened("b"))
            # then nothing is handed on before the commit
            assert batches == []
        with pytest.raises(RuntimeError), session_scope() as session:
            record(session, SomethingHappened("lost"))
            session.flush()
            raise RuntimeError("the unit of work fails")
    finally:
        BUS.unsubscribe_in_transaction(SomethingHappened, book)
    # then the committed facts reached the bookkeeping together, once, and what it wrote
    # committed with them; the rolled-back fact's bookkeeping never ran
    assert batches == [["a", "b"]]
    with session_scope(readonly=True) as session:
        booked = session.scalars(
            select(AuditRecord.actor).where(AuditRecord.actor.like("booked%"))
        ).all()
    assert booked == ["booked a,b"]


def test_a_failing_handler_neither_undoes_the_change_nor_stops_the_others(
    db_url: str, handled: Handled
) -> None:
    # given a handler that fails before one that works
    def broken(event: SomethingHappened) -> None:
        raise RuntimeError("the receiver is down")

    BUS.subscribe(SomethingHappened, broken)
    try:
        seen: list[SomethingHappened] = handled(SomethingHappened)
        # when a change states the fact
        with session_scope() as session:
            session.add(_audit("durable"))
            record(session, SomethingHappened("durable"))
    finally:
        BUS.unsubscribe(SomethingHappened, broken)
    # then the change stands and the second handler still got the event
    assert seen == [SomethingHappened("durable")]
    with session_scope(readonly=True) as session:
        assert session.query(AuditRecord).filter_by(actor="durable").count() == 1


def _stated_events() -> set[type[DomainEvent]]:
    """Every domain event an area or flow can state: the classes of each ``events``
    module in the package."""
    found: set[type[DomainEvent]] = set()
    for module in pkgutil.walk_packages(etomcrm.__path__, "etomcrm."):
        if module.name.endswith(".events") and not module.name.startswith("etomcrm.core"):
            events = importlib.import_module(module.name)
            found |= {
                value
                for value in vars(events).values()
                if isinstance(value, type)
                and issubclass(value, DomainEvent)
                and value is not DomainEvent
                and value.__module__ == module.name
            }
    return found


def test_every_fact_an_area_states_has_a_receiver() -> None:
    # given every domain event declared in the areas' events modules
    stated = _stated_events()
    assert len(stated) >= 8
    # then the composition root wires at least one handler to each (after the commit or
    # in the transaction)
    unreceived = sorted(
        e.__qualname__
        for e in stated
        if not EVENT_HANDLERS.get(e) and not IN_TRANSACTION_HANDLERS.get(e)
    )
    assert unreceived == []
