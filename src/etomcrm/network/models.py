"""Tables of the simulated network side."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer
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
