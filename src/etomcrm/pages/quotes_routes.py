"""The quote pages (seed 5.2, issue 11): the staff quote builder and a customer's quotes
in the portal, at the same addresses (what each sees and may do follows its role, as
in the API). Thin handlers: each calls one function of
:mod:`etomcrm.pages.quote_views` in a worker thread and renders its answer; every POST
carries the session's CSRF token."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from etomcrm.core.errors import Forbidden
from etomcrm.pages import i18n, session
from etomcrm.pages import quote_views as views
from etomcrm.pages.routes import (
    PREFIX,
    PageRoute,
    checked_form,
    in_transaction,
    render,
    signed_in,
)

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)
QUOTES = PREFIX + "/customers/{customer_id}/quotes"
QUOTE = QUOTES + "/{quote_id}"
# The builder posts three fields per site (offerings, SLA level) for every site of a
# customer: BMW alone has 66 sites and six offerings to choose from.
BUILDER_FIELDS = 5000


def _quote_url(customer_id: str, quote_id: str, anchor: str = "") -> str:
    return (
        f"{PREFIX}/customers/{quote(customer_id, safe='')}/quotes/{quote(quote_id, safe='')}"
        + anchor
    )


async def _checked_builder(request: Request) -> dict[str, list[str]]:
    """The builder's fields, each with all its values (a site's checked offerings)."""
    form = await request.form(max_files=0, max_fields=BUILDER_FIELDS)
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(key, []).append(value)
    token = next(iter(fields.get(session.CSRF_FIELD) or []), None)
    if not session.csrf_valid(request, token):
        raise Forbidden("the form has expired; reload the page and try again")
    return fields


@router.get(PREFIX + "/quotes/approvals")
async def approvals(request: Request) -> Response:
    """Staff: the quotes whose discount waits for approval (the home's work list)."""
    principal = await signed_in(request)

    waiting = await in_transaction(lambda db: views.approvals_page(db, principal), readonly=True)
    return render(request, "quote_approvals.html", {"quotes": waiting}, principal=principal)


@router.get(QUOTES)
async def quotes(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.quotes_page(db, principal, customer_id), readonly=True
    )
    return render(request, "quotes.html", {"page": page}, principal=principal)


@router.get(QUOTES + "/new")
async def new_quote(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    form = await in_transaction(
        lambda db: views.quote_form(db, principal, customer_id), readonly=True
    )
    return render(request, "quote_builder.html", {"form": form}, principal=principal)


@router.post(QUOTES)
async def draft(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    data = await _checked_builder(request)

    outcome = await in_transaction(lambda db: views.save_quote(db, principal, customer_id, data))
    if isinstance(outcome, str):
        return RedirectResponse(_quote_url(customer_id, outcome), status_code=303)
    status = 400 if outcome.errors else 200
    return render(
        request, "quote_builder.html", {"form": outcome}, status=status, principal=principal
    )


@router.get(QUOTE)
async def one_quote(customer_id: str, quote_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.quote_page(db, principal, customer_id, quote_id), readonly=True
    )
    return render(request, "quote.html", {"page": page}, principal=principal)


@router.get(QUOTE + "/edit")
async def edit_quote(customer_id: str, quote_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    form = await in_transaction(
        lambda db: views.quote_form(db, principal, customer_id, quote_id), readonly=True
    )
    return render(request, "quote_builder.html", {"form": form}, principal=principal)


@router.post(QUOTE + "/revise")
async def revise(customer_id: str, quote_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    data = await _checked_builder(request)

    outcome = await in_transaction(
        lambda db: views.save_quote(db, principal, customer_id, data, quote_id)
    )
    if isinstance(outcome, str):
        return RedirectResponse(_quote_url(customer_id, outcome), status_code=303)
    status = 400 if outcome.errors else 200
    return render(
        request, "quote_builder.html", {"form": outcome}, status=status, principal=principal
    )


@router.post(QUOTE + "/action")
async def action(customer_id: str, quote_id: str, request: Request) -> Response:
    """Staff: submit, approve or cancel."""
    principal = await signed_in(request)
    data = await checked_form(request)
    step = data.get("action", "")

    await in_transaction(lambda db: views.quote_action(db, principal, customer_id, quote_id, step))
    return RedirectResponse(_quote_url(customer_id, quote_id), status_code=303)


@router.post(QUOTE + "/education")
async def education(customer_id: str, quote_id: str, request: Request) -> Response:
    """Staff: the brief was presented to the customer (3.4.2)."""
    principal = await signed_in(request)
    data = await checked_form(request)

    outcome = await in_transaction(
        lambda db: views.record_education(db, principal, customer_id, quote_id, data)
    )
    if outcome is None:
        return RedirectResponse(_quote_url(customer_id, quote_id, "#education"), status_code=303)
    return render(request, "quote.html", {"page": outcome}, status=400, principal=principal)


@router.post(QUOTE + "/decision")
async def decision(customer_id: str, quote_id: str, request: Request) -> Response:
    """The customer accepts (the brief acknowledged) or rejects, saying why."""
    principal = await signed_in(request)
    data = await checked_form(request)

    outcome = await in_transaction(
        lambda db: views.decide(db, principal, customer_id, quote_id, data)
    )
    if outcome is None:
        return RedirectResponse(_quote_url(customer_id, quote_id), status_code=303)
    return render(request, "quote.html", {"page": outcome}, status=400, principal=principal)


@router.get(QUOTE + "/versions")
async def versions(customer_id: str, quote_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.versions_page(db, principal, customer_id, quote_id), readonly=True
    )
    return render(request, "quote_versions.html", {"page": page}, principal=principal)


@router.get(QUOTE + "/document.pdf")
async def document(customer_id: str, quote_id: str, request: Request) -> Response:
    principal = await signed_in(request)
    language = i18n.choose(
        request.cookies.get(i18n.LANGUAGE_COOKIE), request.headers.get("accept-language")
    )

    download = await in_transaction(
        lambda db: views.quote_download(db, principal, customer_id, quote_id, language),
        readonly=True,
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
