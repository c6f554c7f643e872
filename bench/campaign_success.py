"""Campaign success and planning on a large store (issue 13): server time of the
figures for every campaign, of one campaign, and of a plan.

The store's tables are filled directly (this measures the reading, not the derivation,
which bench/analytics_store.py measures): ``--customers`` customers in three segments,
``--campaigns`` campaigns of ``--targets`` targets each (10 % held out as control), 5 %
of the treated responding, 2 % won, an order for each won and for 1 % of the others, 12
months of billed revenue (two products) for every won customer, and a churn assessment
for every customer of one segment.

Usage: .venv/bin/python bench/campaign_success.py [--db sqlite|postgresql|both]
       [--customers N] [--campaigns N] [--targets N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, insert

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_DB = "etomcrm_bench_campaigns"
ASSIGNED = date(2026, 3, 2)
BATCH = 5_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _insert(session: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), BATCH):
        session.execute(insert(table), rows[i : i + BATCH])


def seed(url: str, customers: int, campaigns: int, targets: int) -> None:
    from etomcrm.analytics import models as an
    from etomcrm.db import session_scope
    from etomcrm.migrate import upgrade
    from etomcrm.retention.models import PartyRoleRiskAssessmentRow

    upgrade(url)
    rng = random.Random(1)
    ids = [f"c{n:06d}" for n in range(customers)]
    segments = ("dealer", "enterprise", "public")
    with session_scope() as session:
        _insert(
            session,
            an.AnCustomer,
            [
                {
                    "customer_id": c,
                    "name": f"Customer {n}",
                    "segment": segments[n % 3],
                    "status": "active",
                    "created_on": date(2025, 1, 1),
                }
                for n, c in enumerate(ids)
            ],
        )
        _insert(session, an.AnSegment, [{"segment": s} for s in segments])
        target_rows, lead_rows, message_rows, orders, revenue = [], [], [], [], []
        ordered: set[str] = set()
        for k in range(campaigns):
            cid = f"camp{k:03d}"
            session.execute(
                insert(an.AnCampaign),
                [
                    {
                        "campaign_id": cid,
                        "name": f"Campaign {k}",
                        "status": "active",
                        "budget": Decimal(5000),
                    }
                ],
            )
            chosen = rng.sample(ids, targets)
            control = set(chosen[: targets // 10])
            for c in chosen:
                group = "control" if c in control else "treated"
                target_rows.append(
                    {
                        "campaign_id": cid,
                        "customer_id": c,
                        "group": group,
                        "assigned_on": ASSIGNED,
                    }
                )
                if group == "control":
                    if rng.random() < 0.01:
                        orders.append((c, ASSIGNED + timedelta(days=10)))
                    continue
                message_rows.append(
                    {
                        "touch_id": f"m-{cid}-{c}",
                        "campaign_id": cid,
                        "customer_id": c,
                        "kind": "message",
                        "day": ASSIGNED,
                    }
                )
                draw = rng.random()
                if draw < 0.05:
                    won = draw < 0.02
                    lead_rows.append(
                        {
                            "lead_id": f"l-{cid}-{c}",
                            "campaign_id": cid,
                            "customer_id": c,
                            "responded_on": ASSIGNED + timedelta(days=3),
                            "lead_status": "accepted",
                            "opportunity_id": f"o-{cid}-{c}",
                            "opportunity_stage": "closedWon" if won else "proposal",
                            "won_on": ASSIGNED + timedelta(days=20) if won else None,
                        }
                    )
                    if won:
                        orders.append((c, ASSIGNED + timedelta(days=21)))
                        if c not in ordered:
                            ordered.add(c)
                            for m in range(3, 15):
                                month = f"{2026 + (m - 1) // 12}-{(m - 1) % 12 + 1:02d}"
                                for product in ("p-a", "p-b"):
                                    revenue.append(
                                        {
                                            "customer_id": c,
                                            "product_id": f"{product}-{c}",
                                            "month": month,
                                            "rate_type": "recurring",
                                            "amount": Decimal("49.90"),
                                            "currency": "EUR",
                                        }
                                    )
                elif draw < 0.06:
                    orders.append((c, ASSIGNED + timedelta(days=30)))
        _insert(session, an.AnCampaignTarget, target_rows)
        _insert(session, an.AnCampaignLeadFact, lead_rows)
        _insert(session, an.AnCampaignTouchFact, message_rows)
        _insert(
            session,
            an.AnOrderFact,
            [
                {
                    "order_id": f"ord{n}",
                    "customer_id": c,
                    "state": "completed",
                    "ordered_on": day,
                    "month": day.strftime("%Y-%m"),
                    "item_count": 1,
                    "site_count": 1,
                    "completed_on": day,
                    "completed_month": day.strftime("%Y-%m"),
                }
                for n, (c, day) in enumerate(orders)
            ],
        )
        _insert(session, an.AnRevenueFact, revenue)
        assessed = datetime(2026, 6, 1, tzinfo=UTC)
        _insert(
            session,
            PartyRoleRiskAssessmentRow,
            [
                {
                    "id": f"ra-{c}",
                    "at_type": "PartyRoleRiskAssessment",
                    "status": "succeeded",
                    "owner_customer_id": c,
                    "version": 1,
                    "created_at": assessed,
                    "updated_at": assessed,
                    "body": {
                        "id": f"ra-{c}",
                        "riskAssessmentResult": {
                            "score": [{"risk": "churn", "score": rng.randrange(101)}]
                        },
                    },
                }
                for c in ids[::3]
            ],
        )
        log(
            f"seeded {len(target_rows)} targets, {len(lead_rows)} leads, {len(orders)} "
            f"orders, {len(revenue)} revenue rows"
        )


def measure(action: Callable[[], Any], url: str, rounds: int = 5) -> dict[str, Any]:
    from etomcrm.db import get_engine, get_read_engine

    statements: list[str] = []

    def count(*_: Any) -> None:
        statements.append("")

    times = []
    for n in range(rounds):
        engines = (get_engine(url), get_read_engine(url))
        if n == 0:
            for engine in engines:
                event.listen(engine, "before_cursor_execute", count)
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
        if n == 0:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", count)
    return {
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "statements": len(statements),
    }


def run(db: str, customers: int, campaigns: int, targets: int) -> dict[str, Any]:
    from etomcrm.analytics.campaigns import campaign_success
    from etomcrm.config import get_settings
    from etomcrm.db import get_engine, session_scope
    from etomcrm.retention.campaign_plans import plan_campaign

    work = Path(tempfile.mkdtemp(prefix="etomcrm-campaign-bench-"))
    if db == "sqlite":
        url = f"sqlite:///{work / 'etomcrm.db'}"
    else:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{PG_DB}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DB}"
    os.environ["ETOMCRM_DATABASE_URL"] = url
    get_settings.cache_clear()
    log(f"{db}: seeding {customers} customers, {campaigns} campaigns of {targets} targets")
    seed(url, customers, campaigns, targets)

    def every() -> None:
        with session_scope(readonly=True) as session:
            rows = [r.as_row() for r in campaign_success(session)]
        assert len(rows) == campaigns

    def one() -> None:
        with session_scope(readonly=True) as session:
            campaign_success(session, "camp000")[0].as_row()

    def plan() -> None:
        with session_scope(readonly=True) as session:
            plan_campaign(
                session,
                None,
                segment="dealer",
                score_kind="churn",
                threshold=80,
                control_share=0.1,
                seed=1,
                today=date(2026, 7, 1),
            )

    result = {
        "db": db,
        "customers": customers,
        "campaigns": campaigns,
        "targets_each": targets,
        "success_all": measure(every, url),
        "success_one": measure(one, url),
        "plan_churn_dealer": measure(plan, url),
    }
    log(f"{db}: {json.dumps(result)}")
    get_engine(url).dispose()
    return result


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--campaigns", type=int, default=50)
    parser.add_argument("--targets", type=int, default=2_000)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    results = [
        run(db, args.customers, args.campaigns, args.targets)
        for db in (["sqlite", "postgresql"] if args.db == "both" else [args.db])
    ]
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"campaign_success-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    log(f"written {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
