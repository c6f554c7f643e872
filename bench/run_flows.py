"""Fulfillment benchmark: orders through Ordering + Post-Ordering, durable against plain.

For each database (SQLite, PostgreSQL or both) this script makes a fresh database, then
runs ``--rounds`` rounds. Each round seeds ``--orders`` acknowledged orders (one
contractable customer each, three sites, one item per site) twice, and runs them:

- **durable**: two ``etomcrm worker`` processes (distinct ``--executor-id``) are started
  and ready *before* the orders exist (so their start-up sweep finds nothing), the
  orders are seeded, then the clock starts, the driver enqueues every order's
  ``ordering`` workflow through :func:`etomcrm.flows.engine.enqueue` (a DBOSClient: DBOS
  is not launched in the driver), and the clock stops when every order's Post-Ordering
  flow is ``completed`` (polled every 20 ms in ``process_flow``);
- **plain**: two processes (``multiprocessing``, spawned and warmed up before the clock
  starts) each call :func:`etomcrm.flows.fulfillment.run_plain` on half the orders, one
  after the other; the clock stops when both are done.

Orders are created with the service layer (``resources.create``, SYSTEM principal) with
the after-commit flow start switched off for that session, so nothing runs before the
clock. The network simulator answers at once (``ETOMCRM_NETWORK_DAY_SECONDS=0``, late,
failure and unserviceable rates 0), so every order takes the same path. The two
variants alternate their order from round to round; the figure is the per-round ratio
durable ÷ plain throughput, and the medians over the rounds are reported.

Recorded per variant: orders/s, task_flow rows and DBOS ``operation_outputs`` rows per
order, time per step, CPU per order of the app processes and (PostgreSQL) of the
``postgres`` processes (which on this shared server include other users' work).

Usage: ``.venv/bin/python bench/run_flows.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
WORK = RESULTS / "tmp" / "flows"  # git-ignored
PYTHON = Path(sys.executable)
ETOMCRM = PYTHON.with_name("etomcrm")
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", "etomcrm_bench_flows")
NETWORK_AT_ONCE = {
    "ETOMCRM_NETWORK_DAY_SECONDS": "0",
    "ETOMCRM_NETWORK_LATE_RATE": "0",
    "ETOMCRM_NETWORK_FAILURE_RATE": "0",
    # An unserviceable site fails and takes another path; keep every order alike.
    "ETOMCRM_NETWORK_UNSERVICEABLE_RATE": "0",
    "ETOMCRM_FLOWS_RUN_IN_SERVER": "false",
    # The customer's acceptance (3.5.5) is deemed at completion: the benchmark measures
    # the flows, not a customer's five business days (and a plain run cannot wait).
    "ETOMCRM_ORDER_ACCEPTANCE_BUSINESS_DAYS": "0",
}
PROCESSES = 2
# durable: the workers' default flow concurrency (8 per process); durable_c1: one flow
# at a time per worker, the same parallelism as plain (one run_plain at a time).
VARIANTS = ["durable", "durable_c1", "plain"]
# `etomcrm worker` (it registers every resource kind when it launches the flows).
WORKER_COMMAND = [str(PYTHON), "-m", "etomcrm"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ----- machine and CPU ----------------------------------------------------------------------

_CLK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: set[int] | None) -> float:
    """User+system CPU seconds of the given processes (and their reaped children), or
    (None) of the PostgreSQL server: live processes plus the backends it has reaped."""
    jiffies = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, fields = stat[stat.find("(") + 1 : stat.rfind(")")], stat[stat.rfind(")") + 2 :]
        values = fields.split()
        if (pids is None and name == "postgres") or (pids is not None and int(entry) in pids):
            jiffies += sum(int(v) for v in values[11:15])
    return jiffies / _CLK


def _machine_jiffies() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


# ----- databases ----------------------------------------------------------------------------


def database_url(db: str) -> str:
    if db == "sqlite":
        WORK.mkdir(parents=True, exist_ok=True)
        path = WORK / "etomcrm_bench_flows.db"
        for stem in (path, path.with_name(path.stem + "-flows.db")):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{stem}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    return f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/{PG_DATABASE}"


def drop_database(db: str) -> None:
    if db != "postgresql":
        return
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


def database_version(db: str) -> str:
    if db == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres") as conn:
        version = conn.execute("SHOW server_version").fetchone()
        settings = conn.execute(
            "SELECT string_agg(name || '=' || current_setting(name), ', ') FROM pg_settings"
            " WHERE name IN ('shared_buffers', 'synchronous_commit', 'max_connections')"
        ).fetchone()
    return f"PostgreSQL {version[0] if version else '?'} ({settings[0] if settings else '?'})"


def use_database(url: str) -> None:
    """Point this process's etomcrm at ``url`` (settings are read from the environment)."""
    os.environ.update({"ETOMCRM_DATABASE_URL": url, **NETWORK_AT_ONCE})
    from etomcrm.config import get_settings

    get_settings.cache_clear()


# ----- seeding ------------------------------------------------------------------------------


def seed_offering() -> str:
    from etomcrm.catalog.service import PRODUCT_OFFERING_KIND
    from etomcrm.core import resources
    from etomcrm.db import session_scope
    from etomcrm.security.service import SYSTEM

    with session_scope() as session:
        body, _, _ = resources.create(
            session,
            PRODUCT_OFFERING_KIND,
            SYSTEM,
            {"name": "Site access 100 Mbit/s", "lifecycleStatus": "Launched"},
        )
    return str(body["id"])


CITIES = ("München", "Leipzig", "Köln")


def seed_orders(count: int, offering_id: str, tag: str) -> list[str]:
    """``count`` acknowledged orders, each of its own contractable customer with three
    sites; one transaction per order, as a person placing it would commit it."""
    from etomcrm.core import resources
    from etomcrm.customer_interface.service import (
        CUSTOMER_KIND,
        GEOGRAPHIC_SITE_KIND,
        ORGANIZATION_KIND,
    )
    from etomcrm.db import session_scope
    from etomcrm.order_handling.service import PRODUCT_ORDER_KIND
    from etomcrm.security.service import SYSTEM
    from etomcrm.selling.accounts import open_billing_account

    order_ids = []
    for number in range(count):
        name = f"Dealer group {tag}-{number}"
        with session_scope() as session:
            # The flows are started by the benchmark's clock, not after this commit.
            session.info["order_flow_started"] = True
            org, _, _ = resources.create(
                session,
                ORGANIZATION_KIND,
                SYSTEM,
                {"tradingName": name, "name": name, "isLegalEntity": True},
            )
            customer, _, _ = resources.create(
                session,
                CUSTOMER_KIND,
                SYSTEM,
                {
                    "name": name,
                    "engagedParty": {"id": org["id"], "@referredType": "Organization"},
                    "characteristic": [
                        {"name": "legalName", "value": f"{name} GmbH"},
                        {"name": "vatId", "value": "DE129273398"},
                    ],
                    "contactMedium": [
                        {
                            "mediumType": "email",
                            "contactType": "billing",
                            "characteristic": {
                                "emailAddress": f"rechnung-{tag}-{number}@dealer.example",
                                "contactType": "billing",
                            },
                        },
                        {
                            "mediumType": "postalAddress",
                            "contactType": "billing",
                            "characteristic": {
                                "street1": "Petuelring 130",
                                "postCode": "80809",
                                "city": "München",
                                "country": "DE",
                                "contactType": "billing",
                            },
                        },
                    ],
                },
            )
            # 3.4.4: contracting needs an account that pays (a SEPA mandate).
            open_billing_account(
                session,
                SYSTEM,
                customer["id"],
                name=f"{name} Zentrale",
                owner=f"{name} GmbH",
                iban="DE02120300000000202051",
                bic="BYLADEM1001",
                mandate_reference=f"BENCH-{tag}-{number}",
                mandate_signed=dt.date(2025, 11, 3),
            )
            party = [{"id": customer["id"], "@referredType": "Customer", "role": "customer"}]
            sites = [
                resources.create(
                    session,
                    GEOGRAPHIC_SITE_KIND,
                    SYSTEM,
                    {
                        "name": f"{name} {city}",
                        "status": "active",
                        "relatedParty": party,
                        "place": [
                            {
                                "@type": "GeographicAddress",
                                "city": city,
                                "postcode": "80809",
                                "country": "DE",
                                "street1": f"Hauptstraße {number}",
                            }
                        ],
                    },
                )[0]
                for city in CITIES
            ]
            order, _, _ = resources.create(
                session,
                PRODUCT_ORDER_KIND,
                SYSTEM,
                {
                    "description": f"Extranet access {tag}-{number}",
                    "relatedParty": party,
                    "productOrderItem": [
                        {
                            "id": str(item),
                            "action": "add",
                            "quantity": 1,
                            "productOffering": {"id": offering_id},
                            "product": {
                                "place": [
                                    {
                                        "id": site["id"],
                                        "@referredType": "GeographicSite",
                                        "role": "installationAddress",
                                    }
                                ]
                            },
                            "itemPrice": [
                                {
                                    "priceType": "recurring",
                                    "recurringChargePeriod": "month",
                                    "price": {"dutyFreeAmount": {"unit": "EUR", "value": 129.0}},
                                }
                            ],
                        }
                        for item, site in enumerate(sites, start=1)
                    ],
                },
            )
            order_ids.append(str(order["id"]))
    return order_ids


# ----- what a run left in the databases -----------------------------------------------------


def completed_count(order_ids: list[str]) -> int:
    from sqlalchemy import func, select

    from etomcrm.db import session_scope
    from etomcrm.flows.models import ProcessFlowRow

    with session_scope(readonly=True) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(ProcessFlowRow)
                .where(
                    ProcessFlowRow.flow == "post-ordering",
                    ProcessFlowRow.status == "completed",
                    ProcessFlowRow.case_id.in_(order_ids),
                )
            )
            or 0
        )


def outcome(order_ids: list[str], url: str) -> dict[str, Any]:
    """Orders' end states, task_flow rows, and DBOS checkpoints per order."""
    from sqlalchemy import func, select

    from etomcrm.db import session_scope
    from etomcrm.flows.fulfillment import ordering_workflow_id, post_ordering_workflow_id
    from etomcrm.flows.models import TaskFlowRow
    from etomcrm.order_handling.models import ProductOrderRow

    workflow_ids = [ordering_workflow_id(o) for o in order_ids] + [
        post_ordering_workflow_id(o) for o in order_ids
    ]
    with session_scope(readonly=True) as session:
        states = dict(
            session.execute(
                select(ProductOrderRow.status, func.count())
                .where(ProductOrderRow.id.in_(order_ids))
                .group_by(ProductOrderRow.status)
            ).all()
        )
        tasks = session.scalar(
            select(func.count())
            .select_from(TaskFlowRow)
            .where(TaskFlowRow.process_flow_id.in_(workflow_ids))
        )
    checkpoints = workflows = None
    with contextlib.suppress(Exception):  # no DBOS tables before the first durable run
        checkpoints, workflows = dbos_rows(url, workflow_ids)
    n = len(order_ids)
    return {
        "order_states": {str(k): int(v) for k, v in states.items()},
        "task_flows_per_order": round((tasks or 0) / n, 2),
        "dbos_operation_outputs_per_order": None if checkpoints is None else checkpoints / n,
        "dbos_workflows_per_order": None if workflows is None else workflows / n,
    }


def dbos_rows(url: str, workflow_ids: list[str]) -> tuple[int, int]:
    from etomcrm.flows.engine import system_database_url

    system = system_database_url(url)
    if system.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(system.split("///", 1)[1])
        marks = ",".join("?" * len(workflow_ids))
        try:
            out = conn.execute(
                f"SELECT count(*) FROM operation_outputs WHERE workflow_uuid IN ({marks})",
                workflow_ids,
            ).fetchone()[0]
            wfs = conn.execute(
                f"SELECT count(*) FROM workflow_status WHERE workflow_uuid IN ({marks})",
                workflow_ids,
            ).fetchone()[0]
        finally:
            conn.close()
        return int(out), int(wfs)
    import psycopg

    with psycopg.connect(system) as pg:
        row = pg.execute(
            "SELECT (SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = ANY(%s)),"
            " (SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s))",
            (workflow_ids, workflow_ids),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


# ----- durable: etomcrm worker processes ----------------------------------------------------


@contextlib.contextmanager
def workers(env: dict[str, str], round_no: str, concurrency: int) -> Iterator[list[int]]:
    """Two ``etomcrm worker`` processes, each its own process group, stopped by its id."""
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for number in range(1, PROCESSES + 1):
            log_path = WORK / f"worker-{round_no}-{number}.log"
            log_file = log_path.open("wb")
            logs.append((log_path, log_file))
            argv = [*WORKER_COMMAND, "worker", "--executor-id", f"bench-{round_no}-{number}"]
            if concurrency:
                argv += ["--concurrency", str(concurrency)]
            procs.append(
                subprocess.Popen(
                    argv,
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=ROOT,
                )
            )
        deadline = time.monotonic() + 120
        for (log_path, _), proc in zip(logs, procs, strict=True):
            while b"running flows" not in log_path.read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start; see {log_path}")
                time.sleep(0.1)
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for _, log_file in logs:
            log_file.close()


def run_durable(
    offering_id: str,
    env: dict[str, str],
    round_no: int,
    db: str,
    args: argparse.Namespace,
    concurrency: int,
    tag: str,
) -> tuple[list[str], dict[str, Any]]:
    from etomcrm.flows import engine
    from etomcrm.flows.fulfillment import ordering_workflow_id

    with workers(env, f"{tag}{round_no}", concurrency) as pids:
        # Seeded once the workers are up, so their start-up sweep (orders whose flow
        # never started) finds none of these.
        order_ids = seed_orders(args.orders, offering_id, f"{tag}{round_no}")
        engine.client()  # connected before the clock starts, like an API process
        pg0, machine0 = _cpu_seconds(None), _machine_jiffies()
        app0 = _cpu_seconds(set(pids))
        start = time.perf_counter()
        for order_id in order_ids:
            engine.enqueue("ordering", ordering_workflow_id(order_id), order_id)
        enqueued = time.perf_counter() - start
        deadline, done, progress_at = start + args.timeout, 0, start
        while done < len(order_ids):
            time.sleep(0.02)
            now, count = time.perf_counter(), completed_count(order_ids)
            if count > done:
                done, progress_at = count, now
            if now > deadline or now - progress_at > 60:
                raise RuntimeError(
                    f"durable: {done} of {len(order_ids)} orders completed, stalled; "
                    f"see {WORK}/worker-{round_no}-*.log"
                )
        elapsed = time.perf_counter() - start
        app1, pg1, machine1 = _cpu_seconds(set(pids)), _cpu_seconds(None), _machine_jiffies()
    return order_ids, {
        "seconds": elapsed,
        "enqueue_seconds": enqueued,
        "app_cpu_s": app1 - app0,
        "postgres_cpu_s": (pg1 - pg0) if db == "postgresql" else None,
        "machine_busy": (machine1[0] - machine0[0]) / max(1, machine1[1] - machine0[1]),
    }


# ----- plain: run_plain in two processes ----------------------------------------------------


def _plain_child(url: str, order_ids: list[str], ready: Any, go: Any, out: Any) -> None:
    use_database(url)
    from etomcrm.bootstrap import bootstrap
    from etomcrm.db import session_scope
    from etomcrm.flows.fulfillment import run_plain

    bootstrap()

    with session_scope(readonly=True):  # the connection pool is warm before the clock
        pass
    ready.wait()
    go.wait()
    cpu0, start = time.process_time(), time.perf_counter()
    for order_id in order_ids:
        run_plain(order_id)
    out.put((time.perf_counter() - start, time.process_time() - cpu0))


def run_plain_processes(order_ids: list[str], url: str, db: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Barrier(PROCESSES + 1), ctx.Event(), ctx.Queue()
    halves = [order_ids[i::PROCESSES] for i in range(PROCESSES)]
    procs = [ctx.Process(target=_plain_child, args=(url, h, ready, go, out)) for h in halves]
    for proc in procs:
        proc.start()
    try:
        ready.wait(timeout=120)
        pg0, machine0 = _cpu_seconds(None), _machine_jiffies()
        start = time.perf_counter()
        go.set()
        results = [out.get(timeout=3600) for _ in procs]
        elapsed = time.perf_counter() - start
        pg1, machine1 = _cpu_seconds(None), _machine_jiffies()
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    if completed_count(order_ids) != len(order_ids):
        raise RuntimeError("plain: not every order completed")
    return {
        "seconds": elapsed,
        "process_seconds": [round(r[0], 3) for r in results],
        "app_cpu_s": sum(r[1] for r in results),
        "postgres_cpu_s": (pg1 - pg0) if db == "postgresql" else None,
        "machine_busy": (machine1[0] - machine0[0]) / max(1, machine1[1] - machine0[1]),
    }


# ----- one database -------------------------------------------------------------------------


def summarize(
    variant: str, n: int, timing: dict[str, Any], counts: dict[str, Any]
) -> dict[str, Any]:
    steps = counts["dbos_operation_outputs_per_order"]
    tasks = counts["task_flows_per_order"]
    # The unit of work both variants share is a run_step transaction; with DBOS each is
    # one operation_outputs row (plus the child workflow start), so the plain variant is
    # divided by the same number of steps as the durable one of its round.
    return {
        "variant": variant,
        **counts,
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in timing.items()},
        "orders_per_s": round(n / timing["seconds"], 2),
        "app_cpu_ms_per_order": round(timing["app_cpu_s"] * 1000 / n, 2),
        "postgres_cpu_ms_per_order": None
        if timing["postgres_cpu_s"] is None
        else round(timing["postgres_cpu_s"] * 1000 / n, 2),
        "task_flows": tasks,
        "steps_per_order": steps,
    }


def run_database(db: str, args: argparse.Namespace) -> dict[str, Any]:
    url = database_url(db)
    use_database(url)
    env = {**os.environ}
    subprocess.run([str(ETOMCRM), "db", "upgrade"], env=env, check=True, cwd=ROOT)
    offering_id = seed_offering()
    rounds = []
    try:
        for round_no in range(1, args.rounds + 1):
            order = VARIANTS[round_no % 3 :] + VARIANTS[: round_no % 3]
            log(f"{db}: round {round_no} of {args.rounds} ({' then '.join(order)})")
            loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            measured: dict[str, Any] = {}
            for variant in order:
                if variant == "durable":
                    ids, timing = run_durable(
                        offering_id, env, round_no, db, args, args.concurrency, "d"
                    )
                elif variant == "durable_c1":
                    ids, timing = run_durable(offering_id, env, round_no, db, args, 1, "s")
                else:
                    ids = seed_orders(args.orders, offering_id, f"p{round_no}")
                    timing = run_plain_processes(ids, url, db)
                counts = outcome(ids, url)
                measured[variant] = summarize(variant, len(ids), timing, counts)
                m = measured[variant]
                log(
                    f"  {variant:7s} {m['orders_per_s']:7.2f} orders/s  {m['seconds']:6.2f} s"
                    f"  tasks/order {m['task_flows']}  dbos steps/order {m['steps_per_order']}"
                    f"  app CPU {m['app_cpu_ms_per_order']} ms/order"
                    + (
                        f"  postgres CPU {m['postgres_cpu_ms_per_order']} ms/order"
                        if m["postgres_cpu_ms_per_order"] is not None
                        else ""
                    )
                    + f"  states {m['order_states']}"
                )
            steps = measured["durable"]["steps_per_order"] or 0
            for m in measured.values():
                total_steps = steps * args.orders
                m["wall_ms_per_step"] = round(m["seconds"] * 1000 / total_steps, 3)
                m["app_cpu_ms_per_step"] = round(m["app_cpu_s"] * 1000 / total_steps, 3)
            ratio = measured["durable"]["orders_per_s"] / measured["plain"]["orders_per_s"]
            ratio_c1 = measured["durable_c1"]["orders_per_s"] / measured["plain"]["orders_per_s"]
            log(f"  durable ÷ plain throughput: {ratio:.3f}; at concurrency 1: {ratio_c1:.3f}")
            rounds.append(
                {
                    "round": round_no,
                    "order": order,
                    "loadavg_before": loadavg,
                    "durable_over_plain": round(ratio, 4),
                    "durable_c1_over_plain": round(ratio_c1, 4),
                    **measured,
                }
            )
    finally:
        if not args.keep:
            drop_database(db)
    return {"db": db, "database": database_version(db), "rounds": rounds}


# ----- report -------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def report(result: dict[str, Any]) -> dict[str, Any]:
    """Medians over the rounds of each figure, and of the per-round ratio, with ranges."""
    rounds = result["rounds"]
    figures = ["orders_per_s", "seconds", "steps_per_order", "task_flows"]
    figures += ["wall_ms_per_step", "app_cpu_ms_per_step", "app_cpu_ms_per_order"]
    figures += ["postgres_cpu_ms_per_order"]
    out: dict[str, Any] = {}
    for variant in VARIANTS:
        out[variant] = {}
        for figure in figures:
            values = [r[variant][figure] for r in rounds if r[variant][figure] is not None]
            if values:
                out[variant][figure] = {
                    "median": round(median(values), 3),
                    "min": min(values),
                    "max": max(values),
                }
    for name in ("durable_over_plain", "durable_c1_over_plain"):
        ratios = [r[name] for r in rounds]
        out[name] = {
            "median": round(median(ratios), 3),
            "min": min(ratios),
            "max": max(ratios),
            "rounds": ratios,
        }
    return out


def markdown(result: dict[str, Any], summary: dict[str, Any], args: argparse.Namespace) -> str:
    db, n = result["db"], args.orders
    d, c1, p = summary["durable"], summary["durable_c1"], summary["plain"]
    r, r1 = summary["durable_over_plain"], summary["durable_c1_over_plain"]

    def cell(fig: dict[str, Any], name: str, digits: int = 2) -> str:
        if name not in fig:
            return "-"
        v = fig[name]
        return f"{v['median']:.{digits}f} ({v['min']:.{digits}f}-{v['max']:.{digits}f})"

    lines = [
        f"#### {db} — {result['recorded_at']}",
        "",
        f"{result['database']}; {n} orders per variant per round, 3 sites each; "
        f"{PROCESSES} processes; worker concurrency {args.concurrency or 'default (8)'}; "
        f"commit {result['commit']}; median of {len(result['rounds'])} rounds "
        "(range in brackets).",
        "",
        "| variant | orders/s | DBOS steps/order | task_flow rows/order | wall ms/step "
        "| app CPU ms/order | postgres CPU ms/order |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = (
        (f"durable: 2 etomcrm workers, {args.concurrency or 8} flows each", d),
        ("durable: 2 etomcrm workers, 1 flow each", c1),
        ("plain: 2 processes, run_plain one at a time", p),
    )
    for name, fig in rows:
        lines.append(
            f"| {name} | {cell(fig, 'orders_per_s')} | "
            f"{cell(fig, 'steps_per_order', 0) if fig is not p else '-'} | "
            f"{cell(fig, 'task_flows', 0)} | {cell(fig, 'wall_ms_per_step')} | "
            f"{cell(fig, 'app_cpu_ms_per_order', 1)} | "
            f"{cell(fig, 'postgres_cpu_ms_per_order', 1)} |"
        )
    met = "met" if r["median"] >= 0.33 else "NOT met"
    lines += [
        "",
        f"- durable ÷ plain throughput: **{r['median']:.2f}** (rounds "
        + ", ".join(f"{x:.2f}" for x in r["rounds"])
        + f"; target ≥ 0.33 on PostgreSQL: **{met}**"
        + ("" if db == "postgresql" else ", for reference")
        + ")",
        f"- at the same parallelism (1 flow per worker): **{r1['median']:.2f}** (rounds "
        + ", ".join(f"{x:.2f}" for x in r1["rounds"])
        + ")",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--orders", type=int, default=200, help="orders per variant per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--concurrency", type=int, default=0, help="flows per worker (0: the setting's default)"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per durable run")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--no-record", action="store_true", help="write no results file")
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    stamp = dt.datetime.now(dt.UTC)
    WORK.mkdir(parents=True, exist_ok=True)
    for db in ["sqlite", "postgresql"] if args.db == "both" else [args.db]:
        result = run_database(db, args)
        result.update(
            recorded_at=stamp.strftime("%Y-%m-%d %H:%M UTC"),
            commit=commit,
            orders_per_round=args.orders,
            processes=PROCESSES,
            worker_concurrency=args.concurrency or None,
            network=NETWORK_AT_ONCE,
            python=sys.version.split()[0],
            versions={p: metadata.version(p) for p in ("dbos", "sqlalchemy", "psycopg")},
            cpus=os.cpu_count(),
        )
        summary = report(result)
        result["summary"] = summary
        text = markdown(result, summary, args)
        print(text, flush=True)
        if not args.no_record:
            path = RESULTS / f"flows-{stamp.strftime('%Y-%m-%dT%H%MZ')}-{db}.json"
            path.write_text(json.dumps({**result, "markdown": text}, indent=2) + "\n")
            log(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
