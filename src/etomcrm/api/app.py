"""The ASGI application: every TMF API, the login endpoint and the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

import etomcrm
from etomcrm.api import network_feed
from etomcrm.api.conventions import (
    SECURITY_SCHEMES,
    RefuseNul,
    install_error_handlers,
    json_response,
    read_json,
)
from etomcrm.api.tmf import add_hub_routes, add_resource_routes
from etomcrm.catalog import service as catalog
from etomcrm.config import get_settings
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.events import DeliveryThread
from etomcrm.core.resources import ResourceKind
from etomcrm.core.tmf_schemas import TmfDocument
from etomcrm.customer_interface import api_kinds as customer_interface_kinds
from etomcrm.db import session_scope
from etomcrm.flows import api_kinds as flows_kinds
from etomcrm.flows import engine
from etomcrm.marketing import api_kinds as marketing_kinds
from etomcrm.network import api_kinds as network_kinds
from etomcrm.order_handling import api_kinds as order_handling_kinds
from etomcrm.problem_handling import api_kinds as problem_handling_kinds
from etomcrm.qos_sla import api_kinds as qos_sla_kinds
from etomcrm.retention import api_kinds as retention_kinds
from etomcrm.security import service as security
from etomcrm.selling import api_kinds as selling_kinds

API_KINDS: list[ResourceKind] = [
    *customer_interface_kinds.KINDS,
    catalog.CATALOG_KIND,
    catalog.CATEGORY_KIND,
    catalog.PRODUCT_SPECIFICATION_KIND,
    catalog.PRODUCT_OFFERING_KIND,
    catalog.PRODUCT_OFFERING_PRICE_KIND,
    catalog.PRODUCT_STOCK_KIND,
    *marketing_kinds.KINDS,
    *selling_kinds.KINDS,
    *order_handling_kinds.KINDS,
    *flows_kinds.KINDS,
    *retention_kinds.KINDS,
    *network_kinds.KINDS,
    *problem_handling_kinds.KINDS,
    *qos_sla_kinds.KINDS,
]


AREAS = (
    customer_interface_kinds,
    marketing_kinds,
    selling_kinds,
    order_handling_kinds,
    flows_kinds,
    retention_kinds,
    network_kinds,
    problem_handling_kinds,
    qos_sla_kinds,
)


def _documents() -> dict[str, tuple[TmfDocument, list[ResourceKind]]]:
    docs: dict[str, tuple[TmfDocument, list[ResourceKind]]] = {}
    for kind in API_KINDS:
        docs.setdefault(kind.doc.code, (kind.doc, []))[1].append(kind)
    return docs


def create_app(*, deliver_events: bool | None = None, run_flows: bool | None = None) -> FastAPI:
    settings = get_settings()
    run_delivery = settings.hub_delivery_enabled if deliver_events is None else deliver_events
    if run_flows is None:
        run_flows = settings.flows_run_in_server

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = DeliveryThread(settings.hub_delivery_interval_seconds) if run_delivery else None
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
    router = APIRouter()
    documents = _documents()
    for doc, kinds in documents.values():
        for kind in kinds:
            add_resource_routes(router, kind)
        add_hub_routes(router, doc, kinds)
    app.include_router(router)
    for area in AREAS:
        for area_router in area.ROUTERS:
            app.include_router(area_router)
    for feed_router in network_feed.ROUTERS:
        app.include_router(feed_router)
    _add_auth_routes(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            for doc, _ in documents.values():
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
        with session_scope() as session:
            access_token = security.login(session, data["username"], data["password"])
        return json_response(
            {
                "access_token": access_token,
                "token_type": "bearer",
                "expires_in": get_settings().login_token_minutes * 60,
            }
        )
