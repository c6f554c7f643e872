"""Bill documents benchmark: Factur-X PDFs (and their XML) per second per core.

One process, one thread: each run renders ``--count`` bills with
:func:`etomcrm.billing.invoice.render_invoice_pdf` (the pages with fpdf2, the EN 16931
XML with drafthorse and its XSD check, the Factur-X embedding with factur-x) and, as a
second figure, writes the XML alone with :func:`invoice_xml`. Each figure is the median
over ``--runs`` runs after one warm-up bill. The rate per core is counted on the CPU time
the process used (``time.process_time``), which the other work on a shared machine does
not inflate; the wall-clock rate is reported beside it.

The bill is a realistic business bill: ``--lines`` lines (monthly charges, usage with
three decimals, a contract discount and an SLA credit), 19 % VAT, paid by transfer (so
the GiroCode is drawn) with a prepaid credit. A second set of runs renders a direct-debit
bill in English.

Usage: ``.venv/bin/python bench/invoice_documents.py --runs 5 --count 40 [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from etomcrm.billing.invoice import invoice_xml, render_invoice_pdf
from etomcrm.billing.invoice_data import (
    Invoice,
    InvoiceLine,
    InvoiceParty,
    PaymentInstructions,
    TaxSubtotal,
)

CENT = Decimal("0.01")
SELLER = InvoiceParty(
    name="etomcrm Telecom Services GmbH", street="Leopoldstraße 100", post_code="80802",
    city="München", country="DE", vat_id="DE123456789", tax_number="143/123/45678",
    email="rechnung@etomcrm.example", phone="+49 89 1234560",
    register="Amtsgericht München HRB 123456",
)  # fmt: skip
BUYER = InvoiceParty(
    name="Bayerische Motoren Werke AG", street="Petuelring 130", post_code="80788",
    city="München", country="DE", vat_id="DE129273398",
    email="kreditoren@bmw.example",
)  # fmt: skip


def bill(lines: int, *, direct_debit: bool, number: str) -> Invoice:
    """A bill of ``lines`` lines with its totals computed as billing computes them."""
    items: list[InvoiceLine] = []
    for index in range(1, lines + 1):
        kind = index % 4
        if kind == 0:
            quantity, price, unit, rate_type = Decimal("1234.567"), Decimal("0.09"), "E34", "usage"
        else:
            quantity, price, unit, rate_type = Decimal(kind), Decimal("249.90"), "MON", "recurring"
        net = (quantity * price).quantize(CENT, rounding=ROUND_HALF_UP)
        items.append(
            InvoiceLine(
                number=index, name=f"Standortvernetzung Standort {index:02d}",
                rate_type=rate_type, quantity=quantity, unit=unit, unit_price=price, net=net,
                tax_rate=Decimal(19), tax_category="S", period_start=date(2026, 11, 1),
                period_end=date(2026, 11, 30), product_id=f"prod-{index}",
            )
        )  # fmt: skip
    subtotal = sum((item.net for item in items), Decimal(0))
    discount = -(subtotal * Decimal("0.15")).quantize(CENT, rounding=ROUND_HALF_UP)
    reductions = (
        (discount, "Vertragsrabatt 15 %", "discount"),
        (Decimal("-120.00"), "SLA-Gutschrift Oktober", "credit"),
    )
    for net, name, rate_type in reductions:
        items.append(
            InvoiceLine(
                number=len(items) + 1, name=name, rate_type=rate_type, quantity=Decimal(1),
                unit="C62", unit_price=None, net=net, tax_rate=Decimal(19), tax_category="S",
            )
        )  # fmt: skip
    net_total = sum((item.net for item in items), Decimal(0))
    tax = (net_total * Decimal("0.19")).quantize(CENT, rounding=ROUND_HALF_UP)
    gross = net_total + tax
    prepaid = Decimal("35.00")
    payment = (
        PaymentInstructions(
            means="sepaDirectDebit", creditor_iban="DE02120300000000202051",
            creditor_bic="BYLADEM1001", creditor_id="DE98ZZZ09999999999",
            mandate_reference="BMW-MANDATE-01", debtor_iban="DE89370400440532013000",
            collection_date=date(2026, 12, 15),
        )
        if direct_debit
        else PaymentInstructions(
            means="bankTransfer", creditor_iban="DE02120300000000202051",
            creditor_bic="BYLADEM1001", creditor_bank="Deutsche Kreditbank Berlin",
            reference=number,
        )
    )  # fmt: skip
    return Invoice(
        kind="invoice", number=number, issue_date=date(2026, 12, 1),
        due_date=date(2026, 12, 15), period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30), currency="EUR", seller=SELLER, buyer=BUYER,
        lines=tuple(items),
        taxes=(TaxSubtotal(category="S", rate=Decimal(19), basis=net_total, tax=tax),),
        net_total=net_total, tax_total=tax, gross_total=gross, prepaid=prepaid,
        amount_due=gross - prepaid, payment=payment, bill_id="bill-bench",
        billing_account_id="acc-bench", customer_id="cust-bmw", buyer_reference="K-000001",
        language="en" if direct_debit else "de",
    )  # fmt: skip


def measure(
    render: Callable[[Invoice], bytes], invoice: Invoice, count: int, runs: int
) -> dict[str, Any]:
    """Median documents per CPU-second and per wall-second over ``runs`` runs."""
    size = len(render(invoice))  # warm-up: imports, fonts, schema
    per_cpu: list[float] = []
    per_wall: list[float] = []
    for _ in range(runs):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(count):
            render(invoice)
        per_cpu.append(count / (time.process_time() - cpu))
        per_wall.append(count / (time.perf_counter() - wall))
    return {
        "per_core_per_s": round(statistics.median(per_cpu), 1),
        "wall_per_s": round(statistics.median(per_wall), 1),
        "runs_per_core": [round(x, 1) for x in per_cpu],
        "ms_per_document": round(1000 / statistics.median(per_cpu), 2),
        "bytes": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=40, help="documents per run")
    parser.add_argument("--lines", type=int, default=12, help="charge lines per bill")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    transfer = bill(args.lines, direct_debit=False, number="RE-2026-000123")
    debit = bill(args.lines, direct_debit=True, number="RE-2026-000124")
    results = {
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "lines_per_bill": len(transfer.lines),
        "pdf_transfer_de": measure(render_invoice_pdf, transfer, args.count, args.runs),
        "pdf_direct_debit_en": measure(render_invoice_pdf, debit, args.count, args.runs),
        "xml_only": measure(invoice_xml, transfer, args.count * 5, args.runs),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
