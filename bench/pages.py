"""Server time of the staff and portal pages against the same data read through the API
(issue 11).

What is timed, one request at a time over loopback from this process to a real
``etomcrm serve --workers 1 --no-flows`` (httpx, keep-alive; a request's time is from
sending it to having read the whole answer):

- **360**: the staff Customer 360 of BMW (``/ui/customers/{id}``, signed in as an
  administrator) against what an API client reads for the same sections: the customer
  and, per section, the list of that kind scoped to BMW, ten items with the total
  (``X-Total-Count``), as the page shows them.
- **network** and **map**: BMW's topology with its 66 sites in the portal, signed in as
  BMW's own user (``/ui/customers/{id}/network`` and the fragment its htmx refresh reads,
  ``/network/map``), against the customer network view (``customerNetworkView``:
  topology with status, open problems, SLA standing) and the sites
  (``geographicSite?limit=100``) read with an API key of BMW's.
- **worklist**: the staff home (``/ui/``) of a support person, whose lists are the
  customer requests routed to support, the tickets by time left on their SLA clock and
  the failed flows, against the API lists the page links to, each read with
  ``limit=1`` (the count and one item: what the page shows).

Page and API requests alternate (page, API, page, ...), so the machine's noise falls on
both; each round gives a median per side and their ratio; the figures are the medians
over the rounds. The server runs with ``ETOMCRM_LIST_TOTAL_CACHE_SECONDS=0``: the API
would otherwise answer a repeated list's total from its 2-second cache, which the pages
do not have.

The data: ``etomcrm demo`` (the BMW extranet story through the services: 66 sites with
their links, products, SLAs, a month measured, incidents, bills), then for phase 2 the
10,000 open tickets: 66 opened through the API (``POST troubleTicket``, one per BMW
site), and copies of those rows bulk-inserted with SQLAlchemy Core (new ids, names and
dates shifted; every other column and attribute as the service wrote it; the audit
records and events of a real create are not written). Phase 1 measures the demo data
as it is; phase 2 measures every test again with the 10,000 open tickets (all BMW's, so
the 360 and the topology carry them too).

    PYTHONPATH=src .venv/bin/python bench/pages.py --db both
    PYTHONPATH=src .venv/bin/python bench/pages.py --db sqlite --rounds 1 --requests 5
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORK = RESULTS / "tmp" / "pages"
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", "etomcrm_bench_pages")
PASSWORD = "bench pages password 1"
TICKETS = "/tmf-api/troubleTicket/v4/troubleTicket"
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----- databases ----------------------------------------------------------------------


def database_url(db: str) -> str:
    """A fresh, empty database."""
    if db == "sqlite":
        WORK.mkdir(parents=True, exist_ok=True)
        for path in WORK.glob("etomcrm_bench_pages*"):
            path.unlink()
        return f"sqlite:///{WORK / 'etomcrm_bench_pages.db'}"
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
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


def environment(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "ETOMCRM_DATABASE_URL": url,
        "ETOMCRM_MESSAGE_DIR": str(WORK / "messages"),
        "ETOMCRM_LIST_TOTAL_CACHE_SECONDS": "0",
        "PYTHONPATH": str(ROOT / "src"),
    }


def use_database(url: str) -> None:
    """Point this process's etomcrm at ``url`` (settings are read from the environment)."""
    os.environ.update(environment(url))
    from etomcrm.bootstrap import bootstrap
    from etomcrm.config import get_settings

    get_settings.cache_clear()
    bootstrap()


def etomcrm() -> list[str]:
    return [sys.executable, "-m", "etomcrm"]


# ----- data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Demo:
    customer_id: str
    site_ids: list[str]
    admin_key: str
    customer_key: str
    support_key: str


def build_demo(db: str) -> tuple[str, Demo]:
    """The demo through the services on a fresh database, then this benchmark's
    sign-ins and API keys."""
    for attempt in range(1, 4):
        url = database_url(db)
        started = time.monotonic()
        WORK.mkdir(parents=True, exist_ok=True)
        told = subprocess.run(
            # In the work folder: the demo leaves its bill PDFs in the current directory.
            [*etomcrm(), "demo"],
            env=environment(url),
            stdout=subprocess.DEVNULL,
            cwd=WORK,
        )
        if told.returncode == 0:
            break
        # On SQLite, on a busy machine, a flow step can outwait the busy timeout
        # ("database is locked"); the story is told again from the start.
        log(f"the demo failed (exit {told.returncode}, attempt {attempt}); again")
    else:
        raise RuntimeError("etomcrm demo failed three times")
    log(f"demo built in {time.monotonic() - started:.0f} s")
    use_database(url)
    from sqlalchemy import select

    from etomcrm.customer_interface.models import CustomerRow, GeographicSiteRow
    from etomcrm.db import session_scope
    from etomcrm.demo.scenario import CUSTOMER_NAME
    from etomcrm.security.service import create_api_key, create_user

    with session_scope() as session:
        customer_id = session.scalars(
            select(CustomerRow.id).where(CustomerRow.name == CUSTOMER_NAME)
        ).one()
        site_ids = list(
            session.scalars(
                select(GeographicSiteRow.id)
                .where(GeographicSiteRow.owner_customer_id == customer_id)
                .order_by(GeographicSiteRow.id)
            )
        )
        create_user(session, "bench.admin", PASSWORD, "admin")
        create_user(session, "bench.support", PASSWORD, "support")
        create_user(session, "bench.portal", PASSWORD, "customer", customer_id)
        _, admin_key = create_api_key(session, "bench-admin", "admin")
        _, support_key = create_api_key(session, "bench-support", "support")
        _, customer_key = create_api_key(session, "bench-bmw", "customer", customer_id)
    return url, Demo(customer_id, site_ids, admin_key, customer_key, support_key)


def _shifted(value: Any, by: timedelta) -> Any:
    """The document with every date-time in it moved by ``by`` (a copy made earlier)."""
    if isinstance(value, dict):
        return {k: _shifted(v, by) for k, v in value.items()}
    if isinstance(value, list):
        return [_shifted(v, by) for v in value]
    if isinstance(value, str) and ISO.match(value):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        from etomcrm.core.clock import iso

        return iso(moment + by)
    return value


def add_tickets(client: httpx.Client, demo: Demo, total: int) -> dict[str, Any]:
    """``total`` open tickets of BMW: one a site through the API, the rest copies of
    those rows bulk-inserted."""
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {demo.admin_key}"}
    opened: list[str] = []
    for n, site_id in enumerate(demo.site_ids):
        answer = client.post(
            TICKETS,
            json={
                "name": f"No traffic at site {n + 1}",
                "description": "The access is dead since this morning",
                "severity": ("Major", "Minor", "Critical")[n % 3],
                "ticketType": "network",
                "relatedParty": [
                    {"id": demo.customer_id, "@referredType": "Customer", "role": "customer"}
                ],
                "relatedEntity": [
                    {"id": site_id, "@referredType": "GeographicSite", "role": "affectedSite"}
                ],
            },
            headers=headers,
        )
        answer.raise_for_status()
        opened.append(str(answer.json()["id"]))
    through_api = time.monotonic() - started
    from sqlalchemy import Table, insert, select

    from etomcrm.db import new_id, session_scope
    from etomcrm.problem_handling.models import TroubleTicketRow

    table = cast(Table, TroubleTicketRow.__table__)
    with session_scope() as session:
        models = [
            dict(row._mapping)
            for row in session.execute(select(table).where(table.c.id.in_(opened)))
        ]
        rows: list[dict[str, Any]] = []
        for n in range(total - len(models)):
            model = models[n % len(models)]
            # Each copy a few minutes older than the one before: distinct SLA clocks.
            by = -timedelta(minutes=n + 1)
            row_id = new_id()
            body = _shifted(copy.deepcopy(model["body"]), by)
            body["id"] = row_id
            body["name"] = f"{model['name']} ({n + 2})"
            rows.append(
                {
                    **model,
                    "id": row_id,
                    "name": body["name"],
                    "body": body,
                    "created_at": model["created_at"] + by,
                    "updated_at": model["updated_at"] + by,
                    "response_due_at": model["response_due_at"] and model["response_due_at"] + by,
                    "resolution_due_at": model["resolution_due_at"]
                    and model["resolution_due_at"] + by,
                }
            )
        for start in range(0, len(rows), 2000):
            session.execute(insert(table), rows[start : start + 2000])
    if not os.environ["ETOMCRM_DATABASE_URL"].startswith("sqlite"):
        from etomcrm.db import get_engine

        with get_engine().connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE trouble_ticket"
            )
    log(f"{total} tickets: {len(opened)} through the API, the rest bulk-inserted")
    return {
        "tickets": total,
        "through_api": len(opened),
        "api_seconds": round(through_api, 2),
        "seconds": round(time.monotonic() - started, 2),
    }


# ----- the server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(env: dict[str, str], cwd: Path | None = None) -> Iterator[str]:
    """``etomcrm serve`` (one worker, no flows) on a free port, for the block's time:
    its base URL once the pages answer. Also used by ``scripts/screenshots.py``."""
    port = free_port()
    process = subprocess.Popen(
        [
            *etomcrm(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--no-flows",
        ],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/ui/sign-in", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("etomcrm serve did not start")
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def signed_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    form = client.get("/ui/sign-in")
    token = CSRF.search(form.text)
    assert token, "no CSRF token on the sign-in page"
    answer = client.post(
        "/ui/sign-in",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    # Signed in: sent on (303) with the session cookie; refused, the form again (4xx).
    assert answer.status_code == 303 and client.cookies, (answer.status_code, answer.text[:300])
    return client


# ----- the tests ----------------------------------------------------------------------

Requests = list[tuple[str, dict[str, str]]]


@dataclass(frozen=True)
class Test:
    name: str
    page: str
    page_client: httpx.Client
    api: Requests
    api_client: httpx.Client


def api_360(demo: Demo) -> Requests:
    """The customer, then each section's list scoped to BMW: with BMW's key where the
    customer role may read the kind (the same owner scoping the page applies), else
    with the administrator's key filtered on the customer named in the documents."""
    from etomcrm.core.errors import Forbidden
    from etomcrm.core.resources import READ
    from etomcrm.customer_interface.service import CUSTOMER_KIND
    from etomcrm.pages.customer360 import SECTION_LIMIT, SECTIONS
    from etomcrm.security.service import Principal, Role

    admin = {"Authorization": f"Bearer {demo.admin_key}"}
    customer = {"Authorization": f"Bearer {demo.customer_key}"}
    bmw = Principal(id="bench", name="bench", role=Role.CUSTOMER, customer_id=demo.customer_id)
    requests: Requests = [(f"{CUSTOMER_KIND.path}/{demo.customer_id}", admin)]
    for _, kind in SECTIONS:
        try:
            kind.authorize(bmw, READ)
            requests.append((f"{kind.path}?limit={SECTION_LIMIT}", customer))
        except Forbidden:
            # The risk assessments, the one section BMW may not read: its party role.
            party = "relatedParty" if kind.has_attribute("relatedParty") else "partyRole"
            requests.append(
                (f"{kind.path}?limit={SECTION_LIMIT}&{party}.id={demo.customer_id}", admin)
            )
    return requests


def api_worklist(client: httpx.Client, support_key: str) -> Requests:
    """The lists the support person's home links to, one item each."""
    home = client.get("/ui/")
    headers = {"Authorization": f"Bearer {support_key}"}
    hrefs = sorted(set(re.findall(r'href="(/tmf-api/[^"]+)"', home.text)))
    hrefs = [h.replace("&amp;", "&") for h in hrefs]
    return [(f"{h}{'&' if '?' in h else '?'}limit=1", headers) for h in hrefs]


def check(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> None:
    answer = client.get(path, headers=headers or {})
    if answer.status_code not in (200, 206):  # 206: a list page of more
        raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:300]}")


def timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def measure(test: Test, requests: int, warmup: int) -> dict[str, Any]:
    def page() -> None:
        answer = test.page_client.get(test.page)
        assert answer.status_code == 200, (test.page, answer.status_code)

    def api() -> None:
        for path, headers in test.api:
            answer = test.api_client.get(path, headers=headers)
            assert answer.status_code in (200, 206), (path, answer.status_code)

    for _ in range(warmup):
        page()
        api()
    pages, apis = [], []
    for _ in range(requests):
        pages.append(timed(page))
        apis.append(timed(api))
    page_ms, api_ms = statistics.median(pages), statistics.median(apis)
    return {
        "page_ms": round(page_ms, 2),
        "api_ms": round(api_ms, 2),
        "ratio": round(page_ms / api_ms, 2),
        "page_p90_ms": round(sorted(pages)[int(0.9 * (len(pages) - 1))], 2),
        "api_p90_ms": round(sorted(apis)[int(0.9 * (len(apis) - 1))], 2),
        "api_requests": len(test.api),
        "page_bytes": len(test.page_client.get(test.page).content),
    }


def run_phase(
    base: str, demo: Demo, args: argparse.Namespace, phase: str
) -> dict[str, dict[str, Any]]:
    staff = signed_in(base, "bench.admin")
    support = signed_in(base, "bench.support")
    portal = signed_in(base, "bench.portal")
    api = httpx.Client(base_url=base, timeout=60)
    bmw = demo.customer_id
    customer = {"Authorization": f"Bearer {demo.customer_key}"}
    network_api: Requests = [
        (f"/tmf-api/customerNetworkView/v1/customer/{bmw}", customer),
        ("/tmf-api/geographicSiteManagement/v4/geographicSite?limit=100", customer),
    ]
    tests = [
        Test("360", f"/ui/customers/{bmw}", staff, api_360(demo), api),
        Test("network", f"/ui/customers/{bmw}/network", portal, network_api, api),
        Test("map", f"/ui/customers/{bmw}/network/map", portal, network_api, api),
        Test("worklist", "/ui/", support, api_worklist(support, demo.support_key), api),
    ]
    for test in tests:  # every answer right before anything is timed
        check(test.page_client, test.page)
        for path, headers in test.api:
            check(api, path, headers)
    sites = portal.get(f"/ui/customers/{bmw}/network").text.count(f"/ui/customers/{bmw}/sites/")
    log(f"{phase}: the portal's network page links {sites} site pages")
    rounds: dict[str, list[dict[str, Any]]] = {t.name: [] for t in tests}
    for round_no in range(args.rounds):
        loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        order = tests if round_no % 2 == 0 else list(reversed(tests))
        for test in order:
            figure = measure(test, args.requests, args.warmup)
            figure["loadavg_before"] = loadavg
            rounds[test.name].append(figure)
            log(f"{phase} round {round_no + 1} {test.name}: {figure}")
    for client in (staff, support, portal, api):
        client.close()
    summary: dict[str, dict[str, Any]] = {}
    for name, figures in rounds.items():
        summary[name] = {
            "page_ms": round(statistics.median(f["page_ms"] for f in figures), 2),
            "api_ms": round(statistics.median(f["api_ms"] for f in figures), 2),
            "ratio": round(statistics.median(f["ratio"] for f in figures), 2),
            "ratios": [f["ratio"] for f in figures],
            "api_requests": figures[0]["api_requests"],
            "page_bytes": figures[0]["page_bytes"],
            "rounds": figures,
        }
    return summary


def run_database(db: str, args: argparse.Namespace) -> dict[str, Any]:
    try:
        url, demo = build_demo(db)
        result: dict[str, Any] = {
            "db": db,
            "version": database_version(db),
            "sites": len(demo.site_ids),
        }
        with serve(environment(url)) as base:
            result["demo"] = run_phase(base, demo, args, "demo data")
            with httpx.Client(base_url=base, timeout=60) as client:
                result["tickets"] = add_tickets(client, demo, args.tickets)
            result["with_tickets"] = run_phase(base, demo, args, f"{args.tickets} tickets")
        return result
    finally:
        if not args.keep:
            drop_database(db)


LABELS = {
    "360": "Customer 360 (`/ui/customers/{id}`)",
    "network": "BMW topology, 66 sites (`/network`)",
    "map": "its refreshed fragment (`/network/map`)",
    "worklist": "staff home, support's work lists (`/ui/`)",
}


def markdown(results: list[dict[str, Any]], args: argparse.Namespace, stamp: str) -> str:
    lines = [
        f"Recorded {stamp} UTC, commit {_commit()}; `etomcrm serve --workers 1 --no-flows`; "
        f"{args.rounds} rounds of {args.requests} page/API pairs after {args.warmup} warm-up "
        "pairs; medians.",
        "",
        "| test | data | API requests | "
        + " | ".join(f"{r['db']} page ms | API ms | page ÷ API" for r in results)
        + " |",
        "|---|---|---:|" + "---:|---:|---:|" * len(results),
    ]
    for phase, label in (("demo", "demo"), ("with_tickets", f"+{args.tickets} tickets")):
        for name, title in LABELS.items():
            cells = []
            for r in results:
                f = r[phase][name]
                cells.append(f"{f['page_ms']} | {f['api_ms']} | **{f['ratio']}**")
            api_requests = results[0][phase][name]["api_requests"]
            lines.append(f"| {title} | {label} | {api_requests} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=30, help="timed pairs a test a round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--no-record", action="store_true", help="write no JSON")
    args = parser.parse_args()
    stamp = time.strftime("%Y-%m-%dT%H%MZ", time.gmtime())
    results = []
    for db in ["sqlite", "postgresql"] if args.db == "both" else [args.db]:
        log(f"{db}: building the demo")
        results.append(run_database(db, args))
    table = markdown(results, args, stamp)
    print(table)
    if not args.no_record:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"pages-{stamp}-{args.db}.json"
        path.write_text(
            json.dumps(
                {"args": vars(args), "commit": _commit(), "results": results, "table": table},
                indent=1,
                default=str,
            )
        )
        log(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
