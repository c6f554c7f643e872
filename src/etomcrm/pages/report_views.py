"""What the portal's SLA report pages show (seed 5.1, "SLA reports by month with the
PDF"; 3.7.3 Report QoS to the customer), through the same service as the API's
``qosReport``: :func:`etomcrm.qos_sla.report.qos_report` for the month's figures and
:func:`etomcrm.qos_sla.report.qos_report_pdf` for its document.

Scoped as the API: the customer is read first (another customer's user gets 404), then
only its SLAs, assessments and violations. Staff see the same pages for any customer
their role may read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.pages.portal_views import Download, scoped_customer, sites_of
from etomcrm.qos_sla.assessment import period_bounds
from etomcrm.qos_sla.models import QosAssessmentRow, SlaRow, SlaViolationRow
from etomcrm.qos_sla.report import qos_report, qos_report_pdf
from etomcrm.security.service import Principal

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Month:
    """One month with a report: its violations and the credits they owe."""

    period: str
    violations: int
    credit: Decimal


@dataclass(frozen=True)
class ReportsPage:
    customer_id: str
    customer_name: str
    months: list[Month]


def _checked_period(period: str) -> str:
    """A month as the URL names it (``2026-11``); a 400 for anything else."""
    period_bounds(period)
    return period


def reports_page(
    session: Session, principal: Principal, customer_id: str, *, now: datetime
) -> ReportsPage:
    """The months the customer has an SLA report for, newest first: those 3.7.1 has
    assessed, those with a violation, and this month while an SLA runs (its report is
    the month so far). Four queries whatever the number of months and sites."""
    name = scoped_customer(session, principal, customer_id)
    slas = select(SlaRow.product_id).where(SlaRow.owner_customer_id == customer_id)
    periods = set(
        session.scalars(
            select(QosAssessmentRow.period)
            .where(QosAssessmentRow.product_id.in_(slas.scalar_subquery()))
            .distinct()
        )
    )
    if session.scalar(slas.limit(1)) is not None:
        periods.add(now.strftime("%Y-%m"))
    counts: dict[str, int] = {}
    credits: dict[str, Decimal] = {}
    for (body,) in session.execute(
        select(SlaViolationRow.body).where(SlaViolationRow.owner_customer_id == customer_id)
    ):
        period = str((body or {}).get("period") or "")
        if not period:
            continue
        periods.add(period)
        counts[period] = counts.get(period, 0) + 1
        credit = (body.get("credit") or {}).get("value") or "0"
        credits[period] = credits.get(period, ZERO) + Decimal(str(credit))
    return ReportsPage(
        customer_id,
        name,
        [
            Month(period, counts.get(period, 0), credits.get(period, ZERO))
            for period in sorted(periods, reverse=True)
        ],
    )


@dataclass(frozen=True)
class SiteLine:
    """One site's month against its SLA level."""

    id: str
    name: str
    level: str
    availability: Decimal | None
    target: Decimal
    latency_ms: str | None
    loss_percent: str | None
    incidents: int
    repair_hours: str | None
    repair_target: str
    violations: int
    credit: Decimal

    @property
    def met(self) -> bool | None:
        """Availability at least the target; None while nothing is measured."""
        return None if self.availability is None else self.availability >= self.target


@dataclass(frozen=True)
class ReportPage:
    customer_id: str
    customer_name: str
    period: str
    final: bool
    sites: list[SiteLine]
    violations: list[JsonDict]
    incidents: int
    credit: Decimal


def _levels(session: Session, customer_id: str) -> dict[str, str]:
    """Product id → the SLA level it was sold with (one query)."""
    return {
        str(product_id): str((body.get("slaSpecification") or {}).get("name") or "")
        for product_id, body in session.execute(
            select(SlaRow.product_id, SlaRow.body).where(SlaRow.owner_customer_id == customer_id)
        )
    }


def report_page(
    session: Session, principal: Principal, customer_id: str, period: str
) -> ReportPage:
    """The month's report per site: availability against the SLA level's target,
    latency, loss, incidents, repair time, violations and the credits owed. The report
    is the API's (assessed first, so the figures are current)."""
    name = scoped_customer(session, principal, customer_id)
    report = qos_report(session, principal, customer_id, _checked_period(period))
    names = sites_of(session, customer_id)
    levels = _levels(session, customer_id)
    sites = []
    for site in report["sites"]:
        site_id = str(site["site"]["id"])
        products: list[str] = site["products"]
        sites.append(
            SiteLine(
                id=site_id,
                name=names.get(site_id, site_id),
                level=", ".join(sorted({levels.get(p, "") for p in products} - {""})),
                availability=(
                    None if site["availability"] is None else Decimal(site["availability"])
                ),
                target=Decimal(site["availabilityTarget"]),
                latency_ms=site["latencyMs"],
                loss_percent=site["lossPercent"],
                incidents=int(site["incidents"]),
                repair_hours=site["timeToRepairHours"],
                repair_target=str(site["timeToRepairTarget"]),
                violations=int(site["violations"]),
                credit=Decimal(site["credit"]["value"]),
            )
        )
    totals = report["totals"]
    return ReportPage(
        customer_id=customer_id,
        customer_name=name,
        period=str(report["period"]),
        final=bool(report["final"]),
        sites=sites,
        violations=list(report["violations"]),
        incidents=int(totals["incidents"]),
        credit=Decimal(totals["credit"]["value"]),
    )


def report_download(
    session: Session, principal: Principal, customer_id: str, period: str
) -> Download:
    """The month's report as the PDF the API's ``qosReport.pdf`` serves."""
    scoped_customer(session, principal, customer_id)
    report = qos_report(session, principal, customer_id, _checked_period(period))
    return Download(qos_report_pdf(report), f"qos-report-{period}.pdf", "application/pdf")
