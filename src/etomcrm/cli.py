"""The ``etomcrm`` command line."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import httpx
import typer
import uvicorn
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from etomcrm import bootstrap
from etomcrm.analytics import churn as churn_model
from etomcrm.analytics import store as analytics_store
from etomcrm.analytics.campaigns import campaign_success
from etomcrm.analytics.contacts import contact_statistics
from etomcrm.analytics.export import csv_text
from etomcrm.analytics.history import HistoryRefused, import_history
from etomcrm.analytics.profitability import customer_profitability
from etomcrm.analytics.trends import (
    segment_forecasts,
    segment_members,
    segment_overview,
    segment_trends,
)
from etomcrm.billing.bank_statements import import_statement
from etomcrm.billing.direct_debit import collect
from etomcrm.config import get_settings
from etomcrm.core.errors import TmfError
from etomcrm.core.events import deliver_due, http_poster
from etomcrm.customer_interface.communication import deliver_messages
from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope, utcnow
from etomcrm.demo import analytics_story, assurance_story, billing_story, sign_ins, story
from etomcrm.demo.scenario import run_demo
from etomcrm.flows import billing as billing_flow
from etomcrm.flows import engine
from etomcrm.flows.dunning import sweep_unstarted_dunning_flows
from etomcrm.flows.failures import failed_flows, retry_flow
from etomcrm.flows.fulfillment import sweep_unstarted_flows
from etomcrm.flows.recorder import flows_of_case
from etomcrm.flows.sla_violation import sweep_unstarted_violation_flows
from etomcrm.migrate import schema_problem, upgrade
from etomcrm.retention.campaign_plans import plan_campaign
from etomcrm.retention.profile import customer_profile, offer_overview, offer_summary
from etomcrm.security.service import (
    SYSTEM,
    Principal,
    Role,
    create_api_key,
    create_user,
    revoke_api_key,
    unlock_user,
)

HELP = (
    "etomcrm: CRM for telecom and IT service providers.\n\n"
    "The database is ETOMCRM_DATABASE_URL (default: etomcrm.db, SQLite, in the current "
    "directory; e.g. postgresql+psycopg://user@host/db). Run 'etomcrm db upgrade' once "
    "before the other commands ('demo', 'serve' and 'worker' do it themselves). Every "
    "setting is an ETOMCRM_* environment variable (README, 'Configuration')."
)
app = typer.Typer(help=HELP, no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for machine clients.", no_args_is_help=True)
user_app = typer.Typer(help="Staff and portal users.", no_args_is_help=True)
hub_app = typer.Typer(help="TMF hub event delivery.", no_args_is_help=True)
flow_app = typer.Typer(
    help="The durable flows: failed ones listed and retried.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
app.add_typer(user_app, name="user")
app.add_typer(hub_app, name="hub")
app.add_typer(flow_app, name="flow")
billing_app = typer.Typer(
    help="Billing & collections: the bill run, bank statements booked, direct debits collected.",
    no_args_is_help=True,
)
app.add_typer(billing_app, name="billing")
analytics_app = typer.Typer(
    help="Analytical CRM: the analytical store, history import, contact and profit reports.",
    no_args_is_help=True,
)
app.add_typer(analytics_app, name="analytics")
churn_app = typer.Typer(
    help="The churn model (seed 5.3): fit it, show its evaluation, list the scores.",
    no_args_is_help=True,
)
analytics_app.add_typer(churn_app, name="churn")
console = Console()


# Commands that bring the schema up to date themselves.
UPGRADING = frozenset({"db", "demo", "serve", "worker"})


@app.callback()
def _wire(ctx: typer.Context) -> None:
    bootstrap.bootstrap()
    if ctx.invoked_subcommand not in UPGRADING and not ctx.resilient_parsing:
        problem = schema_problem()
        if problem:
            # One line however narrow the terminal: it names the command to run.
            console.print(f"[red]error:[/red] {problem}", soft_wrap=True)
            raise typer.Exit(code=2)


def _fail(error: TmfError) -> NoReturn:
    console.print(f"[red]error:[/red] {error.message}")
    raise typer.Exit(code=2)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the schema migrations (Alembic) to ETOMCRM_DATABASE_URL."""

    upgrade(revision=revision)
    console.print(f"database at {revision}: {get_settings().database_url.split('@')[-1]}")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="API processes (Uvicorn workers); with more than one, a separate flow "
            "worker process runs the flows"
        ),
    ] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request")] = True,
    flows: Annotated[
        bool, typer.Option(help="Also run the flows (one worker process beside the API)")
    ] = True,
    flow_workers: Annotated[
        int,
        typer.Option(
            help="Flow worker processes beside the API (PostgreSQL): a bill run's lanes run "
            "in parallel one per worker process"
        ),
    ] = 1,
) -> None:
    """Run the HTTP service (every TMF API, OpenAPI document at /openapi.json).

    With one worker the serving process runs the flows itself. With more, or with more
    than one flow worker, the API processes only enqueue flows and ``etomcrm worker``
    processes run them."""

    upgrade()
    if get_settings().database_url.startswith("sqlite"):
        # One writer: parallel flow workers would only queue for its lock.
        flow_workers = 1
    running: list[subprocess.Popen[bytes]] = []
    if workers > 1 or not flows or flow_workers > 1:
        os.environ["ETOMCRM_FLOWS_RUN_IN_SERVER"] = "false"
        get_settings.cache_clear()
        if flows:
            # Stable executor ids: a restarted worker recovers its own unfinished flows.
            running = [
                subprocess.Popen(
                    [sys.executable, "-m", "etomcrm", "worker", "--executor-id", executor]
                )
                for executor in ["serve-flows"]
                + [f"serve-flows-{n}" for n in range(2, flow_workers + 1)]
            ]
    try:
        uvicorn.run(
            "etomcrm.bootstrap:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=access_log,
        )
    finally:
        for worker_process in running:
            worker_process.terminate()
        for worker_process in running:
            worker_process.wait(timeout=30)
    if flows and not running:
        _exit_leaving_flows_to_recovery()


@app.command()
def worker(
    executor_id: Annotated[
        str,
        typer.Option(
            help="This worker's own id: keep it across restarts, so the worker recovers its "
            "own unfinished flows (and nobody else's)"
        ),
    ] = "worker-1",
    concurrency: Annotated[
        int,
        typer.Option(
            help="How many flow steps run at once; 0 takes the setting "
            "ETOMCRM_FLOWS_WORKER_CONCURRENCY (default 8)"
        ),
    ] = 0,
) -> None:
    """Run the durable flows (Fulfillment, ...) queued by the API processes."""

    os.environ["ETOMCRM_FLOWS_EXECUTOR_ID"] = executor_id
    get_settings.cache_clear()
    upgrade()
    engine.launch(concurrency=concurrency or None)
    started = (
        sweep_unstarted_flows()
        + sweep_unstarted_violation_flows()
        + sweep_unstarted_dunning_flows()
    )
    console.print(
        f"worker {executor_id} running flows" + (f"; started {started}" if started else "")
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    while not stopping.is_set():
        try:
            for deliver in bootstrap.DELIVERIES:
                deliver()
        except Exception as error:  # a database hiccup: try again next round
            console.print(f"[yellow]message delivery failed:[/yellow] {error}")
        stopping.wait(1.0)
    engine.shutdown()
    _exit_leaving_flows_to_recovery()


def _exit_leaving_flows_to_recovery() -> NoReturn:
    """End the process without joining the threads of flows that wait (a week for a
    quote decision, a day for a ticket): they are durable, and DBOS resumes them when
    a flow process starts again. Joining them would keep the process for days."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@app.command()
def trace(case_id: str) -> None:
    """Print the steps of a case's flows (quote, order or request id) as a timeline."""

    with session_scope(readonly=True) as session:
        traces = flows_of_case(session, case_id)
    if not traces:
        console.print(f"[red]error:[/red] no flow has run for {case_id}")
        raise typer.Exit(code=2)
    print_traces(traces)


def print_traces(traces: list[Any]) -> None:
    """Each flow's steps as a table, in the order they happened: a person's step is
    recorded with the time it was taken, which may come before the steps recorded
    around it."""
    for flow in traces:
        table = Table(title=f"{flow.flow} {flow.workflow_id} ({flow.state})", title_justify="left")
        table.add_column("time (UTC)")
        table.add_column("seed")
        table.add_column("process")
        table.add_column("actor")
        table.add_column("outcome")
        for line in sorted(flow.lines, key=lambda line: line.at):
            table.add_row(
                line.at.strftime("%Y-%m-%d %H:%M:%S"),
                line.seed,
                line.process,
                line.actor,
                line.outcome,
            )
        console.print(table)


@flow_app.command("failed")
def flow_failed() -> None:
    """List the failed flows (the staff work list), with the reason each failed."""

    with session_scope(readonly=True) as session:
        rows = failed_flows(session)
    console.print(f"{len(rows)} failed flow(s)")
    # One flow per line, unwrapped: ids and reasons are copied into `flow retry`.
    for flow_id, flow, case, failed_at, step, reason in rows:
        console.print(
            f"{flow_id}  {flow}  case {case}  failed {failed_at} at step {step or '-'}: {reason}",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )


@flow_app.command("retry")
def flow_retry(
    process_flow_id: str,
    actor: Annotated[str, typer.Option(help="Who retries (recorded on the flow)")] = "cli",
) -> None:
    """Retry a failed flow from the step that failed, once its cause is fixed. A worker
    (or the service) runs it."""

    try:
        retry_flow(Principal(id=actor, name=actor, role=Role.ADMIN), process_flow_id)
    except TmfError as error:
        _fail(error)
    console.print(f"process flow {process_flow_id} retried: active again")


@billing_app.command("run")
def bill_run(
    period: Annotated[str, typer.Option(help="The month billed, e.g. 2026-11")],
    cycle_day: Annotated[
        int | None, typer.Option(help="Only the accounts of this bill cycle day (1..28)")
    ] = None,
) -> None:
    """Run the bill run for a month here and wait for it: every account due rated,
    billed, issued and sent, once (a rerun, or a run after a crash, bills none twice)."""

    if cycle_day is not None and not 1 <= cycle_day <= 28:
        console.print("[red]error:[/red] a bill cycle day is 1..28")
        raise typer.Exit(code=2)
    engine.launch(schedules=False)
    try:
        workflow_id = billing_flow.start_bill_run(period, cycle_day)
    except TmfError as error:
        _fail(error)
    summary = billing_flow.wait_for_bill_run(workflow_id, period)
    numbers = f", {summary['first']} … {summary['last']}" if summary["first"] else ""
    console.print(
        f"bill run {workflow_id}: {summary['bills']} bill(s) for {period}, "
        f"{summary['total']} EUR in total{numbers}; 'etomcrm trace {workflow_id}' shows its steps"
    )
    engine.shutdown()
    _exit_leaving_flows_to_recovery()


@billing_app.command("import-statement")
def billing_import_statement(
    file: Annotated[Path, typer.Argument(help="camt.053 statement (or camt.052/camt.054)")],
) -> None:
    """Book a bank statement: credits matched to bills as payments, returned direct debits
    reversed with the bank's fee, the rest on billing's work list. Importing a file again
    changes nothing."""

    try:
        xml = file.read_bytes()
    except OSError as error:
        console.print(f"[red]error:[/red] cannot read {file}: {error.strerror}")
        raise typer.Exit(code=2) from None
    try:
        with session_scope() as session:
            result = import_statement(session, xml)
    except TmfError as error:
        _fail(error)
    for entry in result.entries:
        console.print(
            f"{entry.entry_id}  {entry.amount:>12}  {entry.outcome:<13}"
            + (f"  payment {entry.payment_id}" if entry.payment_id else "")
            + (f"  {entry.note}" if entry.note else ""),
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
    counts = {o: len(result.of(o)) for o in ("paid", "returned", "unmatched", "alreadyBooked")}
    console.print(
        f"{counts['paid']} matched, {counts['returned']} returned, "
        f"{counts['unmatched']} unmatched (on billing's work list), "
        f"{counts['alreadyBooked']} booked before"
    )


@billing_app.command("collect")
def billing_collect(
    date_: Annotated[str, typer.Option("--date", help="Collection date, YYYY-MM-DD")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the pain.008 file")],
) -> None:
    """Write the SEPA direct-debit file (pain.008) collecting every direct-debit bill due
    on that date; the same date again gives the same file."""

    try:
        day = date.fromisoformat(date_)
    except ValueError:
        console.print(f"[red]error:[/red] --date must be YYYY-MM-DD, not {date_!r}")
        raise typer.Exit(code=2) from None
    try:
        with session_scope() as session:
            batch = collect(session, day)
            found = None if batch is None else (batch.xml, batch.debit_count, batch.total)
    except TmfError as error:
        _fail(error)
    if found is None:
        console.print(f"nothing due for collection on {day.isoformat()}: no file written")
        return
    xml, count, total = found
    out.write_text(xml, encoding="utf-8")
    console.print(f"{count} debit(s), {total} EUR, collected on {day.isoformat()}: {out}")


@apikey_app.command("create")
def apikey_create(
    name: str,
    role: Annotated[
        str,
        typer.Option(
            help="admin, sales, order_manager, support, sla_manager, billing, marketing, "
            "analyst, customer, or network (the OSS feeding alarms and performance data)"
        ),
    ],
    customer: Annotated[
        str | None, typer.Option(help="Customer id (for the customer role)")
    ] = None,
) -> None:
    """Create an API key. The token is printed once, alone on the last line."""

    try:
        with session_scope() as session:
            key, token = create_api_key(session, name, role, customer)
            key_id = key.id
    except TmfError as error:
        _fail(error)
    console.print(
        f"API key {key_id} ({name}, role {role}{', customer ' + customer if customer else ''})"
    )
    console.print("Keep this token now; it is not shown again:")
    print(token)


@apikey_app.command("revoke")
def apikey_revoke(key_id: str) -> None:
    """Revoke an API key (effective within the token cache time)."""

    try:
        with session_scope() as session:
            revoke_api_key(session, key_id)
    except TmfError as error:
        _fail(error)
    console.print(f"API key {key_id} revoked")


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[str, typer.Option(help="A staff role, or customer for a portal user")],
    customer: Annotated[
        str | None, typer.Option(help="Customer id (for the customer role)")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input")
    ] = False,
) -> None:
    """Create a user who signs in with a password (Argon2-hashed)."""

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope() as session:
            user = create_user(session, username, password, role, customer)
            user_id = user.id
    except TmfError as error:
        _fail(error)
    console.print(f"user {username} ({user_id}), role {role}")


@user_app.command("unlock")
def user_unlock(username: str) -> None:
    """Lift the lock a run of wrong passwords put on a user."""

    try:
        with session_scope() as session:
            unlock_user(session, username)
    except TmfError as error:
        _fail(error)
    console.print(f"user {username} unlocked")


@hub_app.command("deliver")
def hub_deliver() -> None:
    """Deliver the hub events that are due, once (the service also does this itself)."""

    total_ok = total_failed = 0
    with httpx.Client(timeout=5.0) as client:
        while True:
            ok, failed = deliver_due(http_poster(client))
            total_ok, total_failed = total_ok + ok, total_failed + failed
            if ok + failed == 0 or ok == 0:
                break
    console.print(f"delivered {total_ok}, failed (will retry) {total_failed}")


@app.command()
def demo() -> None:
    """Load the BMW Extranet scenario and tell its story (README, "Quick start"):
    campaign, request, feasibility, quote, order, activation, inventory, survey; then
    assurance: a month's QoS report with one SLA violated, a link failure and a PoP
    outage through the problem flows; then billing: two months billed, collected,
    dunned and disputed. The flows run in this process, and the customers' messages
    are sent at the end (ETOMCRM_MESSAGE_DIR, or ETOMCRM_SMTP_URL). The simulated
    network follows ETOMCRM_NETWORK_SEED: one seed, one story. A second run changes
    nothing and shows the story again."""

    upgrade()
    try:
        _tell_demo()
    except OperationalError as error:
        # On SQLite one writer at a time: a step that held the database longer than the
        # busy timeout (a loaded machine) fails another's. The flow that failed is on
        # the failed list; retried, the demo goes on where it stopped.
        console.print(
            f"[red]error:[/red] the database was busy ({error.orig}): 'etomcrm flow "
            "failed' names the flow that failed, 'etomcrm flow retry ID' runs it again; "
            "then run 'etomcrm demo' again, it goes on where it stopped",
            soft_wrap=True,
        )
        raise typer.Exit(code=2) from None
    _deliver_demo_messages()
    _print_demo_sign_ins()


def _print_demo_sign_ins() -> None:
    """The story's people as sign-ins for the pages, with their passwords."""
    with session_scope() as session:
        people = sign_ins.ensure_sign_ins(session)
    base = get_settings().public_base_url.rstrip("/")
    console.print(f"Sign in at {base}/ui/ (after 'etomcrm serve') as one of the story's people:")
    for person in people:
        console.print(f"  {person.username:<16} {person.password}  {person.name}", soft_wrap=True)


T = TypeVar("T")


def _told(part: Callable[[], T]) -> T:
    """One part of the story told; a refusal or a stalled flow ends the demo in one line."""
    try:
        return part()
    except TmfError as error:
        _fail(error)
    except story.StoryStalled as stalled:
        console.print(f"[red]error:[/red] {stalled}")
        raise typer.Exit(code=2) from stalled


def _tell_demo() -> None:
    try:
        run_demo(console)
        console.print("Telling the story: the flows run in this process ...")
        case = story.tell()
        summary, request_traces, campaign_traces = story.summarize(case)
    except TmfError as error:
        _fail(error)
    except story.StoryStalled as stalled:
        console.print(f"[red]error:[/red] {stalled}")
        raise typer.Exit(code=2) from stalled
    console.print(f"Request {case.request_id} → quote {case.quote_id} → order {case.order_id}")
    print_traces(request_traces)
    if campaign_traces:
        print_traces(campaign_traces)
    else:
        console.print(f"Campaign {case.campaign_id}: no flow of its own (3.3.1, 3.3.2 above).")
    story.print_summary(console, summary, case)
    console.print(
        "Assurance: a month measured, then two incidents; the flows run in this process ..."
    )
    told = _told(assurance_story.tell_assurance)
    print_traces(_in_time_order(told.traces))
    assurance_story.print_assurance(console, told)
    console.print(
        "Billing: two months billed, paid by direct debit and late by transfer, dunned, "
        "disputed; the flows run in this process ..."
    )
    billed = _told(billing_story.tell_billing)
    print_traces(_in_time_order(billed.traces))
    billing_story.print_billing(console, billed)
    # The analytical CRM's figures on the story's data (seed 5.3).
    analytics_story.print_analytics(console, _told(analytics_story.tell_analytics))


def _in_time_order(traces: list[Any]) -> list[Any]:
    """Flows by the time of their first step (a flow without steps last)."""
    latest = datetime.max.replace(tzinfo=UTC)
    return sorted(traces, key=lambda t: min((line.at for line in t.lines), default=latest))


def _deliver_demo_messages() -> None:
    """Send the story's messages now, as a running service would (files or SMTP), and
    say where they went and what is left."""
    sent = 0
    while (delivered := deliver_messages()) > 0:
        sent += delivered
    with session_scope(readonly=True) as session:
        states = dict(
            session.execute(
                select(CommunicationMessageRow.status, func.count()).group_by(
                    CommunicationMessageRow.status
                )
            ).all()
        )
    settings = get_settings()
    where = (
        f"by SMTP ({settings.smtp_url.split('@')[-1]})"
        if settings.smtp_url
        else f"as .eml files to {settings.message_dir}"
    )
    waiting, failed = states.get("initial", 0), states.get("failed", 0)
    console.print(
        f"Messages to customers: {sent} sent now {where}; "
        f"{states.get('completed', 0)} sent in all"
        + (
            f"; {waiting} wait for their scheduled time ('etomcrm serve' or "
            "'etomcrm worker' sends them then)"
            if waiting
            else ""
        )
        + (f"; {failed} failed (see their deliveryError)" if failed else ""),
        soft_wrap=True,
        highlight=False,
    )


# ----- analytical CRM (seed 5.3) ------------------------------------------------------


def _date_option(value: str | None, name: str, month: bool = False) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(f"{value}-01" if month else value)
    except ValueError:
        example = "2026-01" if month else "2026-01-31"
        console.print(f"[red]error:[/red] {name} must look like {example}, not {value!r}")
        raise typer.Exit(code=2) from None


def _report_out(rows: list[dict[str, Any]], title: str, csv_file: Path | None) -> None:
    if csv_file is not None:
        csv_file.write_text(csv_text(rows), encoding="utf-8")
        console.print(f"{len(rows) - 1} row(s) and the total written to {csv_file}")
        return
    table = Table(title=title)
    for column in rows[0] if rows else []:
        if column == "key":
            # The group's name whole; the figures fold onto more lines in a narrow terminal.
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, justify="right", overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


@analytics_app.command("rebuild")
def analytics_rebuild() -> None:
    """Empty the analytical store and derive it again from the operational tables
    (imported history stays)."""
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("rebuilding", total=len(analytics_store.PER_CUSTOMER))
        started = time.perf_counter()

        def told(table: str) -> None:
            progress.update(task, advance=1, description=table)

        with session_scope() as session:
            result = analytics_store.rebuild(session, told)
    rows = ", ".join(f"{name} {count}" for name, count in result.rows.items())
    console.print(f"rebuilt in {time.perf_counter() - started:.1f} s: {rows}")


@analytics_app.command("catch-up")
def analytics_catch_up() -> None:
    """Derive now what changed since the last catch-up (the schedule does it every
    minute in the process that runs the flows)."""
    taken = analytics_store.catch_up_all()
    typer.echo(f"{taken} change(s) derived again in the analytical store")


@analytics_app.command("import")
def analytics_import(
    file: Annotated[Path, typer.Argument(help="History CSV (README, 'Import of history')")],
) -> None:
    """Import a provider's history (customers, contracts, outcomes) from CSV: all rows or
    none; each bad row is named by its line number."""
    try:
        size = file.stat().st_size
        raw = file.open("rb")
        handle = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    except OSError as error:
        console.print(f"[red]error:[/red] cannot read {file}: {error.strerror}")
        raise typer.Exit(code=2) from None
    try:
        with handle, Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"checking {file.name}", total=size or None)

            def told(line: int) -> None:
                if line % 500 == 0:
                    progress.update(task, completed=raw.tell())

            with session_scope() as session:
                result = import_history(
                    session, handle, file_name=file.name, imported_by="cli", progress=told
                )
    except HistoryRefused as refused:
        for line, message in refused.errors:
            console.print(f"[red]line {line}:[/red] {message}", soft_wrap=True)
        console.print(f"[red]error:[/red] {len(refused.errors)} bad row(s); nothing imported")
        raise typer.Exit(code=2) from None
    except UnicodeDecodeError as error:
        console.print(f"[red]error:[/red] {file} is not UTF-8 (byte {error.start})")
        raise typer.Exit(code=2) from None
    console.print(
        f"imported {result.rows} row(s) as {result.import_id}; "
        f"{result.linked} linked to live customers"
    )


@analytics_app.command("contacts")
def analytics_contacts(
    by: Annotated[str, typer.Option(help="channel, reason, customer or total")] = "channel",
    start: Annotated[str | None, typer.Option("--from", help="First day, 2026-01-01")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, 2026-01-31")] = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer's contacts")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write CSV here")] = None,
) -> None:
    """3.2.3: contact volumes, response and handling times against the targets, and
    first-contact resolution."""
    first, last = _date_option(start, "--from"), _date_option(end, "--to")
    try:
        analytics_store.catch_up_all()
        with session_scope(readonly=True) as session:
            report = contact_statistics(session, by=by, start=first, end=last, customer_id=customer)
    except TmfError as error:
        _fail(error)
    rows = [g.as_row() for g in report.groups] + [report.total.as_row()]
    title = (
        f"Contacts by {report.grouping} (targets: response {report.response_target_minutes}"
        f" min, handling {report.handling_target_minutes} min)"
    )
    _report_out(rows, title, csv_file)


@analytics_app.command("profitability")
def analytics_profitability(
    by: Annotated[str, typer.Option(help="customer, segment, month or customerMonth")] = "customer",
    start: Annotated[str | None, typer.Option("--from", help="First month, 2026-01")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last month, 2026-03")] = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer")] = None,
    segment: Annotated[str | None, typer.Option(help="Only this segment")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write CSV here")] = None,
) -> None:
    """Customer profitability: billed revenue minus cost to serve (EUR, net)."""
    first, last = _date_option(start, "--from", True), _date_option(end, "--to", True)
    try:
        analytics_store.catch_up_all()
        with session_scope(readonly=True) as session:
            report = customer_profitability(
                session, by=by, start=first, end=last, customer_id=customer, segment=segment
            )
    except TmfError as error:
        _fail(error)
    rows = [g.as_row() for g in report.groups] + [report.total.as_row()]
    _report_out(rows, f"Profitability by {report.grouping} ({report.currency})", csv_file)


@churn_app.command("fit")
def churn_fit(
    folds: Annotated[int, typer.Option(help="Folds of the out-of-fold evaluation")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the folds' shuffle")] = 0,
) -> None:
    """Fit the churn model now on the imported and lived history, evaluate it out of
    fold and store it as the newest version."""
    try:
        with session_scope() as session:
            model = churn_model.fit(session, utcnow(), trained_by="cli", folds=folds, seed=seed)
            summary = churn_model.model_summary(model)
    except TmfError as error:
        _fail(error)
    _churn_show(summary)


def _churn_show(summary: dict[str, Any]) -> None:
    ev = summary["evaluation"]
    console.print(
        f"churn model v{summary['version']} fitted {summary['trainedAt']} on "
        f"{summary['customers']} customers ({summary['churned']} churned), "
        f"{ev['folds']} folds out of fold: AUC {ev['auc']:.3f}, Brier {ev['brier']:.4f}, "
        f"ECE {ev['ece']:.4f}, top-decile lift {ev['topDecileLift']:.2f}; "
        f"calibration {ev['calibration']}; {ev['verdict']}",
        soft_wrap=True,
    )
    if not summary["usable"]:
        console.print(f"not used for 3.9.3: {summary['notUsedBecause']}", soft_wrap=True)
    table = Table(title="Standardized coefficients (log-odds per standard deviation)")
    for column in ("feature", "coefficient", "mean", "scale"):
        table.add_column(column, justify="left" if column == "feature" else "right")
    for feature in sorted(summary["features"], key=lambda f: -abs(f["coefficient"])):
        table.add_row(
            feature["name"],
            f"{feature['coefficient']:+.3f}",
            f"{feature['mean']:.3f}",
            f"{feature['scale']:.3f}",
        )
    console.print(table)


@churn_app.command("show")
def churn_show() -> None:
    """The churn model in use: its evaluation and coefficients."""
    with session_scope(readonly=True) as session:
        model = churn_model.current_model(session)
        if model is None:
            console.print(
                "[red]error:[/red] no churn model fitted yet: etomcrm analytics churn fit"
            )
            raise typer.Exit(code=2)
        summary = churn_model.model_summary(model)
    _churn_show(summary)


@churn_app.command("scores")
def churn_scores(
    limit: Annotated[int, typer.Option(help="How many customers, highest score first")] = 20,
    offset: Annotated[int, typer.Option(help="Skip this many first")] = 0,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write CSV here")] = None,
) -> None:
    """The customers ranked by churn score, with the features that pushed each score."""
    try:
        with session_scope(readonly=True) as session:
            ranked = churn_model.ranking(session, utcnow(), offset=offset, limit=limit)
    except TmfError as error:
        _fail(error)
    rows = [r.as_csv_row() for r in ranked.rows]
    if csv_file is not None:
        csv_file.write_text(csv_text(rows), encoding="utf-8")
        console.print(f"{len(rows)} customer(s) of {ranked.total} written to {csv_file}")
        return
    table = Table(title=f"Churn scores ({ranked.total} customers)")
    for column in ("customerId", "name", "score", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["customerId"], row["name"], str(row["score"]), row["reason"])
    console.print(table)


# The columns of the campaign table in a terminal; the CSV carries every figure.
CAMPAIGN_COLUMNS = ("name", "leads", "won", "billedRevenue", "costPerLead", "uplift", "95 % CI")


@analytics_app.command("campaigns")
def analytics_campaigns(
    campaign: Annotated[str | None, typer.Option(help="Only this campaign")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write CSV here")] = None,
) -> None:
    """Campaign success: responses, leads, wins, billed revenue attributed, cost per lead
    and per won customer, conversion of treated and control with the uplift and its 95 %
    interval (Newcombe). The table shows the main figures, the CSV all of them."""
    try:
        with session_scope(readonly=True) as session:
            rows = [r.as_row() for r in campaign_success(session, campaign)]
    except TmfError as error:
        _fail(error)
    if csv_file is not None:
        csv_file.write_text(csv_text(rows), encoding="utf-8")
        console.print(f"{len(rows)} campaign(s) written to {csv_file}")
        return
    table = Table(title="Campaign success (EUR; uplift: treated minus control conversion)")
    for column in CAMPAIGN_COLUMNS:
        if column == "95 % CI":
            table.add_column(column, no_wrap=True)
        elif column == "name":
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, justify="right", overflow="fold")
    for row in rows:
        interval = (
            "no control group"
            if row["uplift"] is None
            else f"[{row['upliftLower95']}, {row['upliftUpper95']}]"
        )
        cells = [row["name"], row["leads"], row["won"], row["billedRevenue"], row["costPerLead"]]
        cells += [row["uplift"], interval]
        table.add_row(*("" if v is None else str(v) for v in cells))
    console.print(table)


@analytics_app.command("plan")
def analytics_plan(
    segment: Annotated[str, typer.Option(help="The segment, as the store computed it")],
    score: Annotated[str, typer.Option(help="churn or upsell")] = "churn",
    threshold: Annotated[int, typer.Option(help="Lowest score picked, 0-100")] = 70,
    control_share: Annotated[float, typer.Option(help="Share set aside, 0-0.5")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Seed of the control draw")] = None,
    campaign: Annotated[str | None, typer.Option(help="Make it this campaign's targets")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write the targets here")] = None,
) -> None:
    """Campaign planning: the target list of a segment by churn or upsell score, with
    the control group set aside and the responses to expect."""
    try:
        with session_scope() as session:
            plan = plan_campaign(
                session,
                SYSTEM,
                segment=segment,
                score_kind=score,
                threshold=threshold,
                control_share=control_share,
                seed=seed,
                today=utcnow().date(),
                campaign_id=campaign,
            ).as_dict()
    except TmfError as error:
        _fail(error)
    console.print(
        f"{plan['targetCount']} target(s) of {plan['candidates']} in {plan['segment']} "
        f"({plan['unscored']} without a score): {plan['treatedCount']} treated, "
        f"{plan['controlCount']} control (seed {plan['seed']}); expected responses "
        f"{plan['expectedResponses']} at the {plan['responseRateBasis']} rate "
        f"{plan['responseRate']}",
        soft_wrap=True,
        highlight=False,
    )
    _rows_out(plan["targets"], "Targets", csv_file)


def _rows_out(rows: list[dict[str, Any]], title: str, csv_file: Path | None) -> None:
    """Rows as a table, or written to ``csv_file`` as CSV."""
    if csv_file is not None:
        csv_file.write_text(csv_text(rows), encoding="utf-8")
        console.print(f"{len(rows)} row(s) written to {csv_file}")
        return
    table = Table(title=title)
    for n, column in enumerate(rows[0] if rows else []):
        table.add_column(column, no_wrap=n == 0, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


@analytics_app.command("segments")
def analytics_segments(
    segment: Annotated[
        str | None, typer.Option(help="Show this segment's customers instead")
    ] = None,
    offset: Annotated[int, typer.Option(help="Customers to skip")] = 0,
    limit: Annotated[int, typer.Option(help="Customers to show, at most 200")] = 50,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write CSV here")] = None,
) -> None:
    """3.9.2: the computed segments with their customers and figures per month, or the
    customers of one segment."""
    try:
        with session_scope(readonly=True) as session:
            if segment is None:
                overview = segment_overview(session)
                rows = [s.as_row() for s in overview.segments]
                title = f"Segments over {overview.first_month} to {overview.last_month}"
            else:
                page = segment_members(session, segment, offset=offset, limit=limit)
                rows = [m.as_row() for m in page.members]
                title = f"{segment}: customers {offset + 1}-{offset + len(rows)} of {page.total}"
    except TmfError as error:
        _fail(error)
    _rows_out(rows, title, csv_file)


@analytics_app.command("trends")
def analytics_trends(
    segment: Annotated[str | None, typer.Option(help="Only this segment")] = None,
    metric: Annotated[str | None, typer.Option(help="revenue, usage or contacts")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write CSV here")] = None,
) -> None:
    """3.9.2: revenue, usage and contacts per segment and month; standout marks the
    changes beyond k robust standard deviations of the segment's earlier changes."""
    try:
        with session_scope(readonly=True) as session:
            report = segment_trends(session, segment=segment, metric=metric)
    except TmfError as error:
        _fail(error)
    title = f"Trends per segment up to {report.last_month} (standout beyond {report.k} sd)"
    _rows_out(report.rows(), title, csv_file)


@analytics_app.command("forecast")
def analytics_forecast(
    segment: Annotated[str | None, typer.Option(help="Only this segment")] = None,
    metric: Annotated[str | None, typer.Option(help="revenue or usage")] = None,
    months: Annotated[int, typer.Option(help="Months ahead, 1 to 12")] = 3,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write CSV here")] = None,
) -> None:
    """Revenue and usage per segment for the next months, with 95 % prediction
    intervals (a linear trend; too short a history gets none, and says why)."""
    try:
        with session_scope(readonly=True) as session:
            report = segment_forecasts(session, segment=segment, metric=metric, horizon=months)
    except TmfError as error:
        _fail(error)
    _rows_out(report.rows(), f"Forecast after {report.last_month}: {report.method}", csv_file)


# ----- 3.9.4 customer profiles and next best offers ------------------------------------


def _table(title: str, rows: list[dict[str, Any]], columns: dict[str, str]) -> None:
    """``columns`` (key: header) of ``rows`` as a table; figures right-aligned and never
    broken; short headers so that the names keep their room in 80 columns."""
    if not rows:
        _say(f"{title}: none")
        return
    table = Table(title=title, title_justify="left")
    for key, header in columns.items():
        figure = any(isinstance(r.get(key), int | float) for r in rows)
        table.add_column(header, justify="right" if figure else "left", no_wrap=figure)
    for row in rows:
        # Text, not markup: a customer's or a site's name may hold "[...]".
        table.add_row(*(Text("" if row.get(c) is None else _cell(row[c])) for c in columns))
    console.print(table)


def _say(text: str) -> None:
    # A sentence on one line (soft_wrap): whole when piped or searched, never folded.
    console.print(text, soft_wrap=True, highlight=False, markup=False)


def _cell(value: Any) -> str:
    # Money and probabilities as the pages show them; the rest as they come.
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


@analytics_app.command("profile")
def analytics_profile(
    customer_id: Annotated[str, typer.Argument(help="The customer's id")],
) -> None:
    """3.9.4: a customer's needs, preferences, value, risk, products, contacts and the
    next best offers ranked by expected value, each explained (as the API's
    customerProfile and the page /ui/customers/{id}/profile)."""
    try:
        with session_scope(readonly=True) as session:
            profile = customer_profile(session, SYSTEM, customer_id, now=utcnow()).as_json()
    except TmfError as error:
        _fail(error)
    who = profile["customer"]
    _say(f"{who['name']} ({who['id']}), {who['status']}, segment {who['segment']}")
    _table("Needs", profile["needs"], {"need": "need", "site": "site", "evidence": "evidence"})
    likes = profile["preferences"]
    channels = ", ".join(f"{c['channel']} {c['contacts']}" for c in likes["contactsByChannel"])
    _say(
        f"Preferences: channel {likes['contactChannel'] or '-'} ({channels or 'no contacts'}), "
        f"language {likes['language'] or '-'}, bills by {', '.join(likes['billDelivery']) or '-'}"
    )
    value = profile["value"]
    _say(
        f"Value {value['from']} to {value['to']} ({value['currency']}): revenue "
        f"{value['revenue']}, cost to serve {value['costToServe']}, profit {value['profit']}"
    )
    risk = profile["risk"]
    if risk is None:
        _say("Risk: not assessed yet")
    else:
        _say(
            f"Risk (assessed {risk['assessedAt']}): churn {risk['churnScore']} "
            f"({risk['churnLevel']}), bad debt {risk['badDebtScore']} ({risk['badDebtLevel']})"
            + (f"; {'; '.join(str(r) for r in risk['reasons'])}" if risk["reasons"] else "")
        )
    products = [{**p, "startDate": (p["startDate"] or "")[:10]} for p in profile["products"]]
    _table(
        "Products",
        products,
        {"name": "product", "site": "site", "startDate": "start", "contractEnd": "contract end"},
    )
    contacts = [{**c, "date": c["date"][:16]} for c in profile["contacts"]]
    _table(
        "Latest contacts",
        contacts,
        {"date": "date", "channel": "channel", "reason": "reason", "status": "status"},
    )
    offers = [offer_summary(item) for item in profile["nextBestOffers"]]
    _table(
        "Next best offers by expected value (EUR)",
        offers,
        {
            "rank": "#",
            "offer": "offer",
            "site": "site",
            "expectedValue": "expected value",
            "acceptanceProbability": "P(accept)",
            "marginOverTerm": "margin over term",
        },
    )
    for offer in offers:
        _say(f"{offer['rank']}. why: {offer['why']}")
        _say(f"   why now: {offer['whyNow'] or '-'}")
        _say(f"   expected value: {offer['explanation']}")


@analytics_app.command("offers")
def analytics_offers(
    offset: Annotated[int, typer.Option(help="Customers to skip")] = 0,
    limit: Annotated[int, typer.Option(help="Customers to show, at most 200")] = 50,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write all customers as CSV here")
    ] = None,
) -> None:
    """3.9.4: each customer with the top item of its latest next best offer and its
    expected value, highest first; --csv writes every customer (as the API's
    nextBestOffers?format=csv)."""
    try:
        with session_scope(readonly=True) as session:
            overview = offer_overview(
                session,
                SYSTEM,
                offset=0 if csv_file else offset,
                limit=None if csv_file else limit,
            )
    except TmfError as error:
        _fail(error)
    rows = [r.as_row() for r in overview.rows]
    if csv_file is not None:
        csv_file.write_text(csv_text(rows), encoding="utf-8")
        console.print(f"{len(rows)} customer(s) written to {csv_file}")
        return
    _table(
        f"Next best offers: customers {offset + 1}-{offset + len(rows)} of {overview.total}",
        rows,
        {
            "customer": "customer",
            "offer": "top offer",
            "site": "site",
            "expectedValue": "expected value",
            "acceptanceProbability": "P(accept)",
        },
    )
