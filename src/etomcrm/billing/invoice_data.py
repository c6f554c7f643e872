"""What an issued bill says (3.8.3), the one shape every rendering reads.

A bill (TMF678 ``customerBill``) is issued from its rated lines into an
:class:`Invoice`; the PDF a person reads, the Factur-X / XRechnung XML embedded in
it and the API's totals are all written from this one value, so they cannot differ.
Amounts are ``Decimal`` in cents (credits are negative lines); rates in percent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

InvoiceKind = Literal["invoice", "creditNote"]
# EN 16931 VAT category codes: S standard rate, AE reverse charge (§13b UStG).
TaxCategory = Literal["S", "AE"]
PaymentMeans = Literal["sepaDirectDebit", "bankTransfer"]


@dataclass(frozen=True)
class InvoiceParty:
    """Seller or buyer with the §14 UStG particulars (name, full address, VAT id)."""

    name: str
    street: str
    post_code: str
    city: str
    country: str  # ISO 3166-1 alpha-2
    vat_id: str | None = None
    tax_number: str | None = None
    email: str | None = None
    phone: str | None = None
    register: str | None = None  # e.g. "Amtsgericht München HRB 123456"


@dataclass(frozen=True)
class InvoiceLine:
    """One rated charge, discount or credit as the bill shows it."""

    number: int
    name: str
    rate_type: str  # recurring, oneTime, usage, discount, credit, adjustment
    quantity: Decimal
    unit: str  # UN/ECE rec. 20: C62 piece, MON month, DAY day, E34 gigabyte
    unit_price: Decimal | None
    net: Decimal
    tax_rate: Decimal
    tax_category: TaxCategory
    period_start: date | None = None
    period_end: date | None = None
    description: str | None = None
    product_id: str | None = None


@dataclass(frozen=True)
class TaxSubtotal:
    """The net and tax of one VAT rate (§14 (4) 8 UStG: net per rate, tax per rate)."""

    category: TaxCategory
    rate: Decimal
    basis: Decimal
    tax: Decimal
    exemption_reason: str | None = None


@dataclass(frozen=True)
class PaymentInstructions:
    """How the bill is paid: pre-notified direct debit, or a transfer to the seller."""

    means: PaymentMeans
    creditor_iban: str
    creditor_bic: str
    creditor_bank: str | None = None
    # Direct debit: the mandate, the debtor's account (shown masked) and the date.
    creditor_id: str | None = None
    mandate_reference: str | None = None
    debtor_iban: str | None = None
    collection_date: date | None = None
    # The remittance text a transfer must carry (the bill number).
    reference: str | None = None


@dataclass(frozen=True)
class Invoice:
    """An issued bill: invoice or credit note, its lines and its totals.

    ``net_total`` + ``tax_total`` = ``gross_total``; ``prepaid`` is credit taken from
    the account's balance (an earlier overpayment or carried credit), so
    ``amount_due`` = ``gross_total`` - ``prepaid`` and never below zero.
    """

    kind: InvoiceKind
    number: str
    issue_date: date
    due_date: date | None
    period_start: date | None
    period_end: date | None
    currency: str
    seller: InvoiceParty
    buyer: InvoiceParty
    lines: tuple[InvoiceLine, ...]
    taxes: tuple[TaxSubtotal, ...]
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal
    prepaid: Decimal
    amount_due: Decimal
    payment: PaymentInstructions
    bill_id: str
    billing_account_id: str
    customer_id: str
    buyer_reference: str  # BT-10: the customer's reference (its customer number)
    referenced_invoice: str | None = None  # a credit note's corrected invoice number
    referenced_invoice_date: date | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    language: Literal["de", "en"] = "de"
