"""Domain events: written to the outbox with the change, delivered to hub listeners.

An event row and one delivery row per matching listener are written in the same
transaction as the change they report, so a crash can neither lose an event nor send
one for a change that rolled back. Delivery runs apart from the request: it claims due
deliveries with a lease (so several worker processes never send the same one twice at
once), posts them, and on failure backs off exponentially and tries again, without end,
until the listener answers 2xx or unregisters.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from etomcrm.config import get_settings
from etomcrm.core import callbacks
from etomcrm.core.clock import iso
from etomcrm.core.errors import InvalidRequest, NotFound
from etomcrm.core.models import EventDelivery, HubSubscription, OutboxEvent
from etomcrm.db import new_id, session_scope, utcnow

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]


def _lookup(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def subscription_matches(query: str | None, event_type: str, event: JsonDict) -> bool:
    """A hub ``query`` such as ``eventType=CustomerCreateEvent,CustomerDeleteEvent`` or
    ``eventType=CustomerStateChangeEvent&customer.status=active``."""
    if not query:
        return True
    for key, values in parse_qs(query.lstrip("?"), keep_blank_values=True).items():
        wanted = {v for raw in values for v in raw.split(",")}
        if key == "eventType":
            if event_type not in wanted:
                return False
        else:
            actual = _lookup(event, key.removeprefix("event."))
            if str(actual) not in wanted and actual not in wanted:
                return False
    return True


def emit_event(
    session: Session,
    *,
    api: str,
    event_type: str,
    resource_type: str,
    resource_id: str,
    owner_customer_id: str | None,
    event: JsonDict,
) -> OutboxEvent:
    """Write an event and its deliveries in the caller's transaction."""
    now = utcnow()
    stamp = iso(now)
    event_id = new_id()
    payload = {
        "eventId": event_id,
        "eventTime": stamp,
        "eventType": event_type,
        "timeOcurred": stamp,
        "event": event,
    }
    row = OutboxEvent(
        id=event_id,
        api=api,
        event_type=event_type,
        resource_type=resource_type,
        resource_id=resource_id,
        owner_customer_id=owner_customer_id,
        payload=payload,
        created_at=now,
    )
    # The listeners do not depend on the change being written, so pending rows need
    # not be flushed for this query; everything is flushed together at commit.
    with session.no_autoflush:
        listeners = session.scalars(
            select(HubSubscription).where(
                HubSubscription.api == api,
                or_(
                    HubSubscription.owner_customer_id.is_(None),
                    HubSubscription.owner_customer_id == owner_customer_id,
                ),
            )
        ).all()
    session.add(row)
    for listener in listeners:
        if subscription_matches(listener.query, event_type, event):
            session.add(EventDelivery(event=row, subscription_id=listener.id, next_attempt_at=now))
    return row


def register_listener(
    session: Session,
    *,
    api: str,
    callback: str,
    query: str | None,
    owner_customer_id: str | None,
    created_by: str,
) -> HubSubscription:
    parts = urlsplit(callback)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest(f"callback must be an absolute http(s) URL, not {callback!r}")
    refused = callbacks.refusal(callback, unresolved_ok=True)
    if refused:
        raise InvalidRequest(f"etomcrm will not call {callback!r}: {refused}")
    if query:
        parse_qs(query.lstrip("?"), strict_parsing=False)
    subscription = HubSubscription(
        api=api,
        callback=callback.rstrip("/"),
        query=query,
        owner_customer_id=owner_customer_id,
        created_by=created_by,
    )
    session.add(subscription)
    session.flush()
    return subscription


def unregister_listener(
    session: Session, *, api: str, subscription_id: str, owner_customer_id: str | None
) -> None:
    stmt = select(HubSubscription).where(
        HubSubscription.id == subscription_id, HubSubscription.api == api
    )
    if owner_customer_id is not None:
        stmt = stmt.where(HubSubscription.owner_customer_id == owner_customer_id)
    subscription = session.scalar(stmt)
    if subscription is None:
        raise NotFound(f"no hub listener with id {subscription_id}")
    session.execute(delete(EventDelivery).where(EventDelivery.subscription_id == subscription_id))
    session.delete(subscription)


def listener_url(callback: str, event_type: str) -> str:
    return f"{callback}/listener/{event_type[:1].lower()}{event_type[1:]}"


def backoff_seconds(attempts: int, cap: float) -> float:
    """1, 2, 4, ... seconds, capped, with jitter so retries of many events spread out."""
    base = min(cap, 2.0 ** max(attempts - 1, 0))
    return base * random.uniform(0.9, 1.1)


def deliver_due(
    post: Callable[[str, JsonDict], int], *, batch: int = 50, url: str | None = None
) -> tuple[int, int]:
    """Send the deliveries that are due; returns (delivered, failed).

    A listener hears its events in the order they happened: its oldest undelivered
    event goes first, and while that one waits for a retry the later ones wait behind
    it (a listener that was down gets 5, 6, 7, ... after the outage, not 5, 12, 18).
    ``post(url, payload)`` returns the HTTP status, or raises on a network error.
    """
    settings = get_settings()
    worker = new_id()
    now = utcnow()
    with session_scope(url) as session:
        # A listener is ready when its oldest undelivered event is due and not leased
        # by another worker; only ready listeners' backlogs are taken, in event order, so
        # one listener's long backlog behind a failure never starves the others.
        head = (
            select(
                EventDelivery.subscription_id,
                func.min(EventDelivery.event_id).label("event_id"),
            )
            .where(EventDelivery.delivered_at.is_(None))
            .group_by(EventDelivery.subscription_id)
            .subquery()
        )
        ready = (
            select(EventDelivery.subscription_id)
            .join(
                head,
                and_(
                    EventDelivery.subscription_id == head.c.subscription_id,
                    EventDelivery.event_id == head.c.event_id,
                ),
            )
            .where(
                EventDelivery.next_attempt_at <= now,
                or_(EventDelivery.lease_until.is_(None), EventDelivery.lease_until < now),
            )
        )
        ids = list(
            session.scalars(
                select(EventDelivery.id)
                .where(
                    EventDelivery.delivered_at.is_(None),
                    EventDelivery.subscription_id.in_(ready),
                )
                .order_by(EventDelivery.subscription_id, EventDelivery.event_id)
                .limit(batch)
            )
        )
        if not ids:
            return 0, 0
        session.execute(
            update(EventDelivery)
            .where(
                and_(
                    EventDelivery.id.in_(ids),
                    or_(EventDelivery.lease_until.is_(None), EventDelivery.lease_until < now),
                )
            )
            .values(lease_owner=worker, lease_until=now + timedelta(seconds=60))
        )
    with session_scope(url, readonly=True) as session:
        claimed = session.execute(
            select(
                EventDelivery.id,
                EventDelivery.attempts,
                EventDelivery.subscription_id,
                HubSubscription.callback,
                OutboxEvent.event_type,
                OutboxEvent.payload,
            )
            .join(HubSubscription, HubSubscription.id == EventDelivery.subscription_id)
            .join(OutboxEvent, OutboxEvent.id == EventDelivery.event_id)
            .where(EventDelivery.lease_owner == worker)
            .order_by(EventDelivery.subscription_id, EventDelivery.event_id)
        ).all()
    results: list[tuple[str, int, str | None]] = []
    skipped: list[str] = []
    stopped: set[str] = set()
    refusals: dict[str, str | None] = {}
    for delivery_id, attempts, subscription_id, callback, event_type, payload in claimed:
        if subscription_id in stopped:
            # Behind a failed event of the same listener: not tried, not counted.
            skipped.append(delivery_id)
            continue
        if callback not in refusals:
            refusals[callback] = callbacks.refusal(callback)
        error: str | None = None
        if refusals[callback]:
            error = f"not sent: {refusals[callback]}"
        else:
            try:
                status = post(listener_url(callback, event_type), payload)
                if not 200 <= status < 300:
                    error = f"listener answered HTTP {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            stopped.add(subscription_id)
        results.append((delivery_id, attempts + 1, error))
    delivered = failed = 0
    with session_scope(url) as session:
        done = utcnow()
        if skipped:
            session.execute(
                update(EventDelivery)
                .where(EventDelivery.id.in_(skipped))
                .values(lease_owner=None, lease_until=None)
            )
        for delivery_id, attempts, error in results:
            values: JsonDict = {
                "attempts": attempts,
                "lease_owner": None,
                "lease_until": None,
                "last_error": error,
            }
            if error is None:
                values["delivered_at"] = done
                delivered += 1
            else:
                values["next_attempt_at"] = done + timedelta(
                    seconds=backoff_seconds(attempts, settings.hub_max_backoff_seconds)
                )
                failed += 1
            session.execute(
                update(EventDelivery).where(EventDelivery.id == delivery_id).values(**values)
            )
    return delivered, failed


def http_poster(client: httpx.Client) -> Callable[[str, JsonDict], int]:
    def post(url: str, payload: JsonDict) -> int:
        return client.post(url, json=payload).status_code

    return post


class DeliveryThread(threading.Thread):
    """Delivers hub events, and what else waits for delivery (``others``: each returns
    how many it delivered), in the background of a serving process."""

    def __init__(self, interval: float, others: Sequence[Callable[[], int]] = ()) -> None:
        super().__init__(name="etomcrm-hub-delivery", daemon=True)
        self.interval = interval
        self.others = tuple(others)
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            post = http_poster(client)
            while not self.stopping.is_set():
                try:
                    delivered, failed = deliver_due(post)
                    delivered += sum(deliver() for deliver in self.others)
                except Exception:  # keep delivering after a database hiccup
                    log.exception("hub delivery round failed")
                    delivered = failed = 0
                if delivered + failed == 0:
                    self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
