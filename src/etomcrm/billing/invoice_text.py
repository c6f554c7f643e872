"""3.8.3 The words and numbers a bill prints, shared by its PDF and its XML.

Amounts, quantities and dates as a German or English reader expects them, and the one
sentence saying how the bill is paid: the direct-debit pre-notification or the transfer
instructions. The XML's payment terms (BT-20) carry the same sentence the PDF prints.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from etomcrm.billing.invoice_data import Invoice

Language = Literal["de", "en"]
CENT = Decimal("0.01")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
REVERSE_CHARGE_REASON = {
    "de": "Steuerschuldnerschaft des Leistungsempfängers (§13b UStG)",
    "en": "Reverse charge",
}
PAYMENT_TEXT = {
    "de": {
        "debit": (
            "Der Betrag von {amount} EUR wird am {date} mit Mandatsreferenz {mandate} "
            "von Ihrem Konto IBAN {iban} eingezogen (Gläubiger-ID {creditor}). "
            "Bitte sorgen Sie für ausreichende Deckung."
        ),
        "transfer": (
            "Bitte überweisen Sie {amount} EUR bis zum {date} auf unser Konto "
            "IBAN {iban}, BIC {bic}{bank} mit dem Verwendungszweck {reference}."
        ),
        "transfer_now": (
            "Bitte überweisen Sie {amount} EUR ohne Abzug auf unser Konto "
            "IBAN {iban}, BIC {bic}{bank} mit dem Verwendungszweck {reference}."
        ),
        "nothing_due": "Der Rechnungsbetrag ist durch Ihr Guthaben vollständig beglichen.",
        "credit_text": (
            "Der Betrag von {amount} EUR wird Ihrem Kundenkonto gutgeschrieben und mit "
            "offenen oder künftigen Rechnungen verrechnet."
        ),
    },
    "en": {
        "debit": (
            "The amount of {amount} EUR will be collected on {date} under mandate reference "
            "{mandate} from your account IBAN {iban} (creditor ID {creditor}). "
            "Please ensure sufficient funds."
        ),
        "transfer": (
            "Please transfer {amount} EUR by {date} to our account IBAN {iban}, "
            "BIC {bic}{bank}, quoting the reference {reference}."
        ),
        "transfer_now": (
            "Please transfer {amount} EUR without deduction to our account IBAN {iban}, "
            "BIC {bic}{bank}, quoting the reference {reference}."
        ),
        "nothing_due": "The invoice amount is fully settled by your credit balance.",
        "credit_text": (
            "The amount of {amount} EUR is credited to your customer account and set "
            "against open or future invoices."
        ),
    },
}


def reverse_charge_reason(invoice: Invoice) -> str:
    """The exemption reason a reverse-charge bill states, in the bill's language."""
    return REVERSE_CHARGE_REASON[invoice.language]


def document_sign(invoice: Invoice) -> Decimal:
    """+1, or -1 for a credit note whose totals were handed in negative: EN 16931 states
    a credit note's amounts positive (its type, 381, says they are owed back)."""
    if invoice.kind == "creditNote" and invoice.gross_total < 0:
        return Decimal(-1)
    return Decimal(1)


def money(value: Decimal, language: Language) -> str:
    """1.234,56 (German) or 1,234.56 (English), always two decimals."""
    text = f"{value.quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"
    if language == "de":
        return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def number(value: Decimal, language: Language) -> str:
    """A quantity or rate without trailing zeros: 123,456 / 19 / 2."""
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(".", ",") if language == "de" else text


def day(value: date, language: Language) -> str:
    if language == "de":
        return f"{value:%d.%m.%Y}"
    return f"{value.day} {MONTHS_EN[value.month - 1]} {value.year}"


def masked_iban(iban: str) -> str:
    """The debtor's IBAN as a pre-notification shows it: the last four digits only."""
    return "****" + iban.replace(" ", "")[-4:]


def grouped_iban(iban: str) -> str:
    compact = iban.replace(" ", "")
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def payment_text(invoice: Invoice) -> str:
    """The sentence that says how the bill is paid (or credited)."""
    text = PAYMENT_TEXT[invoice.language]
    lang = invoice.language
    payment = invoice.payment
    sign = document_sign(invoice)
    if invoice.kind == "creditNote":
        return text["credit_text"].format(amount=money(invoice.gross_total * sign, lang))
    if invoice.amount_due <= 0:
        return text["nothing_due"]
    amount = money(invoice.amount_due, lang)
    if payment.means == "sepaDirectDebit":
        when = payment.collection_date or invoice.due_date or invoice.issue_date
        return text["debit"].format(
            amount=amount,
            date=day(when, lang),
            mandate=payment.mandate_reference or "",
            iban=masked_iban(payment.debtor_iban or ""),
            creditor=payment.creditor_id or "",
        )
    bank = f" ({payment.creditor_bank})" if payment.creditor_bank else ""
    fields = {
        "amount": amount,
        "iban": grouped_iban(payment.creditor_iban),
        "bic": payment.creditor_bic,
        "bank": bank,
        "reference": payment.reference or invoice.number,
    }
    if invoice.due_date is None:
        return text["transfer_now"].format(**fields)
    return text["transfer"].format(date=day(invoice.due_date, lang), **fields)
