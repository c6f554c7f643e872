"""Tables of TMF699 Sales, TMF648 Quote, TMF679 qualification, TMF680 recommendation,
TMF666 billing account and TMF670 payment method."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

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


class BillingAccountRow(TmfResourceRow, Base):
    """TMF666 billingAccount (3.4.4): who pays, on which day of the month, in what way.

    The columns are what the bill run selects by; the rest lives in ``body``.
    """

    __tablename__ = "billing_account"

    bill_cycle_day: Mapped[int] = mapped_column(Integer, index=True)
    currency: Mapped[str] = mapped_column(String(3))


class PaymentMethodRow(TmfResourceRow, Base):
    """TMF670 paymentMethod: SEPA direct debit with its mandate, or bank transfer."""

    __tablename__ = "payment_method"

    billing_account_id: Mapped[str | None] = mapped_column(String(64), index=True)
