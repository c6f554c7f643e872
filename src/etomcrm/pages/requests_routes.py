"""The staff's customer requests (3.2.2, issue 11): the queue of the person's role and
taking a request up. Thin handlers: each calls one function of
:mod:`etomcrm.pages.request_views` in a worker thread; the POST carries the CSRF token."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from etomcrm.core.errors import Forbidden
from etomcrm.pages import request_views
from etomcrm.pages.routes import (
    PREFIX,
    PageRoute,
    checked_form,
    in_transaction,
    render,
    signed_in,
)

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)
REQUESTS = PREFIX + "/requests"


@router.get(REQUESTS)
async def customer_requests(request: Request) -> Response:
    principal = await signed_in(request)
    if principal.is_customer:
        raise Forbidden("a customer's user sends requests from the portal")

    page = await in_transaction(
        lambda db: request_views.requests_page(db, principal), readonly=True
    )
    return render(request, "requests.html", {"page": page}, principal=principal)


@router.post(REQUESTS + "/{request_id}/take-up")
async def take_up(request_id: str, request: Request) -> Response:
    """Staff take a request up (open → in progress) and go on to its customer."""
    principal = await signed_in(request)
    await checked_form(request)

    customer_id = await in_transaction(lambda db: request_views.take_up(db, principal, request_id))
    target = f"{PREFIX}/customers/{quote(customer_id, safe='')}" if customer_id else REQUESTS
    return RedirectResponse(target, status_code=303)
