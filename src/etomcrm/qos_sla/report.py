"""3.7.3 Report QoS to the customer: per site, what 3.7.1 measured and 3.7.2 found,
as data and as a PDF document a person would send."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fpdf import FPDF
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from etomcrm.config import get_settings
from etomcrm.core.clock import iso
from etomcrm.core.errors import InvalidRequest, NotFound
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.db import utcnow
from etomcrm.network.models import NetworkLinkRow
from etomcrm.problem_handling.models import TroubleTicketRow as T
from etomcrm.qos_sla import assessment
from etomcrm.qos_sla.models import QosAssessmentRow, SlaRow, SlaViolationRow
from etomcrm.qos_sla.service import TIME_TO_REPAIR, terms_of
from etomcrm.security.service import Principal


def qos_report(session: Session, principal: Principal, customer_id: str, period: str) -> JsonDict:
    """3.7.3 Report QoS to Customer (eTOM 1.1.1.7.3): the customer's sites in a month
    (availability, latency, loss, incidents, time to repair, violations, credits),
    assessed first so the figures are current. A customer reads its own only
    (NotFound otherwise)."""

    if principal.is_customer and principal.customer_id != customer_id:
        raise NotFound(f"no customer with id {customer_id}")
    holder = session.get(CustomerRow, customer_id)
    if holder is None:
        raise NotFound(f"no customer with id {customer_id}")
    start, end = assessment.period_bounds(period)
    now = utcnow()
    if now <= start:
        raise InvalidRequest(f"period {period} has not begun; report a month up to this one")
    slas = {
        str(row.product_id): terms_of(row)
        for row in session.scalars(select(SlaRow).where(SlaRow.owner_customer_id == customer_id))
    }
    if slas:
        assessment.assess(session, period=period, now=now, product_ids=sorted(slas))
    sites: dict[str, list[str]] = {}
    for site_id, product_id in session.execute(
        select(NetworkLinkRow.site_id, NetworkLinkRow.product_id)
        .where(NetworkLinkRow.customer_id == customer_id)
        .order_by(NetworkLinkRow.site_id)
    ):
        if product_id in slas:
            sites.setdefault(site_id, []).append(str(product_id))
    measured: dict[tuple[str, str], QosAssessmentRow] = {
        (row.product_id, row.metric): row
        for row in session.scalars(
            select(QosAssessmentRow).where(
                QosAssessmentRow.period == period, QosAssessmentRow.product_id.in_(list(slas))
            )
        )
    }
    found = list(
        session.scalars(
            select(SlaViolationRow.body)
            .where(SlaViolationRow.owner_customer_id == customer_id)
            .where(SlaViolationRow.violation_key.like(f"%/{period}"))
            .order_by(SlaViolationRow.violation_key)
        )
    )
    tickets = _incidents(session, customer_id, start, end)
    rows = []
    for site_id, products in sites.items():
        rows.append(_site(site_id, products, slas, measured, found, tickets))
    total_credit = sum((Decimal(s["credit"]["value"]) for s in rows), Decimal("0.00"))
    return {
        "customer": {"id": customer_id, "name": holder.name},
        # The provider as its bills name it (ETOMCRM_PROVIDER_NAME), not a name of our own.
        "provider": get_settings().provider_name,
        "period": period,
        "periodStart": iso(start),
        "periodEnd": iso(end),
        "final": now >= end,
        "sites": rows,
        "violations": [
            {
                "id": v["id"],
                "product": v["product"]["id"],
                "metric": v["metric"],
                "actualValue": v["violation"]["actualValue"],
                "referenceValue": v["violation"]["referenceValue"],
                "credit": v.get("credit", {"unit": "EUR", "value": "0.00"}),
            }
            for v in found
        ],
        "totals": {
            "incidents": sum(s["incidents"] for s in rows),
            "violations": len(found),
            "credit": {"unit": "EUR", "value": str(total_credit)},
        },
    }


def _incidents(
    session: Session, customer_id: str, start: datetime, end: datetime
) -> list[JsonDict]:
    """The customer's incidents open at any time in [start, end): opened before the end
    and not resolved before the start, so an outage that began on the last evening of
    the month before counts too. As in 3.7.1, a violation's follow-up ticket is not an
    incident, nor is a ticket rejected or cancelled."""

    bodies = session.scalars(
        select(T.body).where(
            T.owner_customer_id == customer_id,
            T.status.not_in(("rejected", "cancelled")),
            # a ticket resolved before the start was last written then, unless closed later
            or_(T.updated_at >= start, T.status.not_in(("resolved", "closed"))),
        )
    )
    found = []
    for body in bodies:
        opened = body.get("creationDate")
        resolved = body.get("resolutionDate")
        if body.get("ticketType") == assessment.SLA_VIOLATION_TICKET or not opened:
            continue
        if datetime.fromisoformat(str(opened)) < end and (
            not resolved or datetime.fromisoformat(str(resolved)) >= start
        ):
            found.append(body)
    return found


def _site(
    site_id: str,
    products: list[str],
    slas: dict[str, Any],
    measured: dict[tuple[str, str], QosAssessmentRow],
    found: list[JsonDict],
    tickets: list[JsonDict],
) -> JsonDict:
    def worst(metric: str, lowest: bool) -> str | None:
        values = [measured[(p, metric)].measured for p in products if (p, metric) in measured]
        if not values:
            return None
        return str((min if lowest else max)(values))

    own = [v for v in found if v["product"]["id"] in products]
    incidents = [
        t
        for t in tickets
        if any(e.get("id") in products for e in t.get("relatedEntity") or [] if isinstance(e, dict))
    ]
    # as 3.7.1 assessed it: the month's longest repair on the SLA's calendar
    repair = worst(TIME_TO_REPAIR, lowest=False)
    hours = None if repair is None else str(Decimal(repair).quantize(Decimal("0.01")))
    credit = sum((Decimal(v.get("credit", {}).get("value", "0")) for v in own), Decimal("0.00"))
    return {
        "site": {"id": site_id},
        "products": products,
        "availability": worst("availability", lowest=True),
        "availabilityTarget": str(slas[products[0]].availability_target),
        "latencyMs": worst("latency", lowest=False),
        "lossPercent": worst("loss", lowest=False),
        "incidents": len(incidents),
        "timeToRepairHours": hours,
        "timeToRepairTarget": str(slas[products[0]].target(TIME_TO_REPAIR)),
        "violations": len(own),
        "credit": {"unit": "EUR", "value": str(credit)},
    }


def qos_report_pdf(report: JsonDict) -> bytes:
    """3.7.3 Report QoS to Customer (eTOM 1.1.1.7.3): the report as a PDF letter."""
    pdf = FPDF(orientation="L", format="A4")
    pdf.set_title(f"QoS report {report['period']}")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, str(report["provider"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    customer = report["customer"]
    pdf.cell(
        0, 7, f"Quality of service report for {customer['name']}", new_x="LMARGIN", new_y="NEXT"
    )
    state = "final" if report["final"] else "so far (the month is not over)"
    pdf.cell(0, 7, f"Period: {report['period']} ({state})", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    headers = (
        "Site", "Availability %", "Target %", "Latency ms", "Loss %", "Incidents",
        "Repair h", "Violations", "Credit EUR",
    )  # fmt: skip
    widths = (70, 28, 22, 24, 20, 22, 22, 22, 28)
    pdf.set_font("Helvetica", "B", 9)
    for title, width in zip(headers, widths, strict=True):
        pdf.cell(width, 7, title, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for site in report["sites"]:
        cells = (
            site["site"]["id"], site["availability"], site["availabilityTarget"],
            site["latencyMs"], site["lossPercent"], site["incidents"],
            site["timeToRepairHours"], site["violations"], site["credit"]["value"],
        )  # fmt: skip
        for value, width in zip(cells, widths, strict=True):
            pdf.cell(width, 7, "-" if value is None else str(value), border=1)
        pdf.ln()
    totals = report["totals"]
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(
        0,
        7,
        f"Totals: {totals['incidents']} incidents, {totals['violations']} violations, "
        f"credit {totals['credit']['value']} EUR",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("Helvetica", "", 9)
    for violation in report["violations"]:
        pdf.cell(
            0,
            6,
            f"Violation: {violation['metric']} {violation['actualValue']} against "
            f"{violation['referenceValue']} - credit {violation['credit']['value']} EUR "
            "on your next bill",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    return bytes(pdf.output())
