"""Analytical CRM's campaign pages (seed 5.3, issue 13): campaign success with the uplift
intervals, the customers behind a figure, the CSV, and the planning form. Thin handlers:
each calls one function of :mod:`etomcrm.pages.campaign_views` in a worker thread; the
planning form's POST carries the CSRF token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from etomcrm.db import utcnow
from etomcrm.pages import campaign_views as views
from etomcrm.pages.routes import (
    PREFIX,
    PageRoute,
    checked_form,
    in_transaction,
    render,
    signed_in,
)

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)
CAMPAIGNS = PREFIX + "/analytics/campaigns"


@router.get(CAMPAIGNS)
async def campaigns(request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(lambda db: views.campaigns_page(db, principal), readonly=True)
    return render(request, "analytics_campaigns.html", {"page": page}, principal=principal)


@router.get(CAMPAIGNS + ".csv")
async def campaigns_csv(request: Request) -> Response:
    principal = await signed_in(request)

    text = await in_transaction(lambda db: views.campaigns_csv(db, principal), readonly=True)
    return Response(
        text,
        200,
        {
            "Content-Disposition": 'attachment; filename="campaign-success.csv"',
            "Cache-Control": "no-store",
        },
        media_type="text/csv",
    )


@router.get(CAMPAIGNS + "/{campaign_id}/customers")
async def figure_customers(campaign_id: str, request: Request, figure: str = "won") -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.figure_page(db, principal, campaign_id, figure), readonly=True
    )
    return render(request, "analytics_campaign_customers.html", {"page": page}, principal=principal)


@router.post(CAMPAIGNS + "/plan")
async def plan(request: Request) -> Response:
    """The planning form: the target list, shown on the campaign page (and, with a
    planned campaign chosen, set as its targets)."""
    principal = await signed_in(request)
    form = await checked_form(request)

    page = await in_transaction(
        lambda db: views.plan_from_form(db, principal, form, utcnow().date())
    )
    return render(request, "analytics_campaigns.html", {"page": page}, principal=principal)
