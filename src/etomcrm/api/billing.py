"""Billing (3.8.3 / 3.8.4) over HTTP beyond the TMF resource life cycle: the document
of an issued bill (the PDF with its Factur-X XML embedded), as the customer was sent
it; a bill issued but not rendered yet (the bill run renders before it sends) is rendered
from the content stored at issue on the first request, and stored. ``customerBill`` and
``customerBillOnDemand`` are resource kinds (billing.api_kinds).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from etomcrm.api.conventions import ERROR_STATUSES, current_principal
from etomcrm.billing.api_kinds import CUSTOMER_BILL_KIND
from etomcrm.billing.bills import bill_document
from etomcrm.core import resources
from etomcrm.core.tmf_schemas import CUSTOMER_BILL
from etomcrm.db import session_scope

JSON = "application/json"
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": "TMF error", "content": {JSON: {"schema": CUSTOMER_BILL.ref("Error")}}}
    for status in ERROR_STATUSES
}
router = APIRouter()


@router.get(
    CUSTOMER_BILL_KIND.path + "/{id}/document",
    response_class=Response,
    tags=["customerBill"],
    summary="3.8.3: the issued bill as a PDF (Factur-X, the structured invoice embedded)",
    responses={200: {"description": "The bill", "content": {"application/pdf": {}}}, **_ERRORS},
)
async def document(id: str, request: Request) -> Response:
    principal = current_principal(request)

    def unit_of_work() -> tuple[bytes, str]:
        with session_scope() as session:
            body, _ = resources.get(session, CUSTOMER_BILL_KIND, principal, id)
            return bill_document(session, id), str(body.get("billNo") or id)

    pdf, number = await run_in_threadpool(unit_of_work)
    headers = {"Content-Disposition": f'inline; filename="{number}.pdf"'}
    return Response(pdf, 200, headers, media_type="application/pdf")
