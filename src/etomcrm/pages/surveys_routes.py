"""The portal's satisfaction surveys (seed 5.1, "Surveys answered"; 3.9.5), thin as the
other routes: each calls one function of :mod:`etomcrm.pages.survey_views` in a worker
thread and renders its answer; the answer's POST carries the session's CSRF token."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from etomcrm.pages import survey_views as views
from etomcrm.pages.portal_views import page_number
from etomcrm.pages.routes import PREFIX, PageRoute, checked_form, in_transaction, render, signed_in

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)
SURVEYS = PREFIX + "/customers/{customer_id}/surveys"


@router.get(SURVEYS)
async def surveys(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    number = page_number(request.query_params.get("page"))

    page = await in_transaction(
        lambda db: views.surveys_page(db, principal, customer_id, number=number), readonly=True
    )
    return render(request, "surveys.html", {"page": page}, principal=principal)


@router.get(SURVEYS + "/{survey_id}")
async def survey(customer_id: str, survey_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    form = await in_transaction(
        lambda db: views.survey_form(db, principal, customer_id, survey_id), readonly=True
    )
    return render(request, "survey.html", {"form": form}, principal=principal)


@router.post(SURVEYS + "/{survey_id}")
async def answer(customer_id: str, survey_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    data = await checked_form(request)

    refused = await in_transaction(
        lambda db: views.answer_survey(db, principal, customer_id, survey_id, data)
    )
    if refused is None:
        target = f"{PREFIX}/customers/{quote(customer_id, safe='')}/surveys/"
        return RedirectResponse(target + quote(survey_id, safe=""), status_code=303)
    return render(request, "survey.html", {"form": refused}, status=400, principal=principal)
