"""3.8.3 The EPC QR code ("GiroCode") printed on a bill a customer pays by transfer.

EPC069-12 version 002: a banking app scans it and fills in the transfer (recipient,
IBAN, amount, the bill number as remittance) so the payment arrives with a reference
bank-statement matching can read.
"""

from __future__ import annotations

from decimal import Decimal

import segno

from etomcrm.billing.invoice_data import Invoice

# EPC069-12: amounts from 0.01 to 999,999,999.99 EUR; name ≤ 70, remittance ≤ 140.
MIN_AMOUNT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999.99")
MAX_NAME = 70
MAX_REMITTANCE = 140


def girocode(invoice: Invoice) -> str | None:
    """The EPC QR payload of a bank-transfer bill with an amount due, else None:
    ``BCD / 002 / 1 (UTF-8) / SCT / BIC / name / IBAN / EUR<amount> / purpose (empty) /
    structured reference (empty) / remittance text (the bill's reference or number)``."""
    payment = invoice.payment
    if (
        invoice.kind != "invoice"
        or payment.means != "bankTransfer"
        or invoice.currency != "EUR"
        or not MIN_AMOUNT <= invoice.amount_due <= MAX_AMOUNT
    ):
        return None
    remittance = (payment.reference or invoice.number)[:MAX_REMITTANCE]
    return "\n".join(
        (
            "BCD",
            "002",
            "1",
            "SCT",
            payment.creditor_bic.replace(" ", ""),
            invoice.seller.name[:MAX_NAME],
            payment.creditor_iban.replace(" ", ""),
            f"EUR{invoice.amount_due.quantize(MIN_AMOUNT)}",
            "",
            "",
            remittance,
        )
    )


def girocode_modules(payload: str) -> list[list[bool]]:
    """The QR symbol's modules (True = dark), rows from the top, without quiet zone:
    error correction level M as EPC069-12 requires, UTF-8 as the payload declares."""
    code = segno.make_qr(payload, error="m", boost_error=False, encoding="utf-8")
    return [[bool(module) for module in row] for row in code.matrix]
