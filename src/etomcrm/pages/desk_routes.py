"""The staff ticket desk's routes (issue 11): the open tickets by time left on their SLA
clock, a ticket's page, and its actions (take up, resolve, message the customer).
Thin handlers: each calls one function of :mod:`etomcrm.pages.desk_views` in a worker
thread and renders its answer; every POST carries the session's CSRF token."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from etomcrm.db import utcnow
from etomcrm.pages import desk_views as views
from etomcrm.pages.routes import (
    PREFIX,
    PageRoute,
    checked_form,
    in_transaction,
    render,
    signed_in,
)

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)
DESK = PREFIX + "/desk/tickets"


def ticket_href(ticket_id: str) -> str:
    return f"{DESK}/{quote(ticket_id, safe='')}"


@router.get(DESK)
async def desk(request: Request) -> Response:
    principal = await signed_in(request)
    params = dict(request.query_params)

    page = await in_transaction(
        lambda db: views.desk_page(db, principal, params, now=utcnow()), readonly=True
    )
    status = 400 if page.errors else 200
    return render(request, "desk_tickets.html", {"page": page}, status=status, principal=principal)


@router.get(DESK + "/{ticket_id}")
async def ticket(ticket_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.ticket_page(db, principal, ticket_id, now=utcnow()), readonly=True
    )
    return render(request, "desk_ticket.html", {"page": page}, principal=principal)


@router.post(DESK + "/{ticket_id}/take-up")
async def take_up(ticket_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    await checked_form(request)

    await in_transaction(lambda db: views.take_up(db, principal, ticket_id, now=utcnow()))
    return RedirectResponse(ticket_href(ticket_id), status_code=303)


@router.post(DESK + "/{ticket_id}/resolve")
async def resolve(ticket_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    data = await checked_form(request)

    refused = await in_transaction(
        lambda db: views.resolve(db, principal, ticket_id, data, now=utcnow())
    )
    if refused is None:
        return RedirectResponse(ticket_href(ticket_id), status_code=303)
    return render(request, "desk_ticket.html", {"page": refused}, status=400, principal=principal)


@router.post(DESK + "/{ticket_id}/message")
async def message(ticket_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    data = await checked_form(request)

    refused = await in_transaction(
        lambda db: views.message_customer(db, principal, ticket_id, data, now=utcnow())
    )
    if refused is None:
        return RedirectResponse(ticket_href(ticket_id) + "#notes", status_code=303)
    return render(request, "desk_ticket.html", {"page": refused}, status=400, principal=principal)
