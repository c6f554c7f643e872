"""A new user's first commands (issue 12): one line saying what to run, not a traceback;
a trace that takes every id it prints, its steps in time order."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from etomcrm.cli import app as cli
from etomcrm.config import get_settings
from etomcrm.db import session_scope
from etomcrm.flows import billing as billing_flow
from etomcrm.flows import recorder
from tests.conftest import PG_SERVER, _admin_connection


def _etomcrm(cwd: Path, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "COLUMNS": "200"}
    if url:
        env["ETOMCRM_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "etomcrm", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_command_before_db_upgrade_says_what_to_run_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    # when a new user lists failed flows in an empty directory
    result = _etomcrm(tmp_path, "flow", "failed")
    # then one line tells what to run, and no empty database file is left behind
    assert result.returncode == 2
    output = (result.stdout + result.stderr).strip()
    assert "Traceback" not in output
    assert "run 'etomcrm db upgrade' first" in " ".join(output.split())
    assert len(output.splitlines()) == 1
    assert not (tmp_path / "etomcrm.db").exists()


@pytest.fixture
def never_upgraded(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of the same kind as ``db_url`` that exists but never saw 'db upgrade'."""
    if db_url.startswith("sqlite"):
        empty = tmp_path / "empty.db"
        empty.touch()
        yield f"sqlite:///{empty}"
        return
    name = f"etomcrm_never_upgraded_{os.getpid()}"
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{PG_SERVER}/{name}"
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_database_without_the_schema_says_what_to_run(
    never_upgraded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a database (SQLite or PostgreSQL) that exists but was never upgraded
    monkeypatch.setenv("ETOMCRM_DATABASE_URL", never_upgraded)
    get_settings.cache_clear()
    # when a command runs on it
    result = CliRunner().invoke(cli, ["flow", "failed"], terminal_width=80)
    # then one line, however narrow the terminal, says what to run
    assert result.exit_code == 2
    assert "has no etomcrm schema: run 'etomcrm db upgrade' first" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_help_names_the_database_setting_and_explains_the_options(tmp_path: Path) -> None:
    top = _etomcrm(tmp_path, "--help").stdout
    assert "ETOMCRM_DATABASE_URL" in top and "db upgrade" in top
    serve = " ".join(_etomcrm(tmp_path, "serve", "--help").stdout.split())
    assert "API processes" in serve
    worker = " ".join(_etomcrm(tmp_path, "worker", "--help").stdout.split())
    assert "0 takes the setting" in worker
    demo = _etomcrm(tmp_path, "demo", "--help").stdout
    assert "issue" not in demo and "DESIGN.md" not in demo


def _trace(case_id: str) -> Result:
    return CliRunner().invoke(cli, ["trace", case_id], terminal_width=200)


def _times(output: str) -> list[list[str]]:
    """The times of each table's rows, table by table."""
    tables: list[list[str]] = []
    for line in output.splitlines():
        if line.startswith("┏"):
            tables.append([])
        found = re.match(r"│ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) │", line)
        if found and tables:
            tables[-1].append(found.group(1))
    return tables


def test_trace_prints_a_flows_steps_in_the_order_they_happened(db_url: str) -> None:
    # given a flow whose person's step was recorded after a later step of the system
    # (a person's step carries the time it was taken)
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with session_scope() as session:
        recorder.start_flow(
            session,
            workflow_id="presale-case-1",
            flow="presale",
            case_id="case-1",
            case_type="CustomerRequest",
            customer_id=None,
            description="a case",
        )
        for key, minutes, outcome in (("a", 0, "first"), ("c", 20, "third"), ("b", 10, "second")):
            recorder.record_task(
                session,
                "presale-case-1",
                key,
                recorder.Task(
                    "3.4.3", "Negotiate the sale", outcome, at=at + timedelta(minutes=minutes)
                ),
            )
    # when its trace is printed
    result = _trace("case-1")
    # then the steps come in time order
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if "Negotiate" in line][1].count("second")
    (times,) = _times(result.output)
    assert times == sorted(times) and len(times) == 3


def test_trace_accepts_every_id_it_prints(db_url: str, flows: None) -> None:
    # given a bill run (no account due) that ran in this process
    workflow_id = billing_flow.start_bill_run("2026-10")
    billing_flow.wait_for_bill_run(workflow_id, "2026-10")
    # when its trace is asked for by the id `etomcrm billing run` prints
    result = _trace(workflow_id)
    # then it is shown, and every flow id the trace prints is accepted too
    assert result.exit_code == 0, result.output
    printed = re.findall(r"^\S+ (\S+) \((?:completed|active|failed)\)", result.output, re.M)
    assert workflow_id in printed
    for flow_id in printed:
        again = _trace(flow_id)
        assert again.exit_code == 0, (flow_id, again.output)
    # and an id no flow knows is one line saying so
    unknown = _trace("violation-000")
    assert unknown.exit_code == 2
    assert unknown.output.strip() == "error: no flow has run for violation-000"
