"""3.9.4's pages, thin as the others: the customer's profile with its next best offers
(linked from the Customer 360) and the overview of offers for analysts and marketing,
with its CSV export. Each calls one function of :mod:`etomcrm.pages.offer_views`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from etomcrm.db import utcnow
from etomcrm.pages import offer_views as views
from etomcrm.pages.portal_views import page_number
from etomcrm.pages.routes import PREFIX, PageRoute, in_transaction, render, signed_in

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)
OFFERS = PREFIX + "/analytics/offers"


@router.get(PREFIX + "/customers/{customer_id}/profile")
async def profile(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.profile_page(db, principal, customer_id, now=utcnow()), readonly=True
    )
    return render(request, "profile.html", {"page": page}, principal=principal)


@router.get(OFFERS)
async def offers(request: Request) -> Response:
    principal = await signed_in(request)
    number = page_number(request.query_params.get("page"))

    page = await in_transaction(lambda db: views.offers_page(db, principal, number), readonly=True)
    return render(request, "offers.html", {"page": page}, principal=principal)


@router.get(OFFERS + ".csv")
async def offers_csv(request: Request) -> Response:
    principal = await signed_in(request)

    text = await in_transaction(lambda db: views.offers_csv(db, principal), readonly=True)
    return Response(
        text,
        200,
        {
            "Content-Disposition": 'attachment; filename="next-best-offers.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
        media_type="text/csv",
    )
