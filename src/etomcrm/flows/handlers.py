"""What the flows do when an area states a fact: start a flow, or wake one that waits.

Each handler runs after the change it acts on has committed, and never raises past the
bus: a flow that cannot be started now is started by the worker's sweep
(``sweep_unstarted_flows``), and a flow that cannot be woken looks again at its next
deadline. A fact stated inside a running flow starts no flow from here: DBOS starts no
workflow from inside a step, and the flow starts what follows itself, durably.
"""

from __future__ import annotations

from dbos import DBOS
from sqlalchemy import select

from etomcrm.customer_interface.events import SellingRequestLogged
from etomcrm.db import session_scope
from etomcrm.flows import engine
from etomcrm.flows.assurance import problem_workflow_id, start_problem_flow
from etomcrm.flows.fulfillment import (
    ACCEPTANCE_TOPIC,
    ordering_workflow_id,
    post_ordering_workflow_id,
    presale_workflow_id,
)
from etomcrm.flows.recorder import open_presale_flow_of_customer
from etomcrm.flows.sla_violation import violation_workflow_id
from etomcrm.order_handling.events import OrderAccepted, OrderAcknowledged, OrderReleased
from etomcrm.problem_handling.events import (
    AlarmCleared,
    ServiceProblemRaisedForTicket,
    ServiceProblemRepaired,
    TicketEnded,
)
from etomcrm.problem_handling.models import ServiceProblemRow
from etomcrm.qos_sla.events import ViolationRecorded
from etomcrm.selling.events import QuoteDecided


def _inside_a_flow() -> bool:
    return DBOS.workflow_id is not None


def start_ordering(event: OrderAcknowledged) -> None:
    """3.5.3: an acknowledged order is issued and tracked by its Ordering flow."""
    if not _inside_a_flow():
        engine.enqueue("ordering", ordering_workflow_id(event.order_id), event.order_id)


def wake_ordering(event: OrderReleased) -> None:
    """3.5.4: staff resumed or cancelled the order; its flow looks again now."""
    engine.send(ordering_workflow_id(event.order_id), "look again", "order")


def start_presale(event: SellingRequestLogged) -> None:
    """3.4.1: a selling request is taken up by its Pre-Sale flow."""
    if not _inside_a_flow():
        engine.enqueue(
            "presale",
            presale_workflow_id(event.request_id),
            event.request_id,
            event.customer_id,
            event.owner,
        )


def wake_presale(event: QuoteDecided) -> None:
    """3.4.3: the customer's open Pre-Sale flow learns the quote decision."""
    if event.customer_id is None:
        return
    with session_scope(readonly=True) as session:
        workflow_id = open_presale_flow_of_customer(session, event.customer_id)
    if workflow_id is not None:
        engine.send(workflow_id, {"quote": event.quote_id, "state": event.state}, "quote")


def wake_problem_flows(event: AlarmCleared) -> None:
    """3.6.4: an alarm of this cause cleared; its open problems' flows look again."""
    with session_scope(readonly=True) as session:
        problem_ids = list(
            session.scalars(
                select(ServiceProblemRow.id).where(
                    ServiceProblemRow.correlation_key == event.correlation_key,
                    ServiceProblemRow.status.in_(("acknowledged", "inProgress")),
                )
            )
        )
    for problem_id in problem_ids:
        engine.send(problem_workflow_id(problem_id), "alarm cleared", "problem")


def wake_flows_waiting_on_ticket(event: TicketEnded) -> None:
    """3.6.4, 3.7.2: the flows of the problems behind the ticket and of the violations
    it follows up look again."""
    waiting = [
        *map(problem_workflow_id, event.problem_ids),
        *map(violation_workflow_id, event.violation_ids),
    ]
    for workflow_id in waiting:
        engine.send(workflow_id, "ticket ended", "ticket")


def start_violation_flow(event: ViolationRecorded) -> None:
    """3.7.2: a recorded violation is followed to its end by its flow."""
    if not _inside_a_flow():
        engine.enqueue("violation", violation_workflow_id(event.violation_id), event.violation_id)


def start_flow_of_ticket_problem(event: ServiceProblemRaisedForTicket) -> None:
    """3.6.1: a problem raised for a customer's ticket runs its assurance flow."""
    if not _inside_a_flow():
        start_problem_flow(event.problem_id)


def wake_repaired_problem(event: ServiceProblemRepaired) -> None:
    """3.6.2: the network reported the repair; the problem's flow looks again now. A
    problem without a flow (raised by SLA management, by staff) has nobody to wake."""
    engine.send(problem_workflow_id(event.problem_id), "repaired", "problem")


def wake_post_ordering_on_acceptance(event: OrderAccepted) -> None:
    """3.5.5: the customer accepted its order; the post-ordering flow waiting for that
    goes on (to the satisfaction survey) now rather than at the end of the period."""
    engine.send(post_ordering_workflow_id(event.order_id), "accepted", ACCEPTANCE_TOPIC)
