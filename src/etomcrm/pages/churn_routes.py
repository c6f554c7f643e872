"""The analyst's churn page's routes (seed 5.3): ``/ui/analytics/churn`` and its CSV
export. Thin handlers: each calls one function of :mod:`etomcrm.pages.churn_views`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from etomcrm.analytics.export import csv_text
from etomcrm.db import utcnow
from etomcrm.pages import churn_views as views
from etomcrm.pages.routes import PREFIX, PageRoute, in_transaction, render, signed_in

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)
CHURN = PREFIX + "/analytics/churn"


@router.get(CHURN)
async def churn_page(request: Request, offset: int = 0) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.churn_page(db, principal, utcnow(), offset), readonly=True
    )
    return render(request, "churn.html", {"page": page}, principal=principal)


@router.get(CHURN + ".csv")
async def churn_export(request: Request) -> Response:
    principal = await signed_in(request)

    rows = await in_transaction(lambda db: views.churn_csv(db, principal, utcnow()), readonly=True)
    return Response(
        csv_text(rows),
        200,
        {"Content-Disposition": 'attachment; filename="churn-scores.csv"'},
        media_type="text/csv",
    )
