"""The portal's SLA reports by month (seed 5.1; 3.7.3), thin as the other routes: each
calls one function of :mod:`etomcrm.pages.report_views` in a worker thread and renders
its answer. The same pages serve a customer's users (their own customer only) and the
provider's staff (any customer their role may read)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from etomcrm.db import utcnow
from etomcrm.pages import report_views as views
from etomcrm.pages.routes import PREFIX, PageRoute, in_transaction, render, signed_in

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)
REPORTS = PREFIX + "/customers/{customer_id}/reports"


@router.get(REPORTS)
async def reports(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.reports_page(db, principal, customer_id, now=utcnow()), readonly=True
    )
    return render(request, "reports.html", {"page": page}, principal=principal)


@router.get(REPORTS + "/{period}")
async def report(customer_id: str, period: str, request: Request) -> Response:
    principal = await signed_in(request)

    # Not read-only: the report assesses the month first, as the API's does, so its
    # figures are current (the assessment is stored per product, period and metric).
    page = await in_transaction(lambda db: views.report_page(db, principal, customer_id, period))
    return render(request, "report.html", {"page": page}, principal=principal)


@router.get(REPORTS + "/{period}/report.pdf")
async def report_document(customer_id: str, period: str, request: Request) -> Response:
    principal = await signed_in(request)

    download = await in_transaction(
        lambda db: views.report_download(db, principal, customer_id, period)
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
