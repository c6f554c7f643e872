"""Usage ingest through the service (``ingest_usage``) against PostgreSQL's COPY of the
same rows into the same table.

See bench/README.md ("Usage ingest (TMF635)") for the method.
Usage: .venv/bin/python bench/usage_ingest.py [--db sqlite|postgresql|both]
       [--records N] [--batch B] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_DB = "etomcrm_bench_usage"
PRODUCTS = 100
START = datetime(2026, 11, 1, tzinfo=UTC)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def prepare(url: str) -> None:
    """Migrate; one customer with ``PRODUCTS`` products (the references ingest checks)."""
    from etomcrm.customer_interface.models import CustomerRow
    from etomcrm.db import session_scope
    from etomcrm.migrate import upgrade
    from etomcrm.order_handling.models import ProductRow

    upgrade(url)
    with session_scope(url) as session:
        session.add(
            CustomerRow(
                id="bench-customer",
                at_type="Customer",
                name="Bench",
                status="active",
                owner_customer_id="bench-customer",
                body={"id": "bench-customer", "@type": "Customer", "name": "Bench"},
            )
        )
        for n in range(PRODUCTS):
            session.add(
                ProductRow(
                    id=f"bench-product-{n}",
                    at_type="Product",
                    status="active",
                    owner_customer_id="bench-customer",
                    body={"id": f"bench-product-{n}", "@type": "Product"},
                )
            )


def records(count: int) -> list[Any]:
    """Hourly traffic of ``PRODUCTS`` sites, hour after hour (ids as the hourly tick
    makes them)."""
    from etomcrm.billing.usage import Usage, traffic_usage_id

    out = []
    for n in range(count):
        product, hour = n % PRODUCTS, n // PRODUCTS
        start = START + timedelta(hours=hour)
        site = f"bench-site-{product}"
        out.append(
            Usage(
                usage_id=traffic_usage_id(site, f"bench-product-{product}", start),
                customer_id="bench-customer",
                product_id=f"bench-product-{product}",
                site_id=site,
                usage_type="traffic",
                start_at=start,
                end_at=start + timedelta(hours=1),
                volume=Decimal(n % 9973) / 1000,
            )
        )
    return out


def _truncate(url: str) -> None:
    from sqlalchemy import delete, text

    from etomcrm.billing.models import UsageRecordRow
    from etomcrm.db import session_scope

    with session_scope(url) as session:
        if url.startswith("postgresql"):
            session.execute(text("TRUNCATE usage_record"))
        else:
            session.execute(delete(UsageRecordRow))
    _vacuum(url)


def _vacuum(url: str) -> None:
    if url.startswith("postgresql"):
        plain = url.replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE usage_record")


def copy_baseline(url: str, rows: list[Any]) -> float:
    """PostgreSQL COPY of the rows, rendered to COPY text beforehand (so only the
    database's work is timed): the fastest way in."""
    from etomcrm.billing.usage import COLUMNS, _copy_text

    # The columns the service sets too (no defaults in the table for them).
    blocks = list(_copy_text(rows, f"\treceived\t1\t{datetime.now(UTC).isoformat()}"))
    plain = url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(plain) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor:
            columns = ", ".join((*COLUMNS, "status", "version", "received_at"))
            sql = f"COPY usage_record ({columns}) FROM STDIN"
            with cursor.copy(sql) as copy:
                for block in blocks:
                    copy.write(block)
        conn.commit()
        return time.perf_counter() - started


def plain_insert_baseline(url: str, rows: list[Any]) -> float:
    """SQLite has no COPY: a plain executemany INSERT of the same rows is its baseline."""
    from sqlalchemy import insert

    from etomcrm.billing.models import UsageRecordRow
    from etomcrm.db import session_scope

    values = [
        {
            "usage_id": r.usage_id,
            "customer_id": r.customer_id,
            "product_id": r.product_id,
            "site_id": r.site_id,
            "usage_type": r.usage_type,
            "start_at": r.start_at,
            "end_at": r.end_at,
            "volume": r.volume,
            "unit": "GB",
            "status": "received",
            "version": 1,
        }
        for r in rows
    ]
    started = time.perf_counter()
    with session_scope(url) as session:
        session.execute(insert(UsageRecordRow), values)
    return time.perf_counter() - started


def service(url: str, rows: list[Any], batch: int) -> tuple[float, dict[str, int]]:
    """``ingest_usage`` in batches of ``batch``, a transaction each (as a feed posts)."""
    from etomcrm.billing.usage import ingest_usage
    from etomcrm.db import session_scope

    totals = {"new": 0, "unchanged": 0, "corrected": 0}
    started = time.perf_counter()
    for begin in range(0, len(rows), batch):
        with session_scope(url) as session:
            result = ingest_usage(session, rows[begin : begin + batch])
        totals["new"] += result.new
        totals["unchanged"] += result.unchanged
        totals["corrected"] += result.corrected
    return time.perf_counter() - started, totals


def bench(db: str, count: int, batch: int, rounds: int) -> dict[str, Any]:
    if db == "sqlite":
        path = RESULTS / "tmp" / "usage.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{PG_DB}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DB}"
    os.environ["ETOMCRM_DATABASE_URL"] = url
    from etomcrm.config import get_settings

    get_settings.cache_clear()
    prepare(url)
    rows = records(count)
    log(f"{db}: {count} usage records, service batches of {batch}")
    out: dict[str, Any] = {"db": db, "records": count, "batch": batch, "rounds": []}
    for number in range(rounds):
        _truncate(url)
        baseline = (
            copy_baseline(url, rows) if db == "postgresql" else plain_insert_baseline(url, rows)
        )
        _truncate(url)
        seconds, totals = service(url, rows, batch)
        assert totals["new"] == count, totals
        _vacuum(url)
        # The same records again: all unchanged, nothing written (a retried feed).
        repeat_seconds, repeat = service(url, rows, batch)
        assert repeat["unchanged"] == count, repeat
        round_ = {
            "baseline": "COPY" if db == "postgresql" else "executemany INSERT",
            "baseline_per_second": round(count / baseline),
            "service_per_second": round(count / seconds),
            "ratio": round(baseline / seconds, 3),
            "repeat_per_second": round(count / repeat_seconds),
        }
        log(
            f"  round {number + 1}: {round_['baseline']} {round_['baseline_per_second']}/s, "
            f"ingest_usage {round_['service_per_second']}/s, ratio {round_['ratio']}; "
            f"the same again (unchanged) {round_['repeat_per_second']}/s"
        )
        out["rounds"].append(round_)
    for key in ("baseline_per_second", "service_per_second", "ratio", "repeat_per_second"):
        out[f"median_{key}"] = statistics.median(r[key] for r in out["rounds"])
    if db == "postgresql":
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="postgresql")
    parser.add_argument("--records", type=int, help="default 2,000,000 (PG), 200,000 (SQLite)")
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    for db in ("postgresql", "sqlite") if args.db == "both" else (args.db,):
        count = args.records or (2_000_000 if db == "postgresql" else 200_000)
        result = bench(db, count, args.batch, args.rounds)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%MZ")
        target = RESULTS / f"usage-{stamp}-{db}.json"
        target.write_text(json.dumps(result, indent=2))
        log(
            f"{db}: median ingest_usage {result['median_service_per_second']}/s, "
            f"{result['median_baseline_per_second']}/s by the baseline, ratio "
            f"{result['median_ratio']}; wrote {target.relative_to(ROOT)}"
        )


if __name__ == "__main__":
    main()
