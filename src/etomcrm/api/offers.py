"""3.9.4 over HTTP: a customer's profile and the overview of next best offers. Not a
TMF Open API (the offers themselves are TMF680 ``queryProductRecommendation``); staff
only.

- ``GET /etomcrm/v1/retention/customerProfile/{customerId}`` — needs, preferences,
  value, risk, products, contacts and the next best offers ranked by expected value;
- ``GET /etomcrm/v1/retention/nextBestOffers?offset=0&limit=50`` — customers with the
  top item of their latest answered recommendation query and its expected value; CSV of
  all customers with ``format=csv`` (or ``Accept: text/csv``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from etomcrm.analytics.export import csv_text
from etomcrm.api.conventions import current_principal, json_response
from etomcrm.api.tmf import error_responses
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.tmf_schemas import RECOMMENDATION
from etomcrm.db import session_scope, utcnow
from etomcrm.retention.profile import customer_profile, offer_overview

BASE = "/etomcrm/v1/retention"
CSV = "text/csv"
JSON = "application/json"

router = APIRouter(tags=["retention"])


def _answers(description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "content": {JSON: {"schema": {"type": "object"}}, CSV: {"schema": {"type": "string"}}},
        },
        **error_responses(RECOMMENDATION),
    }


@router.get(
    BASE + "/customerProfile/{customerId}",
    operation_id="retrieveCustomerProfile",
    summary="3.9.4 A customer's needs, preferences, value, risk, products, contacts, offers",
    responses=_answers("The profile"),
)
def profile(customerId: str, request: Request) -> Response:
    principal = current_principal(request)
    with session_scope(readonly=True) as session:
        found = customer_profile(session, principal, customerId, now=utcnow())
        return json_response(found.as_json())


def _number(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a whole number, not {value!r}") from None


@router.get(
    BASE + "/nextBestOffers",
    operation_id="listNextBestOffers",
    summary="3.9.4 Customers with their top next best offer and its expected value",
    responses=_answers("A page of customers, or CSV of all"),
)
def offers(
    request: Request,
    offset: str | None = None,
    limit: str | None = None,
    format: str | None = None,
) -> Response:
    principal = current_principal(request)
    if format is not None and format not in ("json", "csv"):
        raise InvalidRequest(f"format is json or csv, not {format!r}")
    accept = request.headers.get("accept", "")
    as_csv = format == "csv" or (format is None and CSV in accept and JSON not in accept)
    start, size = _number(offset, "offset", 0), _number(limit, "limit", 50)
    with session_scope(readonly=True) as session:
        overview = offer_overview(
            session, principal, offset=0 if as_csv else start, limit=None if as_csv else size
        )
    rows = [r.as_row() for r in overview.rows]
    if as_csv:
        return Response(
            csv_text(rows),
            200,
            {"Content-Disposition": 'attachment; filename="next-best-offers.csv"'},
            media_type=CSV,
        )
    return json_response(
        {"total": overview.total, "offset": overview.offset, "limit": size, "customers": rows}
    )
