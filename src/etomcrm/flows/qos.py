"""The Assurance flows around QoS (DESIGN.md section 2):

- normal case: performance data → QoS assessed against every SLA for the month (3.7.1)
  → reported to each customer (3.7.3, a report in the portal and a PDF);
- SLA violation forwarded as problem: a missed target becomes a violation, the
  customer is told and a problem (trouble ticket) is opened (3.7.2, 3.6.2); each
  violation's own flow (``flows.sla_violation``) follows it to its credit.

One run per month (workflow id ``qos-YYYY-MM``), started by a DBOS schedule on the 2nd
of each month for the month before, or by hand (`start_qos_period`). Within the month
the continuous check (``qos_sla.ingest``) records certain violations as data arrives;
this flow finds those already recorded and records none twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dbos import DBOS
from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.config import get_settings
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.communication import write_message
from etomcrm.db import utcnow
from etomcrm.flows import engine, recorder
from etomcrm.flows.framework import (
    DurableRunner,
    Runner,
    StepResult,
    step,
)
from etomcrm.flows.recorder import Task
from etomcrm.flows.sla_violation import violation_workflow_id
from etomcrm.qos_sla import assessment, service, violations
from etomcrm.qos_sla.models import SlaRow
from etomcrm.qos_sla.report import qos_report
from etomcrm.security.service import SYSTEM

log = logging.getLogger(__name__)
SCHEDULE = "0 0 3 2 * *"  # 03:00 UTC on the 2nd: the month before is over everywhere


def qos_workflow_id(period: str) -> str:
    return f"qos-{period}"


def previous_period(moment: datetime) -> str:
    local = moment.astimezone(ZoneInfo("Europe/Berlin"))
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def qos_period_flow(run: Runner, period: str) -> str:
    """One month's QoS: assessed, violations handled, reports sent."""
    assessed = run.step("assess", "assess_period_step", period)
    for violation_id in assessed["violations"]:
        run.then("violation", violation_workflow_id(violation_id), violation_id)
    run.step("report", "report_period_step", period, assessed["customers"])
    return "reported"


@step
def assess_period_step(session: Session, workflow_id: str, period: str) -> StepResult:
    recorder.start_flow(
        session,
        workflow_id=workflow_id,
        flow="qos",
        case_id=workflow_id,
        case_type="QosPeriod",
        customer_id=None,
        description=f"QoS for {period}",
    )
    # Completion makes the SLAs; this only catches access products completed without.
    established = service.establish_slas(session)
    results = assessment.assess(session, period=period, now=utcnow())
    recorded = violations.evaluate(session, results)
    customers = sorted(
        {
            str(row)
            for row in session.scalars(
                select(SlaRow.owner_customer_id).where(
                    SlaRow.product_id.in_({a.product_id for a in results})
                )
            )
            if row
        }
    )
    missed = [a for a in results if not a.met]
    credit = sum((Decimal(v["credit"]["value"]) for v in recorded), Decimal("0.00"))
    tasks = [
        Task(
            "3.7.1",
            "Assess QoS performance",
            f"{len({a.product_id for a in results})} product(s) assessed for {period}; "
            f"{len(missed)} target(s) missed"
            + (
                f" ({established} SLA(s) made for access products completed without one)"
                if established
                else ""
            ),
        ),
        Task(
            "3.7.2",
            "Handle QoS/SLA violations",
            f"{len(recorded)} violation(s) recorded now (customers told, problems opened, "
            f"credits {credit} EUR owed; each violation's flow follows it to billing); "
            "earlier ones kept as they were",
        ),
    ]
    return {"customers": customers, "violations": [str(v["id"]) for v in recorded]}, tasks


@step
def report_period_step(
    session: Session, workflow_id: str, period: str, customers: list[str]
) -> StepResult:
    base = get_settings().public_base_url.rstrip("/") + "/tmf-api/slaManagement/v2/qosReport"
    for customer_id in customers:
        report = qos_report(session, SYSTEM, customer_id, period)
        query = f"customerId={customer_id}&period={period}"
        write_message(
            session,
            SYSTEM,
            customer_id=customer_id,
            subject=f"Your QoS report for {period}",
            content=_summary(report, period) + f"\n\nThe report: {base}.pdf?{query}",
            key=f"{workflow_id}/report/{customer_id}",
            category="information",
            related_entity=[{"id": workflow_id, "role": "qosPeriod", "@referredType": "QosReport"}],
            attachment=[
                {
                    "name": f"QoS report {period}.pdf",
                    "url": f"{base}.pdf?{query}",
                    "mimeType": "application/pdf",
                }
            ],
        )
    recorder.finish_flow(session, workflow_id, "completed")
    return (
        {"reported": len(customers)},
        [
            Task(
                "3.7.3",
                "Report QoS to the customer",
                f"QoS report for {period} sent to {len(customers)} customer(s) (portal and PDF)",
            )
        ],
    )


def _summary(report: JsonDict, period: str) -> str:
    sites = report.get("sites") or []
    violations = report.get("violations") or []
    return (
        f"Your network's quality of service in {period}: {len(sites)} site(s) measured, "
        f"{len(violations)} SLA violation(s)."
    )


def start_qos_period(period: str) -> None:
    engine.enqueue("qos", qos_workflow_id(period), period)


@DBOS.workflow(name="qos-tick")
def qos_tick(scheduled_at: datetime, context: Any) -> None:
    """The monthly schedule: run last month's QoS flow (once, whatever the retries)."""
    runner = DurableRunner()
    period = previous_period(scheduled_at)
    runner.then("qos", qos_workflow_id(period), period)
