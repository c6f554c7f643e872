"""3.9.2 segments, trends and forecasts, measured (issue 13).

On the operational data of ``bench/analytics_store.py`` (its ``seed``): the store is
rebuilt, then measured, with the segment window set to January to March 2026 (the
seeded months): assigning every customer's segment (what a rebuild adds), the usage
refresh of a day of changes (which assigns the segments of the customers it touched)
against that assignment alone, and the server time of what the segments page and API
compute — the segments overview, the trends, the forecasts, a page of 50 members —
as the median of five runs.

See bench/README.md ("Segments, trends and forecasts (issue 13)").
Usage: .venv/bin/python bench/segments.py [--db sqlite|postgresql|both]
       [--customers N] [--usage N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analytics_store import PG_SERVER, RESULTS, ROOT, day_of_changes, log, seed

PG_DB = "etomcrm_bench_segments"
APRIL = datetime(2026, 4, 2, tzinfo=UTC)
RUNS = 5


def median_of(action: Callable[[], Any]) -> float:
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return round(statistics.median(times), 3)


def run(db: str, customers: int, usage: int) -> dict[str, Any]:
    from etomcrm.analytics import segmentation, store, trends
    from etomcrm.config import get_settings
    from etomcrm.db import get_engine, session_scope

    work = Path(tempfile.mkdtemp(prefix="etomcrm-segments-bench-"))
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
    timings: dict[str, float] = {}
    today = APRIL.date()
    with segmentation.CLOCK.at(APRIL):
        with session_scope(url) as session:
            began = time.perf_counter()
            store.rebuild(session)
            timings["rebuild (whole store)"] = round(time.perf_counter() - began, 2)
        with session_scope(url) as session:
            timings["assign every segment"] = median_of(
                lambda: segmentation.assign_segments(session, None)
            )
        _touched, customer_days = day_of_changes(url, customers)
        used = sorted({c for c, _ in customer_days})
        with session_scope(url) as session:
            began = time.perf_counter()
            store.refresh_usage(session, customer_days)
            timings["usage refresh of a day (with segments)"] = round(
                time.perf_counter() - began, 2
            )
        with session_scope(url) as session:
            timings["assign the day's customers' segments"] = median_of(
                lambda: segmentation.assign_segments(session, used)
            )
        with session_scope(url, readonly=True) as session:
            overview = trends.segment_overview(session, today)
            biggest = max(overview.segments, key=lambda s: s.customers).key
            timings["segments overview"] = median_of(
                lambda: trends.segment_overview(session, today)
            )
            timings["trends"] = median_of(lambda: trends.segment_trends(session, today=today))
            timings["forecasts"] = median_of(lambda: trends.segment_forecasts(session, today=today))
            timings["50 members"] = median_of(
                lambda: trends.segment_members(session, biggest, limit=50, today=today)
            )
    get_engine(url).dispose()
    result = {
        "db": db,
        "customers": customers,
        "usage_records": usage,
        "day_usage_customers": len(used),
        "segments": {s.key: s.customers for s in overview.segments},
        "seconds": timings,
    }
    log(json.dumps(result))
    return result


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--usage", type=int, default=200_000)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    results = [
        run(db, args.customers, args.usage)
        for db in (["sqlite", "postgresql"] if args.db == "both" else [args.db])
    ]
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"segments-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    log(f"written {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
