"""Every step a flow takes, recorded with its seed number, time, actor and outcome.

The records are TMF701 process flows (one per run of a flow for one case) and task
flows (one per step). A step writes its record in the same transaction as its effect,
with an id derived from (workflow, step): a step that runs again after a crash finds
its record, returns the result it had, and does not repeat its effect.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from etomcrm.core.clock import iso
from etomcrm.core.errors import Conflict, NotFound
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.db import utcnow
from etomcrm.flows.models import ProcessFlowRow, TaskFlowRow

SYSTEM_ACTOR = "etomcrm"
_NAMESPACE = uuid.UUID("6f1c2b8e-3f55-4d7e-9a51-0c1f5e2b7a10")


def task_id(workflow_id: str, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{workflow_id}/{key}"))


def _characteristic(body: JsonDict, name: str) -> Any:
    for item in body.get("characteristic", []):
        if item.get("name") == name:
            return item.get("value")
    return None


def start_flow(
    session: Session,
    *,
    workflow_id: str,
    flow: str,
    case_id: str,
    case_type: str,
    customer_id: str | None,
    description: str,
) -> None:
    """Open the process flow of a case; nothing happens if it is open already."""
    if session.get(ProcessFlowRow, workflow_id) is not None:
        return
    now = utcnow()
    body: JsonDict = {
        "id": workflow_id,
        "@type": "ProcessFlow",
        "processFlowSpecification": flow,
        "processFlowDate": iso(now),
        "state": "active",
        "characteristic": [{"name": "description", "value": description}],
        "relatedEntity": [{"id": case_id, "@referredType": case_type, "role": "case"}],
        "taskFlow": [],
    }
    if customer_id:
        body["relatedParty"] = [
            {"id": customer_id, "@referredType": "Customer", "role": "customer"}
        ]
    session.add(
        ProcessFlowRow(
            id=workflow_id,
            at_type="ProcessFlow",
            name=flow,
            status="active",
            owner_customer_id=customer_id,
            body=body,
            flow=flow,
            case_id=case_id,
            created_at=now,
            updated_at=now,
        )
    )
    session.flush()


def finish_flow(session: Session, workflow_id: str, state: str = "completed") -> None:
    row = session.get(ProcessFlowRow, workflow_id)
    if row is None or row.status == state:
        return
    row.status = state
    row.body = {**row.body, "state": state}
    row.version += 1
    row.updated_at = utcnow()


# TMF701 has no failed state: a failed flow is on hold (stopped until someone acts) and
# says so in these attributes, which the staff work list filters on
# (processFlow?failed=true).
FAILED_STATE = "hold"
FAILURE_ATTRIBUTES = ("failureReason", "failedStep", "failedAt")


def fail_flow(
    session: Session,
    workflow_id: str,
    *,
    flow: str,
    case_id: str,
    reason: str,
    step: str | None,
    seed: str,
) -> bool:
    """Mark the flow failed with the reason and record the failure as a task; a flow
    that failed before its first step is opened to say so. False when it is marked
    failed already (a replay of the same failure)."""
    row = session.get(ProcessFlowRow, workflow_id)
    if row is None:
        start_flow(
            session,
            workflow_id=workflow_id,
            flow=flow,
            case_id=case_id,
            case_type="Unknown",
            customer_id=None,
            description=f"{flow}: failed before its first step",
        )
        row = session.get(ProcessFlowRow, workflow_id)
        assert row is not None
    if row.body.get("failed"):
        return False
    now = utcnow()
    retries = int(row.body.get("retries", 0))
    row.status = FAILED_STATE
    row.body = {
        **row.body,
        "state": FAILED_STATE,
        "failed": True,
        "failureReason": reason,
        "failedStep": step or "",
        "failedAt": iso(now),
    }
    row.version += 1
    row.updated_at = now
    key = f"failed-{retries}"
    if session.get(TaskFlowRow, task_id(workflow_id, key)) is None:
        where = f"at step {step}" if step else "after its last step"
        record_task(
            session, workflow_id, key, Task(seed, "Flow failed", f"failed {where}: {reason}")
        )
    return True


def last_seed(session: Session, workflow_id: str) -> str:
    """The seed number of the flow's latest recorded step ("" before its first)."""
    return (
        session.scalar(
            select(TaskFlowRow.seed_number)
            .where(TaskFlowRow.process_flow_id == workflow_id)
            .order_by(TaskFlowRow.seq.desc())
            .limit(1)
        )
        or ""
    )


def retry_flow(session: Session, workflow_id: str, actor: str) -> JsonDict:
    """Put a failed flow back to active, on record with who retried it after what."""
    row = session.get(ProcessFlowRow, workflow_id)
    if row is None:
        raise NotFound(f"no processFlow with id {workflow_id}")
    if not row.body.get("failed"):
        raise Conflict(
            f"processFlow {workflow_id} is {row.status}, not failed: only a failed flow is retried"
        )
    retries = int(row.body.get("retries", 0)) + 1
    reason = str(row.body.get("failureReason", ""))
    body = {k: v for k, v in row.body.items() if k not in FAILURE_ATTRIBUTES}
    row.body = {**body, "state": "active", "failed": False, "retries": retries}
    row.status = "active"
    row.version += 1
    row.updated_at = utcnow()
    seed = session.scalar(
        select(TaskFlowRow.seed_number).where(
            TaskFlowRow.id == task_id(workflow_id, f"failed-{retries - 1}")
        )
    )
    record_task(
        session,
        workflow_id,
        f"retried-{retries}",
        Task(seed or "", "Flow retried", f"retried after: {reason}", actor=actor),
    )
    return dict(row.body)


def relate(session: Session, workflow_id: str, entity: JsonDict) -> None:
    """Name another resource the flow's case involves (a quote, the order it became)."""
    row = session.get(ProcessFlowRow, workflow_id)
    if row is None or entity in row.body.get("relatedEntity", []):
        return
    row.body = {**row.body, "relatedEntity": [*row.body.get("relatedEntity", []), entity]}


def recorded(session: Session, workflow_id: str, key: str) -> JsonDict | None:
    """The result a step recorded, or None when it has not run to its end."""
    row = session.get(TaskFlowRow, task_id(workflow_id, key))
    if row is None:
        return None
    result = _characteristic(row.body, "result")
    return result if isinstance(result, dict) else {}


@dataclass(frozen=True)
class Task:
    seed: str  # "3.5.3"
    process: str  # "Accept and issue orders"
    outcome: str  # a sentence a person reads in the trace
    actor: str = SYSTEM_ACTOR
    result: JsonDict | None = None
    related: tuple[JsonDict, ...] = ()
    at: datetime | None = None


def record_task(session: Session, workflow_id: str, key: str, task: Task) -> None:
    """Write one step's record (in the caller's transaction)."""
    flow = session.get(ProcessFlowRow, workflow_id)
    if flow is None:
        raise LookupError(f"process flow {workflow_id} was not started")
    seq = len(flow.body.get("taskFlow", [])) + 1
    at = task.at or utcnow()
    identifier = task_id(workflow_id, key)
    characteristic: list[JsonDict] = [
        {"name": "seedNumber", "value": task.seed},
        {"name": "process", "value": task.process},
        {"name": "outcome", "value": task.outcome},
        {"name": "actor", "value": task.actor},
        {"name": "automated", "value": task.actor == SYSTEM_ACTOR},
        {"name": "step", "value": key},
    ]
    if task.result is not None:
        characteristic.append({"name": "result", "value": task.result})
    body: JsonDict = {
        "id": identifier,
        "@type": "TaskFlow",
        "taskFlowSpecification": f"{task.seed} {task.process}",
        "state": "completed",
        "startDate": iso(at),
        "completionDate": iso(at),
        "completionMethod": "automatic" if task.actor == SYSTEM_ACTOR else "manual",
        "priority": seq,
        "characteristic": characteristic,
        "relatedEntity": list(task.related),
        "relatedParty": [
            {
                "id": task.actor,
                "name": task.actor,
                "role": "actor",
                "@referredType": "System" if task.actor == SYSTEM_ACTOR else "User",
            }
        ],
    }
    session.add(
        TaskFlowRow(
            id=identifier,
            at_type="TaskFlow",
            name=body["taskFlowSpecification"][:200],
            status="completed",
            owner_customer_id=flow.owner_customer_id,
            body=body,
            process_flow_id=workflow_id,
            seq=seq,
            seed_number=task.seed,
            created_at=at,
            updated_at=at,
        )
    )
    flow.body = {**flow.body, "taskFlow": [*flow.body.get("taskFlow", []), {"id": identifier}]}
    flow.updated_at = at
    session.flush()


@dataclass(frozen=True)
class TraceLine:
    at: datetime
    seed: str
    process: str
    actor: str
    outcome: str
    automated: bool


@dataclass(frozen=True)
class FlowTrace:
    workflow_id: str
    flow: str
    state: str
    case_id: str
    lines: list[TraceLine]


def flows_of_case(session: Session, case_id: str) -> list[FlowTrace]:
    """The flows of a case (a request, a quote, an order), each with its steps in order,
    followed by the flows of the cases it led to (the order a quote became, and so on).
    """
    flows: list[ProcessFlowRow] = []
    # A flow's own id (the trace prints "problem-…", "violation-…") names its case too.
    by_flow_id = session.scalars(
        select(ProcessFlowRow.case_id).where(ProcessFlowRow.id == case_id)
    ).all()
    cases: list[str] = [case_id, *by_flow_id, *_cases_naming(session, case_id)]
    seen: set[str] = set()
    while cases:
        found = session.scalars(
            select(ProcessFlowRow)
            .where(ProcessFlowRow.case_id.in_(cases))
            .order_by(ProcessFlowRow.created_at)
        ).all()
        new = [f for f in found if f.id not in seen]
        seen.update(f.id for f in new)
        flows.extend(new)
        cases = _linked_cases(session, {f.id for f in new})
    tasks = session.scalars(
        select(TaskFlowRow)
        .where(TaskFlowRow.process_flow_id.in_([f.id for f in flows]))
        .order_by(TaskFlowRow.process_flow_id, TaskFlowRow.seq)
    ).all()
    by_flow: dict[str, list[TraceLine]] = {}
    for task in tasks:
        body = task.body
        by_flow.setdefault(task.process_flow_id, []).append(
            TraceLine(
                at=task.created_at,
                seed=task.seed_number,
                process=str(_characteristic(body, "process")),
                actor=str(_characteristic(body, "actor")),
                outcome=str(_characteristic(body, "outcome")),
                automated=bool(_characteristic(body, "automated")),
            )
        )
    return [
        FlowTrace(
            workflow_id=flow.id,
            flow=flow.flow,
            # The trace names a failure for what it is (TMF701's state is hold).
            state="failed" if flow.body.get("failed") else flow.status or "",
            case_id=flow.case_id,
            lines=by_flow.get(flow.id, []),
        )
        for flow in flows
    ]


def _cases_naming(session: Session, entity_id: str) -> list[str]:
    """Cases whose flow names the entity among its related entities (a quote in its
    pre-sale flow, a ticket in its problem's or violation's flow)."""
    if len(entity_id) < 8:
        return []  # too short to search the documents for
    rows = session.execute(
        select(ProcessFlowRow.case_id, ProcessFlowRow.body).where(
            cast(ProcessFlowRow.body, String).contains(entity_id),
        )
    ).all()
    return [
        case
        for case, body in rows
        if any(e.get("id") == entity_id for e in body.get("relatedEntity", []))
    ]


def _linked_cases(session: Session, workflow_ids: set[str]) -> list[str]:
    """Cases that the given flows' steps name as related (e.g. the order a quote led to)."""
    if not workflow_ids:
        return []
    cases: list[str] = []
    for body in session.scalars(
        select(TaskFlowRow.body).where(TaskFlowRow.process_flow_id.in_(workflow_ids))
    ):
        for entity in body.get("relatedEntity", []):
            if entity.get("role") == "follow-up case":
                cases.append(entity["id"])
    return cases


def open_presale_flow_of_customer(session: Session, customer_id: str) -> str | None:
    """The customer's newest pre-sale flow that still waits for a quote decision."""
    return session.scalar(
        select(ProcessFlowRow.id)
        .where(
            ProcessFlowRow.flow == "presale",
            ProcessFlowRow.status == "active",
            ProcessFlowRow.owner_customer_id == customer_id,
        )
        .order_by(ProcessFlowRow.created_at.desc())
        .limit(1)
    )
