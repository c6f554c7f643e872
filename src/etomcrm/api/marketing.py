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
