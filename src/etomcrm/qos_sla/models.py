"""Tables of QoS/SLA management: SLAs per product (TMF623 sla), assessments per period,
violations (TMF623 slaViolation)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base, UTCDateTime, new_id, utcnow


class SlaRow(TmfResourceRow, Base):
    """The SLA of one product, from its catalog SLA level."""

    __tablename__ = "sla"

    product_id: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)


class SlaViolationRow(TmfResourceRow, Base):
    """A violation, recorded once: its key is (product, metric, period)."""

    __tablename__ = "sla_violation"

    violation_key: Mapped[str] = mapped_column(String(200), unique=True)


class QosAssessmentRow(Base):
    """3.7.1's result for one product, period and metric."""

    __tablename__ = "qos_assessment"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(String(64), index=True)
    period: Mapped[str] = mapped_column(String(7))  # e.g. 2026-11
    metric: Mapped[str] = mapped_column(String(50))
    measured: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    target: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    met: Mapped[bool] = mapped_column(Boolean)
    final: Mapped[bool] = mapped_column(Boolean, default=False)  # the period has ended
    assessed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("product_id", "period", "metric"),)
