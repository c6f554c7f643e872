"""Tables of dunning (3.8.5) and billing enquiries (3.8.1).

A dunning case follows one overdue bill up the ladder (reminder, notice with fee, final
notice, suspension) until it is paid; its ``level`` is what staff and the customer see.
A billing enquiry is a customer's dispute of a bill or some of its lines; while it is
open, the disputed amount is not dunned.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from etomcrm.billing.models import MONEY
from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base, UTCDateTime


class DunningCaseRow(TmfResourceRow, Base):
    """One bill's dunning: ``status`` open, paused (disputed), suspended, closed.

    ``trigger`` says what started it (``overdue``, or ``returned:<payment id>``): unique
    per bill, so a handler or tick that runs again opens no second case. The document
    in ``body`` carries the history of its steps (level, date, message, order).
    """

    __tablename__ = "dunning_case"

    bill_id: Mapped[str] = mapped_column(String(64), index=True)
    billing_account_id: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(120))
    # 0 opened, 1 reminder, 2 notice with fee, 3 final notice, 4 suspended
    level: Mapped[int] = mapped_column(Integer, default=0)
    next_step_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspension_date: Mapped[date | None] = mapped_column(Date)
    fee: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))

    __table_args__ = (Index("ux_dunning_case_bill_trigger", "bill_id", "trigger", unique=True),)


class BillingEnquiryRow(TmfResourceRow, Base):
    """A dispute of a bill (or of some of its lines): ``status`` open,
    pendingApproval (a credit note above the threshold awaits a second person),
    resolved (adjusted by a credit note) or rejected."""

    __tablename__ = "billing_enquiry"

    bill_id: Mapped[str] = mapped_column(String(64), index=True)
    disputed_amount: Mapped[Decimal] = mapped_column(MONEY)
