"""DBOS, configured once per process: where flows are started, woken and run.

Two shapes (DESIGN.md section 3): in the embedded default one process serves the API
and runs the flows; in production API processes only enqueue flows and signal them,
and ``etomcrm worker`` processes run them. Every process that runs flows has its own
executor id, so that a restarted worker recovers its own unfinished flows and nobody
else's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbos import DBOS, DBOSClient, DBOSConfig, SetWorkflowID
from dbos._error import DBOSNonExistentWorkflowError

import etomcrm
from etomcrm.config import get_settings
from etomcrm.db import private_sqlite_file
from etomcrm.flows.framework import LANE_QUEUE, WORKFLOWS

QUEUE_NAME = "etomcrm-flows"
# Flows are started by name, so a process that only enqueues needs none of their code.
APP_NAME = "etomcrm"

_lock = threading.Lock()
_launched_for: str | None = None
_client: DBOSClient | None = None
_client_for: str | None = None
# Schedules the composition root put here: name, workflow, crontab.
SCHEDULES: list[tuple[str, Callable[..., Any], str]] = []


# What a process does once it runs flows (wired by the composition root): e.g. mark the
# flows that failed while no one could record it (a crash).
ON_LAUNCH: list[Callable[[], Any]] = []


def register_schedule(name: str, workflow: Callable[..., Any], crontab: str) -> None:
    if all(existing != name for existing, _, _ in SCHEDULES):
        SCHEDULES.append((name, workflow, crontab))


def system_database_url(database_url: str | None = None) -> str:
    """Where DBOS keeps its checkpoints: a SQLite file beside the application database,
    or the same PostgreSQL database (schema ``dbos``)."""
    settings = get_settings()
    if settings.flows_system_database_url:
        return settings.flows_system_database_url
    url = database_url or settings.database_url
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        return f"sqlite:///{path.with_name(path.stem + '-flows.db')}"
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def executor_id() -> str:
    settings = get_settings()
    return settings.flows_executor_id or os.environ.get("DBOS__VMID") or "local"


def is_running() -> bool:
    """True when this process runs flows (DBOS launched here)."""
    return _launched_for is not None


def launch(
    database_url: str | None = None, *, concurrency: int | None = None, schedules: bool = True
) -> None:
    """Run flows in this process: recover this executor's unfinished ones, then take
    new ones from the queue."""
    global _launched_for
    if not WORKFLOWS:
        raise RuntimeError("no flow is registered: call etomcrm.bootstrap.bootstrap() first")
    url = system_database_url(database_url)
    if url.startswith("sqlite"):
        # The checkpoints hold the steps' results, customer data among them.
        private_sqlite_file(url)
    with _lock:
        if _launched_for == url:
            return
        if _launched_for is not None:
            shutdown()
        settings = get_settings()
        dbos_log = logging.getLogger("dbos")
        dbos_log.setLevel(logging.WARNING)
        # DBOS's console handler keeps the stderr of the moment dbos was imported; a
        # process that swapped stderr since (a test runner, a CLI harness) may have
        # closed that one.
        for handler in dbos_log.handlers:
            console = handler.name == "__dbos_console_log_handler__"
            if console and isinstance(handler, logging.StreamHandler):
                # Not setStream: it flushes the old stream first, which may be closed.
                handler.stream = sys.stderr
        config: DBOSConfig = {
            "name": APP_NAME,
            "system_database_url": url,
            "executor_id": executor_id(),
            "application_version": etomcrm.__version__,
            "log_level": "WARNING",
            "notification_listener_polling_interval_sec": 0.05,
        }
        DBOS(config=config)
        DBOS.launch()
        DBOS.register_queue(
            QUEUE_NAME,
            worker_concurrency=concurrency or settings.flows_worker_concurrency,
            polling_interval_sec=0.1,
            on_conflict="always_update",
        )
        DBOS.register_queue(
            LANE_QUEUE, worker_concurrency=1, polling_interval_sec=0.1, on_conflict="always_update"
        )
        if not schedules:
            # Schedules live in the system database: one saved by an earlier launch
            # would go on firing here.
            for name, _, _ in SCHEDULES:
                with contextlib.suppress(Exception):
                    DBOS.delete_schedule(name)
        else:
            DBOS.apply_schedules(
                [
                    {"schedule_name": name, "workflow_fn": workflow, "schedule": crontab}
                    for name, workflow, crontab in SCHEDULES
                ]
            )
        _launched_for = url
    for sweep in ON_LAUNCH:
        try:
            sweep()
        except Exception:
            logging.getLogger(__name__).exception("%s failed at launch", sweep.__name__)


def shutdown() -> None:
    global _launched_for
    if _launched_for is not None:
        DBOS.destroy(workflow_completion_timeout_sec=0)
        _launched_for = None


def client(database_url: str | None = None) -> DBOSClient:
    """For processes that only enqueue and signal flows."""
    global _client, _client_for
    url = system_database_url(database_url)
    with _lock:
        if _client is None or _client_for != url:
            _client = DBOSClient(system_database_url=url, application_name=APP_NAME)
            _client_for = url
        return _client


def enqueue(workflow_name: str, workflow_id: str, *args: Any) -> None:
    """Start a flow once: a second call with the same id attaches to the first run."""
    if is_running():
        queue = DBOS.retrieve_queue(QUEUE_NAME)
        if queue is None:
            raise RuntimeError(f"the flow queue {QUEUE_NAME} is not registered")
        with SetWorkflowID(workflow_id):
            queue.enqueue(_registered(workflow_name), *args)
        return
    client().enqueue(
        {
            "queue_name": QUEUE_NAME,
            "workflow_name": workflow_name,
            "workflow_id": workflow_id,
            "app_version": etomcrm.__version__,
        },
        *args,
    )


def send(workflow_id: str, message: Any, topic: str) -> bool:
    """Wake a flow waiting in ``DBOS.recv(topic)``. False when no flow runs under that
    id (a service problem staff or SLA management raised has none): nobody to wake."""
    try:
        if is_running():
            DBOS.send(workflow_id, message, topic)
        else:
            client().send(workflow_id, message, topic)
    except DBOSNonExistentWorkflowError:
        return False
    return True


def _api() -> Any:
    """DBOS itself where this process runs flows, else the client: the same calls."""
    return DBOS if is_running() else client()


def failed_workflows() -> list[tuple[str, str]]:
    """(workflow id, error) of every flow run that ended in an error."""
    return [
        (w.workflow_id, str(w.error) if w.error is not None else "the flow raised an error")
        for w in _api().list_workflows(status="ERROR", load_input=False)
    ]


def workflow_state(workflow_id: str) -> str | None:
    """DBOS's status of a flow run (PENDING, ERROR, SUCCESS, ...), None if unknown."""
    found = _api().list_workflows(workflow_ids=[workflow_id], load_input=False, load_output=False)
    return str(found[0].status) if found else None


def rewind_to_failure(workflow_id: str) -> int:
    """Run a failed flow again from the step that failed, under the same id (DBOS
    ``rewind_workflow``): the steps before it keep their checkpoints (the messages the
    flow received, the time it slept), the failed step and what follows run anew on the
    flow queue. Returns the step number it resumes at."""
    api = _api()
    steps = api.list_workflow_steps(workflow_id)
    failed = [s["function_id"] for s in steps if s["error"] is not None]
    # Without a failed step the flow's own code raised after its last step.
    start = failed[0] if failed else max((s["function_id"] for s in steps), default=0) + 1
    api.rewind_workflow(workflow_id, start_step=max(start, 1), queue_name=QUEUE_NAME)
    return int(start)


def _registered(workflow_name: str) -> Any:
    try:
        return WORKFLOWS[workflow_name]
    except KeyError:
        raise RuntimeError(f"no flow is registered as {workflow_name!r}") from None
