"""Server time of the analyst workspace's dashboards on a large analytical store
(issue 13: "dashboard server time on that data"), each against the API request that
reads the same figures, in the same run, as ``bench/pages.py`` measures the other pages.

Data: ``bench/analytics_store.py``'s seed (customers in three segments, a site and a
completed order each, three contacts each, a ticket for every fifth, three monthly
bills of two charges, hourly usage), then ``etomcrm.analytics.store.rebuild`` derives
the store from it, as ``etomcrm analytics rebuild`` does. Then a real ``etomcrm serve
--workers 1 --no-flows`` (``bench/pages.py``'s ``serve``), one request at a time over
loopback with httpx; page and API alternate; medians of the timed pairs.

    PYTHONPATH=src .venv/bin/python bench/analytics_pages.py --db both --customers 20000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import analytics_store
import httpx
import pages

RESULTS = pages.RESULTS
CONTACTS = "/etomcrm/v1/analytics/contactStatistics"
PROFIT = "/etomcrm/v1/analytics/customerProfitability"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def prepare(db: str, customers: int, usage: int) -> tuple[str, str, dict[str, float]]:
    """A fresh database seeded and its store rebuilt; an analyst to sign in as and an
    analyst's API key."""
    url = pages.database_url(db)
    began = time.perf_counter()
    analytics_store.seed(url, customers, usage)
    seeded = time.perf_counter() - began
    pages.use_database(url)
    from etomcrm.analytics import store
    from etomcrm.db import session_scope
    from etomcrm.security.service import create_api_key, create_user

    began = time.perf_counter()
    with session_scope() as session:
        store.rebuild(session)
    rebuilt = time.perf_counter() - began
    with session_scope() as session:
        create_user(session, "bench.analyst", pages.PASSWORD, "analyst", None)
        _, key = create_api_key(session, "bench-analyst", "analyst", None)
    return url, key, {"seed_s": round(seeded, 1), "rebuild_s": round(rebuilt, 1)}


def tests(month: str, today: str, first: str) -> list[tuple[str, str, list[str]]]:
    """(name, page, the API requests that read the same figures)."""
    customer = "c000000"
    return [
        (
            "index (this month)",
            "/ui/analytics",
            [
                f"{CONTACTS}?groupBy=total&from={first}&to={today}",
                f"{PROFIT}?groupBy=month&from={month}&to={month}",
            ],
        ),
        (
            "contacts by channel",
            "/ui/analytics/contacts?by=channel",
            [f"{CONTACTS}?groupBy=channel"],
        ),
        (
            "contacts by customer",
            "/ui/analytics/contacts?by=customer",
            [f"{CONTACTS}?groupBy=customer"],
        ),
        (
            "contacts: drill-down to phone",
            "/ui/analytics/contacts?by=channel&drill=phone",
            [f"{CONTACTS}?groupBy=channel"],
        ),
        (
            "contacts by customer, CSV",
            "/ui/analytics/contacts.csv?by=customer",
            [f"{CONTACTS}?groupBy=customer&format=csv"],
        ),
        (
            "profitability by customer",
            "/ui/analytics/profitability?by=customer",
            [f"{PROFIT}?groupBy=customer"],
        ),
        (
            "profitability by segment",
            "/ui/analytics/profitability?by=segment",
            [f"{PROFIT}?groupBy=segment"],
        ),
        (
            "profitability: one customer's months",
            f"/ui/analytics/profitability?by=month&customer={customer}",
            [f"{PROFIT}?groupBy=month&customerId={customer}"],
        ),
        ("history import page", "/ui/analytics/history", []),
    ]


def measure(
    page_client: httpx.Client,
    api_client: httpx.Client,
    page: str,
    api: list[str],
    requests: int,
    warmup: int,
) -> dict[str, Any]:
    def read_page() -> None:
        answer = page_client.get(page)
        assert answer.status_code == 200, (page, answer.status_code, answer.text[:300])

    def read_api() -> None:
        for path in api:
            answer = api_client.get(path)
            assert answer.status_code == 200, (path, answer.status_code)

    for _ in range(warmup):
        read_page()
        read_api()
    page_ms, api_ms = [], []
    for _ in range(requests):
        page_ms.append(pages.timed(read_page))
        api_ms.append(pages.timed(read_api))
    page_median = statistics.median(page_ms)
    api_median = statistics.median(api_ms) if api else None
    return {
        "page_ms": round(page_median, 1),
        "api_ms": round(api_median, 1) if api_median else None,
        "ratio": round(page_median / api_median, 2) if api_median else None,
        "page_min_ms": round(min(page_ms), 1),
        "page_max_ms": round(max(page_ms), 1),
        "page_bytes": len(page_client.get(page).content),
        "api_requests": len(api),
    }


def run(db: str, args: argparse.Namespace) -> dict[str, Any]:
    log(f"{db}: seeding {args.customers} customers, {args.usage} usage records")
    url, key, setup = prepare(db, args.customers, args.usage)
    log(f"{db}: seeded in {setup['seed_s']} s, store rebuilt in {setup['rebuild_s']} s")
    now = datetime.now(UTC)
    month, today, first = f"{now:%Y-%m}", f"{now:%Y-%m-%d}", f"{now:%Y-%m}-01"
    results: dict[str, Any] = {
        "db": pages.database_version(db),
        "customers": args.customers,
        "usage": args.usage,
        **setup,
        "tests": {},
    }
    with pages.serve(pages.environment(url)) as base:
        floor_client = httpx.Client(base_url=base, timeout=120)
        page_client = pages.signed_in(base, "bench.analyst")
        api_client = httpx.Client(
            base_url=base, timeout=600, headers={"Authorization": f"Bearer {key}"}
        )

        # The bare floor of this server: a request that reads nothing (the sign-in form).
        def bare() -> None:
            floor_client.get("/ui/sign-in").raise_for_status()

        floor = [pages.timed(bare) for _ in range(20)]
        results["floor_ms"] = round(statistics.median(floor), 2)
        for name, page, api in tests(month, today, first):
            log(f"{db}: {name}")
            results["tests"][name] = measure(
                page_client, api_client, page, api, args.requests, args.warmup
            )
            log(f"{db}: {name}: {results['tests'][name]}")
    if not args.keep:
        pages.drop_database(db)
    return results


def markdown(runs: list[dict[str, Any]]) -> str:
    lines = []
    for r in runs:
        lines += [
            f"**{r['db']}**, {r['customers']:,} customers (seed {r['seed_s']} s, store "
            f"rebuilt in {r['rebuild_s']} s); floor (the sign-in form) {r['floor_ms']} ms",
            "",
            "| dashboard | page ms | API ms (requests) | page ÷ API | page ÷ floor | page KB |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, t in r["tests"].items():
            api = f"{t['api_ms']} ({t['api_requests']})" if t["api_ms"] else "—"
            ratio = f"**{t['ratio']}**" if t["ratio"] else "—"
            lines.append(
                f"| {name} | {t['page_ms']} | {api} | {ratio} | "
                f"{t['page_ms'] / r['floor_ms']:.0f} | {t['page_bytes'] / 1024:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--usage", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    runs = [run(db, args) for db in dbs]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"analytics_pages-{stamp}.json"
    out.write_text(json.dumps(runs, indent=2), encoding="utf-8")
    print(markdown(runs))
    log(f"written {out}")


if __name__ == "__main__":
    main()
