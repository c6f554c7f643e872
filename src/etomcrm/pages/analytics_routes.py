"""The analyst workspace's routes (seed 5.3): its index, the contact statistics (3.2.3),
customer profitability, their CSV downloads and the import of history. Thin handlers:
each calls one function of :mod:`etomcrm.pages.analytics_views` in a worker thread and
renders its answer; the upload carries the session's CSRF token."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from etomcrm.config import get_settings
from etomcrm.core.errors import Forbidden, PayloadTooLarge
from etomcrm.db import utcnow
from etomcrm.pages import analytics_views as views
from etomcrm.pages import session
from etomcrm.pages.analytics_nav import WORKSPACE
from etomcrm.pages.portal_views import Download
from etomcrm.pages.routes import PageRoute, in_transaction, render, signed_in

router: APIRouter = APIRouter(route_class=PageRoute, include_in_schema=False)


def _params(request: Request) -> dict[str, str]:
    return {key: value for key, value in request.query_params.items()}


def _download(download: Download) -> Response:
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


@router.get(WORKSPACE)
async def index(request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.index_page(db, principal, today=utcnow().date()), readonly=True
    )
    return render(request, "analytics.html", {"page": page}, principal=principal)


@router.get(views.CONTACTS)
async def contacts(request: Request) -> Response:
    principal = await signed_in(request)
    params = _params(request)

    page = await in_transaction(
        lambda db: views.contacts_page(db, principal, params), readonly=True
    )
    status = 400 if page.errors else 200
    return render(
        request, "analytics_contacts.html", {"page": page}, status=status, principal=principal
    )


@router.get(views.CONTACTS + ".csv")
async def contacts_csv(request: Request) -> Response:
    principal = await signed_in(request)
    params = _params(request)

    download = await in_transaction(
        lambda db: views.contacts_download(db, principal, params), readonly=True
    )
    return _download(download)


@router.get(views.PROFITABILITY)
async def profitability(request: Request) -> Response:
    principal = await signed_in(request)
    params = _params(request)

    page = await in_transaction(
        lambda db: views.profitability_page(db, principal, params), readonly=True
    )
    status = 400 if page.errors else 200
    return render(
        request, "analytics_profitability.html", {"page": page}, status=status, principal=principal
    )


@router.get(views.PROFITABILITY + ".csv")
async def profitability_csv(request: Request) -> Response:
    principal = await signed_in(request)
    params = _params(request)

    download = await in_transaction(
        lambda db: views.profitability_download(db, principal, params), readonly=True
    )
    return _download(download)


@router.get(views.HISTORY)
async def history(request: Request) -> Response:
    principal = await signed_in(request)
    imported = request.query_params.get("imported", "")

    page = await in_transaction(
        lambda db: views.history_page(db, principal, imported), readonly=True
    )
    return render(request, "analytics_history.html", {"page": page}, principal=principal)


async def _upload(request: Request) -> tuple[str, bytes]:
    """The uploaded file once the form's CSRF token is found to be this session's; a
    file larger than the import takes over the API is refused before it is read whole."""
    limit = get_settings().analytics_history_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PayloadTooLarge(f"the file has more than {limit} bytes; import it with the CLI")
    form = await request.form(max_files=1, max_fields=5)
    if not session.csrf_valid(request, form.get(session.CSRF_FIELD)):
        raise Forbidden("the form has expired; reload the page and try again")
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        return "", b""
    content = await upload.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLarge(f"the file has more than {limit} bytes; import it with the CLI")
    return upload.filename or "", content


@router.post(views.HISTORY)
async def import_history(request: Request) -> Response:
    principal = await signed_in(request)
    name, content = await _upload(request)

    outcome = await in_transaction(lambda db: views.import_history(db, principal, name, content))
    if isinstance(outcome, str):
        return RedirectResponse(
            f"{views.HISTORY}?imported={quote(outcome, safe='')}", status_code=303
        )
    return render(
        request, "analytics_history.html", {"page": outcome}, status=400, principal=principal
    )
