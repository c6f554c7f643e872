"""Engine, sessions and the declarative base shared by every area."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from psycopg.abc import Buffer
from psycopg.types.array import ListDumper
from sqlalchemy import (
    ARRAY,
    JSON,
    DateTime,
    Engine,
    String,
    any_,
    create_engine,
    event,
    func,
    literal,
    make_url,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from etomcrm.config import get_settings

# Documents are kept as JSON text on both databases (PostgreSQL's json, not jsonb): the
# API answers with the stored text as it is, and jsonb would have to be turned back into
# text on every read. Filters that look inside a document cast it to jsonb.
JSONDoc = JSON()


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite too (which stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store UTC-aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


_id_lock = threading.Lock()
_last: tuple[int, int] = (0, 0)
_RANDOM_BITS = 74  # what uuid7 leaves beside the time, version and variant
_random = b""
_taken = 0


def new_id() -> str:
    """A UUID whose first 48 bits are the time in ms, so ids sort in creation order.

    Lists page by id; time order keeps new rows at the end and the B-tree append-only.
    Within one process ids strictly increase, even within one millisecond (RFC 9562's
    monotonic random): hub events are delivered to a listener in the order of theirs.
    """
    global _last, _random, _taken
    ms = time.time_ns() // 1_000_000
    with _id_lock:
        # Random bytes drawn from the OS a few thousand at a time, not one call an id
        # (a bill run makes hundreds of thousands of ids).
        if _taken + 10 > len(_random):
            _random, _taken = secrets.token_bytes(10 * 1024), 0
        drawn = _random[_taken : _taken + 10]
        _taken += 10
        # Half the random range, so that counting up within a millisecond never overflows.
        rand = int.from_bytes(drawn, "big") >> (80 - _RANDOM_BITS + 1)
        if (ms, rand) <= _last:
            ms, rand = _last[0], _last[1] + 1
        _last = (ms, rand)
    # Version 7 and RFC 4122 variant bits, as uuid7 lays them out.
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0x2 << 62) | (rand & (2**62 - 1))
    digits = f"{value:032x}"
    # What str(uuid.UUID(int=value)) writes, without making the object.
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while one writer commits; busy_timeout makes the
    # second worker process wait for the write lock instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the write lock up front, so two processes never deadlock upgrading a
    # read lock (SQLITE_BUSY); readers never begin, and under WAL never wait for a writer.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_autocommit(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy, not the sqlite3 module, decides when a transaction begins.
    dbapi_connection.isolation_level = None


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# The documents are read back with the same parser that read the request, so a number
# makes the same round trip on every database (orjson turns integers beyond 64 bits
# into floats; the standard json module would hand back integers orjson cannot write).
# hide_parameters: a failed statement's error (and so every log line and traceback that
# carries it) names the SQL but not its values, which hold resource bodies, personal
# data included.
_JSON = {
    "json_serializer": _json_dumps,
    "json_deserializer": orjson.loads,
    "hide_parameters": True,
}


def private_sqlite_file(url: str) -> None:
    """Create a SQLite database file readable by its owner only (0600) before SQLite
    does (which would take the umask, often world-readable): it holds customer data and
    password hashes. An existing file keeps the mode its owner gave it."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:") or os.path.exists(path):
        return
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


@lru_cache(maxsize=16)
def _engine_for(url: str, pid: int, reader: bool) -> Engine:
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **_JSON)
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "connect", _sqlite_autocommit)
        if not reader:
            event.listen(engine, "begin", _sqlite_begin)
        return engine
    if reader:
        # Reads run in autocommit: a point read is one round trip, with no BEGIN and
        # COMMIT around it and no pre-ping before it.
        engine = create_engine(
            url, pool_size=10, max_overflow=10, isolation_level="AUTOCOMMIT", **_JSON
        )
    else:
        engine = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, **_JSON)
    event.listen(engine, "connect", _quoted_string_arrays)
    return engine


class _QuotedStrings(ListDumper):
    """A list of strings as PostgreSQL's array text, every element quoted, written by
    orjson: psycopg's own dumper tries a regular expression on each element, and a bill
    run's chunk sends lists of thousands of ids (0.9 s of a 20,000-account run's 19 s
    profiled went there). A JSON string without a backslash (no quote, backslash or
    control character in it) is written as the array text quotes it; anything else goes
    to psycopg's dumper."""

    def dump(self, obj: list[Any]) -> Buffer | None:
        if obj and self.delimiter == b"," and all(type(item) is str for item in obj):
            data = orjson.dumps(obj)
            if b"\\" not in data:
                return b"{" + data[1:-1] + b"}"
        return super().dump(obj)


def _quoted_string_arrays(dbapi_connection: Any, _: Any) -> None:
    dbapi_connection.adapters.register_dumper(list, _QuotedStrings)


def get_engine(url: str | None = None) -> Engine:
    """The engine for writes (and reads that must see a consistent snapshot)."""
    # Keyed by pid: a forked worker must not share its parent's connections.
    return _engine_for(url or get_settings().database_url, os.getpid(), False)


def get_read_engine(url: str | None = None) -> Engine:
    """The engine for plain reads: autocommit, so each statement stands alone."""
    return _engine_for(url or get_settings().database_url, os.getpid(), True)


@lru_cache(maxsize=16)
def _sessionmaker(url: str, pid: int, readonly: bool) -> sessionmaker[Session]:
    engine = get_read_engine(url) if readonly else get_engine(url)
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None, *, readonly: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = _sessionmaker(url or get_settings().database_url, os.getpid(), readonly)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` once this session's transaction has committed (never on rollback).

    For what must not happen unless the change is durable: waking a flow, for example.
    """
    if not session.info.get("after_commit_listening"):
        session.info["after_commit_listening"] = True
        event.listen(session, "after_commit", _run_after_commit)
        event.listen(session, "after_soft_rollback", _forget_after_commit)
    session.info.setdefault("after_commit", []).append(action)


def before_commit(session: Session, key: str, action: Callable[[], None]) -> None:
    """Run ``action`` in this session's transaction just before its outermost commit,
    once per ``key`` however often it is registered; never on rollback."""
    if not session.info.get("before_commit_listening"):
        session.info["before_commit_listening"] = True
        event.listen(session, "before_commit", _run_before_commit)
        event.listen(session, "after_soft_rollback", _forget_before_commit)
    session.info.setdefault("before_commit", {}).setdefault(key, action)


def _run_before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    while actions := session.info.pop("before_commit", {}):
        for action in actions.values():
            action()


def _forget_before_commit(session: Session, previous_transaction: Any) -> None:
    session.info.pop("before_commit", None)


def _run_after_commit(session: Session) -> None:
    # SQLAlchemy also reports a savepoint's release as a commit; the work is durable
    # only when the outermost transaction commits.
    if session.in_nested_transaction():
        return
    for action in session.info.pop("after_commit", []):
        action()


def _forget_after_commit(session: Session, previous_transaction: Any) -> None:
    session.info.pop("after_commit", None)


def among(session: Session, column: Any, values: Iterable[str]) -> Any:
    """``column IN values`` for any number of values: on PostgreSQL ``= ANY`` of one
    array parameter, on SQLite the values sent as one JSON array and unpacked there.
    One parameter whatever the number of values: an ``IN`` list of hundreds is a
    statement too long for the driver to keep parsed, parsed again on every call."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(sorted(set(values)), ARRAY(String)))
    data = orjson.dumps(sorted(set(values))).decode()
    return column.in_(select(func.json_each(data).table_valued("value").c.value))
