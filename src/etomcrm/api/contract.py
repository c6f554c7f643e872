"""3.4.4 and 3.5.2 over HTTP, beside the TMF629 customer they read and record on.

- ``GET /tmf-api/customerManagement/v4/customer/{id}/contractReadiness``:
  ``{"customerId", "ready", "missing": [sentences]}``: what contracting still needs.
  Staff read any customer's, a customer its own.
- ``PATCH /tmf-api/customerManagement/v4/customer/{id}/contractData``: record
  ``legalName``, ``vatId``, ``billingContact`` (``emailAddress``, ``name``,
  ``phoneNumber``) and ``billingAddress`` (``street1``, ``street2``, ``postCode``,
  ``city``, ``country``); answers the updated customer. An invalid VAT id is a 400.
- ``POST /tmf-api/customerManagement/v4/customer/{id}/creditAssessment``: body
  ``{"orderValue": "12000.00", "currency": "EUR"}`` (the amount as a decimal string);
  answers the decision (outcome, deposit, limit, reason) and records it on the customer.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from etomcrm.api.conventions import current_principal, json_response, public_base_url, read_json
from etomcrm.api.requests import body_of
from etomcrm.api.tmf import error_responses
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.resources import render
from etomcrm.core.tmf_schemas import CUSTOMER, JsonDict
from etomcrm.customer_interface.service import CUSTOMER_KIND
from etomcrm.db import session_scope
from etomcrm.selling import credit, customer_data

JSON = "application/json"
PATH = f"{CUSTOMER.base_path}/customer/{{id}}"
_STRING = {"type": "string"}

READINESS = {
    "type": "object",
    "required": ["customerId", "ready", "missing"],
    "properties": {
        "customerId": _STRING,
        "ready": {"type": "boolean"},
        "missing": {"type": "array", "items": _STRING},
    },
}
CONTRACT_DATA = {
    "type": "object",
    "properties": {
        "legalName": _STRING,
        "vatId": {**_STRING, "description": "EU VAT id with country prefix, e.g. DE123456789"},
        "billingContact": {
            "type": "object",
            "required": ["emailAddress"],
            "properties": {"emailAddress": _STRING, "name": _STRING, "phoneNumber": _STRING},
        },
        "billingAddress": {
            "type": "object",
            "required": ["street1", "postCode", "city", "country"],
            "properties": {
                name: _STRING for name in ("street1", "street2", "postCode", "city", "country")
            },
        },
    },
}
CREDIT_REQUEST = {
    "type": "object",
    "required": ["orderValue"],
    "properties": {
        "orderValue": {**_STRING, "description": "Order value as a decimal string, e.g. 12000.00"},
        "currency": {**_STRING, "default": "EUR"},
    },
}
CREDIT_DECISION = {
    "type": "object",
    "required": ["outcome", "deposit", "limit", "currency", "reason"],
    "properties": {
        "outcome": {"type": "string", "enum": ["accept", "acceptWithDeposit", "reject"]},
        "deposit": _STRING,
        "limit": _STRING,
        "currency": _STRING,
        "reason": _STRING,
        "creditScore": {"type": "integer"},
        "creditRiskRating": {"type": "integer"},
    },
}


def _schema(schema: JsonDict) -> dict[str, Any]:
    return {"content": {JSON: {"schema": schema}}}


router = APIRouter(tags=["customer"])


@router.get(
    PATH + "/contractReadiness",
    operation_id="retrieveContractReadiness",
    summary="What the customer record still needs before a contract (3.4.4)",
    responses={200: {"description": "Success", **_schema(READINESS)}, **error_responses(CUSTOMER)},
)
def contract_readiness(id: str, request: Request) -> Response:
    principal = current_principal(request)
    with session_scope(readonly=True) as session:
        return json_response(customer_data.contract_readiness(session, principal, id))


def _object(data: JsonDict, name: str) -> JsonDict | None:
    value = data.get(name)
    if value is not None and not isinstance(value, dict):
        raise InvalidRequest(f"{name!r} must be an object")
    return value


def _text(data: JsonDict, name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{name!r} must be a string")
    return value


@router.patch(
    PATH + "/contractData",
    operation_id="patchContractData",
    summary="Record the legal name, VAT id, billing contact and billing address (3.4.4)",
    responses={
        200: {"description": "Updated", **_schema(CUSTOMER.ref("Customer"))},
        **error_responses(CUSTOMER),
    },
    openapi_extra=body_of(CONTRACT_DATA),
)
async def contract_data(id: str, request: Request) -> Response:
    principal = current_principal(request)
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    legal_name, vat_id = _text(data, "legalName"), _text(data, "vatId")
    contact, address = _object(data, "billingContact"), _object(data, "billingAddress")

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            return customer_data.complete_customer_data(
                session,
                principal,
                id,
                legal_name=legal_name,
                vat_id=vat_id,
                billing_contact=contact,
                billing_address=address,
            )

    body = await run_in_threadpool(unit_of_work)
    return json_response(render(CUSTOMER_KIND, body, public_base_url()))


@router.post(
    PATH + "/creditAssessment",
    operation_id="createCreditAssessment",
    summary="Assess credit worthiness for an order value and record it (3.5.2)",
    responses={
        200: {"description": "Assessed", **_schema(CREDIT_DECISION)},
        **error_responses(CUSTOMER),
    },
    openapi_extra=body_of(CREDIT_REQUEST),
)
async def credit_assessment(id: str, request: Request) -> Response:
    principal = current_principal(request)
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    raw = data.get("orderValue")
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise InvalidRequest("orderValue must be a decimal string such as '12000.00'")
    try:
        order_value = Decimal(str(raw))
    except InvalidOperation:
        raise InvalidRequest(f"orderValue must be an amount, not {raw!r}") from None
    currency = _text(data, "currency") or credit.CURRENCY

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            decision = credit.assess_credit(
                session, principal, id, order_value=order_value, currency=currency
            )
            return decision.as_json()

    return json_response(await run_in_threadpool(unit_of_work))
