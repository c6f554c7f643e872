"""TMF701 process flows and their task flows, read-only: the record of what each
case's flow did, step by step. Flows write them; nobody else does."""

from __future__ import annotations

from etomcrm.core.resources import INSTANT, NUMBER, READ, TEXT, ResourceKind
from etomcrm.core.tmf_schemas import PROCESS_FLOW
from etomcrm.flows.models import ProcessFlowRow, TaskFlowRow
from etomcrm.security.service import STAFF_ROLES

PROCESS_FLOW_KIND = ResourceKind(
    name="processFlow",
    type_name="ProcessFlow",
    doc=PROCESS_FLOW,
    row=ProcessFlowRow,
    read_roles=STAFF_ROLES,
    write_roles=frozenset(),
    customer_operations=frozenset({READ}),
    status_attribute="state",
    name_attribute="processFlowSpecification",
    writable=False,
    # the staff work list of failed flows: processFlow?failed=true (see flows.failures)
    extensions={
        "failed": {"type": "boolean"},
        "failureReason": TEXT,
        "failedStep": TEXT,
        "failedAt": INSTANT,
        "retries": NUMBER,
    },
)
# Served under its process flow, not at a path of its own.
TASK_FLOW_KIND = ResourceKind(
    name="taskFlow",
    type_name="TaskFlow",
    doc=PROCESS_FLOW,
    row=TaskFlowRow,
    read_roles=STAFF_ROLES,
    write_roles=frozenset(),
    customer_operations=frozenset({READ}),
    status_attribute="state",
    name_attribute="taskFlowSpecification",
    writable=False,
)

KINDS: list[ResourceKind] = [PROCESS_FLOW_KIND]
