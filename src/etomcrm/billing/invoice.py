"""3.8.3 Apply rate plans to produce customer bills: the documents of an issued bill.

Every document is written from the one :class:`~etomcrm.billing.invoice_data.Invoice`
value: the Factur-X / ZUGFeRD EN 16931 XML (:mod:`etomcrm.billing.einvoice`), the PDF/A-3
a person reads with that XML embedded (:mod:`etomcrm.billing.invoice_print`) and the
GiroCode payload of a bill paid by transfer (:mod:`etomcrm.billing.girocode`).
"""

from __future__ import annotations

from etomcrm.billing.einvoice import invoice_xml
from etomcrm.billing.girocode import girocode
from etomcrm.billing.invoice_print import render_invoice_pdf

__all__ = ["girocode", "invoice_xml", "render_invoice_pdf"]
