"""A new user's first commands (issue 12): one line saying what to run, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etomcrm.cli import app as cli
from etomcrm.config import get_settings


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
    assert len(output.splitlines()) <= 2
    assert not (tmp_path / "etomcrm.db").exists()


def test_a_database_without_the_schema_says_what_to_run(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an SQLite file that exists but was never upgraded
    empty = tmp_path / "empty.db"
    empty.touch()
    monkeypatch.setenv("ETOMCRM_DATABASE_URL", f"sqlite:///{empty}")
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["flow", "failed"], terminal_width=200)
    assert result.exit_code == 2
    assert "has no etomcrm schema: run 'etomcrm db upgrade' first" in result.output


def test_help_names_the_database_setting_and_explains_the_options(tmp_path: Path) -> None:
    top = _etomcrm(tmp_path, "--help").stdout
    assert "ETOMCRM_DATABASE_URL" in top and "db upgrade" in top
    serve = " ".join(_etomcrm(tmp_path, "serve", "--help").stdout.split())
    assert "API processes" in serve
    worker = " ".join(_etomcrm(tmp_path, "worker", "--help").stdout.split())
    assert "0 takes the setting" in worker
    demo = _etomcrm(tmp_path, "demo", "--help").stdout
    assert "issue" not in demo and "DESIGN.md" not in demo
