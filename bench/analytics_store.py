"""The analytical store: where it lives, measured (issue 13).

Two candidates, on the same operational data:

- ``tables``: the store as etomcrm keeps it, tables ``an_*`` in the operational
  database (SQLite or PostgreSQL), derived by ``etomcrm.analytics.store``;
- ``duckdb``: an embedded DuckDB file the store would own. DuckDB cannot read etomcrm's
  database without an extension (sqlite_scanner, postgres_scanner), which it downloads
  at run time, which etomcrm must not do; so the operational rows are read through
  SQLAlchemy as for ``tables``, written to CSV and loaded with DuckDB's built-in
  ``COPY``, and the aggregation runs inside DuckDB.

Measured for each: a full rebuild of the three largest facts (usage per site and day,
contacts, billed revenue) and, for ``tables``, of the whole store; then a day of
changes (a new day of hourly usage for a tenth of the customers, a new contact for one
customer in a hundred) and the incremental refresh of just that.

See bench/README.md ("Analytical store (issue 13)").
Usage: .venv/bin/python bench/analytics_store.py [--db sqlite|postgresql|both]
       [--customers N] [--usage N]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_DB = "etomcrm_bench_analytics"
START = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 5_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def timed(action: Callable[[], Any]) -> float:
    began = time.perf_counter()
    action()
    return round(time.perf_counter() - began, 2)


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _tmf(row_id: str, owner: str, body: dict[str, Any], **columns: Any) -> dict[str, Any]:
    return {
        "id": row_id,
        "at_type": columns.pop("type"),
        "name": columns.pop("name", None),
        "status": columns.pop("status", None),
        "owner_customer_id": owner,
        "body": {"id": row_id, **body},
        "version": 1,
        "created_at": columns.pop("created_at", START),
        "updated_at": START,
        **columns,
    }


def seed(url: str, customers: int, usage: int) -> None:
    """Customers with a site, three contacts, a ticket each fifth, three monthly bills of
    two lines, a completed order, and ``usage`` hourly records spread over the sites."""
    from etomcrm.billing.models import AppliedRateRow, CustomerBillRow, UsageRecordRow
    from etomcrm.customer_interface.models import (
        CustomerRow,
        GeographicSiteRow,
        PartyInteractionRow,
    )
    from etomcrm.db import session_scope
    from etomcrm.migrate import upgrade
    from etomcrm.order_handling.models import ProductOrderRow
    from etomcrm.problem_handling.models import TroubleTicketRow

    upgrade(url)
    ids = [f"c{n:06d}" for n in range(customers)]

    def customer_rows() -> Iterator[dict[str, Any]]:
        for n, cid in enumerate(ids):
            segment = ("dealer", "enterprise", "public")[n % 3]
            body = {
                "name": f"Customer {n}",
                "characteristic": [{"name": "segment", "value": segment}],
            }
            yield _tmf(cid, cid, body, type="Customer", name=f"Customer {n}", status="active")

    def site_rows() -> Iterator[dict[str, Any]]:
        for cid in ids:
            yield _tmf(f"s-{cid}", cid, {"name": "Site", "place": [{"city": "München"}]},
                       type="GeographicSite")  # fmt: skip

    def contact_rows() -> Iterator[dict[str, Any]]:
        for n, cid in enumerate(ids):
            for k in range(3):
                created = START + timedelta(days=(n + 7 * k) % 90, hours=8)
                body = {
                    "reason": ("Billing question", "Outage", "Order status")[(n + k) % 3],
                    "direction": "inbound",
                    "channel": [{"name": ("phone", "email", "portal")[k]}],
                    "creationDate": created.isoformat(),
                    "interactionDate": {
                        "startDateTime": (created + timedelta(minutes=5 * k)).isoformat(),
                        "endDateTime": (created + timedelta(minutes=5 * k + 12)).isoformat(),
                    },
                    "status": "completed",
                }
                yield _tmf(f"i{k}-{cid}", cid, body, type="PartyInteraction", status="completed")

    def ticket_rows() -> Iterator[dict[str, Any]]:
        for n, cid in enumerate(ids[::5]):
            opened = START + timedelta(days=n % 90, hours=9)
            body = {"creationDate": opened.isoformat(),
                    "resolutionDate": (opened + timedelta(hours=3)).isoformat()}  # fmt: skip
            yield _tmf(f"t-{cid}", cid, body, type="TroubleTicket", status="closed")

    def order_rows() -> Iterator[dict[str, Any]]:
        for cid in ids:
            body = {"state": "completed", "orderDate": START.isoformat(),
                    "completionDate": (START + timedelta(days=9)).isoformat(),
                    "productOrderItem": [{"id": "1", "action": "add",
                                          "product": {"place": [{"id": f"s-{cid}"}]}}]}  # fmt: skip
            yield _tmf(f"o-{cid}", cid, body, type="ProductOrder", status="completed")

    def bill_rows() -> Iterator[dict[str, Any]]:
        for cid in ids:
            for month in (1, 2, 3):
                yield _tmf(f"b{month}-{cid}", cid, {}, type="CustomerBill", status="settled",
                           billing_account_id=f"a-{cid}", bill_no=f"RE-{month}-{cid}",
                           category="normal", period_start=date(2026, month, 1),
                           amount_due=Decimal("119.00"), remaining_amount=Decimal(0))  # fmt: skip

    def rate_rows() -> Iterator[dict[str, Any]]:
        for cid in ids:
            for month in (1, 2, 3):
                for kind, amount in (("recurring", "100.00"), ("usage", "12.34")):
                    yield {"id": f"r{month}{kind}-{cid}", "source_key": f"r{month}{kind}-{cid}",
                           "billing_account_id": f"a-{cid}", "customer_id": cid,
                           "bill_id": f"b{month}-{cid}", "product_id": f"p-{cid}",
                           "rate_type": kind, "name": kind, "period_start": date(2026, month, 1),
                           "quantity": Decimal(1), "tax_excluded": Decimal(amount),
                           "tax_rate": Decimal(19), "tax_amount": Decimal(0),
                           "tax_included": Decimal(amount), "currency": "EUR",
                           "characteristic": {}, "rated_at": START}  # fmt: skip

    def usage_rows() -> Iterator[dict[str, Any]]:
        per_customer = max(1, usage // customers)
        count = 0
        for cid in ids:
            for h in range(per_customer):
                if count == usage:
                    return
                count += 1
                at = START + timedelta(hours=h)
                yield {"usage_id": f"u{h}-{cid}", "customer_id": cid, "product_id": None,
                       "site_id": f"s-{cid}", "usage_type": "traffic", "start_at": at,
                       "end_at": at + timedelta(hours=1), "volume": Decimal("1.25"),
                       "unit": "GB", "status": "received", "version": 1,
                       "received_at": at}  # fmt: skip

    tables: Sequence[tuple[Any, Callable[[], Iterator[dict[str, Any]]]]] = (
        (CustomerRow, customer_rows),
        (GeographicSiteRow, site_rows),
        (PartyInteractionRow, contact_rows),
        (TroubleTicketRow, ticket_rows),
        (ProductOrderRow, order_rows),
        (CustomerBillRow, bill_rows),
        (AppliedRateRow, rate_rows),
        (UsageRecordRow, usage_rows),
    )
    for table, rows in tables:
        with session_scope(url) as session:
            for batch in _batches(rows()):
                session.execute(insert(table), batch)
        log(f"seeded {table.__tablename__}")


def day_of_changes(
    url: str, customers: int, round_: int = 0
) -> tuple[list[str], list[tuple[str, date]]]:
    """A new day of hourly usage for a tenth of the customers, a new contact for one in a
    hundred: what the bus would report in a day (``round_``: the how-manieth new day)."""
    from etomcrm.billing.models import UsageRecordRow
    from etomcrm.customer_interface.models import PartyInteractionRow
    from etomcrm.db import session_scope

    day = START + timedelta(days=120 + round_)
    ids = [f"c{n:06d}" for n in range(customers)]
    touched, used = ids[::100], ids[::10]
    with session_scope(url) as session:
        rows = (
            {
                "usage_id": f"d{round_}-{h}-{cid}",
                "customer_id": cid,
                "product_id": None,
                "site_id": f"s-{cid}",
                "usage_type": "traffic",
                "start_at": day + timedelta(hours=h),
                "end_at": day + timedelta(hours=h + 1),
                "volume": Decimal("2.5"),
                "unit": "GB",
                "status": "received",
                "version": 1,
                "received_at": day,
            }
            for cid in used
            for h in range(24)
        )
        for batch in _batches(iter(rows)):
            session.execute(insert(UsageRecordRow), batch)
        contacts = (
            _tmf(
                f"new{round_}-{cid}",
                cid,
                {
                    "reason": "Outage",
                    "direction": "inbound",
                    "channel": [{"name": "phone"}],
                    "creationDate": day.isoformat(),
                    "status": "open",
                },
                type="PartyInteraction",
                status="open",
            )
            for cid in touched
        )
        for batch in _batches(iter(contacts)):
            session.execute(insert(PartyInteractionRow), batch)
    return touched, [(cid, day.date()) for cid in used]


# ----- candidate: DuckDB over a file it owns ---------------------------------------------


def _csv(path: Path, rows: Iterator[Sequence[Any]]) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
            count += 1
    return count


DUCK_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_raw (customer_id VARCHAR, site_id VARCHAR, start_at TIMESTAMPTZ,
  usage_type VARCHAR, unit VARCHAR, volume DECIMAL(20, 6));
CREATE TABLE IF NOT EXISTS an_usage_fact (customer_id VARCHAR, site_id VARCHAR, day DATE,
  usage_type VARCHAR, unit VARCHAR, volume DECIMAL(38, 6), records BIGINT);
CREATE TABLE IF NOT EXISTS an_contact_fact (interaction_id VARCHAR, customer_id VARCHAR,
  channel VARCHAR, reason VARCHAR, direction VARCHAR, status VARCHAR, received_at TIMESTAMPTZ,
  response_seconds INTEGER, handling_seconds INTEGER, ended BOOLEAN, fcr BOOLEAN);
CREATE TABLE IF NOT EXISTS rate_raw (customer_id VARCHAR, product_id VARCHAR, month VARCHAR,
  rate_type VARCHAR, currency VARCHAR, amount DECIMAL(14, 2));
CREATE TABLE IF NOT EXISTS an_revenue_fact (customer_id VARCHAR, product_id VARCHAR,
  month VARCHAR, rate_type VARCHAR, currency VARCHAR, amount DECIMAL(38, 2));
"""


def _usage_raw(
    session: Session, ids: Sequence[str] | None, since: datetime | None
) -> Iterator[Any]:
    from etomcrm.billing.models import UsageRecordRow as U

    stmt = select(U.customer_id, U.site_id, U.start_at, U.usage_type, U.unit, U.volume)
    if since is not None:
        stmt = stmt.where(U.start_at >= since)
    if ids is not None:
        stmt = stmt.where(U.customer_id.in_(ids))
    for row in session.execute(stmt.execution_options(yield_per=10_000)):
        yield (row[0], row[1], row[2].astimezone(UTC).isoformat(), *row[3:])


def _contact_rows(session: Session, ids: Sequence[str] | None) -> Iterator[Any]:
    """Contacts derived by the store's own code, then written for DuckDB."""
    from etomcrm.analytics.models import AnContactFact
    from etomcrm.analytics.store import derive_contacts

    # The same derivation as the tables candidate, into a throwaway transaction: the
    # first-contact rule needs each customer's contacts together, which is Python's work.
    nested = session.begin_nested()
    mine = AnContactFact.customer_id.in_(ids) if ids is not None else AnContactFact.day.is_not(None)
    session.execute(delete(AnContactFact).where(mine))
    derive_contacts(session, ids)
    cols = AnContactFact.__table__.columns
    for row in session.execute(select(*[c for c in cols if c.name != "day"]).where(mine)):
        yield tuple(v.isoformat() if isinstance(v, datetime) else v for v in row)
    nested.rollback()


def _rate_rows(session: Session, ids: Sequence[str] | None) -> Iterator[Any]:
    from etomcrm.billing.models import AppliedRateRow as R
    from etomcrm.billing.models import CustomerBillRow as B

    stmt = (
        select(
            B.owner_customer_id, R.product_id, R.period_start, R.rate_type, R.currency,
            R.tax_excluded,
        )
        .join(B, B.id == R.bill_id)
        .where(B.bill_no.is_not(None), R.period_start.is_not(None))
    )  # fmt: skip
    if ids is not None:
        stmt = stmt.where(B.owner_customer_id.in_(ids))
    for c, p, start, kind, cur, amount in session.execute(stmt):
        yield (c, p, f"{start.year:04d}-{start.month:02d}" if start else "", kind, cur, amount)


def duck_rebuild(url: str, duck: duckdb.DuckDBPyConnection, work: Path) -> dict[str, float]:
    from etomcrm.db import session_scope

    timings: dict[str, float] = {}
    duck.execute(DUCK_SCHEMA)
    for table in ("usage_raw", "an_usage_fact", "an_contact_fact", "rate_raw", "an_revenue_fact"):
        duck.execute(f"DELETE FROM {table}")
    with session_scope(url) as session:
        began = time.perf_counter()
        _csv(work / "usage.csv", _usage_raw(session, None, None))
        duck.execute(f"COPY usage_raw FROM '{work / 'usage.csv'}' (HEADER false)")
        duck.execute(
            "INSERT INTO an_usage_fact SELECT customer_id, site_id, CAST(timezone('UTC', start_at)"
            " AS DATE), usage_type, unit, sum(volume), count(*) FROM usage_raw GROUP BY ALL"
        )
        timings["usage"] = round(time.perf_counter() - began, 2)
        began = time.perf_counter()
        _csv(work / "contacts.csv", _contact_rows(session, None))
        duck.execute(f"COPY an_contact_fact FROM '{work / 'contacts.csv'}' (HEADER false)")
        timings["contacts"] = round(time.perf_counter() - began, 2)
        began = time.perf_counter()
        _csv(work / "rates.csv", _rate_rows(session, None))
        duck.execute(f"COPY rate_raw FROM '{work / 'rates.csv'}' (HEADER false)")
        duck.execute(
            "INSERT INTO an_revenue_fact SELECT customer_id, product_id, month, rate_type,"
            " currency, sum(amount) FROM rate_raw GROUP BY ALL"
        )
        timings["revenue"] = round(time.perf_counter() - began, 2)
    timings["three facts"] = round(timings["usage"] + timings["contacts"] + timings["revenue"], 2)
    return timings


def duck_refresh(
    url: str,
    duck: duckdb.DuckDBPyConnection,
    work: Path,
    touched: list[str],
    customer_days: list[tuple[str, date]],
) -> float:
    from etomcrm.db import session_scope

    day = customer_days[0][1]
    used = [c for c, _ in customer_days]
    began = time.perf_counter()
    with session_scope(url) as session:
        since = datetime(day.year, day.month, day.day, tzinfo=UTC)
        _csv(work / "day.csv", _usage_raw(session, used, since))
        duck.execute("CREATE OR REPLACE TEMP TABLE day_raw AS SELECT * FROM usage_raw LIMIT 0")
        duck.execute(f"COPY day_raw FROM '{work / 'day.csv'}' (HEADER false)")
        duck.execute("DELETE FROM an_usage_fact WHERE day = ?", [day])
        duck.execute(
            "INSERT INTO an_usage_fact SELECT customer_id, site_id, CAST(timezone('UTC', start_at)"
            " AS DATE), usage_type, unit, sum(volume), count(*) FROM day_raw GROUP BY ALL"
        )
        _csv(work / "touched.csv", _contact_rows(session, touched))
        duck.execute(
            "DELETE FROM an_contact_fact WHERE customer_id IN (SELECT unnest(?))", [touched]
        )
        duck.execute(f"COPY an_contact_fact FROM '{work / 'touched.csv'}' (HEADER false)")
    return round(time.perf_counter() - began, 2)


# ----- candidate: tables an_* in the operational database --------------------------------


def tables_rebuild(url: str) -> dict[str, float]:
    from etomcrm.analytics import store
    from etomcrm.analytics.models import AnContactFact, AnRevenueFact, AnUsageFact
    from etomcrm.db import session_scope

    timings: dict[str, float] = {}
    for name, table, derive in (
        ("usage", AnUsageFact, store.derive_usage),
        ("contacts", AnContactFact, store.derive_contacts),
        ("revenue", AnRevenueFact, store.derive_revenue),
    ):
        with session_scope(url) as session:
            session.execute(delete(table))
            timings[name] = timed(lambda d=derive, s=session: d(s, None))  # type: ignore[misc]
    timings["three facts"] = round(timings["usage"] + timings["contacts"] + timings["revenue"], 2)
    with session_scope(url) as session:
        timings["whole store"] = timed(lambda: store.rebuild(session))
    return timings


def tables_refresh(
    url: str, touched: list[str], customer_days: list[tuple[str, date]]
) -> dict[str, float]:
    """The day's changes derived directly, in one go each: what the DuckDB candidate does."""
    from etomcrm.analytics import store
    from etomcrm.analytics.models import AnContactFact
    from etomcrm.db import session_scope

    timings: dict[str, float] = {}
    with session_scope(url) as session:
        timings["usage day"] = timed(lambda: store.refresh_usage(session, customer_days))
    with session_scope(url) as session:
        began = time.perf_counter()
        session.execute(delete(AnContactFact).where(AnContactFact.customer_id.in_(touched)))
        store.derive_contacts(session, touched)
        timings["contacts"] = round(time.perf_counter() - began, 2)
    timings["usage day + contacts"] = round(timings["usage day"] + timings["contacts"], 2)
    return timings


def as_the_system_does(url: str, customers: int, round_: int) -> dict[str, float]:
    """A day of changes refreshed as etomcrm now does it: the bus's handlers only mark
    what changed (``store.mark_customers`` for each new contact's customer, as
    ``handlers.mark_resource_changes`` does for a partyInteraction; ``store.mark_usage``
    for the day's customer-days, as ``handlers.mark_usage`` does), in the transaction of
    the change; then ``store.catch_up_all()`` derives every mark, as the schedule does."""
    from etomcrm.analytics import store
    from etomcrm.analytics.models import AnContactFact, AnUsageFact
    from etomcrm.db import session_scope

    touched, customer_days = day_of_changes(url, customers, round_)
    began = time.perf_counter()
    with session_scope(url) as session:
        store.mark_customers(session, {cid: {AnContactFact} for cid in touched})
        store.mark_usage(session, customer_days)
    marked = round(time.perf_counter() - began, 2)
    began = time.perf_counter()
    taken = store.catch_up_all()
    caught_up = round(time.perf_counter() - began, 2)
    expected = len(touched) + len(customer_days)
    if taken != expected:
        raise SystemExit(f"catch_up_all took {taken} marks, not the day's {expected}")
    with session_scope(url) as session:
        derived = session.scalar(
            select(func.count())
            .select_from(AnContactFact)
            .where(AnContactFact.interaction_id.like(f"new{round_}-%"))
        )
        used = session.scalar(
            select(func.count())
            .select_from(AnUsageFact)
            .where(AnUsageFact.day == customer_days[0][1])
        )
    if derived != len(touched) or used != len(customer_days):
        raise SystemExit(f"the day's contacts ({derived}) or usage ({used}) not derived")
    return {"mark": marked, "catch_up_all": caught_up, "marks": taken}


def rebuilds(url: str, rounds: int) -> list[float]:
    from etomcrm.analytics import store
    from etomcrm.db import session_scope

    times = []
    for _ in range(rounds):
        with session_scope(url) as session:
            times.append(timed(lambda s=session: store.rebuild(s)))  # type: ignore[misc]
    return times


def run(db: str, customers: int, usage: int, rounds: int, duck_too: bool) -> dict[str, Any]:
    from etomcrm.config import get_settings
    from etomcrm.db import get_engine

    work = Path(tempfile.mkdtemp(prefix="etomcrm-analytics-bench-"))
    if db == "sqlite":
        url = f"sqlite:///{work / 'etomcrm.db'}"
    else:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{PG_DB}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DB}"
    os.environ["ETOMCRM_DATABASE_URL"] = url
    get_settings.cache_clear()
    log(f"{db}: seeding {customers} customers, {usage} usage records")
    seed(url, customers, usage)
    log(f"{db}: rebuilding the an_* tables")
    tables = tables_rebuild(url)
    result: dict[str, Any] = {
        "db": db,
        "customers": customers,
        "usage_records": usage,
        "rounds": rounds,
        "day_of_changes": {
            "usage_records": customers // 10 * 24,
            "customers_changed": len(range(0, customers, 100)),
        },
    }
    if duck_too:
        duck = duckdb.connect(str(work / "analytics.duckdb"))
        log(f"{db}: rebuilding the DuckDB file")
        ducked = duck_rebuild(url, duck, work)
    touched, customer_days = day_of_changes(url, customers)
    log(f"{db}: a day of changes: {len(customer_days) * 24} usage records, {len(touched)} contacts")
    direct = tables_refresh(url, touched, customer_days)
    result["tables"] = {"rebuild_s": tables, "refresh_s": direct}
    if duck_too:
        result["duckdb"] = {
            "rebuild_s": ducked,
            "refresh_s": duck_refresh(url, duck, work, touched, customer_days),
        }
        duck.close()
        result["duckdb_file_bytes"] = (work / "analytics.duckdb").stat().st_size
    # The comparison the issue asks for: a day of changes as the system refreshes it
    # (marked, then caught up) against the whole store rebuilt, each ``rounds`` times.
    days = []
    for n in range(1, rounds + 1):
        days.append(as_the_system_does(url, customers, n))
        log(f"{db}: day {n} marked and caught up: {days[-1]}")
    whole = rebuilds(url, rounds)
    log(f"{db}: whole store rebuilt: {whole}")
    refresh = statistics.median(d["mark"] + d["catch_up_all"] for d in days)
    rebuilt = statistics.median(whole)
    result["system"] = {
        "days": days,
        "rebuild_s": whole,
        "refresh_median_s": round(refresh, 2),
        "rebuild_median_s": round(rebuilt, 2),
        "rebuild_over_refresh": round(rebuilt / refresh, 1) if refresh else None,
    }
    get_engine(url).dispose()
    log(json.dumps(result))
    return result


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--usage", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3, help="days of changes, rebuilds")
    parser.add_argument("--no-duckdb", action="store_true", help="the tables only")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    results = [
        run(db, args.customers, args.usage, args.rounds, not args.no_duckdb)
        for db in (["sqlite", "postgresql"] if args.db == "both" else [args.db])
    ]
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"analytics_store-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    log(f"written {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
