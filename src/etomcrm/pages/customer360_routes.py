"""The Customer 360 page's route (issue 11), thin as the others: it finds the caller,
calls :func:`etomcrm.pages.customer360.customer_360` in a worker thread, renders."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from etomcrm.db import utcnow
from etomcrm.pages import customer360
from etomcrm.pages.routes import PREFIX, PageRoute, in_transaction, render, signed_in

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get(PREFIX + "/customers/{customer_id}")
async def customer_page(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: customer360.customer_360(db, principal, customer_id, now=utcnow()), readonly=True
    )
    return render(request, "customer360.html", {"page": page}, principal=principal)
