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

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from dbos import DBOS, SetWorkflowID

from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.db import session_scope, utcnow
from etomcrm.flows import recorder
from etomcrm.flows.recorder import Task

__all__ = [
    "PLAIN_FLOWS",
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

# Flow name → the flow as a plain function, and as the DBOS workflow that runs it.
PLAIN_FLOWS: dict[str, Callable[..., str]] = {}
WORKFLOWS: dict[str, Callable[..., str]] = {}


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

    def then(self, workflow: str, workflow_id: str, *args: Any) -> None: ...


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

    def then(self, workflow: str, workflow_id: str, *args: Any) -> None:
        PLAIN_FLOWS[workflow](PlainRunner(workflow_id), *args)


@DBOS.step(name="etomcrm.step")
def _durable_step(workflow_id: str, key: str, name: str, *args: Any) -> JsonDict:
    return run_step(workflow_id, key, name, *args)


class DurableRunner:
    """Steps checkpointed by DBOS; waits survive restarts."""

    def __init__(self) -> None:
        self.workflow_id = str(DBOS.workflow_id)

    def step(self, key: str, name: str, *args: Any) -> JsonDict:
        return _durable_step(self.workflow_id, key, name, *args)

    def sleep_until(self, moment: datetime) -> None:
        # Always a recorded DBOS sleep (DBOS skips a sleep of zero without recording
        # it): on recovery the time has passed, and the replayed workflow must take the
        # same steps it took the first time.
        DBOS.sleep(max(0.001, (moment - utcnow()).total_seconds()))

    def recv(self, topic: str, timeout_seconds: float) -> Any:
        return DBOS.recv(topic, timeout_seconds)

    def then(self, workflow: str, workflow_id: str, *args: Any) -> None:
        with SetWorkflowID(workflow_id):
            DBOS.start_workflow(WORKFLOWS[workflow], *args)


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
    def workflow(*args: Any) -> str:
        return flow(DurableRunner(), *args)

    workflow.__name__ = flow.__name__
    workflow.__qualname__ = flow.__qualname__
    return workflow
