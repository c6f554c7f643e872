"""Hand-built :class:`Invoice` values for the bill document tests and the benchmark."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from etomcrm.billing.invoice_data import (
    Invoice,
    InvoiceLine,
    InvoiceParty,
    PaymentInstructions,
    TaxSubtotal,
)

CENT = Decimal("0.01")
SELLER = InvoiceParty(
    name="etomcrm Telecom Services GmbH",
    street="Leopoldstraße 100",
    post_code="80802",
    city="München",
    country="DE",
    vat_id="DE123456789",
    tax_number="143/123/45678",
    email="rechnung@etomcrm.example",
    phone="+49 89 1234560",
    register="Amtsgericht München HRB 123456",
)
BUYER = InvoiceParty(
    name="Bäckerei Müller GmbH",
    street="Hauptstraße 5",
    post_code="10115",
    city="Berlin",
    country="DE",
    vat_id="DE987654321",
    email="buchhaltung@baeckerei-mueller.example",
)
EU_BUYER = InvoiceParty(
    name="Boulangerie Dupont SARL",
    street="12 rue de la Paix",
    post_code="75002",
    city="Paris",
    country="FR",
    vat_id="FR40303265045",
    email="compta@dupont.example",
)
TRANSFER = PaymentInstructions(
    means="bankTransfer",
    creditor_iban="DE02120300000000202051",
    creditor_bic="BYLADEM1001",
    creditor_bank="Deutsche Kreditbank Berlin",
    reference="RE-2026-000123",
)
DIRECT_DEBIT = PaymentInstructions(
    means="sepaDirectDebit",
    creditor_iban="DE02120300000000202051",
    creditor_bic="BYLADEM1001",
    creditor_bank="Deutsche Kreditbank Berlin",
    creditor_id="DE98ZZZ09999999999",
    mandate_reference="MANDATE-0001",
    debtor_iban="DE89370400440532013000",
    collection_date=date(2026, 12, 15),
)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line(
    number: int,
    name: str,
    quantity: str,
    unit_price: str | None,
    *,
    rate_type: str = "recurring",
    unit: str = "MON",
    net: str | None = None,
    tax_rate: str = "19",
    category: str = "S",
) -> InvoiceLine:
    price = None if unit_price is None else Decimal(unit_price)
    amount = (
        Decimal(net) if net is not None else money(Decimal(quantity) * Decimal(unit_price or 0))
    )
    return InvoiceLine(
        number=number,
        name=name,
        rate_type=rate_type,
        quantity=Decimal(quantity),
        unit=unit,
        unit_price=price,
        net=amount,
        tax_rate=Decimal(tax_rate),
        tax_category="AE" if category == "AE" else "S",
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        product_id=f"prod-{number}",
    )


def build(
    lines: tuple[InvoiceLine, ...],
    *,
    number: str = "RE-2026-000123",
    payment: PaymentInstructions = TRANSFER,
    buyer: InvoiceParty = BUYER,
    prepaid: str = "0",
    language: str = "de",
) -> Invoice:
    """An invoice whose totals are computed from its lines as billing computes them:
    net per rate, tax per rate rounded half-up, gross, prepaid, amount due."""
    rates: dict[tuple[str, Decimal], Decimal] = {}
    for item in lines:
        key = (item.tax_category, item.tax_rate)
        rates[key] = rates.get(key, Decimal(0)) + item.net
    taxes = tuple(
        TaxSubtotal(
            category="AE" if category == "AE" else "S",
            rate=rate,
            basis=basis,
            tax=money(basis * rate / 100),
        )
        for (category, rate), basis in sorted(rates.items())
    )
    net = sum((item.net for item in lines), Decimal(0))
    tax = sum((t.tax for t in taxes), Decimal(0))
    gross = net + tax
    paid = Decimal(prepaid)
    if payment.means == "bankTransfer":
        payment = replace(payment, reference=number)
    return Invoice(
        kind="invoice",
        number=number,
        issue_date=date(2026, 12, 1),
        due_date=date(2026, 12, 15),
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        currency="EUR",
        seller=SELLER,
        buyer=buyer,
        lines=lines,
        taxes=taxes,
        net_total=net,
        tax_total=tax,
        gross_total=gross,
        prepaid=paid,
        amount_due=max(gross - paid, Decimal(0)),
        payment=payment,
        bill_id="bill-1",
        billing_account_id="acc-1",
        customer_id="cust-42",
        buyer_reference="K-000042",
        language="en" if language == "en" else "de",
    )


STANDARD_LINES = (
    line(1, "Business Fiber 1000", "1", "499.00"),
    line(2, "Managed Router", "2", "25.50"),
    line(3, "Traffic above included volume", "123.456", "0.09", rate_type="usage", unit="E34",
         net="11.11"),
    line(4, "Contract discount 15 %", "1", None, rate_type="discount", unit="C62", net="-82.43"),
    line(5, "SLA credit October", "1", None, rate_type="credit", unit="C62", net="-20.00"),
)  # fmt: skip


def standard() -> Invoice:
    """19 % invoice with a discount and a credit line, paid by transfer, 50 € prepaid."""
    return build(STANDARD_LINES, prepaid="50.00")


def transfer() -> Invoice:
    return build((line(1, "Business Internet 100", "1", "59.90"),), number="RE-2026-000200")


def direct_debit() -> Invoice:
    return build(
        (line(1, "Business Internet 100", "1", "59.90"), line(2, "SIP trunk", "3", "9.95")),
        number="RE-2026-000201",
        payment=DIRECT_DEBIT,
    )


def reverse_charge() -> Invoice:
    lines = (
        line(1, "Business Fiber 1000", "1", "499.00", tax_rate="0", category="AE"),
        line(2, "Contract discount", "1", None, rate_type="discount", unit="C62", net="-49.90",
             tax_rate="0", category="AE"),
    )  # fmt: skip
    invoice = build(lines, number="RE-2026-000202", buyer=EU_BUYER, language="en")
    return replace(
        invoice,
        taxes=tuple(replace(t, exemption_reason="Reverse charge") for t in invoice.taxes),
    )


def credit_note() -> Invoice:
    base = build(
        (line(1, "Correction Business Fiber 1000 November", "1", None, unit="C62",
              rate_type="adjustment", net="100.00"),),
        number="GS-2026-000007",
    )  # fmt: skip
    return replace(
        base,
        kind="creditNote",
        referenced_invoice="RE-2026-000123",
        referenced_invoice_date=date(2026, 12, 1),
    )
