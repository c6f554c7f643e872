"""What QoS/SLA management (3.7) does when problem handling states a fact, each in its
own transaction: an SLA whose product a reported service problem affects is marked at
risk (``atRisk``, the SLA manager's work list ``sla?atRisk.serviceProblem.id=...``)
until the network reports the repair."""

from __future__ import annotations

from sqlalchemy import select

from etomcrm.core import resources
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.db import session_scope
from etomcrm.problem_handling.events import ServiceProblemRepaired, ServiceProblemReported
from etomcrm.qos_sla.models import SlaRow
from etomcrm.qos_sla.service import SLA_KIND
from etomcrm.security.service import SYSTEM


def _problem_of(entry: JsonDict) -> str | None:
    problem = entry.get("serviceProblem")
    return str(problem["id"]) if isinstance(problem, dict) and "id" in problem else None


def mark_slas_at_risk(event: ServiceProblemReported) -> None:
    """3.6.2 → 3.7: SLA management is told which SLAs a problem puts at risk, since when."""
    if not event.affected_products:
        return
    with session_scope() as session:
        rows = session.scalars(
            select(SlaRow).where(SlaRow.product_id.in_(event.affected_products))
        ).all()
        for row in rows:
            at_risk = list(row.body.get("atRisk") or [])
            if any(_problem_of(e) == event.problem_id for e in at_risk):
                continue
            at_risk.append(
                {
                    "serviceProblem": {"id": event.problem_id, "@referredType": "ServiceProblem"},
                    "since": event.since,
                }
            )
            resources.patch(session, SLA_KIND, SYSTEM, row.id, {"atRisk": at_risk})


def clear_slas_at_risk(event: ServiceProblemRepaired) -> None:
    """The network repaired the problem: the SLAs it put at risk are no longer."""
    with session_scope() as session:
        rows = session.scalars(
            select(SlaRow).where(
                resources.where_attribute(
                    session, SLA_KIND, "atRisk.serviceProblem.id", event.problem_id
                )
            )
        ).all()
        for row in rows:
            at_risk = list(row.body.get("atRisk") or [])
            left = [e for e in at_risk if _problem_of(e) != event.problem_id]
            if len(left) != len(at_risk):
                resources.patch(session, SLA_KIND, SYSTEM, row.id, {"atRisk": left or None})
