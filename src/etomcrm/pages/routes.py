"""The pages' routes: sign-in and out, the language switch, the customer network portal
(seed 5.1) and the staff landing page. Each handler is as thin as an API handler: it
finds the caller, calls one function of :mod:`etomcrm.pages.views` in a worker thread
and renders its answer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from etomcrm.core.errors import Forbidden, NotFound, TmfError, TooManyRequests, Unauthorized
from etomcrm.db import session_scope, utcnow
from etomcrm.pages import i18n, session, views, worklists
from etomcrm.security import service as security
from etomcrm.security.throttle import check_sign_in

_log = logging.getLogger(__name__)

PREFIX = "/ui"
SIGN_IN = PREFIX + "/sign-in"
STATIC = PREFIX + "/static"
STATIC_DIR = i18n.HERE / "static"
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600
_MEDIA = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

# Everything the pages load comes from here: no inline script or style, no other host
# (the pages must work on a provider's closed network), never inside another site's frame.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Pages show a customer's data: no cache, shared or private, keeps them.
    "Cache-Control": "no-store",
}


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    principal: security.Principal | None = None,
    pre_session: str | None = None,
) -> HTMLResponse:
    """The template in the request's language, with what every page needs."""
    language = i18n.choose(
        request.cookies.get(i18n.LANGUAGE_COOKIE),
        request.headers.get("accept-language"),
        principal.language if principal is not None else None,
    )
    page = i18n.environment(language).get_template(template)
    lock_notice = session.lock_notice(request) if principal is not None else None
    html = page.render(
        {
            "principal": principal,
            "lock_notice": lock_notice,
            "csrf_token": session.csrf_token(request, pre_session),
            "csrf_field": session.CSRF_FIELD,
            "here": request.url.path,
            "prefix": PREFIX,
            **(context or {}),
        }
    )
    response = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
    response.headers["Content-Language"] = language
    if lock_notice is not None:
        response.delete_cookie(session.LOCK_NOTICE_COOKIE, path="/")  # told once
    return response


def _sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response: Response = RedirectResponse(
        f"{SIGN_IN}?next={quote(target, safe='/')}", status_code=303
    )
    if request.headers.get("hx-request"):
        # htmx follows a redirect inside the fragment; this makes it load the whole page.
        response = Response(status_code=204, headers={"HX-Redirect": SIGN_IN})
    session.end(response)
    return response


class PageRoute(APIRoute):
    """Errors become pages: not signed in → the sign-in page; any TMF error → a page
    with its status and message (a 404 says no more than that)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except Unauthorized:
                return _sign_in_redirect(request)
            except StarletteHTTPException as error:
                # A form Starlette could not read (too many fields, a broken body).
                return render(
                    request,
                    "error.html",
                    {"status": error.status_code, "message": str(error.detail)},
                    status=error.status_code,
                    principal=request.scope.get("etomcrm.principal"),
                )
            except TmfError as error:
                principal = request.scope.get("etomcrm.principal")
                response = render(
                    request,
                    "error.html",
                    {"status": error.status, "message": str(error)},
                    status=error.status,
                    principal=principal,
                )
                if isinstance(error, TooManyRequests):
                    response.headers["Retry-After"] = str(error.retry_after)
                return response

        return handler


router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _authenticate(token: str) -> security.Principal:
    with session_scope() as db:
        return security.authenticate(db, token)


T = TypeVar("T")


async def in_transaction(work: Callable[[Session], T], *, readonly: bool = False) -> T:
    """A page's one service call in its own transaction, off the event loop (the
    services are synchronous; the loop keeps serving other requests meanwhile)."""

    def unit_of_work() -> T:
        with session_scope(readonly=readonly) as db:
            return work(db)

    return await run_in_threadpool(unit_of_work)


async def signed_in(request: Request) -> security.Principal:
    """The signed-in person; :class:`Unauthorized` (→ the sign-in page) when none."""
    token = session.session_token(request)
    # Only a login token: an API key is for machines, never a browser session.
    if not token or token.count(".") != 2:
        raise Unauthorized("sign in")
    principal = security.cached_principal(token)
    if principal is None:
        principal = await run_in_threadpool(_authenticate, token)
    if principal.is_network:
        raise Forbidden("the network role has no pages")
    request.scope["etomcrm.principal"] = principal
    return principal


def _local(target: str | None) -> str:
    """Where to go after signing in or switching language: a page of ours, never
    another site (an open redirect would lend our name to a phishing link)."""
    if target and target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target:
        return target
    return PREFIX + "/"


async def _form(request: Request) -> dict[str, str]:
    form = await request.form(max_files=0, max_fields=20)
    return {key: value for key, value in form.items() if isinstance(value, str)}


async def checked_form(request: Request) -> dict[str, str]:
    """A posted form's fields, once its CSRF token is found to be this session's."""
    form = await _form(request)
    if not session.csrf_valid(request, form.get(session.CSRF_FIELD)):
        raise Forbidden("the form has expired; reload the page and try again")
    return form


@router.get("/", include_in_schema=False)
async def root() -> Response:
    return RedirectResponse(PREFIX + "/", status_code=303)


@router.get(SIGN_IN)
async def sign_in_page(request: Request) -> Response:
    token = session.session_token(request)
    if token and security.cached_principal(token) is not None:
        return RedirectResponse(_local(request.query_params.get("next")), status_code=303)
    return _sign_in_form(request, next_page=request.query_params.get("next"))


def _sign_in_form(
    request: Request,
    *,
    next_page: str | None,
    username: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    pre = request.cookies.get(session.PRE_SESSION_COOKIE) or session.new_pre_session()
    response = render(
        request,
        "sign_in.html",
        {"next": _local(next_page), "username": username, "error": error},
        status=status,
        pre_session=pre,
    )
    session.set_cookie(response, session.PRE_SESSION_COOKIE, pre, 3600)
    return response


def _sign_in(username: str, password: str) -> security.SignIn:
    with session_scope() as db:
        return security.login(db, username, password)


@router.post(SIGN_IN)
async def sign_in(request: Request) -> Response:
    form = await _form(request)
    username, password = form.get("username", "").strip(), form.get("password", "")
    next_page = form.get("next")
    if not session.csrf_valid(request, form.get(session.CSRF_FIELD)):
        return _sign_in_form(
            request, next_page=next_page, username=username, error="csrf", status=403
        )
    if not username or not password:
        return _sign_in_form(
            request, next_page=next_page, username=username, error="missing", status=400
        )
    address = request.client.host if request.client else "unknown"
    try:
        check_sign_in(address, username)
    except TooManyRequests as error:
        response = _sign_in_form(
            request, next_page=next_page, username=username, error="throttled", status=429
        )
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    # Argon2 takes tens of milliseconds of CPU: off the event loop, as in the API.
    outcome = await run_in_threadpool(_sign_in, username, password)
    if outcome.error is not None or outcome.token is None:
        if outcome.locked_now:
            _log.warning("user %r locked after repeated wrong passwords", username)
        locked = isinstance(outcome.error, TooManyRequests)
        return _sign_in_form(
            request,
            next_page=next_page,
            username=username,
            error="locked" if locked else "wrong",
            status=429 if locked else 401,
        )
    response = RedirectResponse(_local(next_page), status_code=303)
    session.start(response, outcome.token, outcome.locked_since_last_sign_in)
    if outcome.language in i18n.LANGUAGES:
        # The pages before the next sign-in (this one after signing out) speak it too.
        session.set_cookie(
            response, i18n.LANGUAGE_COOKIE, str(outcome.language), LANGUAGE_COOKIE_SECONDS
        )
    return response


@router.post(PREFIX + "/sign-out")
async def sign_out(request: Request) -> Response:
    await checked_form(request)
    token = session.session_token(request)
    if token:
        # The token itself stays valid until it expires; this process forgets it at once.
        security.PRINCIPALS.discard_where(lambda key: key == token)
    response = RedirectResponse(SIGN_IN, status_code=303)
    session.end(response)
    return response


@router.post(PREFIX + "/language")
async def switch_language(request: Request) -> Response:
    form = await checked_form(request)
    language = form.get("language", "")
    if language not in i18n.LANGUAGES:
        raise NotFound(f"no language {language!r}; there are {', '.join(i18n.LANGUAGES)}")
    principal = await _signed_in_or_none(request)
    if principal is not None:
        # Kept on the account, so the next browser the person signs in on speaks it too.
        await in_transaction(lambda db: security.set_language(db, principal.id, language))
        token = session.session_token(request)
        # This process re-reads the user (and its language) on the next request.
        security.PRINCIPALS.discard_where(lambda key: key == token)
    response = RedirectResponse(_local(form.get("next")), status_code=303)
    session.set_cookie(response, i18n.LANGUAGE_COOKIE, language, LANGUAGE_COOKIE_SECONDS)
    return response


async def _signed_in_or_none(request: Request) -> security.Principal | None:
    """The signed-in person, or None where a page open to anyone (the language switch)
    is used without a session or with one that has expired."""
    try:
        return await signed_in(request)
    except TmfError:
        return None


@router.get(PREFIX + "/")
async def home(request: Request) -> Response:
    principal = await signed_in(request)
    if principal.is_customer and principal.customer_id:
        return RedirectResponse(
            f"{PREFIX}/customers/{quote(principal.customer_id, safe='')}/network",
            status_code=303,
        )

    lists = await in_transaction(lambda db: worklists.work_lists(db, principal), readonly=True)
    return render(
        request,
        "home.html",
        {**views.staff_home(principal), "work_lists": lists},
        principal=principal,
    )


@router.get(PREFIX + "/search")
async def search(request: Request) -> Response:
    """The global search: customers, sites, orders, tickets and bills by name or id."""
    principal = await signed_in(request)
    text = request.query_params.get("q", "")

    results = await in_transaction(lambda db: views.search(db, principal, text), readonly=True)
    return render(
        request,
        "home.html",
        {**views.staff_home(principal), "results": results},
        status=400 if results.problem else 200,
        principal=principal,
    )


@router.get(PREFIX + "/customers/{customer_id}/network")
async def network(customer_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.network_page(db, principal, customer_id, now=utcnow()), readonly=True
    )
    return render(request, "network.html", {"page": page}, principal=principal)


@router.get(PREFIX + "/customers/{customer_id}/network/map")
async def network_map(customer_id: str, request: Request) -> Response:
    """The part of the network page that refreshes while it is open (htmx polls it)."""
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.network_page(db, principal, customer_id, now=utcnow()), readonly=True
    )
    return render(request, "_network_map.html", {"page": page}, principal=principal)


@router.get(PREFIX + "/customers/{customer_id}/sites/{site_id}")
async def site(customer_id: str, site_id: str, request: Request) -> Response:
    principal = await signed_in(request)

    page = await in_transaction(
        lambda db: views.site_page(db, principal, customer_id, site_id, now=utcnow()), readonly=True
    )
    return render(request, "site.html", {"page": page}, principal=principal)


# The portal's tickets and bills, before the catch-all below.
from etomcrm.pages import portal  # noqa: E402

router.include_router(portal.router)

# The Customer 360 (its own module; imported here, before the catch-all below).
from etomcrm.pages import customer360_routes  # noqa: E402

router.include_router(customer360_routes.router)

# The order tracker, the portal's orders and the flow trace (before the catch-all below).
from etomcrm.pages import orders_routes  # noqa: E402

router.include_router(orders_routes.router)
# The portal's SLA reports by month and its satisfaction surveys, before the catch-all.
from etomcrm.pages import reports_routes, surveys_routes  # noqa: E402

router.include_router(reports_routes.router)
router.include_router(surveys_routes.router)
# The staff ticket desk and the staff bills (their own modules, before the catch-all).
from etomcrm.pages import desk_routes, staff_bills_routes  # noqa: E402

router.include_router(desk_routes.router)
router.include_router(staff_bills_routes.router)
# The quote builder and the portal's quotes (seed 5.2; before the catch-all below).
from etomcrm.pages import quotes_routes  # noqa: E402

router.include_router(quotes_routes.router)
# The staff's customer requests (before the catch-all below).
from etomcrm.pages import requests_routes  # noqa: E402

router.include_router(requests_routes.router)
# The analyst's churn page (seed 5.3; before the catch-all below).
from etomcrm.pages import churn_routes  # noqa: E402

router.include_router(churn_routes.router)
# Analytical CRM's campaign success and planning (before the catch-all below).
from etomcrm.pages import campaigns_routes  # noqa: E402

router.include_router(campaigns_routes.router)
# The analyst workspace (seed 5.3; before the catch-all below).
from etomcrm.pages import analytics_routes  # noqa: E402

router.include_router(analytics_routes.router)
# 3.9.4: a customer's profile with its next best offers, and the offer overview.
from etomcrm.pages import offers_routes  # noqa: E402

router.include_router(offers_routes.router)
# The segments, their trends and forecasts (3.9.2; before the catch-all below).
from etomcrm.pages import segments_routes  # noqa: E402

router.include_router(segments_routes.router)


# The assets are few and fixed: served by name from the package, nothing else.
_ASSETS = {path.name: path for path in STATIC_DIR.iterdir() if path.suffix in _MEDIA}


@router.get(STATIC + "/{name}")
async def static(name: str) -> Response:
    path = _ASSETS.get(name)
    if path is None:
        raise NotFound(f"no asset {name!r}")
    return FileResponse(
        path,
        media_type=_MEDIA[path.suffix],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get(PREFIX + "/{rest:path}")
async def no_such_page(rest: str, request: Request) -> Response:
    """Any other address under the pages: the 404 page, for the signed-in or not."""
    token = session.session_token(request)
    principal = security.cached_principal(token) if token else None
    return render(
        request,
        "error.html",
        {"status": 404, "message": "no such page"},
        status=404,
        principal=principal,
    )
