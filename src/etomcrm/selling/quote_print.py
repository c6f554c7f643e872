"""3.4.3 Negotiate the sale: the quote as a PDF the customer can keep and sign off on.

One page per few dozen lines: who offers to whom, the version and how long it is valid,
per site the offerings with their SLA level, the date the materials are ready and the
prices (one-time and monthly, net of VAT, after the discount), then the totals. The
internal cost estimate is never printed. German or English, as the reader chose.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

from babel.numbers import format_decimal
from fpdf import FPDF
from fpdf.enums import TableBordersLayout, XPos, YPos
from fpdf.fonts import FontFace
from sqlalchemy.orm import Session

from etomcrm.config import get_settings
from etomcrm.core import resources
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.customer_interface.service import customer_of
from etomcrm.security.service import Principal
from etomcrm.selling.quotes import QUOTE_KIND, quote_totals

FONT = "DejaVu"
# The bill's fonts (DejaVu Sans cut to Latin, see billing/fonts/README.md), read as
# files of the installed package: selling may not import billing, and one copy is enough.
FONTS = Path(str(files("etomcrm"))) / "billing" / "fonts"
MARGIN = 16.0
LANGUAGES = ("en", "de")
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "quote": "Quote",
        "version": "version",
        "for": "For",
        "date": "Date",
        "valid": "Valid until",
        "state": "State",
        "term": "Contract term",
        "months": "months",
        "discount": "Discount",
        "awaiting": "awaiting approval",
        "site": "Site",
        "item": "Offering",
        "quantity": "Qty",
        "sla": "SLA level",
        "ready": "Material ready by",
        "one_time": "One-time EUR",
        "monthly": "Monthly EUR",
        "total_one_time": "Total one-time charges",
        "total_monthly": "Total monthly charges",
        "net": "All prices in EUR, net of VAT.",
        "replenish": "Materials not in stock are ordered from the vendor; the dates above "
        "include that lead time. Network lead times are in the feasibility answer.",
        "none": "none",
    },
    "de": {
        "quote": "Angebot",
        "version": "Version",
        "for": "Für",
        "date": "Datum",
        "valid": "Gültig bis",
        "state": "Status",
        "term": "Vertragslaufzeit",
        "months": "Monate",
        "discount": "Rabatt",
        "awaiting": "Freigabe ausstehend",
        "site": "Standort",
        "item": "Leistung",
        "quantity": "Menge",
        "sla": "SLA-Stufe",
        "ready": "Material bereit am",
        "one_time": "Einmalig EUR",
        "monthly": "Monatlich EUR",
        "total_one_time": "Summe einmalige Entgelte",
        "total_monthly": "Summe monatliche Entgelte",
        "net": "Alle Preise in EUR, zuzüglich Umsatzsteuer.",
        "replenish": "Nicht vorrätiges Material wird beim Hersteller bestellt; die Daten "
        "oben enthalten diese Lieferzeit. Netz-Vorlaufzeiten nennt die Machbarkeitsprüfung.",
        "none": "keine",
    },
}


def _money(value: Decimal, language: str) -> str:
    return str(format_decimal(value, format="#,##0.00", locale=language))


def _characteristic(item: JsonDict, name: str) -> object:
    for ch in (item.get("product") or {}).get("productCharacteristic", []) or []:
        if isinstance(ch, dict) and ch.get("name") == name:
            return ch.get("value")
    return None


def _amount(item: JsonDict, price_type: str) -> Decimal | None:
    found = [
        Decimal(str(p["price"]["dutyFreeAmount"]["value"]))
        for p in item.get("quoteItemPrice", []) or []
        if isinstance(p, dict) and p.get("priceType") == price_type
    ]
    return sum(found, Decimal(0)) if found else None


def quote_pdf(quote: JsonDict, customer_name: str, language: str = "en") -> bytes:
    """The quote as a PDF in ``language`` (en or de)."""
    text = TEXT[language if language in TEXT else "en"]
    settings = get_settings()
    pdf = FPDF(format="A4")
    pdf.add_font(FONT, "", fname=FONTS / "DejaVuSans-subset.ttf")
    pdf.add_font(FONT, "B", fname=FONTS / "DejaVuSans-Bold-subset.ttf")
    pdf.set_margins(MARGIN, 14, MARGIN)
    pdf.set_auto_page_break(True, margin=18)
    title = f"{text['quote']} {quote['id']} {text['version']} {quote.get('version')}"
    pdf.set_title(title)
    pdf.set_author(settings.provider_name)
    pdf.set_creator("etomcrm")
    pdf.set_creation_date(datetime.now(UTC))
    pdf.add_page()
    pdf.set_font(FONT, "B", 14)
    pdf.cell(0, 7, settings.provider_name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 8.5)
    pdf.cell(
        0,
        5,
        f"{settings.provider_street} · {settings.provider_post_code} {settings.provider_city}",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(6)
    pdf.set_font(FONT, "B", 13)
    pdf.cell(0, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 9.5)
    valid = str((quote.get("validFor") or {}).get("endDateTime") or "")[:10]
    discount = Decimal(str(quote.get("discountPercent") or 0))
    facts = [
        (text["for"], customer_name),
        (text["date"], str(quote.get("quoteDate") or "")[:10]),
        (text["valid"], valid or "\N{EN DASH}"),
        (text["state"], str(quote.get("state") or "")),
        (text["term"], f"{quote.get('contractDurationMonths')} {text['months']}"),
    ]
    if discount:
        awaiting = any(
            isinstance(a, dict) and a.get("state") != "approved"
            for a in quote.get("authorization") or []
        )
        facts.append(
            (text["discount"], f"{discount} %" + (f" ({text['awaiting']})" if awaiting else ""))
        )
    for label, value in facts:
        pdf.set_font(FONT, "B", 9.5)
        pdf.cell(42, 5.5, label)
        pdf.set_font(FONT, "", 9.5)
        pdf.cell(0, 5.5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_font(FONT, "", 8)
    heading = (
        text["site"], text["item"], text["quantity"], text["sla"], text["ready"],
        text["one_time"], text["monthly"],
    )  # fmt: skip
    with pdf.table(
        col_widths=(38, 40, 9, 20, 22, 22, 22),
        text_align=("LEFT", "LEFT", "RIGHT", "LEFT", "LEFT", "RIGHT", "RIGHT"),
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        headings_style=FontFace(emphasis="BOLD"),
        line_height=4,
        padding=(1, 1),
        v_align="TOP",
    ) as table:
        table.row(heading)
        for item in quote.get("quoteItem", []) or []:
            if not isinstance(item, dict):
                continue
            place = (item.get("product") or {}).get("place") or [{}]
            one_time, monthly = _amount(item, "oneTime"), _amount(item, "recurring")
            sla = str(_characteristic(item, "slaLevel") or "")
            table.row(
                (
                    str(place[0].get("name") or place[0].get("id") or ""),
                    str((item.get("productOffering") or {}).get("name") or ""),
                    str(item.get("quantity", 1)),
                    text["none"] if sla == "none" else sla,
                    str(_characteristic(item, "materialReadyBy") or ""),
                    _money(one_time, language) if one_time is not None else "",
                    _money(monthly, language) if monthly is not None else "",
                )
            )
    pdf.ln(3)
    totals = quote_totals(quote)
    for label, key in (("total_one_time", "oneTime"), ("total_monthly", "recurring")):
        pdf.set_x(pdf.w - MARGIN - 100)
        pdf.set_font(FONT, "B", 9.5)
        pdf.cell(70, 5.5, text[label])
        pdf.cell(
            30,
            5.5,
            f"{_money(totals.get(key, Decimal(0)), language)} EUR",
            align="R",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    pdf.ln(4)
    pdf.set_font(FONT, "", 8.5)
    pdf.multi_cell(0, 4.5, f"{text['net']} {text['replenish']}")
    return bytes(pdf.output())


def quote_document(
    session: Session, principal: Principal, quote_id: str, language: str = "en"
) -> tuple[bytes, str]:
    """3.4.3 Negotiate the sale (eTOM 1.1.1.4.3): the quote (any version) as a PDF and
    its file name, read with the caller's rights (a customer reads only its own)."""
    quote, _ = resources.get(session, QUOTE_KIND, principal, quote_id)
    customer_id = customer_of(quote)
    row = session.get(CustomerRow, customer_id) if customer_id else None
    name = str((row.body or {}).get("name") or row.id) if row is not None else ""
    return quote_pdf(quote, name, language), f"quote-{quote['id']}-v{quote.get('version')}.pdf"
