"""The Assurance flows of an SLA violation (DESIGN.md section 2), one run per violation:

- forwarded as problem: the assessment found the violation (3.7.2) → the customer was
  told → its problem was opened, or the open one linked, and reported (3.6.2);
- resolved: the problem's ticket closes (3.6.4) → the violation closes (3.7.2) → its
  credit, from the SLA's penalty rule, is handed to billing (3.8.2) → the customer's
  risk is assessed again (3.9.3) and the satisfaction survey of the ticket is followed
  (3.9.5).

The flow starts when the violation is recorded (``qos_sla.violations``): by the
monthly QoS flow, or by the continuous check as measurements arrive. It waits durably
for the ticket's end, woken when the ticket closes and looking again daily.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.communication import inform_customer
from etomcrm.db import session_scope
from etomcrm.flows import engine, recorder
from etomcrm.flows.assurance import set_problem_status
from etomcrm.flows.framework import (
    Runner,
    StepResult,
    look_until,
    step,
)
from etomcrm.flows.models import ProcessFlowRow
from etomcrm.flows.recorder import Task
from etomcrm.problem_handling.models import ServiceProblemRow, TroubleTicketRow
from etomcrm.qos_sla.models import SlaViolationRow
from etomcrm.qos_sla.violations import close_violation, hand_credit_to_billing, load_violation
from etomcrm.retention.risk import assess_customer_risk
from etomcrm.retention.satisfaction import survey_sent_for
from etomcrm.security.service import SYSTEM

log = logging.getLogger(__name__)

FLOW = "sla-violation"
# The customer risk assessment's scores (TMF696 partyRoleRiskAssessment) in words.
RISK_WORDS = {"churn": "churn risk", "badDebt": "bad-debt risk"}
TICKET_RECHECK_SECONDS = 24 * 3600.0
ENDED = frozenset({"closed", "cancelled", "rejected"})


def violation_workflow_id(violation_id: str) -> str:
    return f"violation-{violation_id}"


def violation_flow(run: Runner, violation_id: str) -> str:
    """One SLA violation from its recording to its credit on the way to the bill."""
    run.step("forward", "forward_violation_step", violation_id)
    look_until(
        run,
        "ticket",
        "await_ticket_step",
        violation_id,
        done=lambda ticket: bool(ticket["ended"]),
        topic="ticket",
        wait_seconds=lambda _: TICKET_RECHECK_SECONDS,
    )
    run.step("close", "close_violation_step", violation_id)
    run.step("credit", "credit_to_billing_step", violation_id)
    run.step("risk", "customer_risk_step", violation_id)
    return "closed"


def _ticket_of(session: Session, violation: SlaViolationRow) -> TroubleTicketRow | None:
    ticket_id = (violation.body.get("troubleTicket") or {}).get("id")
    return session.get(TroubleTicketRow, str(ticket_id)) if ticket_id else None


def _money(credit: JsonDict) -> str:
    return f"{credit.get('value', '0.00')} {credit.get('unit', 'EUR')}"


@step
def forward_violation_step(session: Session, workflow_id: str, violation_id: str) -> StepResult:
    violation = load_violation(session, violation_id)
    body = violation.body
    recorder.start_flow(
        session,
        workflow_id=workflow_id,
        flow=FLOW,
        case_id=violation_id,
        case_type="SlaViolation",
        customer_id=violation.owner_customer_id,
        description=f"SLA violation: {body['violation']['comment']}",
    )
    ticket = body.get("troubleTicket") or {}
    recorder.relate(
        session,
        workflow_id,
        {"id": ticket.get("id"), "@referredType": "TroubleTicket", "role": "ticket"},
    )
    raised = ticket.get("serviceProblem")
    if ticket.get("linked"):
        reported = f"the cause is known: open ticket {ticket.get('id')} carries the violation"
    else:
        reported = (
            f"cause unknown: ticket {ticket.get('id')} opened, service problem "
            f"{(raised or {}).get('id')} raised to the network side"
        )
    return (
        {"ticket": ticket.get("id")},
        [
            Task(
                "3.7.2",
                "Handle QoS/SLA violations",
                f"{body['violation']['comment']}; customer informed; credit "
                f"{_money(body.get('credit') or {})} owed",
            ),
            Task("3.6.2", "Report the problem to other processes", reported),
        ],
    )


@step
def await_ticket_step(
    session: Session, workflow_id: str, violation_id: str, look: int
) -> StepResult:
    ticket = _ticket_of(session, load_violation(session, violation_id))
    status = ticket.status if ticket is not None else "closed"
    ended = status in ENDED
    outcome = f"ticket {ticket.id if ticket else '-'} {status}" + (
        "" if ended else "; waiting for it to be resolved and closed"
    )
    # One record when the wait begins and one when it ends; the daily looks between
    # are DBOS's business, not the customer's history.
    tasks = [Task("3.6.4", "Close the problem", outcome)] if look == 1 or ended else []
    return {"ended": ended, "status": status}, tasks


@step
def close_violation_step(session: Session, workflow_id: str, violation_id: str) -> StepResult:
    violation = load_violation(session, violation_id)
    ticket = _ticket_of(session, violation)
    how = "no ticket"
    if ticket is not None:
        last = (ticket.body.get("statusChange") or [{}])[-1]
        how = f"ticket {ticket.id} {ticket.status}: {last.get('changeReason', '')}".strip()
    close_violation(session, violation_id, resolution=how)
    problem_note = ""
    raised = ((violation.body.get("troubleTicket") or {}).get("serviceProblem") or {}).get("id")
    problem = session.get(ServiceProblemRow, str(raised)) if raised else None
    if problem is not None and problem.status == "resolved":
        set_problem_status(session, problem.id, "closed")
        problem_note = f"; service problem {problem.id} closed"
    elif problem is not None:
        problem_note = (
            f"; service problem {problem.id} stays {problem.status} with the network side"
        )
    return (
        {},
        [Task("3.7.2", "Handle QoS/SLA violations", f"violation closed ({how}){problem_note}")],
    )


@step
def credit_to_billing_step(session: Session, workflow_id: str, violation_id: str) -> StepResult:
    violation = load_violation(session, violation_id)
    credit = hand_credit_to_billing(session, violation_id)
    if violation.owner_customer_id:
        body = violation.body
        inform_customer(
            session,
            customer_id=violation.owner_customer_id,
            subject=f"SLA violation {body.get('period')} closed: credit {_money(credit)}",
            content=(
                f"The problem behind the missed {body.get('metric')} target of "
                f"{body.get('period')} is closed. The credit of {_money(credit)} is with "
                "billing and will appear on your next bill."
            ),
            key=f"sla-violation/{violation.violation_key}/credit",
            related_entity=[
                {"id": violation_id, "role": "slaViolation", "@referredType": "SlaViolation"}
            ],
        )
    return (
        {"credit": credit.get("value")},
        [
            Task(
                "3.8.2",
                "Apply prices, discounts, rebates",
                f"SLA credit {_money(credit)} handed to billing for the next bill; "
                "customer informed",
            )
        ],
    )


@step
def customer_risk_step(session: Session, workflow_id: str, violation_id: str) -> StepResult:
    violation = load_violation(session, violation_id)
    tasks: list[Task] = []
    if violation.owner_customer_id:
        risk = assess_customer_risk(
            session,
            SYSTEM,
            violation.owner_customer_id,
            reason=f"SLA violation {violation_id} closed",
        )
        # In words: the churn score has no riskName (TMF696 knows no churn risk).
        scores = [
            f"{RISK_WORDS.get(str(s.get('risk')), s.get('riskName') or 'risk')} "
            f"{s.get('score')}" + (f" ({s['level']})" if s.get("level") else "")
            for s in (risk.get("riskAssessmentResult") or {}).get("score") or []
        ]
        tasks.append(
            Task(
                "3.9.3",
                "Analyse and manage customer risk",
                f"risk assessment {risk['id']}: " + ", ".join(scores),
            )
        )
        ticket = _ticket_of(session, violation)
        tasks.append(
            Task(
                "3.9.5",
                "Validate customer satisfaction",
                _survey_state(session, ticket),
            )
        )
    recorder.finish_flow(session, workflow_id, "completed")
    return {}, tasks


def _survey_state(session: Session, ticket: TroubleTicketRow | None) -> str:
    """Where the survey that followed the ticket's closure stands."""

    if ticket is None or ticket.status != "closed":
        return "no survey: the ticket ended without a resolution to ask about"
    survey = survey_sent_for(session, f"ticket/{ticket.id}/survey")
    if survey is None:
        return f"no survey found for ticket {ticket.id}"
    answer = survey.get("surveyAnswer")
    if answer:
        return (
            f"survey {survey['id']} on ticket {ticket.id} answered: CSAT {answer['csat']}, "
            f"NPS {answer['nps']}; it weighs in the risk above"
        )
    return (
        f"survey {survey['id']} sent when ticket {ticket.id} closed; its answer will weigh "
        "in the next risk assessment"
    )


def sweep_unstarted_violation_flows() -> int:
    """Start the flow of every open violation that has none (a crash between the
    commit and the flow's start). Returns how many."""
    with session_scope() as session:
        started = select(ProcessFlowRow.case_id).where(ProcessFlowRow.flow == FLOW)
        waiting = session.scalars(
            select(SlaViolationRow.id).where(
                SlaViolationRow.status == "open", SlaViolationRow.id.not_in(started)
            )
        ).all()
    for violation_id in waiting:
        engine.enqueue("violation", violation_workflow_id(violation_id), violation_id)
    return len(waiting)
