"""The portal's tickets and bills (seed 5.1): a customer's trouble tickets (open one for
a site, follow it, confirm or reject its resolution) and its bills (the lines, the PDF
and XML, a dispute of a line). Thin handlers: each calls one function of
:mod:`etomcrm.pages.portal_views` in a worker thread and renders its answer; every
POST carries the session's CSRF token."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from etomcrm.db import utcnow
from etomcrm.pages import portal_views as views
from etomcrm.pages.routes import (
    PREFIX,
    PageRoute,
    checked_form,
    in_transaction,
    render,
    signed_in,
)

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)
CUSTOMER = PREFIX + "/customers/{customer_id}"


def _base(customer_id: str) -> str:
    return f"{PREFIX}/customers/{quote(customer_id, safe='')}"


@router.get(CUSTOMER + "/tickets")
async def tickets(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    number = views.page_number(request.query_params.get("page"))

    page = await in_transaction(
        lambda db: views.tickets_page(db, principal, customer_id, now=utcnow(), number=number),
        readonly=True,
    )
    return render(request, "tickets.html", {"page": page}, principal=principal)


@router.get(CUSTOMER + "/tickets/new")
async def new_ticket(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    site = request.query_params.get("site", "")

    form = await in_transaction(
        lambda db: views.ticket_form(db, principal, customer_id, site), readonly=True
    )
    return render(request, "ticket_new.html", {"form": form}, principal=principal)


@router.post(CUSTOMER + "/tickets")
async def open_ticket(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    data = await checked_form(request)

    outcome = await in_transaction(lambda db: views.open_ticket(db, principal, customer_id, data))
    if isinstance(outcome, str):
        target = f"{_base(customer_id)}/tickets/{quote(outcome, safe='')}"
        return RedirectResponse(target, status_code=303)
    return render(request, "ticket_new.html", {"form": outcome}, status=400, principal=principal)


@router.get(CUSTOMER + "/tickets/{ticket_id}")
async def ticket(customer_id: str, ticket_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.ticket_page(db, principal, customer_id, ticket_id, now=utcnow()),
        readonly=True,
    )
    return render(request, "ticket.html", {"page": page}, principal=principal)


@router.post(CUSTOMER + "/tickets/{ticket_id}/resolution")
async def answer_resolution(customer_id: str, ticket_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    data = await checked_form(request)

    await in_transaction(
        lambda db: views.answer_resolution(db, principal, customer_id, ticket_id, data)
    )
    target = f"{_base(customer_id)}/tickets/{quote(ticket_id, safe='')}"
    return RedirectResponse(target, status_code=303)


@router.get(CUSTOMER + "/requests/new")
async def new_request(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    sent = request.query_params.get("sent", "")

    form = await in_transaction(
        lambda db: views.request_form(db, principal, customer_id, sent), readonly=True
    )
    return render(request, "request_new.html", {"form": form}, principal=principal)


@router.post(CUSTOMER + "/requests")
async def file_request(customer_id: str, request: Request) -> Response:
    """A customer request (3.2.2): classified and routed as the API's POST logs it."""
    principal = await signed_in(request)
    data = await checked_form(request)

    outcome = await in_transaction(lambda db: views.file_request(db, principal, customer_id, data))
    if isinstance(outcome, str):
        target = f"{_base(customer_id)}/requests/new?sent={quote(outcome, safe='')}"
        return RedirectResponse(target, status_code=303)
    return render(request, "request_new.html", {"form": outcome}, status=400, principal=principal)


@router.get(CUSTOMER + "/bills")
async def bills(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    number = views.page_number(request.query_params.get("page"))

    page = await in_transaction(
        lambda db: views.bills_page(db, principal, customer_id, number=number), readonly=True
    )
    return render(request, "bills.html", {"page": page}, principal=principal)


@router.get(CUSTOMER + "/bills/{bill_id}")
async def bill(customer_id: str, bill_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.bill_page(db, principal, customer_id, bill_id), readonly=True
    )
    return render(request, "bill.html", {"page": page}, principal=principal)


@router.get(CUSTOMER + "/bills/{bill_id}/document.{kind}")
async def bill_document(customer_id: str, bill_id: str, kind: str, request: Request) -> Response:
    principal = await signed_in(request)

    # Not read-only: a PDF not rendered yet is rendered and kept on its first download.
    download = await in_transaction(
        lambda db: views.bill_download(db, principal, customer_id, bill_id, kind)
    )
    return Response(
        download.content,
        200,
        {
            "Content-Disposition": f'attachment; filename="{download.filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
        media_type=download.media_type,
    )


@router.post(CUSTOMER + "/bills/{bill_id}/dispute")
async def dispute(customer_id: str, bill_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    data = await checked_form(request)

    outcome = await in_transaction(
        lambda db: views.dispute_line(db, principal, customer_id, bill_id, data)
    )
    if isinstance(outcome, str):
        target = f"{_base(customer_id)}/bills/{quote(bill_id, safe='')}#enquiries"
        return RedirectResponse(target, status_code=303)
    return render(request, "bill.html", {"page": outcome}, status=400, principal=principal)
