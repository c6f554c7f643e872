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
from pathlib import Path
from typing import Any

from dbos import DBOS, DBOSClient, DBOSConfig

import etomcrm
from etomcrm.config import get_settings

QUEUE_NAME = "etomcrm-flows"
SCHEDULE_NAMES = ("etomcrm-alarm-correlation", "etomcrm-ticket-sweep", "etomcrm-monthly-qos")
# Flows are started by name, so a process that only enqueues needs none of their code.
APP_NAME = "etomcrm"

_lock = threading.Lock()
_launched_for: str | None = None
_client: DBOSClient | None = None
_client_for: str | None = None


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
    # Every resource kind must be registered (flows check references across areas),
    # and the flow definitions register themselves with DBOS on import.
    import etomcrm.api.app
    from etomcrm.flows import assurance, fulfillment, qos, sla_violation  # noqa: F401

    url = system_database_url(database_url)
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
        if not schedules:
            # Schedules live in the system database: one saved by an earlier launch
            # would go on firing here.
            for name in SCHEDULE_NAMES:
                with contextlib.suppress(Exception):
                    DBOS.delete_schedule(name)
        if schedules:
            # Alarm correlation (3.6.1) every 30 s, in whichever flow process is up.
            DBOS.apply_schedules(
                [
                    {
                        "schedule_name": "etomcrm-alarm-correlation",
                        "workflow_fn": assurance.correlation_tick,
                        "schedule": assurance.SCHEDULE,
                    },
                    # Every ticket's targets warned and escalated, silent ones
                    # closed (3.6.3, 3.6.4), every minute.
                    {
                        "schedule_name": "etomcrm-ticket-sweep",
                        "workflow_fn": assurance.ticket_sweep_tick,
                        "schedule": assurance.TICKET_SWEEP_SCHEDULE,
                    },
                    # Last month's QoS assessment, violations and reports (3.7).
                    {
                        "schedule_name": "etomcrm-monthly-qos",
                        "workflow_fn": qos.qos_tick,
                        "schedule": qos.SCHEDULE,
                    },
                ]
            )
        _launched_for = url
    from etomcrm.flows.failures import sweep_failed_flows

    try:
        # A flow that failed while no one could record it (a crash) is marked now.
        sweep_failed_flows()
    except Exception:
        logging.getLogger(__name__).exception("could not sweep the failed flows")


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
        from dbos import SetWorkflowID

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


def send(workflow_id: str, message: Any, topic: str) -> None:
    """Wake a flow waiting in ``DBOS.recv(topic)``."""
    if is_running():
        DBOS.send(workflow_id, message, topic)
    else:
        client().send(workflow_id, message, topic)


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


def notify_quote_decision(quote_id: str, state: str) -> None:
    """Wake the customer's open pre-sale flow with a quote decision. Runs after the
    decision committed and never raises: without a waiting flow there is nothing to do."""
    from etomcrm.db import session_scope
    from etomcrm.flows.recorder import open_presale_flow_of_customer
    from etomcrm.selling.models import QuoteRow

    try:
        with session_scope() as session:
            quote = session.get(QuoteRow, quote_id)
            if quote is None or quote.owner_customer_id is None:
                return
            workflow_id = open_presale_flow_of_customer(session, quote.owner_customer_id)
        if workflow_id is not None:
            send(workflow_id, {"quote": quote_id, "state": state}, "quote")
    except Exception:
        logging.getLogger(__name__).exception("could not wake the pre-sale flow of %s", quote_id)


def _registered(workflow_name: str) -> Any:
    from etomcrm.flows import fulfillment

    return fulfillment.WORKFLOWS[workflow_name]
