"""Tables of marketing campaigns and TMF667 documents (collateral)."""

from __future__ import annotations

from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base


class CampaignRow(TmfResourceRow, Base):
    """A marketing campaign: target segment, collateral, distribution and results."""

    __tablename__ = "campaign"


class DocumentRow(TmfResourceRow, Base):
    __tablename__ = "document"
