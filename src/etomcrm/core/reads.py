"""The read path of the API: documents as JSON text, straight from the database.

A read is the most frequent call by far, so it skips what a read does not need: no ORM
session or transaction (the read engine runs in autocommit), no parsing of the stored
document and writing it out again (its text is spliced with the ``href`` only the
request can know). Rules are the same as everywhere: roles are checked, customers see
only their own resources.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import orjson
from sqlalchemy import Text, cast
from sqlalchemy.exc import DBAPIError, PendingRollbackError

from etomcrm.config import get_settings
from etomcrm.core.errors import NotFound, ServiceUnavailable
from etomcrm.core.resources import READ, ResourceKind, href_for, list_statements, total_key
from etomcrm.core.totals import TOTALS
from etomcrm.db import get_read_engine
from etomcrm.security.service import Principal

T = TypeVar("T")
_held = threading.local()


def _with_connection(work: Callable[[Any], T]) -> T:
    """Run ``work`` on this thread's read connection, held open between requests.

    Checking a connection out of the pool and back for every read costs more than the
    read itself. A connection the database dropped is replaced once.
    """
    engine = get_read_engine()
    key = id(engine)  # one engine per database URL and process
    for attempt in (1, 2):
        held = getattr(_held, "connections", None)
        if held is None:
            held = _held.connections = {}
        connection = held.get(key)
        if connection is None or connection.closed or connection.invalidated:
            connection = held[key] = engine.connect()
        try:
            return work(connection)
        except Exception as error:
            if not _lost(engine, connection, error):
                raise
            # The server went away: every pooled connection is as dead as this one.
            connection.invalidate()
            held.pop(key, None)
            engine.dispose(close=False)
            if attempt == 2:
                raise ServiceUnavailable(
                    "the database could not be reached; retry the read in a moment",
                    retry_after=2,
                ) from error
    raise AssertionError("unreachable")


def _lost(engine: Any, connection: Any, error: Exception) -> bool:
    """Whether ``error`` means the connection is gone (and a fresh one may succeed)."""
    if isinstance(error, PendingRollbackError) or connection.invalidated:
        # What a connection that failed mid-statement answers until it is rolled back.
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    # Reads run on the driver's connection directly, so its own errors arrive unwrapped.
    driver_error: Any = error.orig if isinstance(error, DBAPIError) else error
    try:
        dbapi_connection = connection.connection.dbapi_connection
    except Exception:
        return True
    return bool(engine.dialect.is_disconnect(driver_error, dbapi_connection, None))


def _body_and_mark(dialect: str) -> tuple[str, str]:
    """The document column as text, and the driver's parameter mark."""
    return ("body::text", "%s") if dialect == "postgresql" else ("body", "?")


@cache
def _point_read_sql(table: str, dialect: str, scoped: bool) -> str:
    body, mark = _body_and_mark(dialect)
    sql = f"SELECT {body}, version FROM {table} WHERE id = {mark}"
    return sql + f" AND owner_customer_id = {mark}" if scoped else sql


def with_href(document: str | bytes, href: str) -> bytes:
    """The stored document with its href first, without parsing it."""
    raw = document.encode() if isinstance(document, str) else document
    return b'{"href":' + orjson.dumps(href) + b"," + raw.lstrip()[1:]


def read_document(kind: ResourceKind, principal: Principal, resource_id: str) -> tuple[str, int]:
    """One resource's stored JSON text and version; NotFound if the caller may not see it."""
    kind.authorize(principal, READ)
    scoped = principal.is_customer and kind.customer_owned
    params: tuple[Any, ...] = (resource_id, principal.customer_id) if scoped else (resource_id,)

    def point_read(conn: Any) -> Any:
        sql = _point_read_sql(kind.row.__tablename__, conn.dialect.name, scoped)
        # Straight to the driver (sqlite3 or psycopg): one statement, one row, and
        # SQLAlchemy's result machinery would cost more than the read itself.
        return conn.connection.driver_connection.execute(sql, params).fetchone()

    row = _with_connection(point_read)
    if row is None:
        raise NotFound(f"no {kind.name} with id {resource_id}")
    return row[0], row[1]


@cache
def _unfiltered_sql(table: str, dialect: str, scoped: bool) -> tuple[str, str]:
    """Count and page SQL of a list without filters, the most frequent list by far.

    The same statements as :func:`etomcrm.core.resources.list_statements` builds, written
    once instead of composed per request.
    """
    body, mark = _body_and_mark(dialect)
    where = f" WHERE owner_customer_id = {mark}" if scoped else ""
    count = f"SELECT count(*) FROM {table}{where}"
    page = (
        f"SELECT id, {body} FROM {table} WHERE id IN "
        f"(SELECT id FROM {table}{where} ORDER BY id LIMIT {mark} OFFSET {mark}) ORDER BY id"
    )
    return count, page


def list_documents(
    kind: ResourceKind,
    principal: Principal,
    filters: dict[str, list[str]],
    offset: int,
    limit: int,
) -> tuple[list[tuple[str, str]], int]:
    """A page of (id, stored JSON text) and the total; at most two statements."""
    key = total_key(kind, principal, filters)
    if filters:
        engine = get_read_engine()
        count_stmt, page_stmt = list_statements(
            kind,
            principal,
            filters,
            engine.dialect.name,
            offset,
            limit,
            [kind.row.id, cast(kind.row.body, Text)],
        )

        def count(conn: Any) -> int:
            return int(conn.execute(count_stmt).scalar() or 0)

        def page(conn: Any) -> list[Any]:
            return list(conn.execute(page_stmt).all())

    else:
        kind.authorize(principal, READ)
        scoped = principal.is_customer and kind.customer_owned
        scope: tuple[Any, ...] = (principal.customer_id,) if scoped else ()

        def count(conn: Any) -> int:
            sql = _unfiltered_sql(kind.row.__tablename__, conn.dialect.name, scoped)[0]
            return int(conn.exec_driver_sql(sql, scope).scalar() or 0)

        def page(conn: Any) -> list[Any]:
            sql = _unfiltered_sql(kind.row.__tablename__, conn.dialect.name, scoped)[1]
            return list(conn.exec_driver_sql(sql, (*scope, limit, offset)).all())

    def page_read(conn: Any) -> tuple[list[tuple[str, str]], int]:
        total = TOTALS.get(key)
        if total is None:
            total = count(conn)
            TOTALS.put(key, total, get_settings().list_total_cache_seconds)
        rows = [(r[0], r[1]) for r in page(conn)] if offset < total else []
        return rows, total

    return _with_connection(page_read)


def render_documents(kind: ResourceKind, rows: list[tuple[str, str]], base_url: str) -> bytes:
    """A JSON array of stored documents, each with its href."""
    # The href prefix is escaped once; ids are server-made UUIDs with nothing to escape.
    prefix = b'{"href":' + orjson.dumps(href_for(kind, base_url, ""))[:-1]
    parts = [
        prefix + rid.encode() + b'",' + document.encode().lstrip()[1:] for rid, document in rows
    ]
    return b"[" + b",".join(parts) + b"]"
