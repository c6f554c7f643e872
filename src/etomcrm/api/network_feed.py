"""etomcrm's own API for performance data from the network side (3.7.1).

No TM Forum document for performance data is at hand (TMF628 is not among ours), so
the entry is named as etomcrm's: ``POST /etomcrm/v1/performance/measurementBatch``. It
keeps the TMF conventions: bearer token, TMF error body, ``Idempotency-Key``. The body
and the answer are described in :mod:`etomcrm.qos_sla.feed` and the README.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError

from etomcrm.api.conventions import (
    PERFORMANCE_FEED_BASE,
    current_principal,
    json_response,
    read_json,
)
from etomcrm.api.tmf import error_responses
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.db import session_scope, utcnow
from etomcrm.qos_sla.feed import MAX_BATCH, receive_batch
from etomcrm.qos_sla.service import SLA_DOC

JSON = "application/json"
PATH = f"{PERFORMANCE_FEED_BASE}/measurementBatch"

_NUMBER: dict[str, Any] = {"type": "number", "minimum": 0}
MEASUREMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "linkId",
        "intervalStart",
        "intervalSeconds",
        "latencyMs",
        "lossPercent",
        "bytesIn",
        "bytesOut",
    ],
    "properties": {
        "id": {"type": "string", "maxLength": 128, "description": "the sender's measurement id"},
        "linkId": {"type": "string", "description": "the access link, as etomcrm names it"},
        "intervalStart": {"type": "string", "format": "date-time"},
        "intervalSeconds": {"type": "integer", "minimum": 1, "maximum": 86400},
        "availability": {**_NUMBER, "maximum": 1, "description": "share of the interval up"},
        "upSeconds": {**_NUMBER, "description": "seconds up (instead of availability)"},
        "latencyMs": {**_NUMBER, "description": "mean latency while up"},
        "lossPercent": {**_NUMBER, "maximum": 100, "description": "packet loss while up"},
        "bytesIn": {"type": "integer", "minimum": 0},
        "bytesOut": {"type": "integer", "minimum": 0},
    },
}
BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["measurement"],
    "properties": {
        "measurement": {"type": "array", "maxItems": MAX_BATCH, "items": MEASUREMENT_SCHEMA}
    },
}
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "received": {"type": "integer"},
        "accepted": {"type": "integer", "description": "stored now"},
        "duplicates": {"type": "integer", "description": "stored before; not again"},
        "violationsRecorded": {"type": "integer"},
        "slaViolation": {"type": "array", "items": {"type": "object"}},
        "trendWarnings": {"type": "integer"},
    },
}

router = APIRouter()


@router.post(
    PATH,
    tags=["performance"],
    summary="3.7.1: the network side delivers performance data, per access link and interval",
    status_code=201,
    responses={
        201: {"description": "Taken", "content": {JSON: {"schema": ANSWER_SCHEMA}}},
        **error_responses(SLA_DOC),
    },
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": BATCH_SCHEMA}}}},
)
async def post_measurement_batch(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", max_length=255, description="Makes a retried post safe"),
    ] = None,
) -> Response:
    principal = current_principal(request)
    payload = await read_json(request)

    def unit_of_work() -> tuple[JsonDict, bool]:
        with session_scope() as session:
            return receive_batch(
                session, principal, payload, now=utcnow(), idempotency_key=idempotency_key or None
            )

    def with_one_retry() -> tuple[JsonDict, bool]:
        try:
            return unit_of_work()
        except IntegrityError:
            # The same measurements (or key) sent concurrently: the other post stored
            # them, and this one, tried again, finds them stored.
            return unit_of_work()

    answer, replayed = await run_in_threadpool(with_one_retry)
    return json_response(answer, 201, {"Idempotent-Replayed": "true"} if replayed else None)
