"""What every TMF API shares on the wire: auth, bodies, errors, paging, JSON out."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError, OperationalError, PendingRollbackError
from starlette.exceptions import HTTPException as StarletteHTTPException

from etomcrm.config import get_settings
from etomcrm.core.errors import (
    Forbidden,
    InvalidRequest,
    PayloadTooLarge,
    RetryLater,
    ServiceUnavailable,
    TmfError,
    Unauthorized,
    UnsupportedMediaType,
)
from etomcrm.core.tmf_schemas import ALARM, SERVICE_ORDERING, SERVICE_PROBLEM, USAGE
from etomcrm.db import session_scope
from etomcrm.security import service as security
from etomcrm.security.service import Principal

log = logging.getLogger(__name__)


def database_unavailable() -> ServiceUnavailable:
    """What a client hears when the database connection died under its request."""
    return ServiceUnavailable(
        "the database could not be reached; the request may not have been carried out: "
        "retry it in a moment (a create with the same Idempotency-Key is applied once)",
        retry_after=2,
    )


JSON_TYPES = ("application/json", "application/merge-patch+json")
ERROR_STATUSES = (400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 500)
# Documented once for the whole OpenAPI document; read by current_principal.
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key or a login token"}
}


# etomcrm's own API for performance data (no TMF document is at hand for it).
PERFORMANCE_FEED_BASE = "/etomcrm/v1/performance"
# Where a network (OSS) principal may go: a system account that feeds alarms and
# performance data and works what is addressed to the network side. It is kept out of
# every other API here, whatever that API's own role checks would let a non-customer do.
NETWORK_PATHS = tuple(
    base + "/"
    for base in (
        ALARM.base_path,
        SERVICE_PROBLEM.base_path,
        SERVICE_ORDERING.base_path,
        PERFORMANCE_FEED_BASE,
        # Usage (TMF635) measured by the network, e.g. traffic per site and hour.
        USAGE.base_path,
    )
)


# What a database's OFFSET holds (a 64-bit integer).
MAX_OFFSET = 2**63 - 1


def page_size(offset: int, limit: int | None) -> int:
    """The page size of a list request, once ``offset`` and ``limit`` are in range."""
    if not 0 <= offset <= MAX_OFFSET or (limit is not None and limit < 1):
        raise InvalidRequest(
            f"offset must be a whole number from 0 to {MAX_OFFSET} and limit at least 1"
        )
    return min(limit or get_settings().default_page_limit, get_settings().max_page_limit)


def public_base_url() -> str:
    """Where clients reach the API, from configuration (``ETOMCRM_PUBLIC_BASE_URL``).

    A request's Host header is the client's word: copied into hrefs, Location headers
    and stored event payloads it would let anyone point others' links elsewhere.
    """
    return get_settings().public_base_url.rstrip("/")


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def error_response(error: TmfError, headers: dict[str, str] | None = None) -> Response:
    return json_response(error.body(), error.status, headers)


def current_principal(request: Request) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    if not token:
        raise Unauthorized("send 'Authorization: Bearer <token>' (an API key or a login token)")
    principal = security.cached_principal(token)
    if principal is None:
        with session_scope() as session:
            principal = security.authenticate(session, token)
    if principal.is_network and not request.url.path.startswith(NETWORK_PATHS):
        raise Forbidden(
            "the network role feeds alarms and performance data and works service problems "
            "and service orders; it may not use " + request.url.path
        )
    return principal


# No TMF resource nests deeper than a dozen levels; a body nested far deeper is an attack
# on the parsers and validators behind this point, refused before it reaches them.
MAX_JSON_DEPTH = 64


def _check_body(value: Any) -> None:
    """Refuse NUL in text and nesting beyond ``MAX_JSON_DEPTH`` (iteratively: a deep
    body must not exhaust the stack of the check meant to refuse it)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            # PostgreSQL cannot store NUL in text or JSONB; no TMF attribute needs one.
            if "\x00" in node:
                raise InvalidRequest("text must not contain NUL (\\u0000) characters")
            continue
        if isinstance(node, dict | list) and depth > MAX_JSON_DEPTH:
            raise InvalidRequest(
                f"the body nests objects and arrays more than {MAX_JSON_DEPTH} levels deep"
            )
        if isinstance(node, dict):
            stack.extend((key, depth) for key in node)
            stack.extend((item, depth + 1) for item in node.values())
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)


async def read_json(request: Request) -> Any:
    """The request body as JSON, refusing oversize, non-JSON and malformed bodies."""
    content_type = (
        request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    )
    if content_type not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"send the body as {' or '.join(JSON_TYPES)}, not {content_type or 'no content type'}"
        )
    limit = get_settings().max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body has {declared} bytes; at most {limit} are accepted")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise InvalidRequest("the request needs a JSON body")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
    _check_body(value)
    return value


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TmfError)
    async def _tmf(request: Request, exc: TmfError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, RetryLater):
            headers = {"Retry-After": str(exc.retry_after)}
        return error_response(exc, headers)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> Response:
        if not (exc.connection_invalidated or isinstance(exc, OperationalError)):
            return await _bug(request, exc)
        # The connection died under the request (a restart, a failover, a killed
        # backend): the pool replaces it, so the same request succeeds in a moment.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return await _tmf(request, database_unavailable())

    @app.exception_handler(PendingRollbackError)
    async def _rolled_back(request: Request, exc: PendingRollbackError) -> Response:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return await _tmf(request, database_unavailable())

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
            for e in exc.errors()[:10]
        )
        return error_response(InvalidRequest(f"invalid request parameters: {problems}"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        error = TmfError(str(exc.detail))
        error.status = exc.status_code
        error.code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(
            exc.status_code, "HTTP_ERROR"
        )
        error.reason = {404: "No such path", 405: "Method not allowed"}.get(
            exc.status_code, "HTTP error"
        )
        return error_response(error, dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        error = TmfError("an internal error occurred; it has been logged")
        error.status, error.code, error.reason = 500, "INTERNAL_ERROR", "Internal error"
        return error_response(error)


class SecurityHeaders:
    """Headers every answer carries: no content sniffing of an error body or a document
    into something a browser would run."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class RefuseNul:
    """Refuse NUL in the path or query before it reaches a handler.

    PostgreSQL cannot compare text with NUL in it, so an id or filter value with one
    would fail in the database instead of getting a clear answer.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")
        ):
            error = InvalidRequest("the path and query must not contain NUL (%00) characters")
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)
