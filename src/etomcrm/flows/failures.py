"""Failed flows: on record, on the staff work list, and retried once the cause is fixed.

A flow whose step raises ends in DBOS status ERROR. Its processFlow (TMF701) says so:
on hold (TMF701 has no failed state) with ``failed`` true, the reason and the step, and
a task recording the failure (see :mod:`etomcrm.flows.recorder`). The durable runner
records this as the flow fails; :func:`sweep_failed_flows` finds any that a crash kept
from being recorded. Staff list them with ``GET processFlow?failed=true``, fix the
cause the reason names, and retry: the flow runs again from the failed step under its
own id, its earlier steps kept (DBOS ``rewind_workflow``).
"""

from __future__ import annotations

import logging

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from etomcrm.core.errors import Conflict, Forbidden
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.db import session_scope
from etomcrm.flows import engine, recorder
from etomcrm.flows.models import ProcessFlowRow
from etomcrm.security.service import Principal, Role

log = logging.getLogger(__name__)
# The staff who run the flows' processes; billing, marketing and analysts only watch.
RETRY_ROLES = frozenset(
    {Role.ADMIN, Role.ORDER_MANAGER, Role.SALES, Role.SUPPORT, Role.SLA_MANAGER}
)


def retry_flow(principal: Principal, workflow_id: str) -> JsonDict:
    """Run a failed flow again from the step that failed; its processFlow is active
    again, with the retry on record. Refused (409) unless the flow has failed."""
    if principal.is_customer or principal.role not in RETRY_ROLES:
        raise Forbidden(
            "a failed flow is retried by staff who run the process "
            f"({', '.join(sorted(r.value for r in RETRY_ROLES))})"
        )
    with session_scope() as session:
        body = recorder.retry_flow(session, workflow_id, principal.name)
        state = engine.workflow_state(workflow_id)
        if state != "ERROR":
            raise Conflict(
                f"processFlow {workflow_id} is marked failed, but its run is "
                f"{state or 'unknown to the flow engine'}; it cannot be retried now"
            )
        # Last, so that a refusal above changes nothing; the processFlow commits after
        # the rewind, and a flow that fails again at once is marked failed after that.
        engine.rewind_to_failure(workflow_id)
    return body


def sweep_failed_flows() -> int:
    """Mark failed every flow whose run ended in an error while its processFlow still
    says it runs (the process died before recording the failure). Returns how many."""
    failed = dict(engine.failed_workflows())
    if not failed:
        return 0
    marked = 0
    with session_scope() as session:
        rows = session.scalars(
            select(ProcessFlowRow).where(
                ProcessFlowRow.id.in_(failed), ProcessFlowRow.status == "active"
            )
        ).all()
        for row in rows:
            marked += recorder.fail_flow(
                session,
                row.id,
                flow=row.flow,
                case_id=row.case_id,
                reason=failed[row.id],
                step=None,
                seed=recorder.last_seed(session, row.id),
            )
    if marked:
        log.warning("%d failed flow(s) found and marked failed", marked)
    return marked


def is_failed() -> list[ColumnElement[bool]]:
    """What makes a flow failed (on hold because a step failed, not held by a person):
    the one criterion of the failed list and of the work list that counts it."""
    return [
        ProcessFlowRow.status == recorder.FAILED_STATE,
        ProcessFlowRow.body["failed"].as_boolean().is_(True),
    ]


def failed_flows(session: Session) -> list[tuple[str, str, str, str, str, str]]:
    """The failed flows, oldest failure first: (id, flow, case, failed at, step, reason)."""
    rows = session.scalars(
        select(ProcessFlowRow).where(*is_failed()).order_by(ProcessFlowRow.updated_at)
    ).all()
    return [
        (
            row.id,
            row.flow,
            row.case_id,
            str(row.body.get("failedAt", "")),
            str(row.body.get("failedStep", "")),
            str(row.body.get("failureReason", "")),
        )
        for row in rows
    ]
