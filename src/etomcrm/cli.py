"""The ``etomcrm`` command line."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from etomcrm.config import get_settings
from etomcrm.core.errors import TmfError
from etomcrm.db import session_scope

app = typer.Typer(help="etomcrm: CRM for telecom and IT service providers.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for machine clients.", no_args_is_help=True)
user_app = typer.Typer(help="Staff and portal users.", no_args_is_help=True)
hub_app = typer.Typer(help="TMF hub event delivery.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
app.add_typer(user_app, name="user")
app.add_typer(hub_app, name="hub")
console = Console()


def _fail(error: TmfError) -> None:
    console.print(f"[red]error:[/red] {error.message}")
    raise typer.Exit(code=2)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the schema migrations (Alembic) to ETOMCRM_DATABASE_URL."""
    from etomcrm.migrate import upgrade

    upgrade(revision=revision)
    console.print(f"database at {revision}: {get_settings().database_url.split('@')[-1]}")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request")] = True,
) -> None:
    """Run the HTTP service (every TMF API, OpenAPI document at /openapi.json)."""
    import uvicorn

    from etomcrm.migrate import upgrade

    upgrade()
    uvicorn.run(
        "etomcrm.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
    )


@apikey_app.command("create")
def apikey_create(
    name: str,
    role: Annotated[
        str,
        typer.Option(
            help="admin, sales, order_manager, support, sla_manager, billing, marketing, "
            "analyst or customer"
        ),
    ],
    customer: Annotated[
        str | None, typer.Option(help="Customer id (for the customer role)")
    ] = None,
) -> None:
    """Create an API key. The token is printed once, alone on the last line."""
    from etomcrm.security.service import create_api_key

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
    from etomcrm.security.service import revoke_api_key

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
    from etomcrm.security.service import create_user

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


@hub_app.command("deliver")
def hub_deliver() -> None:
    """Deliver the hub events that are due, once (the service also does this itself)."""
    import httpx

    from etomcrm.core.events import deliver_due, http_poster

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
    """Load the BMW Extranet scenario (DESIGN.md section 5) and show what it holds."""
    from etomcrm.demo.scenario import run_demo
    from etomcrm.migrate import upgrade

    upgrade()
    try:
        run_demo(console)
    except TmfError as error:
        _fail(error)
