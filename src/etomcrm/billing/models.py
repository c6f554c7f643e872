"""Tables of Billing & Collections (3.8): usage, rated charges, bills, payments.

Money is ``Numeric`` and read as ``Decimal``: amounts of bills and charges in cents
(scale 2), rates and volumes with more places. Usage and rated charges are many rows
with plain columns (a bill run reads them set by set); bills and payments are TMF
resources (the document in ``body``) with the columns their queries need beside it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, Index, Integer, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base, JSONDoc, UTCDateTime, utcnow

MONEY = Numeric(14, 2)
QUANTITY = Numeric(20, 6)


class UsageRecordRow(Base):
    """TMF635 usage: one measured volume of one site (or product) for one interval.

    ``usage_id`` is the sender's id: a record sent again is stored once, and a record
    sent again with another volume is a correction (``version`` counts them). A record
    is ``received`` until a bill rates it; ``billed_volume`` is the volume that bill
    charged, so a late correction of a billed record charges only the difference on
    the next bill.
    """

    __tablename__ = "usage_record"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    usage_id: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str | None] = mapped_column(String(64))
    site_id: Mapped[str | None] = mapped_column(String(64))
    usage_type: Mapped[str] = mapped_column(String(50))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    volume: Mapped[Decimal] = mapped_column(QUANTITY)
    unit: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="received")
    version: Mapped[int] = mapped_column(Integer, default=1)
    billed_volume: Mapped[Decimal | None] = mapped_column(QUANTITY)
    bill_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ux_usage_record_usage_id", "usage_id", unique=True),
        Index("ix_usage_record_customer_start", "customer_id", "start_at"),
        # Only billed records: bill_id is empty until a bill charges the record, and
        # an entry per ingested record (all NULL) slowed every COPY of usage.
        Index(
            "ix_usage_record_bill",
            "bill_id",
            postgresql_where=text("bill_id IS NOT NULL"),
            sqlite_where=text("bill_id IS NOT NULL"),
        ),
    )


class AppliedRateRow(Base):
    """TMF678 appliedCustomerBillingRate: one rated charge, credit or discount.

    ``source_key`` says what the charge is for (a product's recurring price for one
    period, an SLA violation's credit, a usage correction): unique, so whatever reruns
    a charge is rated once. ``bill_id`` is empty until a bill takes the charge.
    """

    __tablename__ = "applied_rate"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source_key: Mapped[str] = mapped_column(String(300))
    billing_account_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    bill_id: Mapped[str | None] = mapped_column(String(64))
    product_id: Mapped[str | None] = mapped_column(String(64))
    # recurring, oneTime, usage, discount, credit, adjustment
    rate_type: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    quantity: Mapped[Decimal] = mapped_column(QUANTITY, default=Decimal(1))
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))
    tax_excluded: Mapped[Decimal] = mapped_column(MONEY)
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    tax_amount: Mapped[Decimal] = mapped_column(MONEY)
    tax_included: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    # What the charge is traceable to: price id, usage ids, violation id, list price.
    characteristic: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ux_applied_rate_source_key", "source_key", unique=True),
        Index("ix_applied_rate_account_unbilled", "billing_account_id", "bill_id"),
        Index("ix_applied_rate_bill", "bill_id"),
        # What a product was already charged (a final bill before the regular run).
        Index("ix_applied_rate_product", "product_id"),
    )


class CustomerBillRow(TmfResourceRow, Base):
    """TMF678 customerBill (an invoice or a credit note), ``status`` is its state.

    ``run_key`` makes a bill run bill an account once per period; ``bill_no`` is
    given when the bill is issued (validated), from its series without gaps;
    ``content_hash`` is the SHA-256 of what was sent, which shows it unchanged.
    """

    __tablename__ = "customer_bill"

    billing_account_id: Mapped[str] = mapped_column(String(64), index=True)
    run_key: Mapped[str | None] = mapped_column(String(200))
    bill_no: Mapped[str | None] = mapped_column(String(40))
    # normal, final, onDemand, creditNote
    category: Mapped[str] = mapped_column(String(20), default="normal")
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    bill_date: Mapped[date | None] = mapped_column(Date)
    payment_due_date: Mapped[date | None] = mapped_column(Date, index=True)
    amount_due: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    remaining_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    content_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ux_customer_bill_run_key", "run_key", unique=True),
        Index("ux_customer_bill_bill_no", "bill_no", unique=True),
    )


class BillNumberSeries(Base):
    """The next number of one invoice series (§14 UStG: unique and sequential).

    Taken with the row locked in the transaction that issues the bill, so a rolled
    back issue leaves no gap and two issuers never share a number.
    """

    __tablename__ = "bill_number_series"

    series: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_number: Mapped[int] = mapped_column(Integer, default=1)


class PaymentRow(TmfResourceRow, Base):
    """TMF676 payment: money received (or a returned debit, negative), and how much of it
    no bill has taken yet (kept as the account's credit)."""

    __tablename__ = "payment"

    billing_account_id: Mapped[str | None] = mapped_column(String(64), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    unallocated: Mapped[Decimal] = mapped_column(MONEY)
    payment_date: Mapped[date] = mapped_column(Date)
    # The remittance reference (the bill number, the mandate's end-to-end id).
    reference: Mapped[str | None] = mapped_column(String(200), index=True)
    # The bank's id of the statement entry: an imported statement is booked once.
    bank_entry_id: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ux_payment_bank_entry_id", "bank_entry_id", unique=True),)


class PaymentAllocationRow(Base):
    """How much of one payment settles one bill."""

    __tablename__ = "payment_allocation"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    payment_id: Mapped[str] = mapped_column(String(64), index=True)
    bill_id: Mapped[str] = mapped_column(String(64), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    allocated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DirectDebitBatchRow(Base):
    """3.8.5: the pain.008 file sent to the bank for one collection date, kept as sent."""

    __tablename__ = "direct_debit_batch"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection_date: Mapped[date] = mapped_column(Date)
    message_id: Mapped[str] = mapped_column(String(35))
    debit_count: Mapped[int] = mapped_column(Integer)
    total: Mapped[Decimal] = mapped_column(MONEY)
    xml: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # one file per collection date: collecting the date again gives the file back
    __table_args__ = (Index("ux_direct_debit_batch_date", "collection_date", unique=True),)


class DirectDebitItemRow(Base):
    """One collection of a batch: the bill it collects and its end-to-end id, ``pending``
    until the bank credits it (``booked``, with the payment) or gives it back
    (``returned``)."""

    __tablename__ = "direct_debit_item"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    batch_id: Mapped[str] = mapped_column(String(64), index=True)
    bill_id: Mapped[str] = mapped_column(String(64), index=True)
    billing_account_id: Mapped[str] = mapped_column(String(64))
    end_to_end_id: Mapped[str] = mapped_column(String(35), index=True)
    mandate_reference: Mapped[str] = mapped_column(String(35), index=True)
    sequence: Mapped[str] = mapped_column(String(4))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    payment_id: Mapped[str | None] = mapped_column(String(64))
