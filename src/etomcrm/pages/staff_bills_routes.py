"""The staff bill pages' routes (issue 11): a bill with its lines, documents, payments,
dunning and enquiries; the answers to an enquiry (credit note proposed, approved by a
second person, or the enquiry rejected); and billing's work lists (credit notes
awaiting approval, dunning cases, billing's tasks). Thin handlers: each calls one
function of :mod:`etomcrm.pages.staff_bill_views` in a worker thread and renders its
answer; every POST carries the session's CSRF token."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from etomcrm.pages import staff_bill_views as views
from etomcrm.pages.routes import PREFIX, PageRoute, checked_form, in_transaction, render, signed_in

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)
BILLING = PREFIX + "/billing"
BILLS = BILLING + "/bills"
ENQUIRIES = BILLING + "/enquiries"


def bill_href(bill_id: str, anchor: str = "") -> str:
    return f"{BILLS}/{quote(bill_id, safe='')}{anchor}"


def _answered(request: Request, outcome: views.BillPage | str, anchor: str) -> Response:
    """To the bill after a post that went through; the page again (400) when refused."""
    if isinstance(outcome, str):
        return RedirectResponse(bill_href(outcome, anchor), status_code=303)
    principal = request.scope.get("etomcrm.principal")
    return render(request, "staff_bill.html", {"page": outcome}, status=400, principal=principal)


@router.get(BILLS + "/{bill_id}")
async def bill(bill_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(lambda db: views.bill_page(db, principal, bill_id), readonly=True)
    return render(request, "staff_bill.html", {"page": page}, principal=principal)


@router.get(BILLS + "/{bill_id}/document.{kind}")
async def bill_document(bill_id: str, kind: str, request: Request) -> Response:
    principal = await signed_in(request)

    # Not read-only: a PDF not rendered yet is rendered and kept on its first download.
    download = await in_transaction(lambda db: views.bill_download(db, principal, bill_id, kind))
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


@router.post(BILLS + "/{bill_id}/enquiries")
async def log_enquiry(bill_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    data = await checked_form(request)

    outcome = await in_transaction(lambda db: views.log_enquiry(db, principal, bill_id, data))
    return _answered(request, outcome, "#enquiries")


@router.post(ENQUIRIES + "/{enquiry_id}/credit-note")
async def propose(enquiry_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    data = await checked_form(request)

    outcome = await in_transaction(
        lambda db: views.propose_credit_note(db, principal, enquiry_id, data)
    )
    return _answered(request, outcome, "#enquiries")


@router.post(ENQUIRIES + "/{enquiry_id}/approval")
async def approve(enquiry_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    await checked_form(request)

    bill_id = await in_transaction(lambda db: views.approve_credit_note(db, principal, enquiry_id))
    return RedirectResponse(bill_href(bill_id, "#enquiries"), status_code=303)


@router.post(ENQUIRIES + "/{enquiry_id}/rejection")
async def reject(enquiry_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    data = await checked_form(request)

    outcome = await in_transaction(lambda db: views.reject_enquiry(db, principal, enquiry_id, data))
    return _answered(request, outcome, "#enquiries")


@router.get(BILLING + "/approvals")
async def approvals(request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(lambda db: views.approvals_page(db, principal), readonly=True)
    return render(request, "billing_approvals.html", {"page": page}, principal=principal)


@router.get(BILLING + "/dunning")
async def dunning_cases(request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(lambda db: views.dunning_page(db, principal), readonly=True)
    return render(request, "billing_dunning.html", {"page": page}, principal=principal)


@router.get(BILLING + "/tasks")
async def tasks(request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(lambda db: views.tasks_page(db, principal, PREFIX), readonly=True)
    return render(request, "billing_tasks.html", {"page": page}, principal=principal)
