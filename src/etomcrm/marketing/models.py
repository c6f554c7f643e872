"""Tables of marketing campaigns and TMF667 documents (collateral)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base, UTCDateTime


class CampaignRow(TmfResourceRow, Base):
    """A marketing campaign: target segment, collateral, distribution and results."""

    __tablename__ = "campaign"


class DocumentRow(TmfResourceRow, Base):
    __tablename__ = "document"


class CampaignTargetRow(Base):
    """One customer a campaign targets, and whether it was held out as control.

    Written when the campaign's targets are set (``set_campaign_targets``): the control
    customers are drawn at random from a recorded seed, so the draw can be repeated,
    and distribution sends them nothing.
    """

    __tablename__ = "campaign_target"

    campaign_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    group: Mapped[str] = mapped_column("target_group", String(10))  # treated or control
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)
