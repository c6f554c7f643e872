"""3.8.3 Apply rate plans to produce customer bills: the bill as a structured e-invoice.

UN/CEFACT Cross Industry Invoice (CII D16B) in the Factur-X 1.0 / ZUGFeRD 2 EN 16931
profile, written with drafthorse from the :class:`Invoice` value. The same syntax is
what XRechnung reads (its CII binding), so the XML carries the particulars XRechnung
requires beyond EN 16931 too: the buyer reference (BT-10), the seller's contact
(BT-41..43) and both parties' electronic addresses (BT-34, BT-49).

A credit note (type 381) states its amounts positive: EN 16931 reverses the sign through
the document type, so a credit note handed in with negative totals is written negated.
"""

from __future__ import annotations

from decimal import Decimal

from drafthorse.models.accounting import ApplicableTradeTax  # type: ignore[import-untyped]
from drafthorse.models.document import Document  # type: ignore[import-untyped]
from drafthorse.models.note import IncludedNote  # type: ignore[import-untyped]
from drafthorse.models.party import (  # type: ignore[import-untyped]
    TaxRegistration,
    TradeParty,
)
from drafthorse.models.payment import PaymentMeans, PaymentTerms  # type: ignore[import-untyped]
from drafthorse.models.tradelines import LineItem  # type: ignore[import-untyped]

from etomcrm.billing.invoice_data import Invoice, InvoiceLine, InvoiceParty

# The Factur-X EN 16931 ("COMFORT") guideline: BT-24 specification identifier.
EN16931_GUIDELINE = "urn:cen.eu:en16931:2017"
INVOICE_TYPE = "380"  # UNTDID 1001 commercial invoice
CREDIT_NOTE_TYPE = "381"  # UNTDID 1001 credit note
# UNTDID 4461 payment means: SEPA credit transfer, SEPA direct debit, and clearing
# between partners (a credit note's amount is set against the account's balance).
SEPA_CREDIT_TRANSFER = "58"
SEPA_DIRECT_DEBIT = "59"
CLEARING_BETWEEN_PARTNERS = "97"
REVERSE_CHARGE_REASON = {
    "de": "Steuerschuldnerschaft des Leistungsempfängers (§13b UStG)",
    "en": "Reverse charge",
}
# VATEX code for reverse charge (CEF VATEX list), beside the reason text (BR-AE-10).
REVERSE_CHARGE_CODE = "VATEX-EU-AE"
CENT = Decimal("0.01")


def reverse_charge_reason(invoice: Invoice) -> str:
    """The exemption reason a reverse-charge bill states, in the bill's language."""
    return REVERSE_CHARGE_REASON[invoice.language]


def document_sign(invoice: Invoice) -> Decimal:
    """+1, or -1 for a credit note whose totals were handed in negative (see module)."""
    if invoice.kind == "creditNote" and invoice.gross_total < 0:
        return Decimal(-1)
    return Decimal(1)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def _party(target: TradeParty, party: InvoiceParty, *, electronic: bool) -> None:
    target.name = party.name
    target.address.line_one = party.street
    target.address.postcode = party.post_code
    target.address.city_name = party.city
    target.address.country_id = party.country
    if electronic and party.email:
        # BT-34 / BT-49: the electronic address, scheme EM (e-mail) of the EAS list.
        target.electronic_address.uri_ID = ("EM", party.email)
    if party.tax_number:
        target.tax_registrations.add(TaxRegistration(id=("FC", party.tax_number)))
    if party.vat_id:
        target.tax_registrations.add(TaxRegistration(id=("VA", party.vat_id)))


def _line_price(line: InvoiceLine) -> tuple[Decimal, Decimal, Decimal | None]:
    """(billed quantity, net price, price base quantity) with quantity × price / base
    equal to the line's net and the price never negative (BR-27): a credit or discount is
    a negative quantity. A line without a unit price is priced as a whole (price = |net|
    per the line's quantity as base quantity)."""
    negative = line.net < 0
    quantity = abs(line.quantity)
    if quantity == 0:
        quantity = Decimal(1)
    signed_quantity = -quantity if negative else quantity
    if line.unit_price is not None and line.quantity != 0 and line.unit_price * line.quantity:
        price = abs(line.unit_price)
        if _money(quantity * price) == abs(line.net):
            return signed_quantity, price, None
    return signed_quantity, abs(line.net), quantity


def _line_item(invoice: Invoice, line: InvoiceLine, sign: Decimal) -> LineItem:
    item = LineItem()
    item.document.line_id = str(line.number)
    item.product.name = line.name
    if line.description:
        item.product.description = line.description
    if line.product_id:
        item.product.seller_assigned_id = line.product_id
    quantity, price, base = _line_price(line)
    if sign < 0:
        # A negated credit note: its credit lines become positive, its charges negative.
        quantity = -quantity
    item.agreement.net.amount = price
    if base is not None:
        item.agreement.net.basis_quantity = (base, line.unit)
    item.delivery.billed_quantity = (quantity, line.unit)
    item.settlement.trade_tax.type_code = "VAT"
    item.settlement.trade_tax.category_code = line.tax_category
    item.settlement.trade_tax.rate_applicable_percent = line.tax_rate
    if line.period_start is not None and line.period_end is not None:
        item.settlement.period.start = line.period_start
        item.settlement.period.end = line.period_end
    item.settlement.monetary_summation.total_amount = _money(line.net * sign)
    return item


def _contact_name(invoice: Invoice) -> str:
    return "Rechnungsservice" if invoice.language == "de" else "Billing service"


def _payment(invoice: Invoice, document: Document, sign: Decimal) -> None:
    settlement = document.trade.settlement
    payment = invoice.payment
    means = PaymentMeans()
    terms = PaymentTerms()
    if invoice.kind == "creditNote":
        means.type_code = CLEARING_BETWEEN_PARTNERS
        means.information.add(
            "Verrechnung mit dem Kundenkonto"
            if invoice.language == "de"
            else "Set against the customer account"
        )
        terms.description = means.information.children[0]
    elif payment.means == "sepaDirectDebit":
        means.type_code = SEPA_DIRECT_DEBIT
        means.information.add("SEPA-Lastschrift" if invoice.language == "de" else "SEPA direct debit")
        if payment.debtor_iban:
            means.payer_account.iban = payment.debtor_iban  # BT-91
        if payment.creditor_id:
            settlement.creditor_reference_id = payment.creditor_id  # BT-90
        if payment.mandate_reference:
            terms.debit_mandate_id = payment.mandate_reference  # BT-89
        when = payment.collection_date or invoice.due_date
        terms.description = (
            f"Einzug per SEPA-Lastschrift am {when:%d.%m.%Y}"
            if invoice.language == "de" and when
            else f"SEPA direct debit on {when:%Y-%m-%d}"
            if when
            else "SEPA-Lastschrift"
            if invoice.language == "de"
            else "SEPA direct debit"
        )
    else:
        means.type_code = SEPA_CREDIT_TRANSFER
        means.information.add("SEPA-Überweisung" if invoice.language == "de" else "SEPA credit transfer")
        means.payee_account.iban = payment.creditor_iban  # BT-84
        means.payee_institution.bic = payment.creditor_bic  # BT-86
        due = invoice.due_date
        terms.description = (
            f"Zahlbar ohne Abzug bis {due:%d.%m.%Y}"
            if invoice.language == "de" and due
            else f"Payable without deduction by {due:%Y-%m-%d}"
            if due
            else "Zahlbar sofort ohne Abzug"
            if invoice.language == "de"
            else "Payable immediately without deduction"
        )
    settlement.payment_reference = payment.reference or invoice.number  # BT-83
    settlement.payment_means.add(means)
    if invoice.due_date is not None:
        terms.due = invoice.due_date  # BT-9
    settlement.terms.add(terms)


def _seller_note(invoice: Invoice) -> str:
    """The seller's legal particulars as the German ZUGFeRD "REG" note."""
    seller = invoice.seller
    parts = [seller.name, f"{seller.street}, {seller.post_code} {seller.city}"]
    if seller.register:
        parts.append(seller.register)
    if seller.tax_number:
        parts.append(f"Steuernummer {seller.tax_number}")
    if seller.vat_id:
        parts.append(f"USt-IdNr. {seller.vat_id}")
    return "\n".join(parts)


def invoice_document(invoice: Invoice) -> Document:
    """The drafthorse model of the bill (see :func:`invoice_xml`)."""
    sign = document_sign(invoice)
    doc = Document()
    doc.context.guideline_parameter.id = EN16931_GUIDELINE
    doc.header.id = invoice.number
    doc.header.type_code = CREDIT_NOTE_TYPE if invoice.kind == "creditNote" else INVOICE_TYPE
    doc.header.issue_date_time = invoice.issue_date
    for text in invoice.notes:
        doc.header.notes.add(IncludedNote(content=text))
    if any(tax.category == "AE" for tax in invoice.taxes):
        doc.header.notes.add(IncludedNote(content=reverse_charge_reason(invoice)))
    doc.header.notes.add(IncludedNote(content=_seller_note(invoice), subject_code="REG"))

    trade = doc.trade
    for line in invoice.lines:
        trade.items.add(_line_item(invoice, line, sign))

    agreement = trade.agreement
    agreement.buyer_reference = invoice.buyer_reference  # BT-10
    seller = invoice.seller
    _party(agreement.seller, seller, electronic=True)
    if seller.register:
        agreement.seller.legal_organization.id = seller.register  # BT-30
    # BT-41..43: XRechnung wants a contact point with phone and e-mail.
    if seller.email or seller.phone:
        agreement.seller.contact.person_name = _contact_name(invoice)
        if seller.phone:
            agreement.seller.contact.telephone.number = seller.phone
        if seller.email:
            agreement.seller.contact.email.address = seller.email
    agreement.buyer.id = invoice.customer_id  # BT-46
    _party(agreement.buyer, invoice.buyer, electronic=True)

    settlement = trade.settlement
    settlement.currency_code = invoice.currency
    _payment(invoice, doc, sign)
    for tax in invoice.taxes:
        applicable = ApplicableTradeTax()
        applicable.calculated_amount = _money(tax.tax * sign)
        applicable.type_code = "VAT"
        if tax.category == "AE":
            applicable.exemption_reason = tax.exemption_reason or reverse_charge_reason(invoice)
            applicable.exemption_reason_code = REVERSE_CHARGE_CODE
        elif tax.exemption_reason:
            applicable.exemption_reason = tax.exemption_reason
        applicable.basis_amount = _money(tax.basis * sign)
        applicable.category_code = tax.category
        applicable.rate_applicable_percent = tax.rate
        settlement.trade_tax.add(applicable)
    if invoice.period_start is not None and invoice.period_end is not None:
        settlement.period.start = invoice.period_start  # BG-14
        settlement.period.end = invoice.period_end
    totals = settlement.monetary_summation
    totals.line_total = _money(sum((line.net for line in invoice.lines), Decimal(0)) * sign)
    totals.charge_total = Decimal("0.00")
    totals.allowance_total = Decimal("0.00")
    totals.tax_basis_total = _money(invoice.net_total * sign)
    totals.tax_total = (_money(invoice.tax_total * sign), invoice.currency)
    totals.grand_total = _money(invoice.gross_total * sign)
    totals.prepaid_total = _money(invoice.prepaid * sign)  # BT-113
    totals.due_amount = _money(invoice.amount_due * sign)  # BT-115
    if invoice.referenced_invoice:
        settlement.invoice_referenced_document.issuer_assigned_id = invoice.referenced_invoice
        if invoice.referenced_invoice_date is not None:
            settlement.invoice_referenced_document.issue_date_time = (
                invoice.referenced_invoice_date
            )
    return doc


def invoice_xml(invoice: Invoice) -> bytes:
    """3.8.3 The bill as Factur-X / ZUGFeRD EN 16931 CII XML (UTF-8), with the §14 UStG
    particulars, the VAT breakdown per rate, the payment instructions (SEPA transfer or
    pre-notified direct debit) and, for a credit note, the corrected invoice (BT-25).

    drafthorse checks the result against the Factur-X EN 16931 XSD as it writes it."""
    xml: bytes = invoice_document(invoice).serialize(schema="FACTUR-X_EN16931")
    return xml
