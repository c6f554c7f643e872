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

from decimal import ROUND_HALF_UP, Decimal

from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document
from drafthorse.models.note import IncludedNote
from drafthorse.models.party import (
    TaxRegistration,
    TradeParty,
)
from drafthorse.models.payment import PaymentMeans, PaymentTerms
from drafthorse.models.tradelines import LineItem

from etomcrm.billing.invoice_data import Invoice, InvoiceLine, InvoiceParty
from etomcrm.billing.invoice_text import document_sign, payment_text, reverse_charge_reason

# The Factur-X EN 16931 ("COMFORT") guideline: BT-24 specification identifier.
EN16931_GUIDELINE = "urn:cen.eu:en16931:2017"
INVOICE_TYPE = "380"  # UNTDID 1001 commercial invoice
CREDIT_NOTE_TYPE = "381"  # UNTDID 1001 credit note
# UNTDID 4461 payment means: SEPA credit transfer, SEPA direct debit, and clearing
# between partners (a credit note's amount is set against the account's balance).
SEPA_CREDIT_TRANSFER = "58"
SEPA_DIRECT_DEBIT = "59"
CLEARING_BETWEEN_PARTNERS = "97"
# VATEX code for reverse charge (CEF VATEX list), beside the reason text (BR-AE-10).
REVERSE_CHARGE_CODE = "VATEX-EU-AE"
CENT = Decimal("0.01")


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


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
    """(billed quantity, net price, price base quantity) with quantity * price / base
    equal to the line's net and the price never negative (BR-27): a credit or discount is
    a negative quantity. A line without a unit price is priced as a whole (price = |net|
    per the line's quantity as base quantity)."""
    negative = line.net < 0
    quantity = abs(line.quantity)
    if quantity == 0:
        quantity = Decimal(1)
    signed_quantity = -quantity if negative else quantity
    if line.unit_price is not None and line.quantity != 0:
        price = abs(line.unit_price)
        if _money(quantity * price) == abs(line.net):
            return signed_quantity, price, None
    return signed_quantity, abs(line.net), quantity


def _line_item(line: InvoiceLine, sign: Decimal) -> LineItem:
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


def _payment(invoice: Invoice, document: Document) -> None:
    settlement = document.trade.settlement
    payment = invoice.payment
    german = invoice.language == "de"
    means = PaymentMeans()
    terms = PaymentTerms()
    if invoice.kind == "creditNote":
        means.type_code = CLEARING_BETWEEN_PARTNERS
        means.information.add("Verrechnung" if german else "Clearing")
    elif payment.means == "sepaDirectDebit":
        means.type_code = SEPA_DIRECT_DEBIT
        means.information.add("SEPA-Lastschrift" if german else "SEPA direct debit")
        if payment.debtor_iban:
            means.payer_account.iban = payment.debtor_iban  # BT-91
        if payment.creditor_id:
            settlement.creditor_reference_id = payment.creditor_id  # BT-90
        if payment.mandate_reference:
            terms.debit_mandate_id = payment.mandate_reference  # BT-89
    else:
        means.type_code = SEPA_CREDIT_TRANSFER
        means.information.add("SEPA-Überweisung" if german else "SEPA credit transfer")
        means.payee_account.iban = payment.creditor_iban  # BT-84
        means.payee_institution.bic = payment.creditor_bic  # BT-86
    # BT-20: the sentence the PDF prints (the pre-notification, or the transfer).
    terms.description = payment_text(invoice)
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
        trade.items.add(_line_item(line, sign))

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
    _payment(invoice, doc)
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
            settlement.invoice_referenced_document.issue_date_time = invoice.referenced_invoice_date
    return doc


def invoice_xml(invoice: Invoice) -> bytes:
    """3.8.3 The bill as Factur-X / ZUGFeRD EN 16931 CII XML (UTF-8), with the §14 UStG
    particulars, the VAT breakdown per rate, the payment instructions (SEPA transfer or
    pre-notified direct debit) and, for a credit note, the corrected invoice (BT-25).

    drafthorse checks the result against the Factur-X EN 16931 XSD as it writes it."""
    xml: bytes = invoice_document(invoice).serialize(schema="FACTUR-X_EN16931")
    return xml
