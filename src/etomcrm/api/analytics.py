"""Analytical CRM (seed 5.3) over HTTP: contact statistics (3.2.3), customer
profitability, and the import of history. Not a TMF Open API; staff only.

- ``GET /etomcrm/v1/analytics/contactStatistics?groupBy=channel|reason|customer|total
  &from=YYYY-MM-DD&to=YYYY-MM-DD&customerId=...`` — volumes, response and handling
  times against the targets, first-contact resolution;
- ``GET /etomcrm/v1/analytics/customerProfitability?groupBy=customer|segment|month|
  customerMonth&from=YYYY-MM&to=YYYY-MM&customerId=...&segment=...`` — billed revenue,
  cost to serve and profit (EUR);
- ``POST /etomcrm/v1/analytics/historyImport`` with a CSV body (``text/csv``, the
  format of README "Import of history") — 201 with the rows imported, or 400 naming
  every bad row by its line number, nothing imported.

- ``GET /etomcrm/v1/analytics/churnModel`` — the churn model in use: its features,
  coefficients, calibration and out-of-fold evaluation (404 before the first fit);
- ``POST /etomcrm/v1/analytics/churnModel`` with ``{"folds": 5, "seed": 0}`` (both
  optional; analyst or admin) — fit it now: 201 with the new version, 400 for bad input
  or too little history;
- ``GET /etomcrm/v1/analytics/churnScores?offset=0&limit=50`` — the customers ranked by
  churn score with the features that pushed each score up and down.
- ``GET /etomcrm/v1/analytics/campaignSuccess?campaignId=...`` — per campaign, the
  figures of :mod:`etomcrm.analytics.campaigns`; ``.../campaignSuccess/{id}/customers
  ?figure=won`` the customers behind one of them (admin, analyst, marketing);
- ``POST /etomcrm/v1/analytics/campaignPlan`` — a target list from a segment and a
  score (:mod:`etomcrm.retention.campaign_plans`).
- ``GET /etomcrm/v1/analytics/segments`` — the computed segments (3.9.2) with their
  customers and figures per month; ``.../segments/{segment}/customers?offset=&limit=``
  — the customers of one segment (drill-down);
- ``GET /etomcrm/v1/analytics/segmentTrends?segment=&metric=revenue|usage|contacts``
  — per segment and month, with the changes that stand out;
- ``GET /etomcrm/v1/analytics/segmentForecast?segment=&metric=revenue|usage&months=3``
  — the next months' revenue and traffic with 95 % prediction intervals.

Every report answers JSON, or CSV with ``format=csv`` (or ``Accept: text/csv``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from etomcrm.analytics import churn, store
from etomcrm.analytics.campaigns import campaign_success, figure_customers
from etomcrm.analytics.contacts import contact_statistics
from etomcrm.analytics.export import csv_text
from etomcrm.analytics.history import import_history_text
from etomcrm.analytics.profitability import customer_profitability
from etomcrm.analytics.trends import (
    SEGMENT_READERS,
    segment_forecasts,
    segment_members,
    segment_overview,
    segment_trends,
)
from etomcrm.api.conventions import current_principal, json_response
from etomcrm.api.tmf import error_responses
from etomcrm.config import get_settings
from etomcrm.core.errors import (
    Forbidden,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from etomcrm.core.tmf_schemas import PARTY_INTERACTION
from etomcrm.db import session_scope, utcnow
from etomcrm.retention.campaign_plans import plan_campaign
from etomcrm.security.service import Principal, Role

BASE = "/etomcrm/v1/analytics"
CSV = "text/csv"
JSON = "application/json"
READERS = frozenset(
    {Role.ADMIN, Role.ANALYST, Role.MARKETING, Role.SALES, Role.SUPPORT, Role.BILLING}
)
IMPORTERS = frozenset({Role.ADMIN, Role.ANALYST})
CHURN_READERS = frozenset({Role.ADMIN, Role.ANALYST, Role.MARKETING, Role.SALES})
CHURN_FITTERS = frozenset({Role.ADMIN, Role.ANALYST})
FIT_OPTIONS = frozenset({"folds", "seed"})
_DECIMAL = {"type": ["string", "null"], "description": "A decimal, null without data"}
CONTACT_ROW = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        **{
            k: {"type": "integer"}
            for k in (
                "contacts",
                "inbound",
                "outbound",
                "responded",
                "handled",
                "inboundEnded",
                "firstContactResolved",
            )
        },
        **{
            k: _DECIMAL
            for k in (
                "meanResponseMinutes",
                "responseWithinTarget",
                "meanHandlingMinutes",
                "handlingWithinTarget",
                "firstContactResolution",
            )
        },
    },
}
PROFIT_ROW = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        **{
            k: {"type": "integer"}
            for k in ("customers", "sitesInstalled", "tickets", "dunningCases")
        },
        **{
            k: {"type": "string"}
            for k in (
                "revenue",
                "slaCredits",
                "installationCost",
                "routerCost",
                "repairHours",
                "ticketCost",
                "dunningCost",
                "costToServe",
                "profit",
            )
        },
    },
}


def _report(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"groups": {"type": "array", "items": row}, "total": row},
    }


def _answers(schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "The report, as JSON or CSV",
            "content": {JSON: {"schema": schema}, CSV: {"schema": {"type": "string"}}},
        },
        **error_responses(PARTY_INTERACTION),
    }


router = APIRouter(tags=["analytics"])


def _staff(request: Request, allowed: frozenset[Role]) -> Principal:
    principal = current_principal(request)
    if principal.role not in allowed:
        raise Forbidden(
            f"the analytical reports are for the roles {', '.join(sorted(allowed))}, "
            f"not {principal.role}"
        )
    return principal


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a date such as 2026-01-31, not {value!r}") from None


def _month(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(f"{value}-01")
    except ValueError:
        raise InvalidRequest(f"{name} must be a month such as 2026-01, not {value!r}") from None


def _wants_csv(request: Request, format: str | None) -> bool:
    if format is not None and format not in ("json", "csv"):
        raise InvalidRequest(f"format is json or csv, not {format!r}")
    if format is not None:
        return format == "csv"
    accept = request.headers.get("accept", "")
    return CSV in accept and JSON not in accept


def _csv_response(rows: Sequence[dict[str, Any]], name: str) -> Response:
    return Response(
        csv_text(rows),
        200,
        {"Content-Disposition": f'attachment; filename="{name}.csv"'},
        media_type=CSV,
    )


@router.get(
    BASE + "/contactStatistics",
    operation_id="retrieveContactStatistics",
    summary="3.2.3 contact volumes, response and handling times, first-contact resolution",
    responses=_answers(_report(CONTACT_ROW)),
)
def contacts(
    request: Request,
    groupBy: str = "channel",
    customerId: str | None = None,
    format: str | None = None,
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
) -> Response:
    _staff(request, READERS)
    as_csv = _wants_csv(request, format)
    start, end = _day(from_, "from"), _day(to, "to")
    store.catch_up_all()  # the figures include every change committed before now
    with session_scope(readonly=True) as session:
        report = contact_statistics(
            session, by=groupBy, start=start, end=end, customer_id=customerId
        )
    rows = [g.as_row() for g in report.groups]
    if as_csv:
        return _csv_response([*rows, report.total.as_row()], f"contacts-by-{report.grouping}")
    return json_response(
        {
            "groupBy": report.grouping,
            "from": start.isoformat() if start else None,
            "to": end.isoformat() if end else None,
            "responseTargetMinutes": report.response_target_minutes,
            "handlingTargetMinutes": report.handling_target_minutes,
            "groups": rows,
            "total": report.total.as_row(),
        }
    )


@router.get(
    BASE + "/customerProfitability",
    operation_id="retrieveCustomerProfitability",
    summary="Billed revenue minus cost to serve per customer, segment or month (EUR)",
    responses=_answers(_report(PROFIT_ROW)),
)
def profitability(
    request: Request,
    groupBy: str = "customer",
    customerId: str | None = None,
    segment: str | None = None,
    format: str | None = None,
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
) -> Response:
    _staff(request, READERS)
    as_csv = _wants_csv(request, format)
    start, end = _month(from_, "from"), _month(to, "to")
    store.catch_up_all()  # the figures include every change committed before now
    with session_scope(readonly=True) as session:
        report = customer_profitability(
            session, by=groupBy, start=start, end=end, customer_id=customerId, segment=segment
        )
    rows = [g.as_row() for g in report.groups]
    if as_csv:
        return _csv_response([*rows, report.total.as_row()], f"profitability-by-{report.grouping}")
    return json_response(
        {
            "groupBy": report.grouping,
            "from": report.start_month,
            "to": report.end_month,
            "currency": report.currency,
            "costRates": report.rates.as_dict(),
            "groups": rows,
            "total": report.total.as_row(),
        }
    )


IMPORT_ANSWER = {
    "type": "object",
    "properties": {
        "importId": {"type": "string"},
        "rows": {"type": "integer"},
        "linkedToCustomers": {"type": "integer"},
    },
}


@router.post(
    BASE + "/historyImport",
    operation_id="importHistory",
    summary="Import a provider's history (customers, contracts, outcomes) from CSV",
    status_code=201,
    responses={
        201: {"description": "Imported", "content": {JSON: {"schema": IMPORT_ANSWER}}},
        **error_responses(PARTY_INTERACTION),
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {CSV: {"schema": {"type": "string"}}}}
    },
)
async def history_import(request: Request, name: str = "upload.csv") -> Response:
    principal = _staff(request, IMPORTERS)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != CSV:
        raise UnsupportedMediaType(f"send the history as {CSV}, not {media or 'nothing'}")
    limit = get_settings().analytics_history_max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the file has {declared} bytes; import it with the CLI")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the file exceeds {limit} bytes; import it with the CLI")
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the file is not UTF-8 (byte {exc.start})") from None

    def unit_of_work() -> dict[str, Any]:
        with session_scope() as session:
            result = import_history_text(session, text, file_name=name, imported_by=principal.name)
            return result.as_dict()

    return json_response(await run_in_threadpool(unit_of_work), 201)


MODEL_ANSWER = {
    "type": "object",
    "properties": {
        "version": {"type": "integer"},
        "trainedAt": {"type": "string", "format": "date-time"},
        "customers": {"type": "integer"},
        "churned": {"type": "integer"},
        "usable": {"type": "boolean"},
        "features": {"type": "array", "items": {"type": "object"}},
        "intercept": {"type": "number"},
        "calibration": {"type": "object"},
        "evaluation": {"type": "object"},
    },
}


def _model_answer(schema: dict[str, Any], status: int = 200) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": "The churn model", "content": {JSON: {"schema": schema}}},
        **error_responses(PARTY_INTERACTION),
    }


@router.get(
    BASE + "/churnModel",
    operation_id="retrieveChurnModel",
    summary="The churn model in use: coefficients, calibration, out-of-fold evaluation",
    responses=_model_answer(MODEL_ANSWER),
)
def churn_model(request: Request) -> Response:
    _staff(request, CHURN_READERS)
    with session_scope(readonly=True) as session:
        model = churn.current_model(session)
        if model is None:
            raise NotFound(
                "no churn model fitted yet: POST to this path or etomcrm analytics churn fit"
            )
        return json_response(churn.model_summary(model))


def _fit_options(raw: bytes) -> tuple[int, int]:
    if not raw.strip():
        return churn.DEFAULT_FOLDS, 0
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(
            'send the fit\'s options as a JSON object, e.g. {"folds": 5}'
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest('send the fit\'s options as a JSON object, e.g. {"folds": 5}')
    unknown = sorted(set(body) - FIT_OPTIONS)
    if unknown:
        raise InvalidRequest(f"a fit takes folds and seed, not {', '.join(unknown)}")
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise InvalidRequest(f"seed must be a whole number from 0 to 2^32-1, not {seed!r}")
    return body.get("folds", churn.DEFAULT_FOLDS), seed


@router.post(
    BASE + "/churnModel",
    operation_id="fitChurnModel",
    summary="Fit the churn model now on the history at hand (analyst, admin)",
    status_code=201,
    responses=_model_answer(MODEL_ANSWER, 201),
)
async def fit_churn_model(request: Request) -> Response:
    principal = _staff(request, CHURN_FITTERS)
    folds, seed = _fit_options(await request.body())

    def unit_of_work() -> dict[str, Any]:
        with session_scope() as session:
            model = churn.fit(session, utcnow(), trained_by=principal.name, folds=folds, seed=seed)
            return churn.model_summary(model)

    return json_response(await run_in_threadpool(unit_of_work), 201)


SCORES_ANSWER = {
    "type": "object",
    "properties": {
        "modelVersion": {"type": "integer"},
        "total": {"type": "integer"},
        "offset": {"type": "integer"},
        "scores": {"type": "array", "items": {"type": "object"}},
    },
}


@router.get(
    BASE + "/churnScores",
    operation_id="listChurnScores",
    summary="Customers ranked by churn score, with the features that pushed each score",
    responses=_answers(SCORES_ANSWER),
)
def churn_scores(
    request: Request, offset: int = 0, limit: int = 50, format: str | None = None
) -> Response:
    _staff(request, CHURN_READERS)
    as_csv = _wants_csv(request, format)
    with session_scope(readonly=True) as session:
        ranked = churn.ranking(session, utcnow(), offset=offset, limit=limit)
        version = ranked.model.version
    if as_csv:
        return _csv_response([r.as_csv_row() for r in ranked.rows], "churn-scores")
    return json_response(
        {
            "modelVersion": version,
            "total": ranked.total,
            "offset": ranked.offset,
            "scores": [r.as_row() for r in ranked.rows],
        }
    )


CAMPAIGN_READERS = frozenset({Role.ADMIN, Role.ANALYST, Role.MARKETING})
_RATE = {"type": ["string", "null"], "description": "A decimal of 4 places, null without data"}
SUCCESS_ROW = {
    "type": "object",
    "properties": {
        **{k: {"type": ["string", "null"]} for k in ("campaignId", "name", "status")},
        **{
            k: {"type": "integer"}
            for k in (
                "sent",
                "responses",
                "leads",
                "opportunities",
                "won",
                "wonCustomers",
                "treated",
                "treatedConverted",
                "control",
                "controlConverted",
            )
        },
        **{
            k: {"type": ["string", "null"], "description": "EUR"}
            for k in ("billedRevenue", "budget", "costPerLead", "costPerWonCustomer")
        },
        **{
            k: _RATE
            for k in (
                "treatedConversion",
                "controlConversion",
                "uplift",
                "upliftLower95",
                "upliftUpper95",
            )
        },
        "controlGroup": {"type": "string", "enum": ["kept", "no control group kept"]},
    },
}
PLAN_REQUEST = {
    "type": "object",
    "required": ["segment", "scoreKind", "threshold"],
    "properties": {
        "segment": {"type": "string"},
        "scoreKind": {"type": "string", "enum": ["churn", "upsell"]},
        "threshold": {"type": "integer", "minimum": 0, "maximum": 100},
        "controlShare": {"type": "number", "minimum": 0, "maximum": 0.5},
        "seed": {"type": "integer"},
        "campaignId": {"type": "string", "description": "Make the list its targets"},
    },
}


@router.get(
    BASE + "/campaignSuccess",
    operation_id="retrieveCampaignSuccess",
    summary="Per campaign: responses, leads, wins, billed revenue, cost per lead, uplift",
    responses=_answers(
        {"type": "object", "properties": {"campaigns": {"type": "array", "items": SUCCESS_ROW}}}
    ),
)
def campaign_success_report(
    request: Request, campaignId: str | None = None, format: str | None = None
) -> Response:
    _staff(request, CAMPAIGN_READERS)
    as_csv = _wants_csv(request, format)
    with session_scope(readonly=True) as session:
        rows = [r.as_row() for r in campaign_success(session, campaignId)]
    if as_csv:
        return _csv_response(rows, "campaign-success")
    settings = get_settings()
    return json_response(
        {
            "conversionDays": settings.analytics_campaign_conversion_days,
            "attributionMonths": settings.analytics_campaign_attribution_months,
            "interval": "95 % Newcombe hybrid score (method 10)",
            "campaigns": rows,
        }
    )


@router.get(
    BASE + "/campaignSuccess/{campaignId}/customers",
    operation_id="listCampaignFigureCustomers",
    summary="The customers behind one figure of a campaign (drill-down)",
    responses=_answers({"type": "object"}),
)
def campaign_figure_customers(
    request: Request, campaignId: str, figure: str = "won", format: str | None = None
) -> Response:
    _staff(request, CAMPAIGN_READERS)
    as_csv = _wants_csv(request, format)
    with session_scope(readonly=True) as session:
        found = figure_customers(session, campaignId, figure)
    rows = [{"customerId": c, "name": n, "segment": s} for c, n, s in found]
    if as_csv:
        return _csv_response(rows, f"campaign-{figure}")
    return json_response({"campaignId": campaignId, "figure": figure, "customers": rows})


def _plan_request(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidRequest("send a JSON object with segment, scoreKind and threshold")
    unknown = set(payload) - set(PLAN_REQUEST["properties"])
    if unknown:
        raise InvalidRequest(f"unknown attribute(s): {', '.join(sorted(unknown))}")
    missing = [k for k in ("segment", "scoreKind", "threshold") if k not in payload]
    if missing:
        raise InvalidRequest(f"missing: {', '.join(missing)}")
    if not isinstance(payload["segment"], str) or not isinstance(payload["scoreKind"], str):
        raise InvalidRequest("segment and scoreKind are texts")
    seed, campaign = payload.get("seed"), payload.get("campaignId")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidRequest(f"seed must be an integer, not {seed!r}")
    if campaign is not None and not isinstance(campaign, str):
        raise InvalidRequest("campaignId is a text")
    return {
        "segment": payload["segment"],
        "score_kind": payload["scoreKind"],
        "threshold": payload["threshold"],
        "control_share": payload.get("controlShare", 0.0),
        "seed": seed,
        "campaign_id": campaign,
    }


@router.post(
    BASE + "/campaignPlan",
    operation_id="planCampaign",
    summary="A target list from a segment and a churn or upsell score, with its expected "
    "response and control group (optionally made a planned campaign's targets)",
    responses={
        200: {"description": "The plan", "content": {JSON: {"schema": {"type": "object"}}}},
        **error_responses(PARTY_INTERACTION),
    },
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": PLAN_REQUEST}}}},
)
async def campaign_plan(request: Request) -> Response:
    principal = _staff(request, CAMPAIGN_READERS)
    try:
        payload = await request.json()
    except ValueError:
        raise InvalidRequest("the body is not JSON") from None
    arguments = _plan_request(payload)

    def unit_of_work() -> dict[str, Any]:
        with session_scope() as session:
            plan = plan_campaign(session, principal, today=utcnow().date(), **arguments)
            return plan.as_dict()

    return json_response(await run_in_threadpool(unit_of_work))


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


_TEXT = {"type": "string"}
_NUMBER_TEXT = {"type": ["string", "null"], "description": "A decimal"}
SEGMENT_ROW = _object(
    segment=_TEXT,
    customers={"type": "integer"},
    revenuePerMonth=_TEXT,
    usagePerMonth=_TEXT,
    contactsPerMonth=_TEXT,
    ticketsPerMonth=_TEXT,
    dunningCases={"type": "integer"},
)
SEGMENTS_ANSWER = _object(
    window=_object(**{"from": _TEXT, "to": _TEXT}),
    rule={"type": "object"},
    segments={"type": "array", "items": SEGMENT_ROW},
)
MEMBERS_ANSWER = _object(
    segment=_TEXT,
    total={"type": "integer"},
    offset={"type": "integer"},
    limit={"type": "integer"},
    customers={"type": "array", "items": {"type": "object"}},
)
TRENDS_ANSWER = _object(
    lastMonth=_TEXT,
    standoutK={"type": "number"},
    series={"type": "array", "items": {"type": "object"}},
)
FORECAST_ANSWER = _object(
    lastMonth=_TEXT,
    months={"type": "integer"},
    method=_TEXT,
    level={"type": "number"},
    forecasts={"type": "array", "items": {"type": "object"}},
)


@router.get(
    BASE + "/segments",
    operation_id="listSegments",
    summary="3.9.2 the computed segments with their customers and figures per month",
    responses=_answers(SEGMENTS_ANSWER),
)
def segments(request: Request, format: str | None = None) -> Response:
    _staff(request, SEGMENT_READERS)
    as_csv = _wants_csv(request, format)
    with session_scope(readonly=True) as session:
        overview = segment_overview(session)
    rows = [s.as_row() for s in overview.segments]
    if as_csv:
        return _csv_response(rows, "segments")
    return json_response(
        {
            "window": {"from": overview.first_month, "to": overview.last_month},
            "rule": overview.rule.as_dict(),
            "segments": rows,
        }
    )


@router.get(
    BASE + "/segments/{segment}/customers",
    operation_id="listSegmentCustomers",
    summary="The customers of one segment, a page at a time, with their figures",
    responses=_answers(MEMBERS_ANSWER),
)
def segment_customers(
    segment: str, request: Request, offset: int = 0, limit: int = 50, format: str | None = None
) -> Response:
    _staff(request, SEGMENT_READERS)
    as_csv = _wants_csv(request, format)
    with session_scope(readonly=True) as session:
        page = segment_members(session, segment, offset=offset, limit=limit)
    rows = [m.as_row() for m in page.members]
    if as_csv:
        return _csv_response(rows, "segment-customers")
    return json_response(
        {
            "segment": page.segment,
            "total": page.total,
            "offset": page.offset,
            "limit": page.limit,
            "customers": rows,
        }
    )


@router.get(
    BASE + "/segmentTrends",
    operation_id="retrieveSegmentTrends",
    summary="Revenue, usage and contacts per segment and month, with the standouts",
    responses=_answers(TRENDS_ANSWER),
)
def trends(
    request: Request,
    segment: str | None = None,
    metric: str | None = None,
    format: str | None = None,
) -> Response:
    _staff(request, SEGMENT_READERS)
    as_csv = _wants_csv(request, format)
    with session_scope(readonly=True) as session:
        report = segment_trends(session, segment=segment, metric=metric)
    if as_csv:
        return _csv_response(report.rows(), "segment-trends")
    return json_response(
        {
            "lastMonth": report.last_month,
            "standoutK": report.k,
            "series": [s.as_dict() for s in report.series],
        }
    )


@router.get(
    BASE + "/segmentForecast",
    operation_id="retrieveSegmentForecast",
    summary="Revenue and usage per segment for the next months, with prediction intervals",
    responses=_answers(FORECAST_ANSWER),
)
def forecast(
    request: Request,
    segment: str | None = None,
    metric: str | None = None,
    months: int = 3,
    format: str | None = None,
) -> Response:
    _staff(request, SEGMENT_READERS)
    as_csv = _wants_csv(request, format)
    with session_scope(readonly=True) as session:
        report = segment_forecasts(session, segment=segment, metric=metric, horizon=months)
    if as_csv:
        return _csv_response(report.rows(), "segment-forecast")
    return json_response(
        {
            "lastMonth": report.last_month,
            "months": report.horizon,
            "method": report.method,
            "level": report.level,
            "minimumMonths": report.min_months,
            "forecasts": [f.as_dict() for f in report.forecasts],
        }
    )
