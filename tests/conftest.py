"""Fixtures: every test that touches the database runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event
from sqlalchemy.exc import OperationalError

from etomcrm.bootstrap import bootstrap
from etomcrm.config import get_settings
from etomcrm.core.bus import BUS, DomainEvent
from etomcrm.core.clock import FLOW_CLOCK
from etomcrm.core.totals import TOTALS
from etomcrm.db import get_engine, get_read_engine, session_scope
from etomcrm.models import metadata
from etomcrm.security.service import PRINCIPALS, create_api_key
from etomcrm.security.throttle import forget_attempts

PG_SERVER = os.environ.get("ETOMCRM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
# One database per test process, so parallel runs (xdist, a second terminal) never
# truncate each other's tables.
PG_DATABASE = f"etomcrm_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
_migrated: set[str] = set()


def _admin_connection() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_SERVER.replace("+psycopg", "") + "/postgres", autocommit=True)


@pytest.fixture(scope="session")
def _postgres_url() -> Iterator[str]:
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}"')
        conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    url = f"{PG_SERVER}/{PG_DATABASE}"
    yield url
    get_engine(url).dispose()
    get_read_engine(url).dispose()
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


def _reset(url: str) -> None:
    engine = get_engine(url)
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")
        else:
            for table in tables:
                conn.exec_driver_sql(f'DELETE FROM "{table}"')
    _empty_flow_checkpoints(url)


def _empty_flow_checkpoints(url: str) -> None:
    """DBOS's system tables go with the data the flows ran on. Kept, a flow id that a
    later test uses again (qos-2026-10) attaches to the earlier test's finished run and
    never runs on the new data, and a flow queued by a test without a worker is run by
    the next test that has one. Its migration records stay."""
    from etomcrm.flows.engine import system_database_url

    system = system_database_url(url)
    if system.startswith("sqlite"):
        if not Path(system.split("///", 1)[1]).exists():
            return
        engine = create_engine(system)
        try:
            with engine.begin() as conn:
                names = conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                ).scalars()
                for name in [n for n in names if _is_checkpoint_table(n)]:
                    conn.exec_driver_sql(f'DELETE FROM "{name}"')
        finally:
            engine.dispose()
        return
    # The queues' pollers of a launched engine read these tables all the time; the
    # TRUNCATE's locks, taken table by table, can meet a poll's in the other order, and
    # PostgreSQL then ends one of the two: the TRUNCATE is tried again.
    for attempt in range(5):
        try:
            with get_engine(url).begin() as conn:
                names = conn.exec_driver_sql(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'dbos'"
                ).scalars()
                tables = [f'dbos."{n}"' for n in names if _is_checkpoint_table(n)]
                if tables:
                    conn.exec_driver_sql("TRUNCATE " + ", ".join(tables) + " CASCADE")
            return
        except OperationalError as error:
            if not isinstance(error.orig, psycopg.errors.DeadlockDetected) or attempt == 4:
                raise


def _is_checkpoint_table(name: str) -> bool:
    return not name.endswith("migrations") and not name.startswith("sqlite_")


@pytest.fixture(scope="session")
def _sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'etomcrm.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, _sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A migrated, empty database, and the settings pointing at it."""
    url = _sqlite_url if request.param == "sqlite" else request.getfixturevalue("_postgres_url")
    monkeypatch.setenv("ETOMCRM_DATABASE_URL", url)
    get_settings.cache_clear()
    bootstrap()
    if url not in _migrated:
        from etomcrm.migrate import upgrade

        # Each run starts from an empty database, so the migrations themselves are tested.
        upgrade(url)
        _migrated.add(url)
    _reset(url)
    PRINCIPALS.clear()
    TOTALS.clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    from etomcrm.bootstrap import create_app
    from tests.schema_check import ConformingClient

    # Each test signs in afresh: the sign-in throttle's counts are per process.
    forget_attempts()
    with ConformingClient(create_app(deliver_events=False, run_flows=False)) as test_client:
        yield test_client


Handled = Callable[[type[Any]], list[Any]]


@pytest.fixture
def handled() -> Iterator[Handled]:
    """``handled(QuoteDecided)``: the events of that type the bus hands on from now,
    in order (beside the handlers the composition root wired)."""
    watching: list[tuple[type[DomainEvent], Callable[[Any], None]]] = []

    def watch(event_type: type[Any]) -> list[Any]:
        events: list[Any] = []
        BUS.subscribe(event_type, events.append)
        watching.append((event_type, events.append))
        return events

    yield watch
    for event_type, handler in watching:
        BUS.unsubscribe(event_type, handler)


TokenFactory = Callable[..., dict[str, str]]


@pytest.fixture
def auth(db_url: str) -> TokenFactory:
    """``auth("sales")`` or ``auth("customer", customer_id=...)``: request headers with a
    fresh API key of that role."""

    def make(role: str = "admin", customer_id: str | None = None) -> dict[str, str]:
        with session_scope() as session:
            _, token = create_api_key(session, f"test-{role}", role, customer_id)
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def admin(auth: TokenFactory) -> dict[str, str]:
    return auth("admin")


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(db_url: str) -> Callable[[], Any]:
    """Use as ``with count_queries() as counter:``; counts SQL statements sent."""
    from contextlib import contextmanager

    @contextmanager
    def counting() -> Iterator[QueryCounter]:
        counter = QueryCounter()
        engines = (get_engine(db_url), get_read_engine(db_url))
        for engine in engines:
            event.listen(engine, "before_cursor_execute", counter)
        try:
            yield counter
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", counter)

    return counting


SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture
def flows(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process runs the flows (DBOS launched on the test database), with the
    simulated network answering at once and customer messages written under tmp_path."""
    from etomcrm.flows import engine

    monkeypatch.setenv("ETOMCRM_MESSAGE_DIR", str(tmp_path / "messages"))
    monkeypatch.setenv("ETOMCRM_NETWORK_DAY_SECONDS", "0")
    get_settings.cache_clear()
    engine.launch(db_url, schedules=False)
    yield
    FLOW_CLOCK.reset()
    waiting = _flows_still_waiting()
    engine.shutdown()
    if waiting:
        # A flow waiting durably (for a ticket, a quote decision) holds a thread the
        # interpreter would join at exit for days; end this worker now, naming it.
        sys.stderr.write(f"\nflows left waiting by the test: {waiting}; finish them\n")
        sys.stderr.flush()
        os._exit(3)


def _flows_still_waiting(seconds: float = 10.0) -> list[str]:
    from dbos import DBOS

    deadline = time.monotonic() + seconds
    while True:
        pending = [w.workflow_id for w in DBOS.list_workflows(status="PENDING")]
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.2)


@pytest.fixture
def network() -> Iterator[dict[str, Any]]:
    """The simulated network answering at once, serving every site, never late or
    failing unless a test names a site in the returned overrides
    ({site_id: "late" | "fail" | "unserviceable" | ...}): site ids are random, so a
    rate above zero would make a test's outcome random too."""
    from etomcrm.network.port import use_network
    from etomcrm.network.simulator import SimulatedNetwork

    overrides: dict[str, Any] = {}
    use_network(
        SimulatedNetwork(
            day_seconds=0,
            late_rate=0,
            failure_rate=0,
            unserviceable_rate=0,
            special_build_rate=0,
            overrides=overrides,
        )
    )
    yield overrides
    use_network(None)
