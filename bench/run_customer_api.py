"""Customer API benchmark: etomcrm against a bare FastAPI endpoint, same server settings.

For each database (SQLite, PostgreSQL or both) this script:

1. makes a fresh database and seeds it (``bench/seed_customers.py``, 100,000 customers),
   or with ``--reuse`` keeps the one an earlier run seeded;
2. creates an admin API key with ``etomcrm apikey create``;
3. runs ``--rounds`` rounds; each round starts ``etomcrm serve --workers 2
   --no-access-log`` and ``bench/bare_app.py`` with the same settings, checks one answer
   of every endpoint, then measures every test under two loads (see ``TESTS``):
   *saturated* (16 connections) and *light* (one connection, one request at a time);
   the read tests alternate their order from round to round, ``POST`` comes last;
4. writes ``bench/results/customer_api-<date>-<db>.json``, appends a section to
   ``bench/results/README.md`` and refreshes the results block of ``bench/README.md``.

The load comes from ``wrk`` (a separate process on loopback) with the Lua scripts in
``bench/lua``. Each test is a warm-up run (discarded) followed by the measured run.
Every ratio is taken within a round (same minutes, same noise); the medians over the
rounds are reported. Servers are stopped at the end, also on failure or Ctrl-C.

Usage: ``bench/run_customer_api.sh`` (installs wrk) or
``.venv/bin/python bench/run_customer_api.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
WORK = RESULTS / "tmp"  # git-ignored
LUA = BENCH / "lua"
PYTHON = Path(sys.executable)
ETOMCRM = PYTHON.with_name("etomcrm")
HOST = "127.0.0.1"
BASE = "/tmf-api/customerManagement/v4/customer"
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", "etomcrm_bench")

TESTS = {
    "get": "GET /customer/{id}",
    "list": "GET /customer?limit=50 (first page, counts)",
    "list_deep": "list at a random offset (diagnostic)",
    "post": "POST /customer",
    "bare": "bare FastAPI endpoint",
}
READS = ["get", "bare", "list", "list_deep"]  # measured under both loads
# Ratios taken within each round: name -> (numerator test, denominator test, figure).
RATIOS = {
    "get_rps_over_bare": ("get", "bare", "rps"),
    "list_rps_over_bare": ("list", "bare", "rps"),
    "list_deep_rps_over_bare": ("list_deep", "bare", "rps"),
    "post_rps_over_bare": ("post", "bare", "rps"),
    "list_p99_over_get_p99": ("list", "get", "p99_ms"),
    "list_deep_p99_over_get_p99": ("list_deep", "get", "p99_ms"),
    "bare_cpu_over_get_cpu": ("bare", "get", "app_cpu_ms"),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ----- processes ----------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    pgid: int


@contextlib.contextmanager
def serving(name: str, argv: list[str], env: dict[str, str], work: Path) -> Iterator[Server]:
    """Start a server on a free port and wait for its /health; stop it whatever happens.

    The server is its own process group (uvicorn's supervisor and its workers), stopped
    by that id.
    """
    port = free_port()
    log_path = work / f"{name}-server.log"
    argv = [*argv, "--host", HOST, "--port", str(port), "--workers", "2", "--no-access-log"]
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
        try:
            deadline = time.monotonic() + 60
            while not _healthy(f"http://{HOST}:{port}/health"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} server did not start; see {log_path}")
                time.sleep(0.25)
            yield Server(f"http://{HOST}:{port}", proc.pid)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
            # Workers left behind by a killed supervisor share its process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _healthy(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


_CLK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pgid: int | None) -> float:
    """User+system CPU seconds of a process group, or (None) of the PostgreSQL server:
    its live processes plus the backends it has reaped (shared: includes other users)."""
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
        if pgid is None and name == "postgres":
            jiffies += sum(int(v) for v in values[11:15])  # utime stime cutime cstime
        elif pgid is not None and int(values[2]) == pgid:
            jiffies += int(values[11]) + int(values[12])
    return jiffies / _CLK


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def http(
    method: str, url: str, token: str, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return response.status, headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {}, error.read()


# ----- wrk ----------------------------------------------------------------------------------


@dataclass
class Load:
    name: str  # "saturated" or "light"
    threads: int
    connections: int
    duration: int
    warmup: int


def run_wrk(load: Load, seconds: int, url: str, script: str, env: dict[str, str]) -> Any:
    argv = ["wrk", f"-t{load.threads}", f"-c{load.connections}", f"-d{seconds}s"]
    argv += ["--timeout", "10s", "-s", str(LUA / script), url]
    result = subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=seconds + 60
    )
    for line in result.stdout.splitlines():
        if result.returncode == 0 and line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise RuntimeError(f"wrk failed:\n{result.stdout}\n{result.stderr}")


def measure(
    load: Load, test: str, round_no: int, server: Server, script: str, env: dict[str, str]
) -> dict[str, Any]:
    """One test: warm-up, then the measured run and the CPU it cost the servers."""
    url = server.url
    run_wrk(load, load.warmup, url, script, env)
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    pg = env["BENCH_DB"] == "postgresql" and test != "bare"
    app0, pg0, machine0 = _cpu_seconds(server.pgid), _cpu_seconds(None), _machine_jiffies()
    data = run_wrk(load, load.duration, url, script, env)
    app1, pg1, machine1 = _cpu_seconds(server.pgid), _cpu_seconds(None), _machine_jiffies()
    n, lat = max(1, data["requests"]), data["latency_us"]
    m = {
        "test": test,
        "load": load.name,
        "round": round_no,
        "rps": round(data["requests"] / (data["duration_us"] / 1e6), 1),
        **{f"{k}_ms": lat[k] / 1000 for k in ("p50", "p90", "p99", "p999", "max")},
        "requests": data["requests"],
        "errors": data["errors"],
        "bytes_per_response": round(data["bytes"] / n, 1),
        "app_cpu_ms": round((app1 - app0) * 1000 / n, 3),
        "postgres_cpu_ms": round((pg1 - pg0) * 1000 / n, 3) if pg else None,
        "machine_busy": round((machine1[0] - machine0[0]) / max(1, machine1[1] - machine0[1]), 3),
        "loadavg_before": " ".join(loadavg),
    }
    bad = sum(data["errors"].values())
    log(
        f"  {load.name:9s} {test:9s} {m['rps']:8.1f} req/s  p50 {m['p50_ms']:7.2f}  p99 "
        f"{m['p99_ms']:7.2f} ms  app CPU {m['app_cpu_ms']:.2f} ms/req  busy {m['machine_busy']}"
        + (f"  ERRORS {data['errors']}" if bad else "")
    )
    if bad > 0.01 * n:
        raise RuntimeError(f"{test}: {bad} errors in {n} requests: {data['errors']}")
    return m


# ----- databases ----------------------------------------------------------------------------


def database_url(db: str, work: Path, fresh: bool) -> str:
    if db == "sqlite":
        path = work / "etomcrm_bench.db"
        for suffix in ("", "-wal", "-shm") if fresh else ():
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    if fresh:
        import psycopg

        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    return f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/{PG_DATABASE}"


def database_version(db: str) -> str:
    if db == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres") as conn:
        version = conn.execute("SHOW server_version").fetchone()
        settings = conn.execute(
            "SELECT string_agg(name || '=' || current_setting(name), ', ') FROM pg_settings"
            " WHERE name IN ('shared_buffers', 'synchronous_commit', 'work_mem')"
        ).fetchone()
    return f"PostgreSQL {version[0] if version else '?'} ({settings[0] if settings else '?'})"


# ----- one database -------------------------------------------------------------------------


def run_database(db: str, args: argparse.Namespace) -> dict[str, Any]:
    work = WORK / db
    work.mkdir(parents=True, exist_ok=True)
    url = database_url(db, work, fresh=not args.reuse)
    env = {**os.environ, "ETOMCRM_DATABASE_URL": url}
    # POST bodies engage spare organizations in turn; a --reuse run goes on from here.
    next_spare = work / "next_spare_organization.txt"
    if not args.reuse:
        log(f"{db}: seeding {args.customers} customers")
        seeder = [str(PYTHON), str(BENCH / "seed_customers.py"), "--database-url", url]
        seeder += ["--customers", str(args.customers), "--work-dir", str(work)]
        subprocess.run(seeder, env=env, check=True, cwd=ROOT)
        next_spare.unlink(missing_ok=True)
    apikey = [str(ETOMCRM), "apikey", "create", "bench", "--role", "admin"]
    created = subprocess.run(apikey, env=env, check=True, capture_output=True, text=True)
    token = created.stdout.strip().splitlines()[-1]
    ids, spare = work / "customer_ids.txt", work / "spare_organization_ids.txt"
    template, body_file = work / "post_customer_template.json", work / "customer_response.json"
    customer_ids, spare_ids = ids.read_text().split(), spare.read_text().split()
    sample = customer_ids[:: len(customer_ids) // 20][:21]
    org_offset = int(next_spare.read_text()) if next_spare.exists() else 0
    if org_offset >= len(spare_ids):
        raise RuntimeError("the spare organizations are used up: run without --reuse")
    deep = str(args.customers - 50)
    by_id = {"BENCH_IDS_FILE": str(ids)}
    plan = {  # test -> (wrk script, its environment); "bare" runs on the bare server
        "get": ("get_customer.lua", {**by_id, "BENCH_PATH": f"{BASE}/"}),
        "bare": ("get_customer.lua", {**by_id, "BENCH_PATH": "/bare/customer/"}),
        "list": ("list_customers.lua", {"BENCH_PATH": BASE, "BENCH_MAX_OFFSET": "0"}),
        "list_deep": ("list_customers.lua", {"BENCH_PATH": BASE, "BENCH_MAX_OFFSET": deep}),
        "post": (
            "post_customer.lua",
            {"BENCH_PATH": BASE, "BENCH_TEMPLATE": str(template), "BENCH_ORG_IDS": str(spare)},
        ),
    }
    common = {"BENCH_TOKEN": token, "BENCH_LUA_DIR": str(LUA), "BENCH_DB": db}
    saturated = Load("saturated", args.threads, args.connections, args.duration, args.warmup)
    light = Load("light", 1, 1, args.light_duration, args.warmup)
    runs: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}

    def check_app(app: str, round_no: int) -> None:
        """Each request of the load answers what it should, before anything is timed."""
        # The bare endpoint answers a real customer of the median size of 21.
        answers = [http("GET", f"{app}{BASE}/{i}", token) for i in sample]
        assert all(status == 200 for status, _, _ in answers), answers[0]
        body = sorted((a[2] for a in answers), key=len)[len(answers) // 2]
        body_file.write_bytes(body)
        for offset in ("", f"&offset={deep}"):
            status, headers, page = http("GET", f"{app}{BASE}?limit=50{offset}", token)
            total = int(headers.get("x-total-count", -1))
            assert status in (200, 206) and total >= args.customers, (status, total)
            assert len(json.loads(page)) == 50, page[:300]
        name = f"Probe {int(time.time())}-{round_no}"
        probe = template.read_text().replace("@@NAME@@", name)
        status, _, answer = http(
            "POST", f"{app}{BASE}", token, probe.replace("@@ORG_ID@@", spare_ids[-1]).encode()
        )
        assert status == 201, (status, answer[:300])
        checks.update(get_body_bytes=len(body), list_body_bytes=len(page), total_seen=total)

    for round_no in range(1, args.rounds + 1):
        log(f"{db}: round {round_no} of {args.rounds}")
        app_argv, bare_argv = [str(ETOMCRM), "serve"], [str(PYTHON), str(BENCH / "bare_app.py")]
        bare_env = {**os.environ, "BENCH_BARE_BODY_FILE": str(body_file)}
        with contextlib.ExitStack() as stack:
            app = stack.enter_context(serving("etomcrm", app_argv, env, work))
            check_app(app.url, round_no)
            bare = stack.enter_context(serving("bare", bare_argv, bare_env, work))
            status, _, bare_body = http("GET", f"{bare.url}/bare/customer/x", token)
            assert status == 200 and bare_body == body_file.read_bytes(), status
            reads = READS if round_no % 2 else READS[::-1]  # drift favours no test
            for load, test in [(light, t) for t in reads] + [(saturated, t) for t in reads]:
                script, test_env = plan[test][0], {**common, **plan[test][1]}
                server = bare if test == "bare" else app
                runs.append(measure(load, test, round_no, server, script, test_env))
            # Writes last: the reads of round 1 see the seeded tables as they are.
            post_env = {**common, **plan["post"][1], "BENCH_ORG_OFFSET": str(org_offset)}
            post_env |= {"BENCH_THREADS": str(args.threads), "BENCH_NONCE": f"{time.time():.0f}"}
            runs.append(measure(saturated, "post", round_no, app, "post_customer.lua", post_env))
            # Warm-up and measured run both engaged organizations: move past them.
            warm = 1 + saturated.warmup / saturated.duration
            org_offset += int(2 * runs[-1]["requests"] * warm) + 1000
            next_spare.write_text(str(org_offset))

    return {
        "database": db,
        "database_version": database_version(db),
        "reused": args.reuse,
        "seed": json.loads((work / "seed.json").read_text()),
        "checks": checks,
        "loads": {load.name: asdict(load) for load in (saturated, light)},
        "runs": runs,
        "summary": summarize(runs),
    }


# ----- figures ------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per load and test, ratios per round (and their medians), the targets."""
    figures = ("rps", "p50_ms", "p99_ms", "p999_ms", "app_cpu_ms", "postgres_cpu_ms")
    medians: dict[str, dict[str, dict[str, float | None]]] = {}
    ratios: dict[str, dict[str, dict[str, Any]]] = {}
    for load in ("saturated", "light"):
        by_test: dict[str, list[dict[str, Any]]] = {}
        for m in runs:
            if m["load"] == load:
                by_test.setdefault(m["test"], []).append(m)
        medians[load] = {
            test: {f: _median([m[f] for m in ms if m[f] is not None]) for f in figures}
            | {"bytes_per_response": _median([m["bytes_per_response"] for m in ms])}
            for test, ms in by_test.items()
        }
        ratios[load] = {}
        for name, (num, den, figure) in RATIOS.items():
            per_round = [
                a[figure] / b[figure]
                for a in by_test.get(num, [])
                for b in by_test.get(den, [])
                if a["round"] == b["round"] and b[figure]
            ]
            if per_round:
                rounded = [round(x, 3) for x in per_round]
                ratios[load][name] = {"median": _median(per_round), "rounds": rounded}
    get_bare = ratios["saturated"]["get_rps_over_bare"]["median"]
    targets = {
        "get_rps_at_least_half_of_bare": {"value": get_bare, "met": get_bare >= 0.5},
        **{
            f"list_p99_at_most_twice_get_p99_{load}": {
                "value": (value := ratios[load]["list_p99_over_get_p99"]["median"]),
                "met": value <= 2.0,
            }
            for load in ("light", "saturated")
        },
    }
    return {"medians": medians, "ratios": ratios, "targets": targets}


def markdown(report: dict[str, Any], meta: dict[str, Any]) -> str:
    s, loads = report["summary"], report["loads"]
    sat, light = s["medians"]["saturated"], s["medians"]["light"]
    ratio, target = s["ratios"], s["targets"]
    pg = report["database"] == "postgresql"

    def met(key: str) -> str:
        return "**met**" if target[key]["met"] else "**NOT met**"

    def r(load: str, name: str) -> str:
        found = ratio[load].get(name)
        return f"{found['median']:.2f}" if found else "-"

    def rounds(load: str, name: str) -> str:
        return ", ".join(f"{x:.2f}" for x in ratio[load][name]["rounds"])

    sl, ll = loads["saturated"], loads["light"]
    lines = [
        f"### {report['database']} — {meta['date']}",
        "",
        f"{report['database_version']}; {report['seed']['customers']:,} customers seeded"
        f"{' (database reused)' if report['reused'] else ''}; commit {meta['commit']}; "
        f"`etomcrm serve --workers 2 --no-access-log`; median of {meta['rounds']} rounds. "
        f"Saturated: wrk `-t{sl['threads']} -c{sl['connections']}`, {sl['duration']} s after "
        f"{sl['warmup']} s warm-up. Light: wrk `-t1 -c1`, {ll['duration']} s after "
        f"{ll['warmup']} s warm-up.",
        "",
        "| test | req/s | p50 ms | p99 ms | req/s ÷ bare | app CPU ms/req"
        + (" | postgres CPU ms/req" if pg else "")
        + " | light: req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|" + ("---:|" if pg else "") + "---:|---:|---:|",
    ]
    for test, label in TESTS.items():
        m, lm = sat[test], light.get(test)
        row = f"| {label} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | "
        row += ("1.00" if test == "bare" else r("saturated", f"{test}_rps_over_bare")) + " | "
        row += f"{m['app_cpu_ms']:.2f} | "
        if pg:
            row += "- | " if test == "bare" else f"{m['postgres_cpu_ms']:.2f} | "
        row += (
            f"{lm['rps']:.0f} | {lm['p50_ms']:.2f} | {lm['p99_ms']:.2f} |" if lm else "- | - | - |"
        )
        lines.append(row)
    lines += [
        "",
        f"- GET ÷ bare, req/s at {sl['connections']} connections: "
        f"**{r('saturated', 'get_rps_over_bare')}** (target ≥ 0.50: "
        f"{met('get_rps_at_least_half_of_bare')}; "
        f"rounds {rounds('saturated', 'get_rps_over_bare')});"
        f" by CPU per request {r('saturated', 'bare_cpu_over_get_cpu')}; "
        f"at 1 connection {r('light', 'get_rps_over_bare')}",
        f"- list p99 ÷ GET p99, light load (service time; what the target is judged on): "
        f"**{r('light', 'list_p99_over_get_p99')}** (target ≤ 2: "
        f"{met('list_p99_at_most_twice_get_p99_light')}; rounds "
        f"{rounds('light', 'list_p99_over_get_p99')})",
        f"- list p99 ÷ GET p99, saturated (mostly queueing): "
        f"**{r('saturated', 'list_p99_over_get_p99')}** (≤ 2: "
        f"{met('list_p99_at_most_twice_get_p99_saturated')}; rounds "
        f"{rounds('saturated', 'list_p99_over_get_p99')})",
        f"- POST ÷ bare req/s: **{r('saturated', 'post_rps_over_bare')}**; "
        f"list ÷ bare req/s: {r('saturated', 'list_rps_over_bare')}",
        f"- diagnostic, list at a random offset: p99 ÷ GET p99 "
        f"{r('light', 'list_deep_p99_over_get_p99')} (light), "
        f"{r('saturated', 'list_deep_p99_over_get_p99')} (saturated); req/s ÷ bare "
        f"{r('saturated', 'list_deep_rps_over_bare')}",
        f"- bytes per response, headers included: GET {sat['get']['bytes_per_response']:.0f}, "
        f"bare {sat['bare']['bytes_per_response']:.0f}",
        "",
    ]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    packages = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "sqlalchemy", "psycopg")
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True)
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "packages": {p: metadata.version(p) for p in packages},
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0],
        "commit": commit.stdout.strip() + (" (src modified)" if dirty.stdout.strip() else ""),
    }


def record(report: dict[str, Any], meta: dict[str, Any], stamp: str, readme: bool) -> Path:
    db = report["database"]
    out = RESULTS / f"customer_api-{stamp}-{db}.json"
    out.write_text(json.dumps(report | {"meta": meta}, indent=2, ensure_ascii=False) + "\n")
    table = markdown(report, meta)
    with (RESULTS / "README.md").open("a") as handle:
        handle.write(f"\n{table}\nFile: `{out.name}`; command: `{meta['command']}`.\n")
    path = BENCH / "README.md"
    begin, end = f"<!-- results:{db}:begin -->", f"<!-- results:{db}:end -->"
    content = path.read_text()
    if readme and begin in content and end in content:
        head, rest = content.split(begin, 1)
        path.write_text(f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}")
    print(table, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Customer API benchmark (see bench/README.md)")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=15, help="saturated: measured seconds")
    parser.add_argument("--light-duration", type=int, default=10, help="light: measured seconds")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds before each test")
    parser.add_argument("--connections", type=int, default=16, help="saturated: connections")
    parser.add_argument("--threads", type=int, default=2, help="saturated: wrk threads")
    parser.add_argument("--reuse", action="store_true", help="keep the database seeded earlier")
    parser.add_argument(
        "--no-record", action="store_true", help="a trial: write nothing under bench/ but tmp/"
    )
    args = parser.parse_args()

    def on_signal(signum: int, _frame: Any) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: run bench/run_customer_api.sh, or apt-get install wrk")
    now = dt.datetime.now(dt.UTC)
    meta = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["bench/run_customer_api.sh", *sys.argv[1:]]),
        "machine": machine(),
        "rounds": args.rounds,
    }
    meta["commit"] = meta["machine"]["commit"]
    for db in ["sqlite", "postgresql"] if args.db == "both" else [args.db]:
        started = time.monotonic()
        report = run_database(db, args)
        meta["seconds"] = round(time.monotonic() - started)
        if args.no_record:
            print(markdown(report, meta), flush=True)
            (WORK / f"trial-{db}.json").write_text(json.dumps(report, indent=2) + "\n")
        else:
            out = record(report, meta, now.strftime("%Y-%m-%dT%H%MZ"), readme=True)
            log(f"{db}: done in {meta['seconds']} s; wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
