"""QoS/SLA management (3.7) over HTTP beyond the TMF resource life cycle.

TMF623 ``sla`` and ``slaViolation`` are read-only: etomcrm makes them (3.7.1, 3.7.2).
The QoS report (3.7.3) is served beside them as data
(``GET .../qosReport?customerId=&period=``) and as a PDF (``.../qosReport.pdf``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from etomcrm.api.conventions import ERROR_STATUSES, current_principal, json_response
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.db import session_scope
from etomcrm.qos_sla.report import qos_report, qos_report_pdf
from etomcrm.qos_sla.service import SLA_DOC

JSON = "application/json"
REPORT = f"{SLA_DOC.base_path}/qosReport"
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": "TMF error", "content": {JSON: {"schema": SLA_DOC.ref("Error")}}}
    for status in ERROR_STATUSES
}
_PARAMETERS = {
    "parameters": [
        {"name": "customerId", "in": "query", "required": True, "schema": {"type": "string"}},
        {
            "name": "period",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
            "description": "the month, e.g. 2026-11",
        },
    ]
}
router = APIRouter()


async def _report(request: Request) -> JsonDict:
    principal = current_principal(request)
    customer_id = request.query_params.get("customerId")
    period = request.query_params.get("period")
    if not customer_id or not period:
        raise InvalidRequest("a QoS report needs customerId and period (a month, e.g. 2026-11)")

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            return qos_report(session, principal, customer_id, period)

    return await run_in_threadpool(unit_of_work)


@router.get(
    REPORT,
    tags=["qosReport"],
    summary="3.7.3: the QoS report of a customer for a month, per site",
    responses={
        200: {"description": "The report", "content": {JSON: {"schema": {"type": "object"}}}},
        **_ERRORS,
    },
    openapi_extra=_PARAMETERS,
)
async def report(request: Request) -> Response:
    return json_response(await _report(request))


@router.get(
    REPORT + ".pdf",
    response_class=Response,
    tags=["qosReport"],
    summary="3.7.3: the QoS report as a PDF document",
    responses={200: {"description": "The report", "content": {"application/pdf": {}}}, **_ERRORS},
    openapi_extra=_PARAMETERS,
)
async def report_pdf(request: Request) -> Response:
    document = qos_report_pdf(await _report(request))
    return Response(document, 200, media_type="application/pdf")
