"""TMF635 usage over HTTP: the network side posts usage, everyone reads their own.

- ``POST /tmf-api/usageManagement/v4/usage``: one TMF635 Usage (201, the record as
  stored);
- ``POST /tmf-api/usageManagement/v4/usage/bulk``: a JSON array of Usage (or
  ``{"usage": [...]}``), at most ``MAX_BULK`` records (more: 413); the answer counts
  records new, unchanged (sent before) and corrected;
- ``GET .../usage`` (``fields``, ``offset``, ``limit``, filters ``relatedParty.id``,
  ``usageType``, ``status``, ``usageDate.gte``, ``usageDate.lt``) and ``GET
  .../usage/{id}``.

Writers are the network feed and billing staff (``WRITERS``); a customer principal reads
only its own usage, any other staff role reads all. Ids are the sender's and may hold
``/`` (``traffic/<site>/<product>/<hour>``): ``GET .../usage/{id}`` takes them as a path.
Usage is a record of business: it is corrected by sending it again, never deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from etomcrm.api.conventions import current_principal, json_response, public_base_url, read_json
from etomcrm.api.tmf import (
    FIELDS_PARAMETER,
    ID_PARAMETER,
    LIMIT_PARAMETER,
    OFFSET_PARAMETER,
    error_responses,
    paging,
)
from etomcrm.billing.models import UsageRecordRow
from etomcrm.billing.usage import IngestResult, ingest_usage, parse_usage
from etomcrm.config import get_settings
from etomcrm.core.clock import iso
from etomcrm.core.errors import Forbidden, InvalidRequest, NotFound, PayloadTooLarge
from etomcrm.core.tmf_schemas import CUSTOMER, USAGE, JsonDict
from etomcrm.db import session_scope
from etomcrm.security.service import Principal, Role

JSON = "application/json"
PATH = f"{USAGE.base_path}/usage"
MAX_BULK = 1_000  # records per bulk post: about half of the API's body size limit
WRITERS = frozenset({Role.ADMIN, Role.BILLING, Role.NETWORK})
FILTERS = frozenset({"relatedParty.id", "usageType", "status", "usageDate.gte", "usageDate.lt"})
# The TMF635 document's Usage is not among the served components (no resource kind is
# built on it), so the answers' schemas are written out here, after the document.
_REF: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string"}},
}
USAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "href"],  # a `fields` selection returns these at least
    "properties": {
        "id": {"type": "string"},
        "href": {"type": "string"},
        "@type": {"type": "string"},
        "usageDate": {"type": "string", "format": "date-time"},
        "usageType": {"type": "string"},
        "description": {"type": "string"},
        "status": {"type": "string", "enum": USAGE.definitions["UsageStatusType"]["enum"]},
        "relatedParty": {"type": "array", "items": _REF},
        "usageCharacteristic": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "value"],
                "properties": {"name": {"type": "string"}, "valueType": {"type": "string"}},
            },
        },
        "ratedProductUsage": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"isBilled": {"type": "boolean"}, "productRef": _REF},
            },
        },
    },
}
RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["received", "new", "unchanged", "corrected"],
    "properties": {
        "@type": {"type": "string"},
        "received": {"type": "integer"},
        "new": {"type": "integer", "description": "stored now"},
        "unchanged": {"type": "integer", "description": "sent before with this volume"},
        "corrected": {"type": "integer", "description": "sent before with another volume"},
    },
}
# What is posted: a TMF635 Usage (checked against the document's Usage definition).
BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "usageDate", "usageType", "relatedParty", "usageCharacteristic"],
    "description": "A TMF635 Usage; see parse_usage in etomcrm.billing.usage and the README",
}
_ERRORS = error_responses(CUSTOMER)

router = APIRouter()


def _check_writer(principal: Principal) -> None:
    if principal.role not in WRITERS:
        raise Forbidden(
            "usage is posted by the network feed and billing staff "
            f"({', '.join(sorted(WRITERS))}), not by {principal.role}"
        )


def render_usage(row: UsageRecordRow, base_url: str) -> JsonDict:
    """A stored record as a TMF635 Usage (the record's columns are the whole of it)."""
    characteristics: list[JsonDict] = [
        {"name": "volume", "valueType": "number", "value": float(row.volume)},
        {"name": "unit", "valueType": "string", "value": row.unit},
        {"name": "startDateTime", "valueType": "string", "value": iso(row.start_at)},
        {"name": "endDateTime", "valueType": "string", "value": iso(row.end_at)},
        {"name": "version", "valueType": "integer", "value": row.version},
    ]
    if row.site_id:
        characteristics.append({"name": "siteId", "valueType": "string", "value": row.site_id})
    body: JsonDict = {
        "id": row.usage_id,
        "href": f"{base_url}{PATH}/{row.usage_id}",
        "@type": "Usage",
        "usageDate": iso(row.start_at),
        "usageType": row.usage_type,
        "status": row.status,
        "relatedParty": [{"id": row.customer_id, "role": "customer", "@referredType": "Customer"}],
        "usageCharacteristic": characteristics,
    }
    if row.product_id:
        body["ratedProductUsage"] = [
            {
                "isBilled": row.status == "billed",
                "productRef": {"id": row.product_id, "@referredType": "Product"},
            }
        ]
    return body


def _ingest(principal: Principal, items: list[Any]) -> IngestResult:
    _check_writer(principal)
    records = parse_usage(items)
    with session_scope() as session:
        return ingest_usage(session, records)


@router.post(
    PATH,
    tags=["usage"],
    summary="TMF635: post one usage record (idempotent by its id; another volume corrects it)",
    status_code=201,
    responses={
        201: {"description": "Stored", "content": {JSON: {"schema": USAGE_SCHEMA}}},
        **_ERRORS,
    },
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": BODY_SCHEMA}}}},
)
async def post_usage(request: Request) -> Response:
    principal = current_principal(request)
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise InvalidRequest("send one TMF635 Usage object; arrays go to .../usage/bulk")

    def unit_of_work() -> JsonDict:
        _ingest(principal, [payload])
        with session_scope(readonly=True) as session:
            row = session.scalar(
                select(UsageRecordRow).where(UsageRecordRow.usage_id == payload["id"])
            )
            assert row is not None  # just stored
            return render_usage(row, public_base_url())

    return json_response(await run_in_threadpool(unit_of_work), 201)


@router.post(
    PATH + "/bulk",
    tags=["usage"],
    summary=f"TMF635: post up to {MAX_BULK} usage records at once (idempotent by id)",
    status_code=201,
    responses={
        201: {"description": "Taken", "content": {JSON: {"schema": RESULT_SCHEMA}}},
        **_ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "array",
                        "maxItems": MAX_BULK,
                        "items": BODY_SCHEMA,
                    }
                }
            },
        }
    },
)
async def post_usage_bulk(request: Request) -> Response:
    principal = current_principal(request)
    payload = await read_json(request)
    items = payload.get("usage") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise InvalidRequest('send a JSON array of TMF635 Usage (or {"usage": [...]})')
    if len(items) > MAX_BULK:
        raise PayloadTooLarge(
            f"a bulk post holds at most {MAX_BULK} usage records, this one {len(items)}: "
            "split it into several posts"
        )
    result = await run_in_threadpool(_ingest, principal, items)
    return json_response(result.answer(), 201)


def _scoped(principal: Principal, stmt: Any) -> Any:
    if principal.is_customer:
        return stmt.where(UsageRecordRow.customer_id == (principal.customer_id or ""))
    return stmt


def _instant(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{name} must be a date-time, not {value!r}") from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"{name} needs a zone (e.g. Z)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest(f"{name} {value!r} is out of range") from None


def _where(filters: dict[str, str]) -> list[Any]:
    table = UsageRecordRow
    clauses: list[Any] = []
    for name, value in filters.items():
        if name == "relatedParty.id":
            clauses.append(table.customer_id == value)
        elif name == "usageType":
            clauses.append(table.usage_type == value)
        elif name == "status":
            clauses.append(table.status == value)
        elif name == "usageDate.gte":
            clauses.append(table.start_at >= _instant(name, value))
        elif name == "usageDate.lt":
            clauses.append(table.start_at < _instant(name, value))
    return clauses


def _list(
    session: Session, principal: Principal, filters: dict[str, str], offset: int, limit: int
) -> tuple[list[UsageRecordRow], int]:
    """One page and the total: two queries whatever the page size."""
    clauses = _where(filters)
    total = session.scalar(
        _scoped(
            principal, select(func.count()).select_from(UsageRecordRow).where(and_(True, *clauses))
        )
    )
    rows: list[UsageRecordRow] = []
    if offset < (total or 0):
        rows = list(
            session.scalars(
                _scoped(principal, select(UsageRecordRow).where(and_(True, *clauses)))
                .order_by(UsageRecordRow.id)
                .offset(offset)
                .limit(limit)
            )
        )
    return rows, int(total or 0)


def _select_fields(body: JsonDict, fields: str | None) -> JsonDict:
    if not fields:
        return body
    keep = {"id", "href", "@type", *(f.strip() for f in fields.split(",") if f.strip())}
    return {key: value for key, value in body.items() if key in keep}


@router.get(
    PATH,
    tags=["usage"],
    summary="TMF635: list usage (a customer sees its own)",
    responses={
        200: {
            "description": "Success",
            "content": {JSON: {"schema": {"type": "array", "items": USAGE_SCHEMA}}},
        },
        206: {
            "description": "Partial page",
            "content": {JSON: {"schema": {"type": "array", "items": USAGE_SCHEMA}}},
        },
        **_ERRORS,
    },
    openapi_extra={
        "parameters": [
            FIELDS_PARAMETER,
            OFFSET_PARAMETER,
            LIMIT_PARAMETER,
            *(
                {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                for name in sorted(FILTERS)
            ),
        ]
    },
)
async def list_usage(request: Request) -> Response:
    principal = current_principal(request)
    fields, offset, limit = paging(request)
    size = min(limit or get_settings().default_page_limit, get_settings().max_page_limit)
    filters: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in {"fields", "offset", "limit"}:
            continue
        if key not in FILTERS:
            raise InvalidRequest(f"usage is filtered by {', '.join(sorted(FILTERS))}, not {key}")
        if key in filters:
            raise InvalidRequest(f"give {key} once")
        filters[key] = value
    base = public_base_url()

    def unit_of_work() -> tuple[list[JsonDict], int]:
        with session_scope(readonly=True) as session:
            rows, total = _list(session, principal, filters, offset, size)
            return [_select_fields(render_usage(row, base), fields) for row in rows], total

    items, total = await run_in_threadpool(unit_of_work)
    status = 206 if offset + len(items) < total else 200
    headers = {"X-Total-Count": str(total), "X-Result-Count": str(len(items))}
    return Response(orjson.dumps(items), status, headers, media_type=JSON)


@router.get(
    PATH + "/{id:path}",
    tags=["usage"],
    summary="TMF635: one usage record by its id",
    responses={
        200: {"description": "Success", "content": {JSON: {"schema": USAGE_SCHEMA}}},
        **_ERRORS,
    },
    openapi_extra={"parameters": [ID_PARAMETER, FIELDS_PARAMETER]},
)
async def retrieve_usage(request: Request) -> Response:
    principal = current_principal(request)
    usage_id = request.path_params["id"]
    fields = request.query_params.get("fields")
    base = public_base_url()

    def unit_of_work() -> JsonDict | None:
        with session_scope(readonly=True) as session:
            row = session.scalar(
                _scoped(
                    principal, select(UsageRecordRow).where(UsageRecordRow.usage_id == usage_id)
                )
            )
            return None if row is None else _select_fields(render_usage(row, base), fields)

    body = await run_in_threadpool(unit_of_work)
    if body is None:
        # A customer asking for another's usage learns nothing of it: the same 404.
        raise NotFound(f"no usage {usage_id!r}")
    return json_response(body)
