"""The Fulfillment flows (DESIGN.md section 2): Pre-Sale, Ordering, Post-Ordering.

Each flow is written once, against a :class:`Runner`. The durable runner makes every
step a DBOS step and every wait a DBOS durable sleep or message wait; the plain runner
calls the same steps as ordinary functions (the benchmark compares the two).

A step is one meaningful unit of work: it opens a transaction, does its effect (orders
changed, service orders sent, messages written), records what it did (TMF701 task
flows, with seed numbers) and commits. Its record's id is derived from (workflow, step),
so a step that DBOS runs again after a crash finds its record and repeats nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.config import get_settings
from etomcrm.core.clock import iso
from etomcrm.core.models import AuditRecord
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.communication import inform_customer
from etomcrm.customer_interface.models import GeographicSiteRow, PartyInteractionRow
from etomcrm.customer_interface.service import customer_of
from etomcrm.db import session_scope, utcnow
from etomcrm.flows import engine, recorder
from etomcrm.flows.framework import PlainRunner, Runner, StepResult, look_until, step, when
from etomcrm.flows.models import ProcessFlowRow
from etomcrm.flows.recorder import Task
from etomcrm.network.port import business_date, get_network
from etomcrm.order_handling import service as orders
from etomcrm.order_handling.models import ProductOrderRow
from etomcrm.qos_sla import service as sla_service
from etomcrm.retention.satisfaction import send_survey
from etomcrm.security.service import SYSTEM
from etomcrm.selling import prospects
from etomcrm.selling.models import ProductOfferingQualificationRow, QuoteRow

log = logging.getLogger(__name__)

# A pre-sale flow reminds the owner of an open quote this often, and gives up after.
QUOTE_REMINDER_SECONDS = 7 * 24 * 3600.0
QUOTE_REMINDERS = 8
HELD_ORDER_RECHECK_SECONDS = 24 * 3600.0
# The post-ordering flow waits on this topic for the customer's acceptance.
ACCEPTANCE_TOPIC = "acceptance"


def ordering_workflow_id(order_id: str) -> str:
    return f"ordering-{order_id}"


def post_ordering_workflow_id(order_id: str) -> str:
    return f"post-ordering-{order_id}"


def presale_workflow_id(request_id: str) -> str:
    return f"presale-{request_id}"


# The process a step serves, for the record of its failure (a step's tasks name their
# seed numbers only when it succeeds).
STEP_SEEDS = {
    "accept_order_step": "3.5.3",
    "issue_order_step": "3.5.3",
    "track_order_step": "3.5.4",
    "complete_order_step": "3.5.5",
    "survey_step": "3.9.5",
    "presale_open_step": "3.2.2",
    "presale_decided_step": "3.4.3",
    "presale_reminder_step": "3.4.3",
    "presale_lapsed_step": "3.4.1",
}


# ----- Ordering ------------------------------------------------------------------------


def ordering_flow(run: Runner, order_id: str) -> str:
    """Quote accepted → data complete (3.4.4) → credit (3.5.2) → order accepted and
    issued (3.5.3) → service orders per site → tracked, delays announced (3.5.4)."""
    accepted = run.step("accept", "accept_order_step", order_id)
    if not accepted["accepted"]:
        return "rejected"
    issued = run.step("issue", "issue_order_step", order_id)
    next_check = when(issued.get("next_check_at"))
    look = 0
    while True:
        if next_check is not None:
            run.sleep_until(next_check)
        look += 1
        progress = run.step(f"track-{look}", "track_order_step", order_id, look)
        if progress["cancelled"]:
            return "cancelled"
        if progress.get("held"):
            # Durably wait for staff to resume (or cancel) the order; look again daily.
            run.recv("order", HELD_ORDER_RECHECK_SECONDS)
            next_check = None
            continue
        if progress["done"]:
            break
        next_check = when(progress.get("next_check_at")) or utcnow()
    run.then("post-ordering", post_ordering_workflow_id(order_id), order_id)
    return "handed over"


@step
def accept_order_step(session: Session, workflow_id: str, order_id: str) -> StepResult:
    order = orders.load_order(session, order_id)
    customer_id = customer_of(order)
    recorder.start_flow(
        session,
        workflow_id=workflow_id,
        flow="ordering",
        case_id=order_id,
        case_type="ProductOrder",
        customer_id=customer_id,
        description=f"Ordering: {order.get('description') or order_id}",
    )
    acceptance = orders.accept_order(session, order_id)
    if orders.is_disconnect(order):
        return {"accepted": True}, [
            Task(
                "3.5.3",
                "Accept and issue orders",
                f"disconnect order accepted: {len(order['productOrderItem'])} product(s) to end",
            )
        ]
    if orders.is_modify(order):
        return {"accepted": True}, [
            Task(
                "3.5.3",
                "Accept and issue orders",
                f"{_modify_words(order)[0]} order accepted: "
                f"{len(order['productOrderItem'])} product(s)",
            )
        ]
    data_ok = not any(
        not r.startswith("credit refused") and r != acceptance.relationship_ended
        for r in acceptance.reasons
    )
    tasks: list[Task] = []
    if acceptance.relationship_ended is not None:
        tasks.append(
            Task("3.9.1", "Establish the customer relationship", acceptance.relationship_ended)
        )
    tasks.append(
        Task(
            "3.4.4",
            "Acquire customer data",
            "contract data complete" if data_ok else "contract data missing",
        )
    )
    if data_ok and acceptance.relationship_ended is None:
        tasks.append(
            Task(
                "3.5.2",
                "Assess credit worthiness",
                f"credit decision: {acceptance.credit_outcome}"
                + (
                    f" (deposit {acceptance.deposit} EUR)"
                    if acceptance.credit_outcome == "acceptWithDeposit"
                    else ""
                ),
            )
        )
    tasks.append(
        Task(
            "3.5.3",
            "Accept and issue orders",
            "order accepted"
            if acceptance.accepted
            else "order rejected: " + "; ".join(acceptance.reasons),
        )
    )
    if not acceptance.accepted and customer_id:
        _inform(
            session,
            customer_id,
            f"{workflow_id}/rejected",
            "Your order could not be accepted",
            "We could not accept your order: " + "; ".join(acceptance.reasons) + ".",
            order_id,
        )
        tasks.append(
            Task("3.2.2", "Handle customer requests", "customer told why the order was rejected")
        )
        recorder.finish_flow(session, workflow_id, "completed")
    return {"accepted": acceptance.accepted}, tasks


@step
def issue_order_step(session: Session, workflow_id: str, order_id: str) -> StepResult:
    statuses = orders.issue_service_orders(session, order_id, get_network())
    order = orders.load_order(session, order_id)
    customer_id = customer_of(order)
    latest = max((s.expected_completion_date for s in statuses), default=None)
    disconnect = orders.is_disconnect(order)
    modify = orders.is_modify(order)
    if customer_id and modify:
        noun, _ = _modify_words(order)
        _inform(
            session,
            customer_id,
            f"{workflow_id}/confirmed",
            f"Your services are being {'suspended' if noun == 'suspend' else 'resumed'}",
            f"We are {'suspending' if noun == 'suspend' else 'resuming'} your services at "
            f"{len(statuses)} site(s)"
            + (f"; done by {latest.isoformat()}" if latest else "")
            + ".",
            order_id,
        )
    elif customer_id and disconnect:
        _inform(
            session,
            customer_id,
            f"{workflow_id}/confirmed",
            "Your services are being disconnected",
            f"We are ceasing the services to be ended at {len(statuses)} site(s)"
            + (f"; all will be disconnected by {latest.isoformat()}" if latest else "")
            + ".",
            order_id,
        )
    elif customer_id:
        _inform(
            session,
            customer_id,
            f"{workflow_id}/confirmed",
            "Your order is confirmed",
            f"We have accepted your order for {len(statuses)} site(s). "
            + (f"All sites are expected to be active by {latest.isoformat()}. " if latest else "")
            + "We will tell you of every change.",
            order_id,
        )
    next_check = min((s.ready_at for s in statuses), default=None)
    return (
        {"sites": len(statuses), "next_check_at": next_check.isoformat() if next_check else None},
        [
            Task(
                "3.5.3",
                "Accept and issue orders",
                f"{len(statuses)} service order(s) sent to the network"
                + (" to cease the sites" if disconnect else "")
                + (f" to {_modify_words(order)[0]} the sites" if modify else ""),
            ),
            Task("3.2.2", "Handle customer requests", "order confirmation sent to the customer"),
        ],
    )


@step
def track_order_step(session: Session, workflow_id: str, order_id: str, look: int) -> StepResult:
    progress = orders.track_order(session, order_id, get_network())
    order = orders.load_order(session, order_id)
    customer_id = customer_of(order)
    parts = []
    if progress.held:
        parts.append(f"order {order['state']}: waiting for the order manager")
    if progress.activated:
        parts.append(f"{len(progress.activated)} site(s) active")
    if progress.late:
        parts.append(f"{len(progress.late)} late (jeopardy)")
    if progress.retried:
        parts.append(f"{len(progress.retried)} failed and reissued")
    if progress.given_up:
        parts.append(f"{len(progress.given_up)} failed for good")
    parts.append(f"{progress.open_sites} open")
    tasks = [Task("3.5.4", "Track order and handle delays", ", ".join(parts))]
    if customer_id:
        for site_id, new_date, detail in progress.late:
            _inform(
                session,
                customer_id,
                f"{workflow_id}/jeopardy/{site_id}",
                "A site of your order will be late",
                f"Site {_site_name(session, site_id)} is now expected on {new_date} ({detail}). "
                "Our order manager is on it.",
                order_id,
            )
        for site_id, detail in progress.failed:
            _inform(
                session,
                customer_id,
                f"{workflow_id}/failed/{look}/{site_id}",
                "An activation of your order failed",
                f"Activating site {_site_name(session, site_id)} failed ({detail}). "
                + (
                    "We are trying again."
                    if site_id in progress.retried
                    else "We will contact you."
                ),
                order_id,
            )
        if progress.late or progress.failed:
            tasks.append(Task("3.2.2", "Handle customer requests", "customer informed of delays"))
    if progress.cancelled:
        recorder.finish_flow(session, workflow_id, "cancelled")
    return (
        {
            "done": progress.done,
            "held": progress.held,
            "cancelled": progress.cancelled,
            "next_check_at": progress.next_check_at.isoformat() if progress.next_check_at else None,
        },
        tasks,
    )


# ----- Post-Ordering -------------------------------------------------------------------


def post_ordering_flow(run: Runner, order_id: str) -> str:
    """Sites active → order completed (3.5.5): products active, materials out of stock,
    SLA monitoring started, billing handed the products, relationship established
    (3.9.1), customer informed → the customer's acceptance, given or deemed after the
    acceptance period (3.5.5) → satisfaction checked (3.9.5)."""
    completed = run.step("complete", "complete_order_step", order_id)
    if completed.get("disconnect") or completed.get("modify"):
        # Nothing new to survey a leaving customer on, nor one suspended or resumed.
        return str(completed["state"])
    if completed.get("acceptance_due"):
        look_until(
            run,
            "acceptance",
            "acceptance_step",
            order_id,
            done=lambda result: bool(result["accepted"]),
            topic=ACCEPTANCE_TOPIC,
            wait_seconds=lambda result: float(result["wait_seconds"]),
        )
    run.step("survey", "survey_step", order_id)
    return str(completed["state"])


@step
def complete_order_step(session: Session, workflow_id: str, order_id: str) -> StepResult:
    order = orders.load_order(session, order_id)
    customer_id = customer_of(order)
    recorder.start_flow(
        session,
        workflow_id=workflow_id,
        flow="post-ordering",
        case_id=order_id,
        case_type="ProductOrder",
        customer_id=customer_id,
        description=f"Post-ordering: {order.get('description') or order_id}",
    )
    recorder.finish_flow(session, ordering_workflow_id(order_id), "completed")
    completion = orders.complete_order(session, order_id)
    if orders.is_disconnect(order):
        return _disconnect_completed(session, workflow_id, order_id, customer_id, completion)
    if orders.is_modify(order):
        return _modify_completed(session, workflow_id, order, customer_id, completion)
    # The SLAs in the completion's own transaction: a replayed step makes none twice.
    slas = sla_service.start_sla_monitoring(session, completion.access_products)
    materials = []
    if completion.materials_installed:
        materials.append(f"{completion.materials_installed} unit(s) of material taken from stock")
    if completion.materials_released:
        materials.append(f"{completion.materials_released} unit(s) returned to stock")
    if completion.materials_short:
        materials.append(
            f"{completion.materials_short} unit(s) installed beyond the stock: order in "
            "jeopardy until the stock is counted"
        )
    for reorder in completion.reorders:
        materials.append(
            f"{reorder['name']} below its minimum: reorder of "
            f"{reorder['quantity'].get('amount')} raised"
        )
    tasks = [
        Task(
            "3.5.5",
            "Complete order",
            f"order {completion.state}: {len(completion.products)} product(s) active, "
            f"{completion.activated_sites} site(s) active, {completion.failed_sites} failed"
            + "".join(f"; {m}" for m in materials),
        ),
    ]
    if completion.products:
        tasks.append(
            Task(
                "3.8",
                "Billing and collections",
                f"charging start handed to billing: {len(completion.products)} product(s) on "
                "the billing work list",
            )
        )
    if slas:
        tasks.append(
            Task(
                "3.7",
                "QoS/SLA management",
                f"SLA monitoring started: {len(slas)} SLA(s), one per access product ("
                + ", ".join(sorted({str(s["slaSpecification"]["name"]) for s in slas}))
                + ")",
            )
        )
    elif completion.access_products:
        tasks.append(Task("3.7", "QoS/SLA management", "no SLA level sold: no SLA to monitor"))
    if customer_id and orders.establish_relationship(session, customer_id):
        tasks.append(Task("3.9.1", "Establish the customer relationship", "customer is now active"))
    due = completion.acceptance_due
    if customer_id:
        _inform(
            session,
            customer_id,
            f"{workflow_id}/completed",
            "Your service is active",
            f"Your order is {completion.state}: {completion.activated_sites} site(s) are active"
            + (
                f", {completion.failed_sites} could not be activated"
                if completion.failed_sites
                else ""
            )
            + ". Billing starts today."
            + (
                " Please confirm that you accept the delivery (in the portal, or with "
                f'{orders.ACCEPTANCE}.state "accepted" on the order), or tell us what is '
                f"missing; without your word it counts as accepted on "
                f"{business_date(due).isoformat()}."
                if due is not None
                else ""
            ),
            order_id,
        )
        tasks.append(
            Task("3.2.2", "Handle customer requests", "customer told the service is active")
        )
    return (
        {
            "state": completion.state,
            "products": len(completion.products),
            "acceptance_due": iso(due) if due is not None else None,
        },
        tasks,
    )


@step
def acceptance_step(session: Session, workflow_id: str, order_id: str, look: int) -> StepResult:
    now = utcnow()
    acceptance = orders.settle_acceptance(session, order_id, now)
    if acceptance.state == orders.ACCEPTED and acceptance.date is not None:
        outcome = f"customer accepted the order on {iso(acceptance.date)}" + (
            f" (recorded by {acceptance.by})" if acceptance.by else ""
        )
    elif acceptance.state == orders.DEEMED_ACCEPTED and acceptance.date is not None:
        outcome = (
            f"deemed accepted on {iso(acceptance.date)}: no objection within "
            f"{get_settings().order_acceptance_business_days} business days"
        )
    elif acceptance.state is None:
        outcome = "nothing delivered to accept"
    else:
        outcome = "awaiting the customer's acceptance until " + (
            iso(acceptance.due) if acceptance.due else "further notice"
        )
    accepted = acceptance.state != orders.AWAITING
    wait = (acceptance.due - now).total_seconds() if acceptance.due and not accepted else 0.0
    return (
        {"accepted": accepted, "wait_seconds": max(wait, 0.001)},
        [Task("3.5.5", "Complete order: the customer's acceptance", outcome)],
    )


def _disconnect_completed(
    session: Session,
    workflow_id: str,
    order_id: str,
    customer_id: str | None,
    completion: orders.Completion,
) -> StepResult:
    """3.9.1: the leaving customer's products are terminated; billing stops charging
    them; the customer is told. No SLA to monitor, no survey."""
    tasks = [
        Task(
            "3.5.5",
            "Complete order",
            f"disconnect {completion.state}: {len(completion.terminated)} product(s) "
            f"terminated, {completion.activated_sites} site(s) ceased, "
            f"{completion.failed_sites} not ceased",
        ),
        Task("3.8", "Billing and collections", "billing told to stop charging the ended products"),
        Task(
            "3.9.1",
            "Terminate the customer relationship",
            "the customer's products are disconnected",
        ),
    ]
    if customer_id:
        _inform(
            session,
            customer_id,
            f"{workflow_id}/completed",
            "Your services are disconnected",
            f"{completion.activated_sites} site(s) are disconnected and "
            f"{len(completion.terminated)} product(s) ended; no further charges are made "
            "for them.",
            order_id,
        )
        tasks.append(
            Task("3.2.2", "Handle customer requests", "customer told the services are ended")
        )
    recorder.finish_flow(session, workflow_id, "completed")
    return {
        "state": completion.state,
        "products": len(completion.terminated),
        "disconnect": True,
    }, tasks


def _modify_words(order: JsonDict) -> tuple[str, str]:
    """("suspend", "suspended") or ("resume", "resumed") for a modify order."""
    if orders.modify_status(order) == orders.SUSPEND:
        return "suspend", "suspended"
    return "resume", "resumed"


def _modify_completed(
    session: Session,
    workflow_id: str,
    order: JsonDict,
    customer_id: str | None,
    completion: orders.Completion,
) -> StepResult:
    """3.8.5: the customer's products are suspended (dunning) or active again; the
    customer is told. Nothing new to monitor or survey."""
    verb, done = _modify_words(order)
    tasks = [
        Task(
            "3.5.5",
            "Complete order",
            f"{verb} order {completion.state}: {len(completion.modified)} product(s) {done}, "
            f"{completion.activated_sites} site(s) {done}, {completion.failed_sites} not",
        )
    ]
    if customer_id:
        _inform(
            session,
            customer_id,
            f"{workflow_id}/completed",
            f"Your services are {done}",
            f"{len(completion.modified)} product(s) at {completion.activated_sites} site(s) "
            f"are {done}."
            + (
                " They are resumed as soon as the open amount is paid."
                if verb == "suspend"
                else " Thank you for your payment."
            ),
            str(order["id"]),
        )
        tasks.append(
            Task("3.2.2", "Handle customer requests", f"customer told the services are {done}")
        )
    recorder.finish_flow(session, workflow_id, "completed")
    return {"state": completion.state, "products": len(completion.modified), "modify": True}, tasks


@step
def survey_step(session: Session, workflow_id: str, order_id: str) -> StepResult:
    order = orders.load_order(session, order_id)
    customer_id = customer_of(order)
    recorder.finish_flow(session, workflow_id, "completed")
    if customer_id is None:
        return {}, [Task("3.9.5", "Validate customer satisfaction", "no customer to ask")]
    survey = send_survey(
        session,
        customer_id=customer_id,
        about={"id": order_id, "@referredType": "ProductOrder"},
        key=f"{workflow_id}/survey",
    )
    return (
        {"survey": survey["id"]},
        [Task("3.9.5", "Validate customer satisfaction", "satisfaction survey sent")],
    )


# ----- Pre-Sale ------------------------------------------------------------------------


def presale_flow(run: Runner, request_id: str, customer_id: str, owner: str) -> str:
    """Request (3.2.2) → opportunity (3.4.1), collateral sent (3.3.1) → then people
    educate (3.4.2), check feasibility (3.5.1) and negotiate the quote (3.4.3) while the
    flow waits durably for the customer's decision; an accepted quote becomes an order."""
    run.step("open", "presale_open_step", request_id, customer_id, owner)
    for reminder in range(QUOTE_REMINDERS + 1):
        decision = run.recv("quote", QUOTE_REMINDER_SECONDS)
        if decision is not None:
            result = run.step("decided", "presale_decided_step", decision)
            if result.get("order"):
                order_id = str(result["order"])
                run.then("ordering", ordering_workflow_id(order_id), order_id)
            return str(result["outcome"])
        run.step(f"remind-{reminder}", "presale_reminder_step", reminder)
    run.step("lapsed", "presale_lapsed_step")
    return "lapsed"


@step
def presale_open_step(
    session: Session, workflow_id: str, request_id: str, customer_id: str, owner: str
) -> StepResult:
    recorder.start_flow(
        session,
        workflow_id=workflow_id,
        flow="presale",
        case_id=request_id,
        case_type="PartyInteraction",
        customer_id=customer_id,
        description="Pre-sale",
    )
    principal = replace(SYSTEM, name=owner)
    lead_id = _lead_of_request(session, request_id)
    if lead_id is None:
        lead_id = prospects.open_lead(
            session, principal, customer_id=customer_id, name=f"Request {request_id}", channel="web"
        )["id"]
    opportunity = prospects.qualify_lead(
        session, principal, lead_id, owner=owner, probability=20, expected_revenue=Decimal(0)
    )
    _inform(
        session,
        customer_id,
        f"{workflow_id}/collateral",
        "Your request: what we can offer",
        "Thank you for your request. Attached is our brochure on extranet site access, "
        "managed routers and service levels; your account manager will contact you.",
        request_id,
    )
    return (
        {"lead": lead_id, "opportunity": opportunity["id"]},
        [
            Task(
                "3.2.2",
                "Handle customer requests",
                "request classified as selling, routed to sales",
            ),
            Task("3.4.1", "Manage prospects", f"lead qualified into an opportunity, owner {owner}"),
            Task(
                "3.3.1",
                "Issue and distribute marketing collateral",
                "brochure sent to the customer",
            ),
        ],
    )


def _lead_of_request(session: Session, request_id: str) -> str | None:
    row = session.get(PartyInteractionRow, request_id)
    for entry in (row.body.get("interactionItem", []) if row is not None else []) or []:
        item = entry.get("item") or {}
        if item.get("@referredType") == "SalesLead":
            return str(item["id"])
    return None


@step
def presale_reminder_step(session: Session, workflow_id: str, reminder: int) -> StepResult:
    return {}, [
        Task("3.4.3", "Negotiate the sale", f"quote still open; owner reminded ({reminder + 1})")
    ]


@step
def presale_lapsed_step(session: Session, workflow_id: str) -> StepResult:
    recorder.finish_flow(session, workflow_id, "cancelled")
    return {}, [Task("3.4.1", "Manage prospects", "no decision; opportunity lapsed")]


@step
def presale_decided_step(session: Session, workflow_id: str, decision: JsonDict) -> StepResult:
    """What people did while the flow waited, recorded with their names and times."""

    quote_id, state = str(decision["quote"]), str(decision["state"])
    recorder.relate(
        session, workflow_id, {"id": quote_id, "@referredType": "Quote", "role": "quote"}
    )
    opened = recorder.recorded(session, workflow_id, "open") or {}
    flow_started = session.get(ProcessFlowRow, workflow_id)
    since = flow_started.created_at if flow_started else utcnow()
    tasks = _people_tasks(
        session, quote_id, flow_started.owner_customer_id if flow_started else None, since
    )
    outcome = state
    related: tuple[JsonDict, ...] = ()
    if state == "accepted":
        # The flow starts the order's flow itself, durably, once this step is done
        # (the handler of OrderAcknowledged starts none from inside a flow).
        order = orders.order_from_quote(session, SYSTEM, quote_id)
        related = ({"id": order["id"], "@referredType": "ProductOrder", "role": "follow-up case"},)
        tasks.append(
            Task(
                "3.5.3",
                "Accept and issue orders",
                f"order {order['id']} placed from the quote",
                related=related,
            )
        )
        outcome = "ordered"
    if opened.get("opportunity"):
        # The opportunity went through proposal and negotiation while people worked.
        opportunity_id = str(opened["opportunity"])
        stage = prospects.SALES_OPPORTUNITY_KIND.row
        current = session.get(stage, opportunity_id)
        path = ["qualification", "proposal", "negotiation"]
        now_at = str(current.body.get("stage")) if current is not None else "negotiation"
        for next_stage in path[path.index(now_at) + 1 :] if now_at in path else []:
            prospects.advance_opportunity(session, SYSTEM, opportunity_id, stage=next_stage)
        prospects.close_opportunity(
            session,
            SYSTEM,
            opportunity_id,
            won=state == "accepted",
            reason="quote accepted" if state == "accepted" else f"quote {state}",
        )
        tasks.append(
            Task(
                "3.4.1",
                "Manage prospects",
                "opportunity won" if state == "accepted" else "opportunity lost",
            )
        )
    recorder.finish_flow(session, workflow_id, "completed")
    first = Task("3.4.3", "Negotiate the sale", f"quote {quote_id} {state}", related=related)
    result: JsonDict = {"outcome": outcome, "quote": quote_id}
    if related:
        result["order"] = related[0]["id"]
    return result, [first, *tasks]


def _people_tasks(
    session: Session, quote_id: str, customer_id: str | None, since: datetime
) -> list[Task]:
    """Education, feasibility checks and quote changes made by people for this customer
    since the flow started, from the audit trail (who and when)."""

    own = [
        select(row.id).where(row.owner_customer_id == customer_id)
        for row in (QuoteRow, ProductOfferingQualificationRow, PartyInteractionRow)
    ]
    rows = session.scalars(
        select(AuditRecord)
        .where(
            AuditRecord.at >= since,
            AuditRecord.resource_type.in_(
                ("Quote", "ProductOfferingQualification", "PartyInteraction")
            ),
            AuditRecord.resource_id.in_(own[0].union(own[1], own[2])),
        )
        .order_by(AuditRecord.at)
    ).all()
    tasks: list[Task] = []
    for row in rows:
        changes = row.changes or {}
        body = changes.get("created") or {}
        if row.resource_type == "ProductOfferingQualification" and row.action == "create":
            items = body.get("productOfferingQualificationItem", [])
            unqualified = sum(1 for i in items if i.get("qualificationItemResult") != "qualified")
            tasks.append(
                Task(
                    "3.5.1",
                    "Check feasibility",
                    f"{len(items)} site(s) checked, {unqualified} not qualified",
                    actor=row.actor,
                    at=row.at,
                )
            )
        elif (
            row.resource_type == "PartyInteraction"
            and row.action == "create"
            and body.get("@type") == "CustomerEducation"
        ):
            tasks.append(
                Task(
                    "3.4.2",
                    "Educate the customer",
                    "risks and effort presented",
                    actor=row.actor,
                    at=row.at,
                )
            )
        elif (row.resource_type == "Quote" and row.resource_id == quote_id) or (
            row.resource_type == "Quote" and _same_quote(body, quote_id)
        ):
            state = (
                body.get("state")
                if row.action == "create"
                else (changes.get("state") or {}).get("new")
            )
            if row.action == "create":
                tasks.append(
                    Task(
                        "3.4.3",
                        "Negotiate the sale",
                        f"quote version {body.get('version', '1')} drafted",
                        actor=row.actor,
                        at=row.at,
                    )
                )
            else:
                version = (changes.get("version") or {}).get("new")
                if version:
                    tasks.append(
                        Task(
                            "3.4.3",
                            "Negotiate the sale",
                            f"quote revised to version {version}",
                            actor=row.actor,
                            at=row.at,
                        )
                    )
                if state:
                    tasks.append(
                        Task(
                            "3.4.3",
                            "Negotiate the sale",
                            f"quote {state}",
                            actor=row.actor,
                            at=row.at,
                        )
                    )
    return tasks


def _same_quote(body: JsonDict, quote_id: str) -> bool:
    return any(r.get("id") == quote_id for r in body.get("quoteRelationship", []) or [])


# ----- registration and entry points -------------------------------------------------


FLOWS: dict[str, Callable[..., str]] = {
    "ordering": ordering_flow,
    "post-ordering": post_ordering_flow,
    "presale": presale_flow,
}


def run_plain(order_id: str) -> str:
    """Ordering and Post-Ordering as plain calls (benchmark baseline)."""
    return ordering_flow(PlainRunner(ordering_workflow_id(order_id)), order_id)


def sweep_unstarted_flows() -> int:
    """Start the flow of every acknowledged order and open selling request that has
    none (a crash between the commit and the flow's start). Returns how many."""

    with session_scope() as session:
        orders_started = select(ProcessFlowRow.case_id).where(ProcessFlowRow.flow == "ordering")
        waiting_orders = session.scalars(
            select(ProductOrderRow.id).where(
                ProductOrderRow.status == "acknowledged",
                ProductOrderRow.id.not_in(orders_started),
            )
        ).all()
        presales_started = select(ProcessFlowRow.case_id).where(ProcessFlowRow.flow == "presale")
        requests = session.execute(
            select(
                PartyInteractionRow.id,
                PartyInteractionRow.owner_customer_id,
                PartyInteractionRow.body,
            ).where(
                PartyInteractionRow.at_type == "CustomerRequest",
                PartyInteractionRow.status == "open",
                PartyInteractionRow.id.not_in(presales_started),
            )
        ).all()
    for order_id in waiting_orders:
        engine.enqueue("ordering", ordering_workflow_id(order_id), order_id)
    selling = [
        (request_id, customer_id)
        for request_id, customer_id, body in requests
        if body.get("classification") == "selling" and customer_id
    ]
    for request_id, customer_id in selling:
        engine.enqueue("presale", presale_workflow_id(request_id), request_id, customer_id, "sales")
    return len(waiting_orders) + len(selling)


def _inform(
    session: Session, customer_id: str, key: str, subject: str, content: str, case_id: str
) -> None:
    inform_customer(
        session,
        customer_id=customer_id,
        subject=subject,
        content=content,
        key=key,
        related_entity=[{"id": case_id, "role": "case", "@referredType": "ProductOrder"}],
    )


def _site_name(session: Session, site_id: str) -> str:
    row = session.get(GeographicSiteRow, site_id)
    return row.name or site_id if row is not None else site_id
