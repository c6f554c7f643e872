"""The order tracker's routes (issue 11, seed 3.5.4): the staff's list of orders and one
order per site, the portal's orders of a customer, and a case's flow trace. Thin as the
others: each finds the caller, calls one function of :mod:`etomcrm.pages.order_views` or
:mod:`etomcrm.pages.trace_views` in a worker thread, and renders its answer."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from etomcrm.db import utcnow
from etomcrm.pages import order_views, trace_views
from etomcrm.pages.routes import (
    PREFIX,
    PageRoute,
    checked_form,
    in_transaction,
    render,
    signed_in,
)

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)
# The list's query parameters; anything else is ignored.
LIST_PARAMETERS = ("state", "jeopardy", "customer", "page", "size")


@router.get(PREFIX + "/orders")
async def orders(request: Request) -> Response:
    principal = await signed_in(request)
    query = {name: request.query_params.get(name, "") for name in LIST_PARAMETERS}

    page = await in_transaction(
        lambda db: order_views.orders_page(db, principal, query, now=utcnow()), readonly=True
    )
    return render(
        request,
        "orders.html",
        {"page": page},
        status=400 if page.errors else 200,
        principal=principal,
    )


@router.get(PREFIX + "/orders/{order_id}")
async def order(order_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    track = await in_transaction(
        lambda db: order_views.order_track(db, principal, order_id, now=utcnow()), readonly=True
    )
    return render(request, "order.html", {"page": track}, principal=principal)


@router.get(PREFIX + "/trace")
async def trace(request: Request) -> Response:
    principal = await signed_in(request)
    case_id = request.query_params.get("case", "")

    page = await in_transaction(
        lambda db: trace_views.trace_page(db, principal, case_id), readonly=True
    )
    status = {"long": 400, "none": 404}.get(page.problem or "", 200)
    return render(request, "trace.html", {"page": page}, status=status, principal=principal)


@router.get(PREFIX + "/customers/{customer_id}/orders")
async def customer_orders(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: order_views.customer_orders(db, principal, customer_id, now=utcnow()),
        readonly=True,
    )
    return render(request, "portal_orders.html", {"page": page}, principal=principal)


@router.get(PREFIX + "/customers/{customer_id}/orders/{order_id}")
async def customer_order(customer_id: str, order_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    track = await in_transaction(
        lambda db: order_views.customer_order(db, principal, customer_id, order_id, now=utcnow()),
        readonly=True,
    )
    return render(request, "portal_order.html", {"page": track}, principal=principal)


@router.post(PREFIX + "/customers/{customer_id}/orders/{order_id}/acceptance")
async def accept_order(customer_id: str, order_id: str, request: Request) -> Response:
    """The customer accepts what its completed order delivered (3.5.5)."""
    principal = await signed_in(request)
    data = await checked_form(request)

    await in_transaction(
        lambda db: order_views.accept_order(db, principal, customer_id, order_id, data)
    )
    target = f"{PREFIX}/customers/{quote(customer_id, safe='')}/orders/{quote(order_id, safe='')}"
    return RedirectResponse(target, status_code=303)
