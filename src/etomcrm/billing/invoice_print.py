"""3.8.3 Apply rate plans to produce customer bills: the bill a person reads, as a PDF.

German (or English, when the bill's language is ``en``) with the §14 UStG particulars:
the provider's letterhead (register, tax number, VAT id, bank), the buyer's address,
number, dates and service period, the lines, net and tax per rate, gross, what was
prepaid, the amount due and how it is paid (the pre-notified direct debit, or the
transfer with its reference and a GiroCode), the reverse-charge note and a credit
note's corrected invoice. The EN 16931 XML of the same bill is embedded as Factur-X,
which makes the file a PDF/A-3 a machine reads too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import facturx
from fpdf import FPDF
from fpdf.enums import OutputIntentSubType, TableBordersLayout, XPos, YPos
from fpdf.fonts import FontFace
from fpdf.output import PDFICCProfile
from PIL import ImageCms

from etomcrm.billing.einvoice import invoice_xml
from etomcrm.billing.girocode import girocode, girocode_modules
from etomcrm.billing.invoice_data import Invoice, InvoiceLine, InvoiceParty
from etomcrm.billing.invoice_text import (
    Language,
    day,
    document_sign,
    grouped_iban,
    money,
    number,
    payment_text,
    reverse_charge_reason,
)

FONT = "DejaVu"
MARGIN = 18.0
DASH = "\N{EN DASH}"
UNITS = {
    "de": {"MON": "Mon.", "DAY": "Tg.", "E34": "GB", "C62": "Stk.", "HUR": "Std."},
    "en": {"MON": "mo.", "DAY": "d", "E34": "GB", "C62": "pc", "HUR": "h"},
}
TEXT = {
    "de": {
        "invoice": "Rechnung",
        "creditNote": "Gutschrift",
        "number": "Rechnungsnummer",
        "credit_number": "Gutschriftsnummer",
        "issued": "Rechnungsdatum",
        "credit_issued": "Datum",
        "period": "Leistungszeitraum",
        "customer": "Kundennummer",
        "buyer_vat": "Ihre USt-IdNr.",
        "due": "Fällig am",
        "corrects": "Korrektur zur Rechnung {number} vom {date}",
        "pos": "Pos.",
        "item": "Leistung",
        "item_period": "Zeitraum",
        "quantity": "Menge",
        "unit_price": "Einzelpreis",
        "vat": "USt.",
        "net": "Netto EUR",
        "net_rate": "Nettobetrag {rate} %",
        "tax_rate": "Umsatzsteuer {rate} %",
        "net_total": "Summe netto",
        "tax_total": "Umsatzsteuer gesamt",
        "gross": "Gesamtbetrag",
        "prepaid": "Bereits beglichen (Guthaben)",
        "amount_due": "Zahlbetrag",
        "credit_due": "Gutgeschriebener Betrag",
        "girocode": "GiroCode: mit der Banking-App scannen",
        "reverse_charge": (
            "Steuerschuldnerschaft des Leistungsempfängers (§13b UStG): "
            "Die Umsatzsteuer schuldet der Leistungsempfänger."
        ),
        "tax_number": "Steuernummer",
        "vat_id": "USt-IdNr.",
        "bank": "Bank",
        "page": "Seite {page}",
    },
    "en": {
        "invoice": "Invoice",
        "creditNote": "Credit note",
        "number": "Invoice number",
        "credit_number": "Credit note number",
        "issued": "Invoice date",
        "credit_issued": "Date",
        "period": "Service period",
        "customer": "Customer number",
        "buyer_vat": "Your VAT ID",
        "due": "Due date",
        "corrects": "Corrects invoice {number} of {date}",
        "pos": "No.",
        "item": "Service",
        "item_period": "Period",
        "quantity": "Quantity",
        "unit_price": "Unit price",
        "vat": "VAT",
        "net": "Net EUR",
        "net_rate": "Net amount {rate} %",
        "tax_rate": "VAT {rate} %",
        "net_total": "Total net",
        "tax_total": "Total VAT",
        "gross": "Total amount",
        "prepaid": "Already settled (credit balance)",
        "amount_due": "Amount due",
        "credit_due": "Amount credited",
        "girocode": "GiroCode: scan with your banking app",
        "reverse_charge": (
            "Reverse charge: VAT is to be accounted for by the recipient of the service "
            "(Art. 196 Directive 2006/112/EC)."
        ),
        "tax_number": "Tax number",
        "vat_id": "VAT ID",
        "bank": "Bank",
        "page": "Page {page}",
    },
}


FONTS = Path(__file__).parent / "fonts"
REGULAR = FONTS / "DejaVuSans-subset.ttf"
BOLD = FONTS / "DejaVuSans-Bold-subset.ttf"


@lru_cache(maxsize=1)
def _srgb_profile() -> bytes:
    """An sRGB ICC profile for the PDF/A output intent (made by Pillow's LittleCMS)."""
    profile: bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return profile


class _BillPdf(FPDF):
    """The page frame: the provider's particulars in every page's footer."""

    def __init__(self, invoice: Invoice) -> None:
        super().__init__(format="A4")
        self.invoice = invoice

    def header(self) -> None:
        # A continuation page names the bill it belongs to.
        if self.page_no() == 1:
            return
        invoice = self.invoice
        text = TEXT[invoice.language]
        self.set_font(FONT, "", 8)
        self.set_text_color(60)
        self.cell(
            0,
            5,
            f"{text[invoice.kind]} {invoice.number} · {text['customer']} "
            f"{invoice.buyer_reference} · {invoice.seller.name}",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.set_text_color(0)
        self.ln(2)

    def footer(self) -> None:
        invoice = self.invoice
        text = TEXT[invoice.language]
        seller = invoice.seller
        payment = invoice.payment
        self.set_y(-24)
        self.set_draw_color(150)
        self.line(MARGIN, self.get_y(), self.w - MARGIN, self.get_y())
        self.set_font(FONT, "", 7)
        self.set_text_color(60)
        left = [seller.name, seller.street, f"{seller.post_code} {seller.city}"]
        middle = []
        if seller.register:
            middle.append(seller.register)
        if seller.tax_number:
            middle.append(f"{text['tax_number']}: {seller.tax_number}")
        if seller.vat_id:
            middle.append(f"{text['vat_id']}: {seller.vat_id}")
        right = [
            f"{text['bank']}: {payment.creditor_bank or ''}".rstrip(": "),
            f"IBAN {grouped_iban(payment.creditor_iban)}",
            f"BIC {payment.creditor_bic}",
        ]
        width = (self.w - 2 * MARGIN) / 3
        top = self.get_y() + 1.5
        for column, lines in enumerate((left, middle, right)):
            self.set_xy(MARGIN + column * width, top)
            self.multi_cell(width, 3.2, "\n".join(lines), align="L")
        self.set_xy(MARGIN, -9)
        self.cell(0, 3, text["page"].format(page=self.page_no()), align="R")
        self.set_text_color(0)


def _address_lines(party: InvoiceParty, seller_country: str) -> list[str]:
    lines = [party.name, party.street, f"{party.post_code} {party.city}"]
    if party.country != seller_country:
        lines.append(party.country)
    return lines


def _line_cells(line: InvoiceLine, language: Language, sign: Decimal) -> tuple[str, ...]:
    unit = UNITS[language].get(line.unit, line.unit)
    name = line.name if not line.description else f"{line.name}\n{line.description}"
    period = ""
    if line.period_start is not None and line.period_end is not None:
        period = f"{day(line.period_start, language)} {DASH}\n{day(line.period_end, language)}"
    price = "" if line.unit_price is None else money(line.unit_price, language)
    return (
        str(line.number),
        name,
        period,
        f"{number(line.quantity, language)} {unit}",
        price,
        f"{number(line.tax_rate, language)} %",
        money(line.net * sign, language),
    )


def _header(pdf: _BillPdf, invoice: Invoice) -> None:
    text = TEXT[invoice.language]
    lang = invoice.language
    seller = invoice.seller
    pdf.set_font(FONT, "B", 15)
    pdf.cell(0, 7, seller.name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 8.5)
    contact = [f"{seller.street} · {seller.post_code} {seller.city}"]
    if seller.phone:
        contact.append(seller.phone)
    if seller.email:
        contact.append(seller.email)
    pdf.cell(0, 4.5, " · ".join(contact), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    # DIN 5008 window: the sender line, then the buyer's address.
    pdf.set_xy(MARGIN, 45)
    pdf.set_font(FONT, "", 7)
    pdf.cell(85, 4, f"{seller.name} · {seller.street} · {seller.post_code} {seller.city}")
    pdf.set_xy(MARGIN, 51)
    pdf.set_font(FONT, "", 10)
    pdf.multi_cell(85, 5, "\n".join(_address_lines(invoice.buyer, seller.country)))

    credit = invoice.kind == "creditNote"
    facts: list[tuple[str, str]] = [
        (text["credit_number"] if credit else text["number"], invoice.number),
        (text["credit_issued"] if credit else text["issued"], day(invoice.issue_date, lang)),
    ]
    if invoice.period_start is not None and invoice.period_end is not None:
        facts.append(
            (
                text["period"],
                f"{day(invoice.period_start, lang)} {DASH} {day(invoice.period_end, lang)}",
            )
        )
    facts.append((text["customer"], invoice.buyer_reference))
    if invoice.buyer.vat_id:
        facts.append((text["buyer_vat"], invoice.buyer.vat_id))
    if invoice.due_date is not None and not credit:
        facts.append((text["due"], day(invoice.due_date, lang)))
    top = 45.0
    for index, (label, value) in enumerate(facts):
        pdf.set_xy(112, top + index * 5)
        pdf.set_font(FONT, "", 8.5)
        pdf.cell(34, 5, label)
        pdf.set_font(FONT, "B", 8.5)
        pdf.cell(0, 5, value)

    pdf.set_xy(MARGIN, max(85.0, top + len(facts) * 5 + 6))
    pdf.set_font(FONT, "B", 13)
    pdf.cell(0, 8, f"{text[invoice.kind]} {invoice.number}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if invoice.referenced_invoice:
        pdf.set_font(FONT, "", 9)
        referenced = (
            day(invoice.referenced_invoice_date, lang)
            if invoice.referenced_invoice_date is not None
            else "—"
        )
        pdf.cell(
            0,
            5,
            text["corrects"].format(number=invoice.referenced_invoice, date=referenced),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    pdf.ln(2)


def _lines_table(pdf: _BillPdf, invoice: Invoice, sign: Decimal) -> None:
    text = TEXT[invoice.language]
    heading = (
        text["pos"], text["item"], text["item_period"], text["quantity"],
        text["unit_price"], text["vat"], text["net"],
    )  # fmt: skip
    pdf.set_font(FONT, "", 8.5)
    with pdf.table(
        col_widths=(9, 48, 24, 20, 21, 10, 20),
        text_align=("RIGHT", "LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        headings_style=FontFace(emphasis="BOLD"),
        line_height=4.2,
        padding=(1.2, 1),
        v_align="TOP",
    ) as table:
        table.row(heading)
        for line in invoice.lines:
            table.row(_line_cells(line, invoice.language, sign))
    pdf.ln(3)


def _totals(pdf: _BillPdf, invoice: Invoice, sign: Decimal) -> None:
    text = TEXT[invoice.language]
    lang = invoice.language
    rows: list[tuple[str, Decimal, bool]] = []
    for tax in invoice.taxes:
        rate = number(tax.rate, lang)
        rows.append((text["net_rate"].format(rate=rate), tax.basis * sign, False))
        rows.append((text["tax_rate"].format(rate=rate), tax.tax * sign, False))
    rows.append((text["net_total"], invoice.net_total * sign, False))
    rows.append((text["tax_total"], invoice.tax_total * sign, False))
    rows.append((text["gross"], invoice.gross_total * sign, True))
    if invoice.kind == "creditNote":
        rows.append((text["credit_due"], invoice.gross_total * sign, True))
    else:
        if invoice.prepaid:
            rows.append((text["prepaid"], -invoice.prepaid, False))
        rows.append((text["amount_due"], invoice.amount_due, True))
    if pdf.will_page_break(len(rows) * 5 + 4):
        pdf.add_page()
    for label, amount, bold in rows:
        pdf.set_x(pdf.w - MARGIN - 100)
        pdf.set_font(FONT, "B" if bold else "", 9)
        pdf.cell(70, 5, label)
        pdf.cell(
            30, 5, f"{money(amount, lang)} EUR", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
    pdf.ln(4)


def _paragraphs(pdf: _BillPdf, paragraphs: Sequence[str], width: float) -> None:
    pdf.set_font(FONT, "", 9)
    for paragraph in paragraphs:
        pdf.set_x(MARGIN)
        pdf.multi_cell(width, 4.5, paragraph, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1.5)


def _draw_girocode(pdf: _BillPdf, payload: str, x: float, y: float, size: float) -> None:
    """The QR symbol drawn as vector rectangles (one per run of dark modules in a row):
    sharp at any zoom and no image (PDF/A forbids nothing here, a raster would blur)."""
    modules = girocode_modules(payload)
    quiet = 2
    module = size / (len(modules) + 2 * quiet)
    pdf.set_fill_color(0)
    for row_index, row in enumerate(modules):
        top = y + (row_index + quiet) * module
        start: int | None = None
        for col_index, dark in enumerate([*row, False]):
            if dark and start is None:
                start = col_index
            elif not dark and start is not None:
                pdf.rect(
                    x + (start + quiet) * module, top, (col_index - start) * module, module, "F"
                )
                start = None
    pdf.set_font(FONT, "", 6.5)
    pdf.set_xy(x - 5, y + size)
    pdf.cell(size + 10, 3, TEXT[pdf.invoice.language]["girocode"], align="C")


def _payment_block(pdf: _BillPdf, invoice: Invoice) -> None:
    text = TEXT[invoice.language]
    paragraphs: list[str] = []
    if any(tax.category == "AE" for tax in invoice.taxes):
        paragraphs.append(text["reverse_charge"])
        reason = reverse_charge_reason(invoice)
        if reason not in paragraphs[-1]:
            paragraphs.append(reason)
    paragraphs.extend(invoice.notes)
    paragraphs.append(payment_text(invoice))
    payload = girocode(invoice)
    size = 30.0
    if payload is None:
        _paragraphs(pdf, paragraphs, pdf.w - 2 * MARGIN)
        return
    if pdf.will_page_break(size + 8):
        pdf.add_page()
    top = pdf.get_y()
    _paragraphs(pdf, paragraphs, pdf.w - 2 * MARGIN - size - 8)
    end = pdf.get_y()
    _draw_girocode(pdf, payload, pdf.w - MARGIN - size, top, size)
    pdf.set_y(max(end, top + size + 4))


def invoice_pdf_without_xml(invoice: Invoice) -> bytes:
    """The person-readable pages alone (before the XML is embedded)."""
    pdf = _BillPdf(invoice)
    pdf.add_font(FONT, "", fname=REGULAR)
    pdf.add_font(FONT, "B", fname=BOLD)
    pdf.set_margins(MARGIN, 14, MARGIN)
    pdf.set_auto_page_break(True, margin=28)
    pdf.set_lang(invoice.language)
    kind = TEXT[invoice.language][invoice.kind]
    pdf.set_title(f"{kind} {invoice.number}")
    pdf.set_author(invoice.seller.name)
    pdf.set_subject(f"{kind} {invoice.number} {invoice.buyer.name}")
    pdf.set_creator("etomcrm")
    pdf.set_creation_date(datetime.combine(invoice.issue_date, time(), UTC))
    pdf.add_output_intent(
        OutputIntentSubType.PDFA,
        "sRGB",
        "sRGB IEC61966-2.1",
        "http://www.color.org",
        PDFICCProfile(contents=_srgb_profile(), n=3, alternate="DeviceRGB"),
        "sRGB IEC61966-2.1",
    )
    pdf.add_page()
    sign = document_sign(invoice)
    _header(pdf, invoice)
    _lines_table(pdf, invoice, sign)
    _totals(pdf, invoice, sign)
    _payment_block(pdf, invoice)
    return bytes(pdf.output())


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """3.8.3 The bill as a PDF/A-3 Factur-X (EN 16931): the pages a person reads with
    :func:`invoice_xml` embedded as ``factur-x.xml``."""
    xml = invoice_xml(invoice)
    kind = TEXT[invoice.language][invoice.kind]
    pdf: bytes = facturx.generate_from_binary(
        invoice_pdf_without_xml(invoice),
        xml,
        flavor="factur-x",
        level="en16931",
        # invoice_xml validated against the XSD as drafthorse wrote it.
        check_xsd=False,
        pdf_metadata={
            "author": invoice.seller.name,
            "keywords": "Factur-X, ZUGFeRD, " + kind,
            "title": f"{invoice.seller.name}: {kind} {invoice.number}",
            "subject": f"{kind} {invoice.number} {day(invoice.issue_date, invoice.language)}",
        },
        lang="de-DE" if invoice.language == "de" else "en-GB",
    )
    return pdf
