"""The marketing routes beyond the TMF resource life cycle."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from etomcrm.api.conventions import (
    ERROR_STATUSES,
    current_principal,
    json_response,
    public_base_url,
)
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.resources import render
from etomcrm.db import session_scope
from etomcrm.marketing import service
from etomcrm.marketing.service import CAMPAIGN_KIND, MARKETING

JSON = "application/json"
ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": "TMF error", "content": {JSON: {"schema": MARKETING.ref("Error")}}}
    for status in ERROR_STATUSES
}

router = APIRouter(tags=["campaign"])


@router.post(
    f"{CAMPAIGN_KIND.path}/{{id}}/distribute",
    operation_id="distributeCampaign",
    summary="3.3.1 Send the campaign and its collateral to the target segment",
    responses={
        200: {
            "description": "Distributed; the campaign with its distribution record",
            "content": {JSON: {"schema": MARKETING.ref("Campaign")}},
        },
        **ERRORS,
    },
    openapi_extra={"parameters": [ID]},
)
async def distribute(request: Request) -> Response:
    principal = current_principal(request)
    campaign_id = request.path_params["id"]

    def unit_of_work() -> dict[str, Any]:
        with session_scope() as session:
            return service.distribute_collateral(session, principal, campaign_id)

    body = await run_in_threadpool(unit_of_work)
    return json_response(render(CAMPAIGN_KIND, body, public_base_url()))


TARGETS_REQUEST = {
    "type": "object",
    "properties": {
        "customer": {
            "type": "array",
            "description": "The targets; without it, the customers of the target segment",
            "items": {"type": "object", "required": ["id"], "properties": {"id": {}}},
        },
        "controlShare": {"type": "number", "minimum": 0, "maximum": 0.5},
        "seed": {"type": "integer"},
    },
}


def _targets_request(payload: Any) -> tuple[list[str] | None, float, int | None]:
    if not isinstance(payload, dict):
        raise InvalidRequest("send a JSON object with customer, controlShare and seed")
    unknown = set(payload) - {"customer", "controlShare", "seed"}
    if unknown:
        raise InvalidRequest(f"unknown attribute(s): {', '.join(sorted(unknown))}")
    customers = payload.get("customer")
    ids: list[str] | None = None
    if customers is not None:
        if not isinstance(customers, list) or not all(
            isinstance(c, dict) and isinstance(c.get("id"), str) for c in customers
        ):
            raise InvalidRequest("customer must be a list of references with an id")
        ids = [c["id"] for c in customers]
    share = payload.get("controlShare", 0)
    if isinstance(share, bool) or not isinstance(share, int | float):
        raise InvalidRequest(f"controlShare must be a number, not {share!r}")
    seed = payload.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidRequest(f"seed must be an integer, not {seed!r}")
    return ids, float(share), seed


@router.post(
    f"{CAMPAIGN_KIND.path}/{{id}}/targets",
    operation_id="setCampaignTargets",
    summary="Set a planned campaign's targets and hold a control group out at random",
    responses={
        200: {
            "description": "The campaign with its targeting record",
            "content": {JSON: {"schema": MARKETING.ref("Campaign")}},
        },
        **ERRORS,
    },
    openapi_extra={
        "parameters": [ID],
        "requestBody": {"required": True, "content": {JSON: {"schema": TARGETS_REQUEST}}},
    },
)
async def targets(request: Request) -> Response:
    principal = current_principal(request)
    campaign_id = request.path_params["id"]
    try:
        payload = await request.json()
    except ValueError:
        raise InvalidRequest("the body is not JSON") from None
    ids, share, seed = _targets_request(payload)

    def unit_of_work() -> dict[str, Any]:
        with session_scope() as session:
            return service.set_campaign_targets(
                session, principal, campaign_id, customer_ids=ids, control_share=share, seed=seed
            )

    body = await run_in_threadpool(unit_of_work)
    return json_response(render(CAMPAIGN_KIND, body, public_base_url()))


@router.get(
    f"{CAMPAIGN_KIND.path}/{{id}}/result",
    operation_id="retrieveCampaignResult",
    summary="3.3.2 What the campaign brought in: responses, leads, wins, cost per lead",
    responses={
        200: {
            "description": "Success",
            "content": {JSON: {"schema": MARKETING.ref("CampaignResult")}},
        },
        **ERRORS,
    },
    openapi_extra={"parameters": [ID]},
)
def result(request: Request) -> Response:
    principal = current_principal(request)
    with session_scope(readonly=True) as session:
        body = service.campaign_results(session, principal, request.path_params["id"])
    return json_response(body)


ROUTERS: list[APIRouter] = [router]
