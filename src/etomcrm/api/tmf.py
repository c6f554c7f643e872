"""TMF Open API routes, built once per resource kind from the official documents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials

from etomcrm.api.conventions import (
    ERROR_STATUSES,
    bearer,
    current_principal,
    json_response,
    read_json,
)
from etomcrm.config import get_settings
from etomcrm.core import events, resources
from etomcrm.core.errors import Forbidden, InvalidRequest
from etomcrm.core.resources import READ, ResourceKind, etag, render
from etomcrm.core.tmf_schemas import TmfDocument
from etomcrm.db import session_scope
from etomcrm.security.service import Principal

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
JSON = "application/json"


def _errors(doc: TmfDocument) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": "TMF error", "content": {JSON: {"schema": doc.ref("Error")}}}
        for status in ERROR_STATUSES
    }


def _body_spec(
    doc: TmfDocument, definition: str, media_types: tuple[str, ...] = (JSON,)
) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {media: {"schema": doc.ref(definition)} for media in media_types},
        }
    }


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _fields(kind: ResourceKind, fields: str | None) -> list[str] | None:
    if not fields:
        return None
    names = [f.strip() for f in fields.split(",") if f.strip()]
    unknown = [n for n in names if n not in kind.properties]
    if unknown:
        raise InvalidRequest(
            f"fields names unknown attributes of {kind.type_name}: {', '.join(unknown)}"
        )
    return names


def add_resource_routes(router: APIRouter, kind: ResourceKind) -> None:
    doc, type_name, path = kind.doc, kind.type_name, kind.path
    create_definition = f"{type_name}_Create" if kind.has_create_schema else type_name
    one = {"content": {JSON: {"schema": doc.ref(type_name)}}}
    count_headers = {
        "X-Total-Count": {"schema": {"type": "integer"}, "description": "Total matching"},
        "X-Result-Count": {"schema": {"type": "integer"}, "description": "Items in this page"},
    }
    many = {
        "content": {JSON: {"schema": {"type": "array", "items": doc.ref(type_name)}}},
        "headers": count_headers,
    }

    @router.get(
        path,
        operation_id=f"list{type_name}",
        summary=f"List or find {type_name} objects",
        tags=[kind.name],
        responses={
            200: {"description": "Success", **many},
            206: {"description": "Partial page", **many},
            **_errors(doc),
        },
    )
    def list_(
        request: Request,
        credentials: Credentials,
        fields: Annotated[
            str | None, Query(description="Comma-separated attributes to return")
        ] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        limit: Annotated[int | None, Query(ge=1)] = None,
    ) -> Response:
        principal = current_principal(credentials)
        settings = get_settings()
        size = min(limit or settings.default_page_limit, settings.max_page_limit)
        filters: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            if key not in resources.RESERVED_QUERY:
                filters.setdefault(key, []).append(value)
        selected = _fields(kind, fields)
        with session_scope(readonly=True) as session:
            items, total = resources.list_resources(session, kind, principal, filters, offset, size)
        base = _base_url(request)
        body = [render(kind, item, base, selected) for item in items]
        status = 206 if offset + len(body) < total else 200
        return json_response(
            body, status, {"X-Total-Count": str(total), "X-Result-Count": str(len(body))}
        )

    @router.get(
        path + "/{id}",
        operation_id=f"retrieve{type_name}",
        summary=f"Retrieve a {type_name} by id",
        tags=[kind.name],
        responses={200: {"description": "Success", **one}, **_errors(doc)},
    )
    def retrieve(
        id: str,
        request: Request,
        credentials: Credentials,
        fields: Annotated[
            str | None, Query(description="Comma-separated attributes to return")
        ] = None,
    ) -> Response:
        principal = current_principal(credentials)
        selected = _fields(kind, fields)
        with session_scope(readonly=True) as session:
            body, version = resources.get(session, kind, principal, id)
        return json_response(
            render(kind, body, _base_url(request), selected), 200, {"ETag": etag(version)}
        )

    @router.post(
        path,
        operation_id=f"create{type_name}",
        summary=f"Create a {type_name}",
        tags=[kind.name],
        status_code=201,
        responses={201: {"description": "Created", **one}, **_errors(doc)},
        openapi_extra=_body_spec(doc, create_definition),
    )
    async def create(
        request: Request,
        credentials: Credentials,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key", max_length=255, description="Makes a retried create safe"
            ),
        ] = None,
    ) -> Response:
        principal = current_principal(credentials)
        payload = await read_json(request)
        base = _base_url(request)
        with session_scope() as session:
            body, version, replayed = resources.create(
                session,
                kind,
                principal,
                payload,
                idempotency_key=idempotency_key or None,
                base_url=base,
            )
        headers = {"ETag": etag(version), "Location": resources.href_for(kind, base, body["id"])}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return json_response(render(kind, body, base), 201, headers)

    @router.patch(
        path + "/{id}",
        operation_id=f"patch{type_name}",
        summary=f"Update a {type_name} with a merge patch",
        tags=[kind.name],
        responses={200: {"description": "Updated", **one}, **_errors(doc)},
        openapi_extra=_body_spec(doc, f"{type_name}_Patch", ("application/merge-patch+json", JSON)),
    )
    async def patch(
        id: str,
        request: Request,
        credentials: Credentials,
        if_match: Annotated[
            str | None, Header(alias="If-Match", description="The ETag you read; 412 if it changed")
        ] = None,
    ) -> Response:
        principal = current_principal(credentials)
        changes = await read_json(request)
        base = _base_url(request)
        with session_scope() as session:
            body, version = resources.patch(
                session, kind, principal, id, changes, if_match=if_match, base_url=base
            )
        return json_response(render(kind, body, base), 200, {"ETag": etag(version)})

    @router.delete(
        path + "/{id}",
        operation_id=f"delete{type_name}",
        summary=f"Delete a {type_name}",
        tags=[kind.name],
        status_code=204,
        responses={204: {"description": "Deleted"}, **_errors(doc)},
    )
    def delete(id: str, request: Request, credentials: Credentials) -> Response:
        principal = current_principal(credentials)
        with session_scope() as session:
            resources.delete(session, kind, principal, id, base_url=_base_url(request))
        return Response(status_code=204)


def add_hub_routes(router: APIRouter, doc: TmfDocument, kinds: list[ResourceKind]) -> None:
    """``POST /hub`` and ``DELETE /hub/{id}`` of one API."""

    def _authorize(principal: Principal) -> None:
        for kind in kinds:
            try:
                kind.authorize(principal, READ)
                return
            except Forbidden:
                continue
        raise Forbidden(f"the role {principal.role.value!r} may not listen to {doc.code} events")

    @router.post(
        f"{doc.base_path}/hub",
        operation_id=f"registerListener{doc.code}",
        summary=f"Register a listener for {doc.code} events",
        tags=[f"{doc.code} events"],
        status_code=201,
        responses={
            201: {
                "description": "Subscribed",
                "content": {JSON: {"schema": doc.ref("EventSubscription")}},
            },
            **_errors(doc),
        },
        openapi_extra=_body_spec(doc, "EventSubscriptionInput"),
    )
    async def register(request: Request, credentials: Credentials) -> Response:
        principal = current_principal(credentials)
        _authorize(principal)
        data = await read_json(request)
        resources.validate_against(doc, "EventSubscriptionInput", data, "listener registration")
        with session_scope() as session:
            sub = events.register_listener(
                session,
                api=doc.code,
                callback=data["callback"],
                query=data.get("query"),
                owner_customer_id=principal.customer_id,
                created_by=principal.name,
            )
            body = {"id": sub.id, "callback": sub.callback}
            if sub.query is not None:
                body["query"] = sub.query
        return json_response(
            body, 201, {"Location": f"{_base_url(request)}{doc.base_path}/hub/{body['id']}"}
        )

    @router.delete(
        f"{doc.base_path}/hub/{{id}}",
        operation_id=f"unregisterListener{doc.code}",
        summary=f"Unregister a {doc.code} listener",
        tags=[f"{doc.code} events"],
        status_code=204,
        responses={204: {"description": "Deleted"}, **_errors(doc)},
    )
    def unregister(id: str, credentials: Credentials) -> Response:
        principal = current_principal(credentials)
        _authorize(principal)
        with session_scope() as session:
            events.unregister_listener(
                session, api=doc.code, subscription_id=id, owner_customer_id=principal.customer_id
            )
        return Response(status_code=204)
