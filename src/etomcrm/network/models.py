"""Tables of the simulated network side."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base, UTCDateTime


class NetworkServiceOrderRow(TmfResourceRow, Base):
    """A TMF641 service order as the network side received it.

    Its id is derived from the sender's key, so a resent order is the same order: the
    network never builds a site twice because a flow step ran again.
    """

    __tablename__ = "network_service_order"

    attempt: Mapped[int] = mapped_column(Integer, default=1)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NetworkPopRow(Base):
    """A point of presence of the provider's core: where customer access links end."""

    __tablename__ = "network_pop"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(10), index=True)  # German state, e.g. BY
    status: Mapped[str] = mapped_column(String(20), default="up")


class NetworkLinkRow(Base):
    """A customer site's access link to a point of presence."""

    __tablename__ = "network_link"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    pop_id: Mapped[str] = mapped_column(String(64), index=True)
    product_id: Mapped[str | None] = mapped_column(String(64), index=True)
    bandwidth_mbits: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="up")


class NetworkMeasurementRow(Base):
    """Performance data of one link for one interval: many rows, so plain columns."""

    __tablename__ = "network_measurement"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    link_id: Mapped[str] = mapped_column(String(64))
    site_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    # Share of the interval the link was up (0..1), and quality while it was.
    availability: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    loss_percent: Mapped[float] = mapped_column(Float)
    bytes_in: Mapped[int] = mapped_column(BigInteger)
    bytes_out: Mapped[int] = mapped_column(BigInteger)
    # The sender's id of the measurement: a measurement sent again is stored once.
    measurement_id: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        Index("ix_network_measurement_link_at", "link_id", "at"),
        Index("ix_network_measurement_site_at", "site_id", "at"),
        Index("ux_network_measurement_measurement_id", "measurement_id", unique=True),
    )


class MaintenanceWindowRow(Base):
    """Planned work announced in advance; excluded from SLA availability."""

    __tablename__ = "maintenance_window"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pop_id: Mapped[str | None] = mapped_column(String(64), index=True)
    link_id: Mapped[str | None] = mapped_column(String(64), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    announced_at: Mapped[datetime] = mapped_column(UTCDateTime)
    description: Mapped[str] = mapped_column(Text)
