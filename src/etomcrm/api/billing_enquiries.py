"""3.8.1 and 3.8.5 over HTTP: billing enquiries (disputes) and the dunning of a bill.

- ``POST .../billingEnquiry`` disputes a bill (body: ``customerBill`` ``{"id"}``,
  ``description``, optional ``disputedLine`` (the bill's appliedCustomerBillingRate
  ``{"id"}``s) or ``disputedAmount``, ``channel``; staff may name the
  ``customerRequest`` ``{"id"}`` it came as). A customer disputes only its own bills.
- ``GET .../billingEnquiry`` (``status``, ``offset``, ``limit``) is billing's queue; a
  customer sees its own. ``GET .../billingEnquiry/{id}``.
- ``POST .../billingEnquiry/{id}/reject`` (``reason``), ``.../adjust`` (``reason``,
  optional ``amount``: a credit note, above the threshold pending a second person),
  ``.../approve`` (the second person).
- ``GET .../customerBill/{id}/dunning``: the bill's dunning level and history;
  ``GET .../dunningCase`` (``status``): billing's view of every case.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from etomcrm.api.conventions import current_principal, json_response, page_size, read_json
from etomcrm.api.tmf import error_responses
from etomcrm.billing import dunning, enquiries
from etomcrm.core.errors import Forbidden, InvalidRequest
from etomcrm.core.tmf_schemas import CUSTOMER_BILL, PARTY_INTERACTION, JsonDict
from etomcrm.db import session_scope

JSON = "application/json"
BASE = CUSTOMER_BILL.base_path
ENQUIRIES = f"{BASE}/billingEnquiry"

_STRING = {"type": "string"}
_REF = {"type": "object", "required": ["id"], "properties": {"id": _STRING}}
_MONEY = {"type": "object", "properties": {"unit": _STRING, "value": _STRING}}
ENQUIRY = {
    "type": "object",
    "required": ["id", "status", "customerBill", "disputedAmount"],
    "properties": {
        "id": _STRING,
        "@type": _STRING,
        "status": {"type": "string", "enum": ["open", "pendingApproval", "resolved", "rejected"]},
        "customerBill": _REF,
        "disputedAmount": _MONEY,
        "disputedLine": {"type": "array", "items": _REF},
        "description": _STRING,
        "customerRequest": _REF,
        "adjustment": {"type": "object"},
        "resolution": {"type": "object"},
    },
}
DUNNING = {
    "type": "object",
    "required": ["status", "level", "levelName"],
    "properties": {
        "id": _STRING,
        "status": _STRING,
        "level": {"type": "integer", "minimum": 0, "maximum": 4},
        "levelName": _STRING,
        "customerBill": _REF,
        "history": {"type": "array", "items": {"type": "object"}},
    },
}
CREATE_BODY = {
    "type": "object",
    "required": ["customerBill", "description"],
    "properties": {
        "customerBill": _REF,
        "description": _STRING,
        "disputedLine": {"type": "array", "items": _REF},
        "disputedAmount": _MONEY,
        "channel": _STRING,
        "customerRequest": _REF,
    },
}
REASON_BODY = {"type": "object", "required": ["reason"], "properties": {"reason": _STRING}}
ADJUST_BODY = {
    "type": "object",
    "required": ["reason"],
    "properties": {"reason": _STRING, "amount": _MONEY},
}


def _one(schema: JsonDict) -> dict[str, Any]:
    return {"content": {JSON: {"schema": schema}}}


def _many(schema: JsonDict) -> dict[str, Any]:
    return {"content": {JSON: {"schema": {"type": "array", "items": schema}}}}


def _body(schema: JsonDict) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}


# The TMF Error body is one schema in every document; TMF683's is served whatever else is
# (an enquiry is the customer's request).
ERRORS = error_responses(PARTY_INTERACTION)
router = APIRouter(tags=["billingEnquiry"])


async def _object(request: Request) -> JsonDict:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    return data


def _ref_id(data: JsonDict, name: str, *, required: bool) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise InvalidRequest(f'{name!r} is a reference: {{"id": "..."}}')
    return str(value["id"])


@router.post(
    ENQUIRIES,
    operation_id="createBillingEnquiry",
    summary="Dispute a bill or some of its lines (3.8.1); routed to billing",
    status_code=201,
    responses={201: {"description": "Logged", **_one(ENQUIRY)}, **ERRORS},
    openapi_extra=_body(CREATE_BODY),
)
async def create_enquiry(request: Request) -> Response:
    principal = current_principal(request)
    data = await _object(request)
    bill_id = _ref_id(data, "customerBill", required=True) or ""
    lines = data.get("disputedLine") or []
    if not isinstance(lines, list) or not all(
        isinstance(line, dict) and isinstance(line.get("id"), str) for line in lines
    ):
        raise InvalidRequest('disputedLine is a list of references: [{"id": "..."}]')
    channel = data.get("channel", "api")
    if not isinstance(channel, str):
        raise InvalidRequest("channel is a string")
    description = data.get("description")
    if not isinstance(description, str):
        raise InvalidRequest("description is a string saying what is wrong with the bill")
    request_id = _ref_id(data, "customerRequest", required=False)

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            return enquiries.dispute_bill(
                session,
                principal,
                bill_id,
                description=description,
                line_ids=[str(line["id"]) for line in lines],
                amount=data.get("disputedAmount"),
                channel=channel,
                request_id=request_id,
            )

    return json_response(await run_in_threadpool(unit_of_work), 201)


@router.get(
    ENQUIRIES,
    operation_id="listBillingEnquiry",
    summary="Billing's queue of enquiries, oldest first (a customer: its own)",
    responses={200: {"description": "Success", **_many(ENQUIRY)}, **ERRORS},
)
def list_enquiries(
    request: Request, status: str | None = None, offset: int = 0, limit: int | None = None
) -> Response:
    principal = current_principal(request)
    size = page_size(offset, limit)
    with session_scope(readonly=True) as session:
        items = enquiries.list_enquiries(
            session, principal, status=status, offset=offset, limit=size
        )
    return json_response(items, headers={"X-Result-Count": str(len(items))})


@router.get(
    ENQUIRIES + "/{id}",
    operation_id="retrieveBillingEnquiry",
    summary="One billing enquiry",
    responses={200: {"description": "Success", **_one(ENQUIRY)}, **ERRORS},
)
def get_enquiry(id: str, request: Request) -> Response:
    principal = current_principal(request)
    with session_scope(readonly=True) as session:
        return json_response(enquiries.get_enquiry(session, principal, id))


@router.post(
    ENQUIRIES + "/{id}/reject",
    operation_id="rejectBillingEnquiry",
    summary="The bill stands: reject the dispute with the reason; the customer is told",
    responses={200: {"description": "Rejected", **_one(ENQUIRY)}, **ERRORS},
    openapi_extra=_body(REASON_BODY),
)
async def reject(id: str, request: Request) -> Response:
    principal = current_principal(request)
    data = await _object(request)

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            return enquiries.reject_enquiry(session, principal, id, reason=data.get("reason"))  # type: ignore[arg-type]

    return json_response(await run_in_threadpool(unit_of_work))


@router.post(
    ENQUIRIES + "/{id}/adjust",
    operation_id="adjustBillingEnquiry",
    summary="Adjust the bill by a credit note (above the threshold: pending approval)",
    responses={200: {"description": "Adjusted or pending", **_one(ENQUIRY)}, **ERRORS},
    openapi_extra=_body(ADJUST_BODY),
)
async def adjust(id: str, request: Request) -> Response:
    principal = current_principal(request)
    data = await _object(request)

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            return enquiries.propose_adjustment(
                session,
                principal,
                id,
                reason=data.get("reason"),  # type: ignore[arg-type]
                amount=data.get("amount"),
            )

    return json_response(await run_in_threadpool(unit_of_work))


@router.post(
    ENQUIRIES + "/{id}/approve",
    operation_id="approveBillingEnquiry",
    summary="A second person approves the credit note above the threshold (four eyes)",
    responses={200: {"description": "Approved and issued", **_one(ENQUIRY)}, **ERRORS},
)
async def approve(id: str, request: Request) -> Response:
    principal = current_principal(request)

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            return enquiries.approve_adjustment(session, principal, id)

    return json_response(await run_in_threadpool(unit_of_work))


@router.get(
    BASE + "/customerBill/{id}/dunning",
    operation_id="retrieveCustomerBillDunning",
    summary="The bill's dunning: level (0 none … 4 suspended), status, history (3.8.5)",
    responses={200: {"description": "Success", **_one(DUNNING)}, **ERRORS},
)
def bill_dunning(id: str, request: Request) -> Response:
    principal = current_principal(request)
    with session_scope(readonly=True) as session:
        return json_response(dunning.dunning_of_bill(session, principal, id))


@router.get(
    BASE + "/dunningCase",
    operation_id="listDunningCase",
    summary="Billing's view of the dunning cases, oldest first",
    responses={200: {"description": "Success", **_many(DUNNING)}, **ERRORS},
)
def list_dunning(
    request: Request, status: str | None = None, offset: int = 0, limit: int | None = None
) -> Response:
    principal = current_principal(request)
    if principal.is_customer:
        raise Forbidden("a customer reads the dunning of its bills (customerBill/{id}/dunning)")
    size = page_size(offset, limit)
    with session_scope(readonly=True) as session:
        items = dunning.dunning_cases(session, status=status, offset=offset, limit=size)
    return json_response(items, headers={"X-Result-Count": str(len(items))})
