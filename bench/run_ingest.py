"""Ingest performance data with SLA assessment running, against a plain bulk insert.

See bench/README.md ("Performance data ingest with SLA assessment") for the method.
Usage: .venv/bin/python bench/run_ingest.py [--db sqlite|postgresql|both] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_DB = "etomcrm_bench_ingest"
LINKS = 100
BATCH = 2_000
INTERVALS = 2_000  # per link: about 7 days at 5 minutes
RATE = 20_000  # measurements per second for the latency run
START = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # November in Berlin
BREAKING_LINK = 7


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def prepare(url: str) -> list[str]:
    """Migrate, then 100 products under a 99.9 % SLA, each on an access link."""
    from etomcrm.catalog.service import PRODUCT_SPECIFICATION_KIND
    from etomcrm.core import resources
    from etomcrm.customer_interface.models import CustomerRow
    from etomcrm.db import session_scope
    from etomcrm.migrate import upgrade
    from etomcrm.network.models import NetworkLinkRow
    from etomcrm.order_handling.models import ProductRow
    from etomcrm.qos_sla.service import establish_sla
    from etomcrm.security.service import SYSTEM

    upgrade(url)
    # DBOS's tables, as a deployment has them: the breaking batch's commit starts the
    # violation's flow (queued here; no worker runs it).
    from etomcrm.bootstrap import bootstrap
    from etomcrm.flows import engine

    bootstrap()
    engine.launch(url, schedules=False)
    engine.shutdown()
    with session_scope(url) as session:
        resources.create(
            session,
            PRODUCT_SPECIFICATION_KIND,
            SYSTEM,
            {
                "name": "SLA Bench",
                "@type": "SlaSpecification",
                "productSpecCharacteristic": [
                    {"name": n, "productSpecCharacteristicValue": [{"value": v}]}
                    for n, v in (
                        ("availabilityTarget", 99.9),
                        ("timeToRepairHours", 4),
                        ("latencyBoundMs", 30),
                        ("penaltyRule", "10% per violated metric, max 30%"),
                        ("serviceHours", "24x7"),
                    )
                ],
            },
        )
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
        links = []
        for n in range(LINKS):
            product_id = f"bench-product-{n}"
            session.add(
                ProductRow(
                    id=product_id,
                    at_type="Product",
                    status="active",
                    owner_customer_id="bench-customer",
                    body={
                        "id": product_id,
                        "@type": "Product",
                        "name": "Site access",
                        "status": "active",
                        "productCharacteristic": [{"name": "slaLevel", "value": "SLA Bench"}],
                        "productPrice": [
                            {
                                "priceType": "recurring",
                                "recurringChargePeriod": "month",
                                "price": {"dutyFreeAmount": {"unit": "EUR", "value": 500.0}},
                            }
                        ],
                    },
                )
            )
            session.flush()
            establish_sla(session, product_id)
            session.add(
                NetworkLinkRow(
                    id=f"bench-link-{n}",
                    customer_id="bench-customer",
                    site_id=f"bench-site-{n}",
                    pop_id="bench-pop",
                    product_id=product_id,
                    bandwidth_mbits=100,
                    status="up",
                )
            )
            links.append(f"bench-link-{n}")
    return links


def batches(links: list[str]) -> tuple[list[list[dict[str, Any]]], int]:
    """Interval by interval over all links; one link in 200 has a short outage now and
    then; the breaking link goes down for good from the middle of the run (its month's
    44-minute budget is gone after 9 intervals). Returns the batches and the index of
    the row whose batch must record the violation."""
    rows: list[dict[str, Any]] = []
    breaking_row = -1
    down_since = INTERVALS // 2
    for i in range(INTERVALS):
        at = START + timedelta(minutes=5 * i)
        for n, link in enumerate(links):
            availability = 1.0
            if n == BREAKING_LINK and i >= down_since:
                availability = 0.0
            elif (i * LINKS + n) % 997 == 0:
                availability = 0.9
            rows.append(
                {
                    "link_id": link,
                    "site_id": f"bench-site-{n}",
                    "at": at,
                    "interval_seconds": 300,
                    "availability": availability,
                    "latency_ms": 10.0 + (n % 7),
                    "loss_percent": 0.05,
                    "bytes_in": 1_000_000 + n,
                    "bytes_out": 2_000_000 + n,
                }
            )
            if n == BREAKING_LINK and i == down_since + 9:
                breaking_row = len(rows) - 1
    return [rows[k : k + BATCH] for k in range(0, len(rows), BATCH)], breaking_row


def reset(url: str) -> None:
    from sqlalchemy import delete

    from etomcrm.core.models import AuditRecord, OutboxEvent
    from etomcrm.customer_interface.models import CommunicationMessageRow
    from etomcrm.db import session_scope
    from etomcrm.network.models import NetworkMeasurementRow
    from etomcrm.problem_handling.models import TroubleTicketRow
    from etomcrm.qos_sla.models import SlaViolationRow

    with session_scope(url) as session:
        for table in (
            NetworkMeasurementRow,
            SlaViolationRow,
            TroubleTicketRow,
            CommunicationMessageRow,
        ):
            session.execute(delete(table))
        session.execute(delete(OutboxEvent).where(OutboxEvent.api == "internal"))
        session.execute(
            delete(AuditRecord).where(AuditRecord.resource_type != "ProductSpecification")
        )


FEED = "/etomcrm/v1/performance/measurementBatch"


def api_bodies(work: list[list[dict[str, Any]]]) -> list[bytes]:
    """The same rows as a network system posts them (one measurementBatch per batch),
    serialised before the clock starts."""
    import orjson

    return [
        orjson.dumps(
            {
                "measurement": [
                    {
                        "id": f"bench-{r['link_id']}-{int(r['at'].timestamp())}",
                        "linkId": r["link_id"],
                        "intervalStart": r["at"].isoformat().replace("+00:00", "Z"),
                        "intervalSeconds": r["interval_seconds"],
                        "availability": r["availability"],
                        "latencyMs": r["latency_ms"],
                        "lossPercent": r["loss_percent"],
                        "bytesIn": r["bytes_in"],
                        "bytesOut": r["bytes_out"],
                    }
                    for r in batch
                ]
            }
        )
        for batch in work
    ]


def api_client(url: str) -> tuple[Any, dict[str, str]]:
    """The whole HTTP stack in this process, and a network system's API key."""
    from fastapi.testclient import TestClient

    from etomcrm.bootstrap import create_app
    from etomcrm.db import session_scope
    from etomcrm.security.service import create_api_key

    with session_scope(url) as session:
        _, token = create_api_key(session, "bench-oss", "network")
    client = TestClient(create_app(deliver_events=False, run_flows=False))
    return client, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def run(
    url: str,
    variant: str,
    work: list[list[dict[str, Any]]],
    breaking_row: int,
    *,
    paced: bool,
    api: tuple[Any, dict[str, str], list[bytes]] | None = None,
) -> dict[str, Any]:
    from sqlalchemy import insert

    from etomcrm.db import session_scope
    from etomcrm.network.models import NetworkMeasurementRow
    from etomcrm.qos_sla.ingest import ingest_measurements

    reset(url)
    breaking_batch = breaking_row // BATCH
    latency = None
    violations = 0
    began = time.perf_counter()
    for number, batch in enumerate(work):
        if paced:
            # The batch's rows arrive at RATE per second: it is due when its last row is.
            due = began + (number + 1) * BATCH / RATE
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        arrived = time.perf_counter()
        if variant == "api":
            assert api is not None
            client, headers, bodies = api
            response = client.post(FEED, content=bodies[number], headers=headers)
            if response.status_code != 201:
                raise RuntimeError(f"{FEED} answered {response.status_code}: {response.text}")
            violations += int(response.json()["violationsRecorded"])
        else:
            with session_scope(url) as session:
                if variant == "plain":
                    session.execute(insert(NetworkMeasurementRow), batch)
                else:
                    result = ingest_measurements(session, batch)
                    violations += len(result.violations)
        if number == breaking_batch and variant in ("assessed", "api"):
            latency = time.perf_counter() - arrived
    elapsed = time.perf_counter() - began
    rows = sum(len(b) for b in work)
    return {
        "variant": variant,
        "paced": paced,
        "rows": rows,
        "seconds": round(elapsed, 3),
        "rows_per_second": round(rows / elapsed, 1),
        "violations": violations,
        "breaking_batch_seconds": None if latency is None else round(latency, 4),
    }


def bench(db: str, rounds: int) -> dict[str, Any]:
    if db == "sqlite":
        path = ROOT / "bench" / "results" / "tmp" / "ingest.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        for name in ("ingest.db", "ingest-flows.db"):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path.with_name(name)}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{PG_DB}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DB}"
    os.environ["ETOMCRM_DATABASE_URL"] = url
    from etomcrm.config import get_settings

    get_settings.cache_clear()
    links = prepare(url)
    work, breaking_row = batches(links)
    log(f"{db}: {sum(len(b) for b in work)} measurements in batches of {BATCH}")
    out: dict[str, Any] = {"db": db, "rounds": []}
    client, headers = api_client(url)
    api = (client, headers, api_bodies(work))
    for number in range(rounds):
        order = ["plain", "assessed", "api"] if number % 2 == 0 else ["api", "assessed", "plain"]
        results = {v: run(url, v, work, breaking_row, paced=False, api=api) for v in order}
        paced = run(url, "assessed", work, breaking_row, paced=True)
        ratio = results["assessed"]["rows_per_second"] / results["plain"]["rows_per_second"]
        api_ratio = results["api"]["rows_per_second"] / results["plain"]["rows_per_second"]
        log(
            f"  round {number + 1}: plain {results['plain']['rows_per_second']:.0f}/s, "
            f"assessed {results['assessed']['rows_per_second']:.0f}/s, ratio {ratio:.2f}; "
            f"through the API {results['api']['rows_per_second']:.0f}/s, "
            f"ratio {api_ratio:.2f}; "
            f"paced at {RATE}/s: {paced['rows_per_second']:.0f}/s, breaking batch "
            f"{paced['breaking_batch_seconds']} s, violations {paced['violations']}"
        )
        out["rounds"].append(
            {**results, "paced": paced, "ratio": round(ratio, 3), "api_ratio": round(api_ratio, 3)}
        )
    ratios = [r["ratio"] for r in out["rounds"]]
    latencies = [r["paced"]["breaking_batch_seconds"] for r in out["rounds"]]
    out["median_ratio"] = statistics.median(ratios)
    out["median_breaking_batch_seconds"] = statistics.median(latencies)
    out["median_plain_rows_per_second"] = statistics.median(
        r["plain"]["rows_per_second"] for r in out["rounds"]
    )
    out["median_assessed_rows_per_second"] = statistics.median(
        r["assessed"]["rows_per_second"] for r in out["rounds"]
    )
    out["median_api_rows_per_second"] = statistics.median(
        r["api"]["rows_per_second"] for r in out["rounds"]
    )
    out["median_api_ratio"] = statistics.median(r["api_ratio"] for r in out["rounds"])
    client.close()
    if db == "postgresql":
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    for db in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        result = bench(db, args.rounds)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%MZ")
        target = RESULTS / f"ingest-{stamp}-{db}.json"
        target.write_text(json.dumps(result, indent=2))
        log(
            f"{db}: median ratio {result['median_ratio']:.2f}, through the API "
            f"{result['median_api_ratio']:.2f}, breaking batch "
            f"{result['median_breaking_batch_seconds']} s; wrote {target.relative_to(ROOT)}"
        )


if __name__ == "__main__":
    main()
