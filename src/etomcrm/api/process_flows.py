"""TMF701 over HTTP beyond the resource life cycle: a process flow's task flows (the
steps its flow took, read-only) and the retry of a failed flow."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import func, select

from etomcrm.api.conventions import current_principal, public_base_url
from etomcrm.api.tmf import (
    ID_PARAMETER,
    LIMIT_PARAMETER,
    OFFSET_PARAMETER,
    error_responses,
    paging,
)
from etomcrm.config import get_settings
from etomcrm.core import resources
from etomcrm.core.errors import NotFound
from etomcrm.core.resources import render
from etomcrm.core.tmf_schemas import PROCESS_FLOW
from etomcrm.db import session_scope
from etomcrm.flows import failures
from etomcrm.flows.api_kinds import PROCESS_FLOW_KIND
from etomcrm.flows.models import TaskFlowRow

router = APIRouter()
_TASKS = f"{PROCESS_FLOW_KIND.path}/{{processFlowId}}/taskFlow"
_JSON = "application/json"
_PROCESS_FLOW_ID = {
    "name": "processFlowId",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "Identifier of the parent processFlow",
}


def _task(body: dict[str, Any], base: str, process_flow_id: str) -> dict[str, Any]:
    return {
        **body,
        "href": f"{base}{PROCESS_FLOW_KIND.path}/{process_flow_id}/taskFlow/{body['id']}",
    }


@router.get(
    _TASKS,
    operation_id="listTaskFlow",
    summary="List the steps (task flows) of a process flow, in the order they ran",
    tags=["taskFlow"],
    responses={
        200: {
            "description": "Success",
            "content": {
                _JSON: {"schema": {"type": "array", "items": PROCESS_FLOW.ref("TaskFlow")}}
            },
        },
        206: {
            "description": "Partial page",
            "content": {
                _JSON: {"schema": {"type": "array", "items": PROCESS_FLOW.ref("TaskFlow")}}
            },
        },
        **error_responses(PROCESS_FLOW),
    },
    openapi_extra={"parameters": [_PROCESS_FLOW_ID, OFFSET_PARAMETER, LIMIT_PARAMETER]},
)
def list_task_flows(processFlowId: str, request: Request) -> Response:
    principal = current_principal(request)
    _, offset, limit = paging(request)
    size = min(limit or get_settings().default_page_limit, get_settings().max_page_limit)
    with session_scope(readonly=True) as session:
        resources.get(session, PROCESS_FLOW_KIND, principal, processFlowId)
        total = (
            session.scalar(select(func.count()).where(TaskFlowRow.process_flow_id == processFlowId))
            or 0
        )
        bodies = session.scalars(
            select(TaskFlowRow.body)
            .where(TaskFlowRow.process_flow_id == processFlowId)
            .order_by(TaskFlowRow.seq)
            .offset(offset)
            .limit(size)
        ).all()
    base = public_base_url()
    content = orjson.dumps([_task(b, base, processFlowId) for b in bodies])
    status = 206 if offset + len(bodies) < total else 200
    headers = {"X-Total-Count": str(total), "X-Result-Count": str(len(bodies))}
    return Response(content, status, headers, media_type=_JSON)


@router.get(
    _TASKS + "/{id}",
    operation_id="retrieveTaskFlow",
    summary="Retrieve one step (task flow) of a process flow",
    tags=["taskFlow"],
    responses={
        200: {
            "description": "Success",
            "content": {_JSON: {"schema": PROCESS_FLOW.ref("TaskFlow")}},
        },
        **error_responses(PROCESS_FLOW),
    },
    openapi_extra={"parameters": [_PROCESS_FLOW_ID, ID_PARAMETER]},
)
def retrieve_task_flow(processFlowId: str, id: str, request: Request) -> Response:
    principal = current_principal(request)
    with session_scope(readonly=True) as session:
        resources.get(session, PROCESS_FLOW_KIND, principal, processFlowId)
        body = session.scalar(
            select(TaskFlowRow.body).where(
                TaskFlowRow.id == id, TaskFlowRow.process_flow_id == processFlowId
            )
        )
    if body is None:
        raise NotFound(f"no taskFlow {id} in processFlow {processFlowId}")
    base = public_base_url()
    return Response(orjson.dumps(_task(body, base, processFlowId)), 200, media_type=_JSON)


@router.post(
    PROCESS_FLOW_KIND.path + "/{id}/retry",
    operation_id="retryProcessFlow",
    summary="Retry a failed process flow from the step that failed, once its cause is fixed",
    tags=["processFlow"],
    responses={
        200: {
            "description": "The process flow, active again",
            "content": {_JSON: {"schema": PROCESS_FLOW.ref("ProcessFlow")}},
        },
        **error_responses(PROCESS_FLOW),
    },
    openapi_extra={"parameters": [ID_PARAMETER]},
)
async def retry_process_flow(id: str, request: Request) -> Response:
    principal = current_principal(request)
    body = await run_in_threadpool(failures.retry_flow, principal, id)
    base = public_base_url()
    return Response(orjson.dumps(render(PROCESS_FLOW_KIND, body, base)), 200, media_type=_JSON)
