"""Tables of TMF699 Sales, TMF648 Quote, TMF679 qualification and TMF680 recommendation."""

from __future__ import annotations

from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base


class SalesLeadRow(TmfResourceRow, Base):
    __tablename__ = "sales_lead"


class SalesOpportunityRow(TmfResourceRow, Base):
    __tablename__ = "sales_opportunity"


class QuoteRow(TmfResourceRow, Base):
    __tablename__ = "quote"


class ProductOfferingQualificationRow(TmfResourceRow, Base):
    __tablename__ = "product_offering_qualification"


class RecommendationRow(TmfResourceRow, Base):
    __tablename__ = "recommendation"
