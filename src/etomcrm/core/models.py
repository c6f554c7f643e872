"""Tables every area shares: the TMF resource shape, audit trail, outbox, hub, idempotency."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from etomcrm.db import Base, JSONDoc, UTCDateTime, new_id, utcnow

NAME_COLUMN_LENGTH = 200


class TmfResourceRow:
    """Columns of every stored TMF resource.

    The whole TMF document lives in ``body`` (every attribute of the official schema,
    stored and returned as given); the columns beside it are what queries need:
    ownership for customer scoping, name and status for the common filters, a version
    for ETags.
    """

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    at_type: Mapped[str] = mapped_column("type", String(100))
    name: Mapped[str | None] = mapped_column(String(NAME_COLUMN_LENGTH), index=True)
    status: Mapped[str | None] = mapped_column(String(100), index=True)
    owner_customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditRecord(Base):
    """Who changed what, when: one row per create, change and delete."""

    __tablename__ = "audit_record"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(50))
    actor_customer_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(20))
    resource_type: Mapped[str] = mapped_column(String(100))
    resource_id: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONDoc)

    __table_args__ = (Index("ix_audit_record_resource", "resource_type", "resource_id"),)


class OutboxEvent(Base):
    """A TMF event, written in the same transaction as the change it reports."""

    __tablename__ = "outbox_event"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    api: Mapped[str] = mapped_column(String(20), index=True)
    event_type: Mapped[str] = mapped_column(String(100))
    resource_type: Mapped[str] = mapped_column(String(100))
    resource_id: Mapped[str] = mapped_column(String(64))
    owner_customer_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HubSubscription(Base):
    """A listener registered with ``POST /hub`` on one API."""

    __tablename__ = "hub_subscription"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    api: Mapped[str] = mapped_column(String(20), index=True)
    callback: Mapped[str] = mapped_column(Text)
    query: Mapped[str | None] = mapped_column(Text)
    # A customer's listener hears only about that customer's resources.
    owner_customer_id: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventDelivery(Base):
    """One event owed to one listener, retried with back-off until it answers 2xx."""

    __tablename__ = "event_delivery"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_event.id", ondelete="CASCADE"))
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("hub_subscription.id", ondelete="CASCADE"), index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Lets the unit of work insert the event before its deliveries in one flush.
    event: Mapped[OutboxEvent] = relationship(lazy="raise")

    __table_args__ = (Index("ix_event_delivery_due", "delivered_at", "next_attempt_at"),)


class IdempotencyRecord(Base):
    """The first answer to a POST with an ``Idempotency-Key``, replayed on retries."""

    __tablename__ = "idempotency_record"

    principal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_path: Mapped[str] = mapped_column(Text)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    resource_type: Mapped[str] = mapped_column(String(100))
    resource_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
