"""What Billing & Collections (3.8) states for the other areas and the flows."""

from __future__ import annotations

from dataclasses import dataclass

from etomcrm.core.bus import DomainEvent


@dataclass(frozen=True)
class BillIssued(DomainEvent):
    """3.8.3: a bill got its number and is final (``amount_due`` a decimal string);
    it is to be delivered, and collected by direct debit when ``means`` says so."""

    bill_id: str
    billing_account_id: str
    customer_id: str
    bill_no: str
    amount_due: str
    currency: str
    payment_due_date: str
    means: str  # sepaDirectDebit or bankTransfer


@dataclass(frozen=True)
class BillSent(DomainEvent):
    """3.8.3: the bill went to the customer (its message names the channel)."""

    bill_id: str
    customer_id: str
    message_id: str


@dataclass(frozen=True)
class PaymentReceived(DomainEvent):
    """3.8.5: money came in and settled (part of) these bills; dunning of a settled
    bill ends, a suspended customer whose arrears are paid is resumed."""

    payment_id: str
    billing_account_id: str
    customer_id: str
    bill_ids: tuple[str, ...]


@dataclass(frozen=True)
class PaymentReturned(DomainEvent):
    """3.8.5: a direct debit came back (reason code, bank fee charged on): the bills
    it paid are open again and dunning starts."""

    payment_id: str
    billing_account_id: str
    customer_id: str
    bill_ids: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class BillOverdue(DomainEvent):
    """3.8.5: a bill's payment due date passed with an amount open: dunning starts."""

    bill_id: str
    billing_account_id: str
    customer_id: str


@dataclass(frozen=True)
class BillDisputed(DomainEvent):
    """3.8.1: a customer disputes (part of) a bill; dunning of the disputed amount
    pauses until the enquiry is resolved."""

    enquiry_id: str
    bill_id: str
    customer_id: str
    disputed_amount: str


@dataclass(frozen=True)
class BillingEnquiryResolved(DomainEvent):
    """3.8.1: a dispute ended (``outcome`` rejected or adjusted, with the credit note's
    id when adjusted); dunning of what is still open goes on."""

    enquiry_id: str
    bill_id: str
    customer_id: str
    outcome: str
    credit_note_id: str | None


@dataclass(frozen=True)
class UsageIngested(DomainEvent):
    """3.8.2: usage records were stored (new or corrected), for these customers on these
    days (``YYYY-MM-DD``, UTC)."""

    customer_days: tuple[tuple[str, str], ...]
