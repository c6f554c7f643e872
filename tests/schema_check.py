"""Every response the tests receive is checked against the official TMF v4 schema.

The service's OpenAPI document embeds the official definitions (see
``etomcrm.core.tmf_schemas``); this client looks up the schema documented for the
route and status of each response and validates the body against it.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

import httpx
import jsonschema_rs
from fastapi.testclient import TestClient


class ConformingClient(TestClient):
    checked: int = 0

    @cached_property
    def _routes(self) -> list[tuple[re.Pattern[str], str, dict[str, Any]]]:
        document = self.app.openapi()  # type: ignore[attr-defined]
        self._components = document["components"]
        routes = []
        for template, operations in document["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            for method, operation in operations.items():
                routes.append((pattern, method.upper(), operation))
        return routes

    def _schema_for(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        for pattern, route_method, operation in self._routes:
            if route_method == method and pattern.match(path):
                documented = operation.get("responses", {}).get(str(status))
                assert documented is not None, f"{method} {path} answered undocumented {status}"
                content = documented.get("content", {}).get("application/json")
                return content["schema"] if content else None
        return None

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> httpx.Response:
        response = super().request(method, url, *args, **kwargs)
        path = httpx.URL(str(url)).path
        if not path.startswith("/tmf-api/"):
            return response
        schema = self._schema_for(method.upper(), path, response.status_code)
        if schema is not None and response.content:
            root = {**schema, "components": self._components}
            validator = jsonschema_rs.Draft202012Validator(root, validate_formats=True)
            errors = [
                f"{'/'.join(map(str, e.instance_path))}: {e.message}"
                for e in validator.iter_errors(response.json())
            ]
            assert not errors, (
                f"{method} {path} {response.status_code} breaks its schema: {errors[:5]}"
            )
            ConformingClient.checked += 1
        return response
