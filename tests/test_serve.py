"""``etomcrm serve`` runs the real HTTP service with workers, as an operator starts it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.factories import CUSTOMER
from tests.polling import until


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _wait_until_healthy(port: int, log: Path) -> None:
    """Until the server started in another process answers /health (its log shown if it
    never does), by the project's poller."""
    assert until(lambda: _healthy(port), seconds=60), log.read_text()


def _etomcrm(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "etomcrm", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_serve_with_two_workers_answers_authenticated_requests(db_url: str, tmp_path: Path) -> None:
    # given a database with an API key, created with the CLI
    env = {**os.environ, "ETOMCRM_DATABASE_URL": db_url}
    token = _etomcrm("apikey", "create", "ops", "--role", "admin", env=env).strip().splitlines()[-1]
    port = _free_port()
    # when the service is started with two workers
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etomcrm",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "serve.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(port, tmp_path / "serve.log")
        headers = {"Authorization": f"Bearer {token}"}
        # then it serves the OpenAPI document, refuses anonymous calls and serves the API
        assert (
            "/tmf-api/customerManagement/v4/customer"
            in httpx.get(f"{base}/openapi.json").json()["paths"]
        )
        assert httpx.get(f"{base}{CUSTOMER}/customer").status_code == 401
        for _ in range(6):  # several requests, so both workers answer some
            response = httpx.get(f"{base}{CUSTOMER}/customer", headers=headers)
            assert response.status_code == 200
            assert response.headers["X-Total-Count"] == "0"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _children(pid: int) -> list[str]:
    """The command lines of the processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # (the command name in parentheses may hold spaces: the parent follows its ")")
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(cmdline)
    return found


def test_serve_starts_the_flow_workers_asked_for_on_postgresql(db_url: str, tmp_path: Path) -> None:
    # given a database
    env = {**os.environ, "ETOMCRM_DATABASE_URL": db_url}
    port = _free_port()

    # when the service is started with three flow workers
    server = subprocess.Popen(
        [sys.executable, "-m", "etomcrm", "serve", "--port", str(port), "--flow-workers", "3"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "serve.log").open("w"),
    )
    try:
        _wait_until_healthy(port, tmp_path / "serve.log")
        workers = sorted(
            c.split("--executor-id ")[1].strip()
            for c in _children(server.pid)
            if " etomcrm worker " in f" {c} "
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

    # then on PostgreSQL three worker processes run beside the API, each with its own
    # stable executor id; on SQLite (one writer) the serving process runs the flows itself
    if db_url.startswith("postgresql"):
        assert workers == ["serve-flows", "serve-flows-2", "serve-flows-3"]
    else:
        assert workers == []
