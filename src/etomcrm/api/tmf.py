"""TMF Open API routes, built once per resource kind from the official documents."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from etomcrm.api.conventions import (
    ERROR_STATUSES,
    current_principal,
    json_response,
    public_base_url,
    read_json,
)
from etomcrm.config import get_settings
from etomcrm.core import events, reads, resources
from etomcrm.core.errors import Forbidden, InvalidRequest
from etomcrm.core.resources import READ, ResourceKind, etag, render
from etomcrm.core.tmf_schemas import TmfDocument
from etomcrm.db import session_scope
from etomcrm.security.service import Principal

JSON = "application/json"


def _parameter(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An OpenAPI parameter the handler reads from the request itself."""
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


ID_PARAMETER = _parameter("id", "path", {"type": "string"}, "Identifier of the resource")
FIELDS_PARAMETER = _parameter(
    "fields", "query", {"type": "string"}, "Comma-separated attributes to return"
)
OFFSET_PARAMETER = _parameter(
    "offset",
    "query",
    {"type": "integer", "minimum": 0, "default": 0},
    "Index of the first resource of the page",
)
LIMIT_PARAMETER = _parameter(
    "limit",
    "query",
    {"type": "integer", "minimum": 1},
    "Resources per page (50 unless said; at most the configured maximum)",
)


# Any other query parameter is a TMF attribute filter; OpenAPI says so with a free-form
# object spread over the query (style form, explode).
FILTERS_PARAMETER = {
    **_parameter(
        "filters",
        "query",
        {"type": "object", "additionalProperties": {"type": "string"}},
        "Attribute filters: an attribute or a dotted path into the resource, lists "
        "included (status=active, relatedParty.id=...); commas separate alternatives",
    ),
    "style": "form",
    "explode": True,
}


def _single(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise InvalidRequest(f"give {name} once, not {len(values)} times")
    return values[0] if values else None


def _integer(request: Request, name: str, minimum: int) -> int | None:
    raw = _single(request, name)
    if raw is None:
        return None
    # isascii: str.isdigit also admits digits such as "²" that int() refuses.
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:
        raise InvalidRequest(f"{name} must be a whole number of at least {minimum}, not {raw!r}")
    return int(raw)


def paging(request: Request) -> tuple[str | None, int, int | None]:
    """fields, offset and limit of a list request."""
    if "sort" in request.query_params:
        # Refused rather than ignored: a caller must not take an unsorted page for sorted.
        raise InvalidRequest("sort is not supported; lists come in creation order")
    return (
        _single(request, "fields"),
        _integer(request, "offset", 0) or 0,
        _integer(request, "limit", 1),
    )


def error_responses(doc: TmfDocument) -> dict[int | str, dict[str, Any]]:
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


def _fields(kind: ResourceKind, fields: str | None) -> list[str] | None:
    if not fields:
        return None
    names = [f.strip() for f in fields.split(",") if f.strip()]
    unknown = [n for n in names if not kind.has_attribute(n)]
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
            **error_responses(doc),
        },
        openapi_extra={
            "parameters": [FIELDS_PARAMETER, OFFSET_PARAMETER, LIMIT_PARAMETER, FILTERS_PARAMETER]
        },
    )
    async def list_(request: Request) -> Response:
        fields, offset, limit = paging(request)
        principal = current_principal(request)
        size = min(limit or get_settings().default_page_limit, get_settings().max_page_limit)
        filters: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            if key not in resources.RESERVED_QUERY:
                filters.setdefault(key, []).append(value)
        selected = _fields(kind, fields)
        # Reads run on the event loop: a point or page read is shorter than the hop to a
        # worker thread would be (see bench/README.md).
        rows, total = reads.list_documents(kind, principal, filters, offset, size)
        base = public_base_url()
        if selected:
            content = orjson.dumps(
                [render(kind, orjson.loads(doc), base, selected) for _, doc in rows]
            )
        else:
            content = reads.render_documents(kind, rows, base)
        status = 206 if offset + len(rows) < total else 200
        headers = {"X-Total-Count": str(total), "X-Result-Count": str(len(rows))}
        return Response(content, status, headers, media_type=JSON)

    @router.get(
        path + "/{id}",
        operation_id=f"retrieve{type_name}",
        summary=f"Retrieve a {type_name} by id",
        tags=[kind.name],
        responses={200: {"description": "Success", **one}, **error_responses(doc)},
        openapi_extra={"parameters": [ID_PARAMETER, FIELDS_PARAMETER]},
    )
    async def retrieve(request: Request) -> Response:
        # Parameters are read from the request by hand (documented in openapi_extra):
        # this is the most frequent call, and FastAPI's parameter models cost more here
        # than the database read.
        id = request.path_params["id"]
        fields = _single(request, "fields")
        principal = current_principal(request)
        selected = _fields(kind, fields)
        document, version = reads.read_document(kind, principal, id)
        base = public_base_url()
        if selected:
            content = orjson.dumps(render(kind, orjson.loads(document), base, selected))
        else:
            content = reads.with_href(document, resources.href_for(kind, base, id))
        return Response(content, 200, {"ETag": etag(version)}, media_type=JSON)

    if not kind.writable:
        return

    @router.post(
        path,
        operation_id=f"create{type_name}",
        summary=f"Create a {type_name}",
        tags=[kind.name],
        status_code=201,
        responses={201: {"description": "Created", **one}, **error_responses(doc)},
        openapi_extra=_body_spec(doc, create_definition),
    )
    async def create(
        request: Request,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key", max_length=255, description="Makes a retried create safe"
            ),
        ] = None,
    ) -> Response:
        principal = current_principal(request)
        payload = await read_json(request)
        base = public_base_url()

        def unit_of_work() -> tuple[dict[str, Any], int, bool]:
            with session_scope() as session:
                return resources.create(
                    session,
                    kind,
                    principal,
                    payload,
                    idempotency_key=idempotency_key or None,
                    base_url=base,
                )

        # Writes run in a worker thread: waiting for a write lock must not stall the
        # reads this process is serving meanwhile.
        body, version, replayed = await run_in_threadpool(unit_of_work)
        headers = {"ETag": etag(version), "Location": resources.href_for(kind, base, body["id"])}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return json_response(render(kind, body, base), 201, headers)

    if not kind.changeable:
        return

    @router.patch(
        path + "/{id}",
        operation_id=f"patch{type_name}",
        summary=f"Update a {type_name} with a merge patch",
        tags=[kind.name],
        responses={200: {"description": "Updated", **one}, **error_responses(doc)},
        openapi_extra=_body_spec(doc, f"{type_name}_Patch", ("application/merge-patch+json", JSON)),
    )
    async def patch(
        id: str,
        request: Request,
        if_match: Annotated[
            str | None, Header(alias="If-Match", description="The ETag you read; 412 if it changed")
        ] = None,
    ) -> Response:
        principal = current_principal(request)
        changes = await read_json(request)
        base = public_base_url()

        def unit_of_work() -> tuple[dict[str, Any], int]:
            with session_scope() as session:
                return resources.patch(
                    session, kind, principal, id, changes, if_match=if_match, base_url=base
                )

        body, version = await run_in_threadpool(unit_of_work)
        return json_response(render(kind, body, base), 200, {"ETag": etag(version)})

    @router.delete(
        path + "/{id}",
        operation_id=f"delete{type_name}",
        summary=f"Delete a {type_name}",
        tags=[kind.name],
        status_code=204,
        responses={204: {"description": "Deleted"}, **error_responses(doc)},
    )
    def delete(id: str, request: Request) -> Response:
        principal = current_principal(request)
        with session_scope() as session:
            resources.delete(session, kind, principal, id, base_url=public_base_url())
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
            **error_responses(doc),
        },
        openapi_extra=_body_spec(doc, "EventSubscriptionInput"),
    )
    async def register(request: Request) -> Response:
        principal = current_principal(request)
        _authorize(principal)
        data = await read_json(request)
        resources.validate_against(doc, "EventSubscriptionInput", data, "listener registration")

        def unit_of_work() -> dict[str, Any]:
            with session_scope() as session:
                sub = events.register_listener(
                    session,
                    api=doc.code,
                    callback=data["callback"],
                    query=data.get("query"),
                    owner_customer_id=principal.customer_id,
                    created_by=principal.name,
                )
                registered = {"id": sub.id, "callback": sub.callback}
                if sub.query is not None:
                    registered["query"] = sub.query
                return registered

        body = await run_in_threadpool(unit_of_work)
        return json_response(
            body, 201, {"Location": f"{public_base_url()}{doc.base_path}/hub/{body['id']}"}
        )

    @router.delete(
        f"{doc.base_path}/hub/{{id}}",
        operation_id=f"unregisterListener{doc.code}",
        summary=f"Unregister a {doc.code} listener",
        tags=[f"{doc.code} events"],
        status_code=204,
        responses={204: {"description": "Deleted"}, **error_responses(doc)},
    )
    def unregister(id: str, request: Request) -> Response:
        principal = current_principal(request)
        _authorize(principal)
        with session_scope() as session:
            events.unregister_listener(
                session, api=doc.code, subscription_id=id, owner_customer_id=principal.customer_id
            )
        return Response(status_code=204)
