"""Quote operations beyond TMF648's create/read/patch: the negotiation steps as actions.

TMF648's own way to decide is ``PATCH .../quote/{id}`` with ``state``; these routes do
the same through the named process functions, for clients that prefer an action, and
serve the 3.4.2 education brief and record.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from etomcrm.api.conventions import current_principal, json_response, public_base_url, read_json
from etomcrm.api.tmf import error_responses
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.resources import href_for, render
from etomcrm.core.tmf_schemas import PARTY_INTERACTION, QUOTE, JsonDict
from etomcrm.customer_interface.service import PARTY_INTERACTION_KIND
from etomcrm.db import session_scope
from etomcrm.selling import education, quote_print, quotes
from etomcrm.selling.quotes import QUOTE_KIND

JSON = "application/json"
router = APIRouter(tags=["quote"])
_ERRORS = error_responses(QUOTE)
_QUOTE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The quote", "content": {JSON: {"schema": QUOTE.ref("Quote")}}}
}
_PATH = QUOTE_KIND.path + "/{id}"


async def _quote_action(request: Request, quote_id: str, action: Any, *args: Any) -> Response:
    principal = current_principal(request)

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            return action(session, principal, quote_id, *args)  # type: ignore[no-any-return]

    body = await run_in_threadpool(unit_of_work)
    return json_response(render(QUOTE_KIND, body, public_base_url()))


@router.post(
    _PATH + "/submit",
    summary="Mark a quote ready: approved, or pending approval",
    responses={**_QUOTE, **_ERRORS},
)
async def submit(id: str, request: Request) -> Response:
    return await _quote_action(request, id, quotes.submit_quote)


@router.post(
    _PATH + "/approve",
    summary="Approve a pending quote's discount (second person)",
    responses={**_QUOTE, **_ERRORS},
)
async def approve(id: str, request: Request) -> Response:
    return await _quote_action(request, id, quotes.approve_quote)


@router.post(
    _PATH + "/accept",
    summary="Accept an approved quote (the customer)",
    responses={**_QUOTE, **_ERRORS},
)
async def accept(id: str, request: Request) -> Response:
    return await _quote_action(request, id, quotes.accept_quote)


@router.post(
    _PATH + "/reject",
    summary="Reject an approved quote (the customer), saying why",
    responses={**_QUOTE, **_ERRORS},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["reason"],
                        "properties": {"reason": {"type": "string"}},
                    }
                }
            },
        }
    },
)
async def reject(id: str, request: Request) -> Response:
    data = await read_json(request)
    if not isinstance(data, dict) or not isinstance(data.get("reason"), str):
        raise InvalidRequest('send {"reason": "..."}: why the quote is rejected')
    return await _quote_action(request, id, quotes.reject_quote, data["reason"])


@router.post(
    _PATH + "/cancel",
    summary="Withdraw an open quote (the provider)",
    responses={**_QUOTE, **_ERRORS},
)
async def cancel(id: str, request: Request) -> Response:
    return await _quote_action(request, id, quotes.cancel_quote)


@router.get(
    _PATH + "/document",
    response_class=Response,
    summary="The quote (this version) as a PDF for the customer, in English or German",
    responses={200: {"description": "The quote", "content": {"application/pdf": {}}}, **_ERRORS},
)
async def document(id: str, request: Request, language: str = "en") -> Response:
    principal = current_principal(request)
    if language not in quote_print.LANGUAGES:
        raise InvalidRequest(f"language is one of {', '.join(quote_print.LANGUAGES)}")

    def unit_of_work() -> tuple[bytes, str]:
        with session_scope(readonly=True) as session:
            return quote_print.quote_document(session, principal, id, language)

    pdf, filename = await run_in_threadpool(unit_of_work)
    headers = {"Content-Disposition": f'inline; filename="{filename}"'}
    return Response(pdf, 200, headers, media_type="application/pdf")


@router.get(
    _PATH + "/educationBrief",
    summary="3.4.2: lead times, installation effort, prerequisites and risks per site",
    responses={200: {"description": "The education brief"}, **_ERRORS},
)
def education_brief(id: str, request: Request) -> Response:
    principal = current_principal(request)
    with session_scope(readonly=True) as session:
        brief = education.education_brief(session, id, principal=principal)
    return json_response(brief)


@router.post(
    _PATH + "/education",
    summary="3.4.2: record that the education brief was presented to the customer",
    status_code=201,
    responses={
        201: {
            "description": "The partyInteraction recorded (@type CustomerEducation)",
            "content": {JSON: {"schema": PARTY_INTERACTION.ref("PartyInteraction")}},
        },
        **_ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["presentedTo", "channel"],
                        "properties": {
                            "presentedTo": {"type": "string"},
                            "channel": {"type": "string"},
                            "note": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def record_education(id: str, request: Request) -> Response:
    principal = current_principal(request)
    quote_id = id
    data = await read_json(request)
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) for k in ("presentedTo", "channel")
    ):
        raise InvalidRequest('send {"presentedTo": "...", "channel": "meeting", "note": "..."}')
    note = data.get("note", "")
    if not isinstance(note, str):
        raise InvalidRequest("note must be text")

    def unit_of_work() -> JsonDict:
        with session_scope() as session:
            return education.record_education(
                session,
                principal,
                quote_id,
                presented_to=data["presentedTo"],
                channel=data["channel"],
                note=note,
            )

    body = await run_in_threadpool(unit_of_work)
    base = public_base_url()
    return json_response(
        render(PARTY_INTERACTION_KIND, body, base),
        201,
        {"Location": href_for(PARTY_INTERACTION_KIND, base, body["id"])},
    )
