"""TMF678 ``appliedCustomerBillingRate`` (3.8.2): the rated charges, read-only.

``GET /tmf-api/customerBillManagement/v4/appliedCustomerBillingRate`` lists them in
rating order (``offset``, ``limit``, ``fields``; ``X-Total-Count``), filtered by
``bill.id``, ``billingAccount.id``, ``product.id``, ``type`` (recurring, oneTime,
usage, discount, credit, carriedCredit), ``isBilled``; ``.../{id}`` reads one. A
customer sees only its own rates. Rates are made by rating, never through the API:
other methods answer 405.

Each rate says what it is traceable to in ``characteristic``: ``rateType``, the
product and price, the usage records, the SLA violation, the period, the list price
and the discount's percentage.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.api.conventions import current_principal, json_response, public_base_url
from etomcrm.api.tmf import error_responses, paging
from etomcrm.billing.models import AppliedRateRow
from etomcrm.config import get_settings
from etomcrm.core.errors import InvalidRequest, NotFound
from etomcrm.core.resources import COMMON_ATTRIBUTES
from etomcrm.core.tmf_schemas import CUSTOMER_BILL, JsonDict
from etomcrm.db import session_scope
from etomcrm.security.service import Principal

JSON = "application/json"
PATH = f"{CUSTOMER_BILL.base_path}/appliedCustomerBillingRate"
TYPE_NAME = "AppliedCustomerBillingRate"
CREDITS = ("discount", "credit", "carriedCredit")
# Query parameter → column; values are exact, commas separate alternatives.
FILTERS = {
    "bill.id": AppliedRateRow.bill_id,
    "billingAccount.id": AppliedRateRow.billing_account_id,
    "product.id": AppliedRateRow.product_id,
    "type": AppliedRateRow.rate_type,
    "id": AppliedRateRow.id,
}
PROPERTIES = set(CUSTOMER_BILL.definitions[TYPE_NAME]["properties"])
_MANY = {"content": {JSON: {"schema": {"type": "array", "items": CUSTOMER_BILL.ref(TYPE_NAME)}}}}
_ONE = {"content": {JSON: {"schema": CUSTOMER_BILL.ref(TYPE_NAME)}}}
_QUERY = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
    for name in ("fields", "offset", "limit", *FILTERS, "isBilled")
]

router = APIRouter(tags=["appliedCustomerBillingRate"])


def _money(value: Any, currency: str) -> JsonDict:
    return {"unit": currency, "value": float(value)}


def _day(value: Any) -> str | None:
    if value is None:
        return None
    return (
        datetime(value.year, value.month, value.day, tzinfo=UTC).isoformat().replace("+00:00", "Z")
    )


def render_rate(rate: AppliedRateRow, base: str) -> JsonDict:
    """One rate as the TMF678 document."""
    trace = dict(rate.characteristic or {})
    document: JsonDict = {
        "id": rate.id,
        "href": f"{base}{PATH}/{rate.id}",
        "@type": TYPE_NAME,
        "name": rate.name,
        "appliedBillingRateType": (
            "appliedBillingCredit" if rate.rate_type in CREDITS else "appliedBillingCharge"
        ),
        "date": rate.rated_at.isoformat().replace("+00:00", "Z"),
        "isBilled": rate.bill_id is not None,
        "billingAccount": {
            "id": rate.billing_account_id,
            "@referredType": "BillingAccount",
        },
        "taxExcludedAmount": _money(rate.tax_excluded, rate.currency),
        "taxIncludedAmount": _money(rate.tax_included, rate.currency),
        "appliedTax": [
            {
                "taxCategory": str(trace.get("taxCategory", "S")),
                "taxRate": float(rate.tax_rate),
                "taxAmount": _money(rate.tax_amount, rate.currency),
            }
        ],
        "characteristic": [
            {"name": "rateType", "valueType": "string", "value": rate.rate_type},
            {"name": "quantity", "valueType": "string", "value": str(rate.quantity)},
            *(
                [{"name": "unitPrice", "valueType": "string", "value": str(rate.unit_price)}]
                if rate.unit_price is not None
                else []
            ),
            *({"name": name, "value": value} for name, value in sorted(trace.items())),
        ],
    }
    if rate.description:
        document["description"] = rate.description
    if rate.bill_id:
        document["bill"] = {
            "id": rate.bill_id,
            "href": f"{base}{CUSTOMER_BILL.base_path}/customerBill/{rate.bill_id}",
            "@referredType": "CustomerBill",
        }
    if rate.product_id:
        product = trace.get("product") or {}
        document["product"] = {
            "id": rate.product_id,
            "href": f"{base}/tmf-api/productInventory/v4/product/{rate.product_id}",
            "@referredType": "Product",
            **({"name": product["name"]} if product.get("name") else {}),
        }
    if rate.period_start is not None:
        document["periodCoverage"] = {
            "startDateTime": _day(rate.period_start),
            "endDateTime": _day(rate.period_end),
        }
    return document


def _select(principal: Principal, request: Request) -> Any:
    query = select(AppliedRateRow)
    if principal.is_customer:
        query = query.where(AppliedRateRow.customer_id == (principal.customer_id or ""))
    for key, value in request.query_params.multi_items():
        if key in ("fields", "offset", "limit"):
            continue
        if key == "isBilled":
            if value not in ("true", "false"):
                raise InvalidRequest(f"isBilled is true or false, not {value!r}")
            column = AppliedRateRow.bill_id
            query = query.where(column.is_not(None) if value == "true" else column.is_(None))
            continue
        if key not in FILTERS:
            raise InvalidRequest(
                f"{key} is no filter of appliedCustomerBillingRate; filter by "
                + ", ".join([*FILTERS, "isBilled"])
            )
        query = query.where(FILTERS[key].in_(value.split(",")))
    return query


def _fields(fields: str | None) -> list[str] | None:
    if not fields:
        return None
    names = [f.strip() for f in fields.split(",") if f.strip()]
    unknown = [n for n in names if n not in PROPERTIES and n not in COMMON_ATTRIBUTES]
    if unknown:
        raise InvalidRequest(f"fields names unknown attributes of {TYPE_NAME}: {unknown}")
    return names


def _only(document: JsonDict, fields: list[str] | None) -> JsonDict:
    if not fields:
        return document
    keep = {"id", "href", "@type", *fields}
    return {k: v for k, v in document.items() if k in keep}


def list_rates(
    session: Session,
    principal: Principal,
    request: Request,
    offset: int,
    size: int,
    fields: list[str] | None,
) -> tuple[list[JsonDict], int]:
    """One page of rates and the number matching (two queries)."""
    query = _select(principal, request)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(AppliedRateRow.rated_at, AppliedRateRow.id).offset(offset).limit(size)
    ).all()
    base = public_base_url()
    return [_only(render_rate(row, base), fields) for row in rows], total


@router.get(
    PATH,
    operation_id="listAppliedCustomerBillingRate",
    summary="3.8.2: list the rated charges, discounts and credits",
    responses={
        200: {"description": "Success", **_MANY},
        206: {"description": "Partial page", **_MANY},
        **error_responses(CUSTOMER_BILL),
    },
    openapi_extra={"parameters": _QUERY},
)
async def list_(request: Request) -> Response:
    fields_text, offset, limit = paging(request)
    principal = current_principal(request)
    fields = _fields(fields_text)
    settings = get_settings()
    size = min(limit or settings.default_page_limit, settings.max_page_limit)

    def unit_of_work() -> tuple[list[JsonDict], int]:
        with session_scope() as session:
            return list_rates(session, principal, request, offset, size, fields)

    documents, total = await run_in_threadpool(unit_of_work)
    status = 206 if offset + len(documents) < total else 200
    headers = {"X-Total-Count": str(total), "X-Result-Count": str(len(documents))}
    return Response(orjson.dumps(documents), status, headers, media_type=JSON)


@router.get(
    PATH + "/{id}",
    operation_id="retrieveAppliedCustomerBillingRate",
    summary="3.8.2: one rated charge, discount or credit",
    responses={200: {"description": "Success", **_ONE}, **error_responses(CUSTOMER_BILL)},
    openapi_extra={"parameters": _QUERY[:1]},
)
async def retrieve(request: Request, id: str) -> Response:
    principal = current_principal(request)
    fields = _fields(request.query_params.get("fields"))

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            rate = session.get(AppliedRateRow, id)
            if rate is None or (
                principal.is_customer and rate.customer_id != principal.customer_id
            ):
                raise NotFound(f"appliedCustomerBillingRate {id} not found")
            return render_rate(rate, public_base_url())

    return json_response(_only(await run_in_threadpool(unit_of_work), fields))
