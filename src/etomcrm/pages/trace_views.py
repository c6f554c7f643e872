"""A case's flow trace for staff (issue 11): what ``etomcrm trace <id>`` prints, as a
timeline with the seed numbers, read by the same function
(:func:`etomcrm.flows.recorder.flows_of_case`, the TMF701 processFlow and taskFlow
records). Any id the command accepts is accepted: a request, quote, order, ticket,
problem, violation or bill id, or a flow's own id."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from etomcrm.core.errors import Forbidden
from etomcrm.core.resources import READ
from etomcrm.flows.api_kinds import PROCESS_FLOW_KIND
from etomcrm.flows.recorder import FlowTrace, TraceLine, flows_of_case
from etomcrm.security.service import Principal

# Ids are at most 64 characters (the case column); longer input is a typing mistake.
CASE_ID_MAX = 64


@dataclass(frozen=True)
class Flow:
    workflow_id: str
    flow: str
    state: str
    case_id: str
    # In the order they happened, as the command prints them (a person's step is
    # recorded with the time it was taken, which may come before the steps around it).
    lines: list[TraceLine]


@dataclass(frozen=True)
class TracePage:
    case_id: str
    flows: list[Flow] = field(default_factory=list)
    # "long": the id cannot be one; "none": no flow has run for it.
    problem: str | None = None

    @property
    def steps(self) -> int:
        return sum(len(flow.lines) for flow in self.flows)


def _flow(trace: FlowTrace) -> Flow:
    return Flow(
        workflow_id=trace.workflow_id,
        flow=trace.flow,
        state=trace.state,
        case_id=trace.case_id,
        lines=sorted(trace.lines, key=lambda line: line.at),
    )


def trace_page(session: Session, principal: Principal, case_id: str) -> TracePage:
    """The flows of the case, each with its steps, followed by the cases it led to.
    Staff only (the flow records name every process and actor); an empty id shows the
    form alone."""
    if principal.is_customer:
        raise Forbidden("the flow trace is for the provider's staff")
    PROCESS_FLOW_KIND.authorize(principal, READ)
    case_id = case_id.strip()
    if not case_id:
        return TracePage("")
    if len(case_id) > CASE_ID_MAX:
        return TracePage(case_id[:CASE_ID_MAX], problem="long")
    flows = [_flow(trace) for trace in flows_of_case(session, case_id)]
    return TracePage(case_id, flows, None if flows else "none")
