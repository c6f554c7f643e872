"""Waiting in tests for what the flows do in the background."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from dbos import DBOS
from fastapi.testclient import TestClient

PROCESS_FLOWS = "/tmf-api/processFlowManagement/v4/processFlow"

T = TypeVar("T")


def until(check: Callable[[], T], seconds: float = 120) -> T:
    """``check()`` every 0.2 s until it gives something truthy or ``seconds`` pass; its
    last value either way, for the caller to assert on (and show)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def flow_in_state(
    client: TestClient, headers: dict[str, str], workflow_id: str, state: str
) -> dict[str, Any] | None:
    """The process flow (TMF701) when it is in ``state``, else None (not begun, or in
    another state)."""
    response = client.get(f"{PROCESS_FLOWS}/{workflow_id}", headers=headers)
    if response.status_code == 200 and response.json()["state"] == state:
        return response.json()  # type: ignore[no-any-return]
    return None


def runs_of(workflow_id: str) -> list[str]:
    """DBOS's runs of a flow id, by status: a flow started twice under one id runs once
    (``["SUCCESS"]``), a flow never started has none. Asked of DBOS, not of the clock."""
    return [run.status for run in DBOS.list_workflows(workflow_ids=[workflow_id])]
