"""The retention routes beyond the TMF resource life cycle.

Customer risk (3.9.3) is TMF696 ``partyRoleRiskAssessment``, for staff only:
``POST /tmf-api/riskManagement/v4/partyRoleRiskAssessment`` with
``{"partyRole": {"id": "<customer id>", "@referredType": "Customer"}}`` (and optionally
``"trigger": "why you ask"``) assesses the customer now and answers 201 with the
result; list and read as any TMF resource (``?partyRole.id=...``); never changed or
deleted (405).

Surveys are TMF683 ``partyInteraction``s, served by the customer interface area; this
area adds answering them and the satisfaction report:

- ``POST /tmf-api/partyInteraction/v4/satisfactionSurvey/{id}/answer`` with
  ``{"csat": 1..5, "nps": 0..10, "comment": "..."}``: the answer (customer or staff);
- ``GET /tmf-api/partyInteraction/v4/satisfactionReport?since=2026-01-01T00:00:00Z``:
  count, average CSAT and NPS overall and per customer (staff only).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from etomcrm.api.conventions import current_principal, json_response, public_base_url, read_json
from etomcrm.api.requests import body_of
from etomcrm.api.tmf import error_responses
from etomcrm.core.errors import Forbidden, InvalidRequest
from etomcrm.core.resources import render
from etomcrm.core.tmf_schemas import PARTY_INTERACTION, JsonDict
from etomcrm.customer_interface.service import PARTY_INTERACTION_KIND
from etomcrm.db import session_scope
from etomcrm.retention import satisfaction

JSON = "application/json"
BASE = PARTY_INTERACTION.base_path
_DECIMAL = {"type": ["string", "null"], "description": "A decimal, null without answers"}
_COUNTS = {
    "count": {"type": "integer"},
    "promoters": {"type": "integer"},
    "passives": {"type": "integer"},
    "detractors": {"type": "integer"},
    "averageCsat": _DECIMAL,
    "nps": _DECIMAL,
}
REPORT = {
    "type": "object",
    "required": ["count", "averageCsat", "nps", "perCustomer"],
    "properties": {
        **_COUNTS,
        "since": {"type": ["string", "null"]},
        "perCustomer": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["customerId", "count", "averageCsat", "nps"],
                "properties": {"customerId": {"type": "string"}, **_COUNTS},
            },
        },
    },
}
ANSWER = {
    "type": "object",
    "required": ["csat", "nps"],
    "properties": {
        "csat": {"type": "integer", "minimum": 1, "maximum": 5},
        "nps": {"type": "integer", "minimum": 0, "maximum": 10},
        "comment": {"type": "string"},
    },
}


def _schema(schema: JsonDict) -> dict[str, Any]:
    return {"content": {JSON: {"schema": schema}}}


router = APIRouter(tags=["satisfaction"])


@router.post(
    BASE + "/satisfactionSurvey/{id}/answer",
    operation_id="answerSatisfactionSurvey",
    summary="Answer a satisfaction survey (CSAT 1-5, NPS 0-10, comment)",
    responses={
        200: {"description": "Answered", **_schema(PARTY_INTERACTION.ref("PartyInteraction"))},
        **error_responses(PARTY_INTERACTION),
    },
    openapi_extra=body_of(ANSWER),
)
async def answer(id: str, request: Request) -> Response:
    principal = current_principal(request)
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    comment = data.get("comment", "")
    if not isinstance(comment, str):
        raise InvalidRequest("comment must be text")
    csat, nps = data.get("csat"), data.get("nps")
    if csat is None or nps is None:
        raise InvalidRequest("answer both csat (1 to 5) and nps (0 to 10)")

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            return satisfaction.answer_survey(
                session, principal, id, csat=csat, nps=nps, comment=comment
            )

    body = await run_in_threadpool(unit_of_work)
    return json_response(render(PARTY_INTERACTION_KIND, body, public_base_url()))


@router.get(
    BASE + "/satisfactionReport",
    operation_id="retrieveSatisfactionReport",
    summary="Satisfaction since a time: count, average CSAT, NPS, per customer (staff)",
    responses={
        200: {"description": "Success", **_schema(REPORT)},
        **error_responses(PARTY_INTERACTION),
    },
)
def report(request: Request, since: str | None = None) -> Response:
    principal = current_principal(request)
    if principal.is_customer:
        raise Forbidden("the satisfaction report is for our staff")
    moment = None
    if since is not None:
        try:
            moment = datetime.fromisoformat(since)
        except ValueError:
            raise InvalidRequest(
                f"since must be an ISO 8601 time such as 2026-01-01T00:00:00Z, not {since!r}"
            ) from None
    with session_scope(readonly=True) as session:
        return json_response(satisfaction.satisfaction_report(session, since=moment))


ROUTERS: list[APIRouter] = [router]
