"""The flow framework: steps, runners and waits, once for every flow.

A flow is a plain function of a :class:`Runner`. The durable runner makes every step a
DBOS step and every wait a DBOS durable sleep or message wait; the plain runner calls
the same steps as ordinary functions (the benchmark compares the two). Flows are put
under their names by the composition root (:func:`register_flow`), and started by name.

A step is one meaningful unit of work: it opens a transaction, does its effect, records
what it did (TMF701 task flows, with seed numbers) and commits. Its record's id is
derived from (workflow, step), so a step that DBOS runs again after a crash finds its
record and repeats nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from dbos import DBOS, SetWorkflowID

from etomcrm.core.errors import TmfError
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.db import session_scope, utcnow
from etomcrm.flows import recorder
from etomcrm.flows.recorder import Task

# The queue of flows started apart (:meth:`Runner.then`): a bill run's lanes. Each worker
# process runs one of them at a time, so that parallel lanes are parallel processes
# (threads of one process share one core for Python's work).
LANE_QUEUE = "etomcrm-lanes"

__all__ = [
    "PLAIN_FLOWS",
    "STEP_SEEDS",
    "WORKFLOWS",
    "DurableRunner",
    "PlainRunner",
    "Runner",
    "StepResult",
    "durable",
    "look_until",
    "register_flow",
    "run_step",
    "step",
    "when",
]

log = logging.getLogger(__name__)

# Flow name → the flow as a plain function, and as the DBOS workflow that runs it.
PLAIN_FLOWS: dict[str, Callable[..., str]] = {}
WORKFLOWS: dict[str, Callable[..., str]] = {}
# Step name → the process it serves, for the record of its failure (a step's tasks name
# their seed numbers only when it succeeds); the composition root fills it.
STEP_SEEDS: dict[str, str] = {}


def register_flow(name: str, flow: Callable[..., str]) -> Callable[..., str]:
    """Put ``flow`` under ``name``, plain and durable; returns the DBOS workflow.
    Called by the composition root, once per process."""
    if name not in WORKFLOWS:
        PLAIN_FLOWS[name] = flow
        WORKFLOWS[name] = DBOS.workflow(name=name)(durable(flow))
    return WORKFLOWS[name]


StepResult = tuple[JsonDict, list[Task]]
STEPS: dict[str, Callable[..., StepResult]] = {}


def step(fn: Callable[..., StepResult]) -> Callable[..., StepResult]:
    STEPS[fn.__name__] = fn
    return fn


def run_step(workflow_id: str, key: str, name: str, *args: Any) -> JsonDict:
    """One unit of work, exactly once: its effect and its records commit together."""
    with session_scope() as session:
        done = recorder.recorded(session, workflow_id, key)
        if done is not None:
            return done
        result, tasks = STEPS[name](session, workflow_id, *args)
        for number, task in enumerate(tasks):
            task_key = key if number == 0 else f"{key}.{number}"
            recorder.record_task(
                session,
                workflow_id,
                task_key,
                replace(task, result=result) if number == 0 else task,
            )
        return result


class Runner(Protocol):
    workflow_id: str

    def step(self, key: str, name: str, *args: Any) -> JsonDict: ...

    def sleep_until(self, moment: datetime) -> None: ...

    def recv(self, topic: str, timeout_seconds: float) -> Any: ...

    def then(self, workflow: str, workflow_id: str, *args: Any, apart: bool = False) -> None:
        """Start ``workflow`` as a flow of its own; ``apart``: on the lane queue, which
        gives each worker process one such flow at a time (CPU-bound work in parallel
        processes, not in threads of one)."""
        ...


class PlainRunner:
    """The same steps as ordinary calls: no checkpoints, no recovery."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id

    def step(self, key: str, name: str, *args: Any) -> JsonDict:
        return run_step(self.workflow_id, key, name, *args)

    def sleep_until(self, moment: datetime) -> None:
        time.sleep(max(0.0, (moment - utcnow()).total_seconds()))

    def recv(self, topic: str, timeout_seconds: float) -> Any:
        raise RuntimeError("a plain run cannot wait for a person's decision")

    def then(self, workflow: str, workflow_id: str, *args: Any, apart: bool = False) -> None:
        PLAIN_FLOWS[workflow](PlainRunner(workflow_id), *args)


@DBOS.step(name="etomcrm.step")
def _durable_step(workflow_id: str, key: str, name: str, *args: Any) -> JsonDict:
    return run_step(workflow_id, key, name, *args)


class DurableRunner:
    """Steps checkpointed by DBOS; waits survive restarts.

    A runner that knows its flow (``flow`` and ``case_id``) records a step that fails:
    the flow's processFlow shows the failure and waits for a retry.
    """

    def __init__(self, flow: str | None = None, case_id: str | None = None) -> None:
        self.workflow_id = str(DBOS.workflow_id)
        self.flow = flow
        self.case_id = case_id

    def step(self, key: str, name: str, *args: Any) -> JsonDict:
        try:
            return _durable_step(self.workflow_id, key, name, *args)
        except Exception as error:
            self.record_failure(error, key, name)
            raise

    def record_failure(self, error: Exception, key: str | None, name: str | None) -> None:
        """In a transaction of its own (the step's rolled back); never raises, so the
        error the flow fails with stays the one reported. A replay finds it recorded."""
        if self.flow is None:
            return
        reason = (
            error.message if isinstance(error, TmfError) else f"{type(error).__name__}: {error}"
        )
        try:
            with session_scope() as session:
                seed = STEP_SEEDS.get(name or "") or recorder.last_seed(session, self.workflow_id)
                recorder.fail_flow(
                    session,
                    self.workflow_id,
                    flow=self.flow,
                    case_id=self.case_id or self.workflow_id,
                    reason=reason,
                    step=key,
                    seed=seed,
                )
        except Exception:
            log.exception("could not record the failure of flow %s", self.workflow_id)

    def sleep_until(self, moment: datetime) -> None:
        # Always a recorded DBOS sleep (DBOS skips a sleep of zero without recording
        # it): on recovery the time has passed, and the replayed workflow must take the
        # same steps it took the first time.
        DBOS.sleep(max(0.001, (moment - utcnow()).total_seconds()))

    def recv(self, topic: str, timeout_seconds: float) -> Any:
        return DBOS.recv(topic, timeout_seconds)

    def then(self, workflow: str, workflow_id: str, *args: Any, apart: bool = False) -> None:
        with SetWorkflowID(workflow_id):
            if not apart:
                DBOS.start_workflow(WORKFLOWS[workflow], *args)
                return
            queue = DBOS.retrieve_queue(LANE_QUEUE)
            if queue is None:
                raise RuntimeError(f"the flow queue {LANE_QUEUE} is not registered")
            queue.enqueue(WORKFLOWS[workflow], *args)


def look_until(
    run: Runner,
    key: str,
    name: str,
    *args: Any,
    done: Callable[[JsonDict], bool],
    topic: str,
    wait_seconds: Callable[[JsonDict], float],
) -> JsonDict:
    """Run the step ``name`` (keys ``key-1``, ``key-2``, …; its look number is its last
    argument) until ``done`` holds for its result, waiting between looks for a message
    on ``topic`` or ``wait_seconds(result)``, whichever comes first. Returns the last
    result."""
    look = 0
    while True:
        look += 1
        result = run.step(f"{key}-{look}", name, *args, look)
        if done(result):
            return result
        run.recv(topic, wait_seconds(result))


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def durable(flow: Callable[..., str]) -> Callable[..., str]:
    """``flow`` as a DBOS workflow's body: a durable runner, and its failure recorded."""
    name = flow.__name__.removesuffix("_flow").replace("_", "-")

    def workflow(*args: Any) -> str:
        run = DurableRunner(name, str(args[0]) if args else None)
        try:
            return flow(run, *args)
        except Exception as error:
            # A step's failure is recorded already; this catches the flow's own.
            run.record_failure(error, None, None)
            raise

    workflow.__name__ = flow.__name__
    workflow.__qualname__ = flow.__qualname__
    return workflow
