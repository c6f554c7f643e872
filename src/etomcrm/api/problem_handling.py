"""Problem handling (3.6) over HTTP beyond the TMF resource life cycle.

Beyond TMF621's PATCH of ``status``, a customer confirms or rejects a resolution with
``POST .../troubleTicket/{id}/confirmResolution`` and ``.../rejectResolution``; TMF642's
task resources ``POST /ackAlarms`` and ``POST /clearAlarms`` acknowledge and clear
alarms by pattern (the tasks run at once and are answered, not kept).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from etomcrm.api.conventions import current_principal, json_response, public_base_url, read_json
from etomcrm.api.tmf import error_responses
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.resources import render
from etomcrm.core.tmf_schemas import ALARM, TROUBLE_TICKET, JsonDict
from etomcrm.db import session_scope
from etomcrm.problem_handling import alarms, tickets
from etomcrm.problem_handling.tickets import TROUBLE_TICKET_KIND
from etomcrm.security.service import Principal

JSON = "application/json"
router = APIRouter()


async def _in_transaction(request: Request, work: Callable[[Any, Principal], JsonDict]) -> JsonDict:
    principal = current_principal(request)

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            return work(session, principal)

    return await run_in_threadpool(unit_of_work)


_TICKET = TROUBLE_TICKET_KIND.path + "/{id}"
_TICKET_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The ticket",
        "content": {JSON: {"schema": TROUBLE_TICKET.ref("TroubleTicket")}},
    },
    **error_responses(TROUBLE_TICKET),
}


@router.post(
    _TICKET + "/confirmResolution",
    tags=["troubleTicket"],
    summary="3.6.4: the customer confirms the resolution; the ticket closes",
    responses=_TICKET_RESPONSES,
)
async def confirm_resolution(id: str, request: Request) -> Response:
    body = await _in_transaction(
        request, lambda session, principal: tickets.confirm_resolution(session, principal, id)
    )
    return json_response(render(TROUBLE_TICKET_KIND, body, public_base_url()))


@router.post(
    _TICKET + "/rejectResolution",
    tags=["troubleTicket"],
    summary="3.6.4: the customer says the problem is not solved; the ticket reopens",
    responses=_TICKET_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["reason"],
                        "properties": {"reason": {"type": "string"}},
                    }
                }
            },
        }
    },
)
async def reject_resolution(id: str, request: Request) -> Response:
    data = await read_json(request)
    if not isinstance(data, dict) or not isinstance(data.get("reason"), str):
        raise InvalidRequest('send {"reason": "..."}: what is still wrong')
    reason = data["reason"]
    body = await _in_transaction(
        request,
        lambda session, principal: tickets.reject_resolution(session, principal, id, reason),
    )
    return json_response(render(TROUBLE_TICKET_KIND, body, public_base_url()))


def _task_route(path: str, definition: str, action: Callable[..., JsonDict]) -> None:
    async def create_task(request: Request) -> Response:
        data = await read_json(request)
        base = public_base_url()
        body = await _in_transaction(
            request, lambda session, principal: action(session, principal, data, base_url=base)
        )
        body["href"] = f"{base}{ALARM.base_path}{path}/{body['id']}"
        return json_response(body, 201)

    router.add_api_route(
        ALARM.base_path + path,
        create_task,
        methods=["POST"],
        status_code=201,
        tags=[path.strip("/")],
        summary=f"Create a {definition} task: applied to the matching alarms at once",
        responses={
            201: {"description": "Done", "content": {JSON: {"schema": ALARM.ref(definition)}}},
            **error_responses(ALARM),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": ALARM.ref(f"{definition}_Create")}},
            }
        },
    )


_task_route("/ackAlarms", "AckAlarms", alarms.acknowledge_alarms)
_task_route("/clearAlarms", "ClearAlarms", alarms.clear_alarms)
