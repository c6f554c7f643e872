"""3.2.2 over HTTP: file a customer request, read the queue, work a request.

- ``POST /tmf-api/partyInteraction/v4/customerRequest`` files a request (body:
  ``customerId`` (a customer's own token may leave it out), ``channel``, ``subject``,
  ``description``, and for staff an optional ``classification``); answers 201 with the
  classified, routed ``partyInteraction``. The TMF683 ``PartyInteraction`` shape is
  accepted as the document defines it: ``reason`` for the subject, ``channel`` as a list
  of ``ChannelRef`` (``id`` or ``name``), and the customer named in ``relatedParty``
  (``@referredType`` ``Customer``, or role ``customer``/``requester``).
- ``GET /tmf-api/partyInteraction/v4/customerRequest`` is the queue: ``queue`` (a staff
  role; default the caller's own, every queue for admin), ``status`` (comma-separated;
  default ``open,inProgress``), ``offset``, ``limit``. A customer sees its own requests.
- ``PATCH /tmf-api/partyInteraction/v4/customerRequest/{id}`` works a request: ``status``,
  ``classification`` (re-routes it), ``note``.

Every request is also a plain ``partyInteraction`` (``@type`` ``CustomerRequest``), so
``GET /tmf-api/partyInteraction/v4/partyInteraction/{id}`` shows the requester its status.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from etomcrm.api.conventions import (
    current_principal,
    json_response,
    page_size,
    public_base_url,
    read_json,
)
from etomcrm.api.tmf import error_responses
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.resources import render
from etomcrm.core.tmf_schemas import PARTY_INTERACTION, JsonDict
from etomcrm.customer_interface import requests
from etomcrm.customer_interface.service import PARTY_INTERACTION_KIND
from etomcrm.db import session_scope

JSON = "application/json"
PATH = f"{PARTY_INTERACTION.base_path}/customerRequest"


def body_of(schema: JsonDict) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}


def text_field(data: JsonDict, name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"the body needs {name!r}")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name!r} must be a string, not {type(value).__name__}")
    return value


CUSTOMER_ROLES = ("customer", "requester")


def _related_customer(data: JsonDict) -> str | None:
    """The customer a TMF683 body names in ``relatedParty``, if it names one."""
    parties = data.get("relatedParty")
    if parties is None:
        return None
    if not isinstance(parties, list) or not all(isinstance(p, dict) for p in parties):
        raise InvalidRequest("'relatedParty' must be a list of objects with an 'id'")
    named = [
        p
        for p in parties
        if p.get("@referredType") == "Customer"
        or str(p.get("role") or "").lower() in CUSTOMER_ROLES
    ]
    if not named:
        return None
    ids = {p.get("id") for p in named}
    if len(ids) > 1:
        raise InvalidRequest("'relatedParty' names more than one customer; a request has one")
    (customer_id,) = ids
    if not isinstance(customer_id, str) or not customer_id:
        raise InvalidRequest("the customer in 'relatedParty' needs its 'id'")
    return customer_id


def _channel(data: JsonDict) -> str:
    """``channel`` as a plain name, or as TMF683 defines it: a list of ``RelatedChannel``."""
    value = data.get("channel")
    if isinstance(value, list):
        if len(value) != 1 or not isinstance(value[0], dict):
            raise InvalidRequest(
                "'channel' must hold exactly one RelatedChannel such as "
                f"{{'id': 'portal'}}; the channels are {', '.join(requests.CHANNELS)}"
            )
        ref = value[0]
        name = next(
            (v for v in (ref.get("id"), ref.get("name")) if v in requests.CHANNELS),
            ref.get("id") or ref.get("name"),
        )
        if not isinstance(name, str):
            raise InvalidRequest("the RelatedChannel in 'channel' needs an 'id' or a 'name'")
        return name
    return text_field(data, "channel", required=True) or ""


def _subject(data: JsonDict) -> str:
    """What the request is about: ``subject``, or TMF683's ``reason``."""
    subject = text_field(data, "subject") or text_field(data, "reason")
    if subject is None:
        raise InvalidRequest("the body needs 'reason' (or 'subject'): what the request is about")
    return subject


_STRING = {"type": "string"}
REQUEST_BODY = {
    "type": "object",
    "required": ["channel"],
    "properties": {
        "customerId": {**_STRING, "description": "The requester (a customer's own by default)"},
        "relatedParty": {
            "type": "array",
            "items": PARTY_INTERACTION.ref("RelatedParty"),
            "description": "TMF683: the requesting customer ('@referredType': 'Customer')",
        },
        "channel": {
            "oneOf": [
                {"type": "string", "enum": list(requests.CHANNELS)},
                {"type": "array", "items": PARTY_INTERACTION.ref("RelatedChannel"), "maxItems": 1},
            ]
        },
        "subject": _STRING,
        "reason": {**_STRING, "description": "TMF683: what the request is about (= subject)"},
        "description": _STRING,
        "classification": {"type": "string", "enum": list(requests.QUEUES)},
    },
}
UPDATE_BODY = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": list(requests.REQUEST_STATES)},
        "classification": {"type": "string", "enum": list(requests.QUEUES)},
        "note": _STRING,
    },
}
ONE = {"content": {JSON: {"schema": PARTY_INTERACTION.ref("PartyInteraction")}}}
MANY = {
    "content": {
        JSON: {"schema": {"type": "array", "items": PARTY_INTERACTION.ref("PartyInteraction")}}
    },
    "headers": {
        "X-Total-Count": {"schema": {"type": "integer"}, "description": "Total matching"},
        "X-Result-Count": {"schema": {"type": "integer"}, "description": "Items in this page"},
    },
}

router = APIRouter(tags=["customerRequest"])


@router.post(
    PATH,
    operation_id="createCustomerRequest",
    summary="File a customer request; it is classified and routed to a queue",
    status_code=201,
    responses={201: {"description": "Filed", **ONE}, **error_responses(PARTY_INTERACTION)},
    openapi_extra=body_of(REQUEST_BODY),
)
async def create_request(request: Request) -> Response:
    principal = current_principal(request)
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    customer_id = text_field(data, "customerId") or _related_customer(data) or principal.customer_id
    if customer_id is None:
        raise InvalidRequest(
            "name the requesting customer in 'relatedParty' "
            "(an entry with '@referredType': 'Customer' and its 'id') or in 'customerId'"
        )
    channel = _channel(data)
    subject = _subject(data)
    description = text_field(data, "description") or ""
    classification = text_field(data, "classification")

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            return requests.handle_customer_request(
                session,
                principal,
                customer_id=customer_id,
                channel=channel,
                subject=subject,
                description=description,
                classification=classification,
            )

    body = await run_in_threadpool(unit_of_work)
    return json_response(render(PARTY_INTERACTION_KIND, body, public_base_url()), 201)


@router.get(
    PATH,
    operation_id="listCustomerRequest",
    summary="The request queue: requests routed to a staff role, oldest first",
    responses={
        200: {"description": "Success", **MANY},
        206: {"description": "Partial page", **MANY},
        **error_responses(PARTY_INTERACTION),
    },
)
def list_requests(
    request: Request,
    queue: str | None = None,
    status: str = "open,inProgress",
    offset: int = 0,
    limit: int | None = None,
) -> Response:
    principal = current_principal(request)
    size = page_size(offset, limit)
    statuses = [s.strip() for s in status.split(",") if s.strip()]
    with session_scope(readonly=True) as session:
        items, total = requests.request_queue(
            session, principal, queue=queue, statuses=statuses, offset=offset, limit=size
        )
    base = public_base_url()
    headers = {"X-Total-Count": str(total), "X-Result-Count": str(len(items))}
    code = 206 if offset + len(items) < total else 200
    return json_response([render(PARTY_INTERACTION_KIND, b, base) for b in items], code, headers)


@router.patch(
    PATH + "/{id}",
    operation_id="updateCustomerRequest",
    summary="Work a request: move its status, re-route it, add a note",
    responses={200: {"description": "Updated", **ONE}, **error_responses(PARTY_INTERACTION)},
    openapi_extra=body_of(UPDATE_BODY),
)
async def update_request(id: str, request: Request) -> Response:
    principal = current_principal(request)
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    status = text_field(data, "status")
    classification = text_field(data, "classification")
    note = text_field(data, "note")

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            return requests.update_customer_request(
                session, principal, id, status=status, classification=classification, note=note
            )

    body = await run_in_threadpool(unit_of_work)
    return json_response(render(PARTY_INTERACTION_KIND, body, public_base_url()))
