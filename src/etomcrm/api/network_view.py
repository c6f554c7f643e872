"""The customer network view over HTTP (seed 5.1), with the TMF conventions: bearer
token, a customer sees only its own (404 otherwise), TMF error bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from etomcrm.api.conventions import current_principal, json_response
from etomcrm.api.tmf import error_responses
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.tmf_schemas import CUSTOMER, JsonDict
from etomcrm.db import session_scope, utcnow
from etomcrm.network_view import service as network_view

BASE = "/tmf-api/customerNetworkView/v1/customer/{id}"
_JSON = "application/json"
_OBJECT = {"type": "object"}

VIEW = {
    "type": "object",
    "required": ["customerId", "period", "topology", "openProblems", "slaStanding"],
    "properties": {
        "customerId": {"type": "string"},
        "period": {"type": "string"},
        "topology": _OBJECT,
        "openProblems": {"type": "array", "items": _OBJECT},
        "slaStanding": {"type": "array", "items": _OBJECT},
    },
}
TRAFFIC = {
    "type": "object",
    "required": ["customerId", "granularity", "sites"],
    "properties": {
        "customerId": {"type": "string"},
        "granularity": {"type": "string", "enum": list(network_view.GRANULARITIES)},
        "from": {"type": "string"},
        "to": {"type": "string"},
        "sites": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "siteId": {"type": "string"},
                    "volume": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "period": {"type": "string"},
                                "bytesIn": {"type": "integer"},
                                "bytesOut": {"type": "integer"},
                            },
                        },
                    },
                },
            },
        },
    },
}


def _param(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": {"type": "string"},
        "description": description,
    }


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
router = APIRouter(tags=["customer network view"])


def _when(request: Request, name: str, default: datetime) -> datetime:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 date-time, not {value!r}") from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"{name} needs a time zone (e.g. 2026-11-01T00:00:00Z)")
    return moment


@router.get(
    BASE,
    operation_id="retrieveCustomerNetworkView",
    summary="The customer's network: topology with status, open problems, SLA standing",
    responses={
        200: {"description": "Success", "content": {_JSON: {"schema": VIEW}}},
        **error_responses(CUSTOMER),
    },
    openapi_extra={"parameters": [_ID, _param("period", "Month, e.g. 2026-11 (default: now)")]},
)
async def view(id: str, request: Request) -> Response:
    principal = current_principal(request)
    period = request.query_params.get("period") or utcnow().strftime("%Y-%m")
    if len(period) != 7 or period[4] != "-" or not (period[:4] + period[5:]).isdigit():
        raise InvalidRequest(f"period is a month like 2026-11, not {period!r}")

    def unit_of_work() -> JsonDict:
        with session_scope(readonly=True) as session:
            return network_view.network_view(session, principal, id, period=period)

    return json_response(await run_in_threadpool(unit_of_work))


@router.get(
    BASE + "/traffic",
    operation_id="retrieveCustomerTraffic",
    summary="Traffic volume per site over time (hour, day or month)",
    responses={
        200: {"description": "Success", "content": {_JSON: {"schema": TRAFFIC}}},
        **error_responses(CUSTOMER),
    },
    openapi_extra={
        "parameters": [
            _ID,
            _param("granularity", "hour, day or month (default day)"),
            _param("from", "Start, ISO 8601 with zone (default: 30 days ago)"),
            _param("to", "End, exclusive (default: now)"),
            _param("siteId", "Only this site"),
        ]
    },
)
async def traffic(id: str, request: Request) -> Response:
    from datetime import timedelta

    principal = current_principal(request)
    now = utcnow()
    start = _when(request, "from", now - timedelta(days=30))
    end = _when(request, "to", now)
    granularity = request.query_params.get("granularity", "day")
    site_id = request.query_params.get("siteId")

    def unit_of_work() -> JsonDict:
        with session_scope(readonly=True) as session:
            return network_view.traffic(
                session,
                principal,
                id,
                granularity=granularity,
                start=start,
                end=end,
                site_id=site_id,
            )

    return json_response(await run_in_threadpool(unit_of_work))
