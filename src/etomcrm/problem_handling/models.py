"""Tables of TMF621 Trouble Ticket, TMF656 Service Problem and TMF642 Alarm."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base, UTCDateTime


class TroubleTicketRow(TmfResourceRow, Base):
    """A customer's trouble ticket; its due times are columns so that the tickets about
    to miss a target are one indexed query."""

    __tablename__ = "trouble_ticket"

    response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class ServiceProblemRow(TmfResourceRow, Base):
    """A problem in the provider's network, possibly affecting many customers."""

    __tablename__ = "service_problem"

    # What the problem is about (a point of presence, a link), for correlation.
    correlation_key: Mapped[str | None] = mapped_column(String(200), index=True)


class AlarmRow(TmfResourceRow, Base):
    __tablename__ = "alarm"

    alarmed_object_id: Mapped[str | None] = mapped_column(String(200), index=True)
    correlation_key: Mapped[str | None] = mapped_column(String(200), index=True)
