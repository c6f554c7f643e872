"""The ASGI application: every TMF API, the login endpoint and the OpenAPI document."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

import etomcrm
from etomcrm.api.conventions import (
    SECURITY_SCHEMES,
    RefuseNul,
    SecurityHeaders,
    install_error_handlers,
    json_response,
    read_json,
)
from etomcrm.api.tmf import add_hub_routes, add_resource_routes
from etomcrm.config import get_settings
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.events import DeliveryThread
from etomcrm.core.resources import ResourceKind
from etomcrm.core.tmf_schemas import TmfDocument
from etomcrm.db import session_scope
from etomcrm.flows import engine
from etomcrm.security import service as security
from etomcrm.security.throttle import check_sign_in

_log = logging.getLogger(__name__)


def _documents(kinds: Sequence[ResourceKind]) -> dict[str, tuple[TmfDocument, list[ResourceKind]]]:
    docs: dict[str, tuple[TmfDocument, list[ResourceKind]]] = {}
    for kind in kinds:
        docs.setdefault(kind.doc.code, (kind.doc, []))[1].append(kind)
    return docs


def build_app(
    kinds: Sequence[ResourceKind],
    routers: Sequence[APIRouter],
    *,
    deliveries: Sequence[Callable[[], int]] = (),
    deliver_events: bool | None = None,
    run_flows: bool | None = None,
    documents: Sequence[TmfDocument] = (),
) -> FastAPI:
    """The ASGI application serving ``kinds`` (their TMF life cycle and hubs) and
    ``routers``; the composition root (``etomcrm.bootstrap.create_app``) hands them in."""
    settings = get_settings()
    run_delivery = settings.hub_delivery_enabled if deliver_events is None else deliver_events
    if run_flows is None:
        run_flows = settings.flows_run_in_server

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = (
            DeliveryThread(settings.hub_delivery_interval_seconds, deliveries)
            if run_delivery
            else None
        )
        if thread:
            thread.start()
        if run_flows:
            # The embedded default: this process also runs the flows (DESIGN.md 3).
            await run_in_threadpool(engine.launch)
        yield
        if run_flows:
            await run_in_threadpool(engine.shutdown)
        if thread:
            thread.stop()

    app = FastAPI(
        title="etomcrm",
        version=etomcrm.__version__,
        description=(
            "CRM for telecom and IT service providers. TM Forum Open APIs (v4) for "
            "parties, customers, sites, contact history, the product catalog and stock. "
            "Every call needs 'Authorization: Bearer <token>'."
        ),
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(RefuseNul)
    app.add_middleware(SecurityHeaders)
    router = APIRouter()
    served = _documents(kinds)
    for doc, kinds in served.values():
        for kind in kinds:
            add_resource_routes(router, kind)
        add_hub_routes(router, doc, kinds)
    app.include_router(router)
    for area_router in routers:
        app.include_router(area_router)
    _add_auth_routes(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            for doc, _ in served.values():
                schemas.update(doc.components)
            # Documents whose resources only an area's router serves (no resource kind).
            for doc in documents:
                schemas.update(doc.components)
            components["securitySchemes"] = SECURITY_SCHEMES
            schema["security"] = [{"bearerAuth": []}]
            for open_path in ("/health", "/auth/token"):
                for operation in schema["paths"][open_path].values():
                    operation["security"] = []
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _add_auth_routes(app: FastAPI) -> None:
    @app.get("/health", tags=["service"], summary="Liveness and database check")
    def health() -> Response:
        with session_scope(readonly=True) as session:
            session.execute(security.select_one())
        return json_response({"status": "ok"})

    @app.post(
        "/auth/token",
        tags=["service"],
        summary="Sign in with a username and password; returns a bearer token",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["username", "password"],
                            "properties": {
                                "username": {"type": "string"},
                                "password": {"type": "string"},
                            },
                        }
                    }
                },
            }
        },
    )
    async def token(request: Request) -> Response:
        data = await read_json(request)
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("username"), str)
            or not isinstance(data.get("password"), str)
        ):
            raise InvalidRequest('send {"username": ..., "password": ...}')
        address = request.client.host if request.client else "unknown"
        check_sign_in(address, data["username"])
        # Argon2 takes tens of milliseconds of CPU: off the event loop, so sign-ins never
        # stall the requests being served beside them.
        outcome = await run_in_threadpool(_sign_in, data["username"], data["password"])
        if outcome.error is not None:
            if outcome.locked_now:
                _log.warning("user %r locked after repeated wrong passwords", data["username"])
            raise outcome.error
        answer: dict[str, Any] = {
            "access_token": outcome.token,
            "token_type": "bearer",
            "expires_in": get_settings().login_token_minutes * 60,
        }
        if outcome.lock_notice:
            answer["notice"] = outcome.lock_notice
        return json_response(answer, headers=NO_STORE)


# A token is a credential: no cache, shared or private, may keep the answer.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _sign_in(username: str, password: str) -> security.SignIn:
    with session_scope() as session:
        return security.login(session, username, password)
