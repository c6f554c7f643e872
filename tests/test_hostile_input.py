"""Hostile input gets a 4xx and writes nothing (issue 12): deep nesting, numbers beyond
64 bits and filters with too many alternatives, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from etomcrm.api.conventions import MAX_JSON_DEPTH
from etomcrm.config import get_settings
from etomcrm.core.models import AuditRecord, OutboxEvent
from etomcrm.core.resources import MAX_FILTER_VALUES, MAX_FILTERS
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.db import session_scope
from tests.factories import CUSTOMER, customer

JSON = {"content-type": "application/json"}


def _customers() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(CustomerRow)) or 0


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 250, 1000, 100_000])
def test_a_deeply_nested_body_is_refused_with_400_and_nothing_is_written(
    client: TestClient, admin: dict[str, str], depth: int
) -> None:
    nested = '{"name": "x", "characteristic": ' + "[" * depth + "]" * depth + "}"
    # when it is posted as a customer, and anonymously to the sign-in
    answer = client.post(f"{CUSTOMER}/customer", content=nested, headers={**admin, **JSON})
    anonymous = client.post("/auth/token", content="[" * depth + "]" * depth, headers=JSON)
    # then both get 400 with a message naming the limit, and no customer exists
    # (beyond orjson's own limit of 1024 levels the parser refuses it first)
    expected = f"more than {MAX_JSON_DEPTH} levels" if depth < 1024 else "not valid JSON"
    for refused in (answer, anonymous):
        assert refused.status_code == 400, refused.text
        assert expected in refused.json()["message"]
    assert _customers() == 0


def test_nesting_within_the_limit_is_accepted(client: TestClient, admin: dict[str, str]) -> None:
    bmw = customer(client, admin)
    value = {"deep": {"deeper": {"deepest": [1, [2, [3]]]}}}
    answer = client.patch(
        f"{CUSTOMER}/customer/{bmw['id']}",
        json={"characteristic": [{"name": "nested", "valueType": "object", "value": value}]},
        headers={**admin, "content-type": "application/merge-patch+json"},
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("value", ["1e30", "-1e30", "18446744073709551616", "1e308"])
def test_a_number_beyond_64_bits_in_a_filter_is_an_ordinary_no_match(
    client: TestClient, admin: dict[str, str], value: str
) -> None:
    customer(client, admin)
    answer = client.get(f"{CUSTOMER}/customer?characteristic.value={value}", headers=admin)
    assert answer.status_code == 200, answer.text
    assert answer.json() == []


def test_a_filter_with_too_many_alternatives_is_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    many = ",".join(str(n) for n in range(1000))
    answer = client.get(f"{CUSTOMER}/customer?name={many}", headers=admin)
    assert answer.status_code == 400
    assert f"at most {MAX_FILTER_VALUES}" in answer.json()["message"]
    # and the largest list accepted still answers
    enough = ",".join(str(n) for n in range(MAX_FILTER_VALUES))
    assert client.get(f"{CUSTOMER}/customer?name={enough}", headers=admin).status_code == 200


def test_a_failed_statement_names_no_personal_data(client: TestClient) -> None:
    # given a stored customer whose document carries personal data
    with session_scope() as session:
        session.add(
            CustomerRow(id="c-1", at_type="Customer", name="x", body={"note": "Erika Mustermann"})
        )
    # when the same row is written again and the database refuses it
    with pytest.raises(IntegrityError) as refused, session_scope() as session:
        session.add(
            CustomerRow(id="c-1", at_type="Customer", name="x", body={"note": "Erika Mustermann"})
        )
    # then the error (what a log line or traceback would show) holds no parameter values
    assert "Erika" not in str(refused.value)
    assert "hidden due to hide_parameters" in str(refused.value)


def test_reads_and_writes_survive_killed_database_connections(
    client: TestClient, admin: dict[str, str], db_url: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no server whose connections can be killed")
    # given a customer read once, so the worker holds its read connection open
    created = customer(client, admin)
    href = f"{CUSTOMER}/customer/{created['id']}"
    assert client.get(href, headers=admin).status_code == 200
    # when the database server kills every connection to the database (a restart)
    database = db_url.rsplit("/", 1)[1]
    with psycopg.connect(db_url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres") as pg:
        pg.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
    # then the next read and write get fresh connections: no 500
    assert client.get(href, headers=admin).status_code == 200
    assert client.get(f"{CUSTOMER}/customer", headers=admin).status_code == 200
    assert customer(client, admin, "Audi AG")["name"] == "Audi AG"


def _written() -> tuple[int, int]:
    """What any write leaves behind: audit records and outbox events."""
    with session_scope() as session:
        return (
            session.scalar(select(func.count()).select_from(AuditRecord)) or 0,
            session.scalar(select(func.count()).select_from(OutboxEvent)) or 0,
        )


def _routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) the service answers, path parameters filled with an id that
    names nothing."""
    app: Any = client.app
    found = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.path.startswith(("/docs", "/openapi")):
            continue
        path = re.sub(r"\{[^}]+\}", "no-such-id", route.path)
        found += [(method, path) for method in sorted(route.methods)]
    return found


def _to_sign_in(path: str, answer: Any) -> bool:
    return (
        path.startswith("/ui/")
        and answer.status_code == 303
        and answer.headers["location"].startswith("/ui/sign-in")
    )


def test_hostile_bodies_and_queries_on_every_route_get_a_4xx_and_write_nothing(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given every route of the service, and what is written so far
    before = _written()
    deep = "[" * (MAX_JSON_DEPTH + 10) + "]" * (MAX_JSON_DEPTH + 10)
    huge = '{"name": "' + "x" * (get_settings().max_body_bytes + 1) + '"}'
    too_many = "&".join(f"name=n{n}" for n in range(MAX_FILTERS + 1))
    alternatives = "name=" + ",".join(f"n{n}" for n in range(MAX_FILTER_VALUES + 1))
    checked = 0
    for method, path in _routes(client):
        if method in ("POST", "PATCH", "PUT"):
            # when a body nested too deep, or too large, is sent
            for body in (deep, huge, "{not json", '{"a": 1e999999}'):
                answer = client.request(
                    method, path, content=body, headers={**admin, **JSON}, follow_redirects=False
                )
                # then it is refused as the client's fault, never a 5xx (a page, which
                # takes no API key, sends the request to its sign-in page unread)
                if _to_sign_in(path, answer):
                    continue
                assert 400 <= answer.status_code < 500, (method, path, answer.status_code)
                checked += 1
        if method == "GET":
            # when a query has too many filters, alternatives, or numbers out of range
            for query in (
                too_many,
                alternatives,
                "limit=1e30",
                "offset=-1&limit=18446744073709551616",
            ):
                answer = client.get(f"{path}?{query}", headers=admin)
                assert answer.status_code < 500, (path, query, answer.status_code)
                checked += 1
    # and nothing was written anywhere
    assert checked > 200
    assert _written() == before


@pytest.mark.parametrize(
    "path",
    [
        "/tmf-api/customerBillManagement/v4/dunningCase",
        "/tmf-api/partyInteraction/v4/customerRequest",
    ],
)
def test_an_offset_beyond_64_bits_is_refused_with_400(
    client: TestClient, admin: dict[str, str], path: str
) -> None:
    answer = client.get(f"{path}?offset=114410410908216819712", headers=admin)
    assert answer.status_code == 400, answer.text
    assert "offset must be a whole number" in answer.json()["message"]
