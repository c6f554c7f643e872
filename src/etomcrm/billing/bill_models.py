"""Tables of 3.8.3 / 3.8.4 beside the bills: the documents as issued, and the TMF678
requests for a bill off cycle."""

from __future__ import annotations

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base


class BillDocumentRow(Base):
    """An issued bill as it was issued: its content (the canonical JSON of its Invoice,
    whose SHA-256 the bill keeps), and the PDF (Factur-X XML embedded) and the XML,
    stored once rendered, so the customer downloads the same bytes every time."""

    __tablename__ = "bill_document"

    bill_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    xml: Mapped[bytes | None] = mapped_column(LargeBinary)
    # SHA-256 of the PDF
    sha256: Mapped[str | None] = mapped_column(String(64))


class CustomerBillOnDemandRow(TmfResourceRow, Base):
    """TMF678 customerBillOnDemand: a request for a bill off cycle (a bill now, or the
    final bill at termination), ``inProgress`` until its bill is made, then ``done``."""

    __tablename__ = "customer_bill_on_demand"
