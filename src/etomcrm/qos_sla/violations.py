"""3.7.2 Handle QoS/SLA violations: each missed target recorded once, with its
consequences once: the customer told, a problem opened (or the open one linked) and
the credit owed recorded.

A violation's life (its flow, ``flows.sla_violation``): ``open`` with the credit
``owed`` → its ticket closes (3.6.4) → ``closed`` → the credit handed to billing
(``SlaCreditOwed``: on billing's work list, credit ``handedToBilling``). When no open
ticket names the product the cause is unknown: a ticket is opened and a service
problem (TMF656) is raised to the network side (3.6.2)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from etomcrm.core import resources
from etomcrm.core.bus import record
from etomcrm.core.clock import iso
from etomcrm.core.errors import IllegalTransition, NotFound
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.communication import inform_customer
from etomcrm.db import utcnow
from etomcrm.order_handling.models import ProductRow
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.problem_handling.service import SERVICE_PROBLEM_KIND, report_problem
from etomcrm.problem_handling.tickets import FINAL, TROUBLE_TICKET_KIND, open_ticket
from etomcrm.qos_sla import sla
from etomcrm.qos_sla.assessment import Assessment
from etomcrm.qos_sla.events import SlaCreditOwed, ViolationRecorded
from etomcrm.qos_sla.models import SlaRow, SlaViolationRow
from etomcrm.qos_sla.service import AVAILABILITY, SLA_VIOLATION_KIND, numeric_id, terms_of
from etomcrm.security.service import SYSTEM

UNITS = {AVAILABILITY: "%", "latency": "ms", "loss": "%", "timeToRepair": "h"}
OPERATORS = {AVAILABILITY: ">=", "latency": "<=", "loss": "<=", "timeToRepair": "<="}
OPEN, CLOSED = "open", "closed"
HANDED_TO_BILLING = "handedToBilling"


def violation_key(product_id: str, metric: str, period: str) -> str:
    return f"{product_id}/{metric}/{period}"


def monthly_recurring_charge(product: JsonDict) -> Decimal:
    """The product's recurring charges per month (duty free, EUR)."""
    total = Decimal(0)
    for price in product.get("productPrice") or []:
        if not isinstance(price, dict) or price.get("priceType") != "recurring":
            continue
        amount = (price.get("price") or {}).get("dutyFreeAmount") or {}
        total += Decimal(str(amount.get("value", 0)))
    return total


def evaluate(session: Session, assessments: Sequence[Assessment]) -> list[JsonDict]:
    """3.7.2 Handle QoS/SLA Violations (eTOM 1.1.1.7.2): record every violation that
    the assessments show (a missed target in an ended period, or one that is missed for
    certain already); returns the violations newly recorded."""
    recorded = []
    for assessment in assessments:
        if assessment.violated:
            body = record_violation(session, assessment)
            if body is not None:
                recorded.append(body)
    return recorded


def record_violation(session: Session, assessment: Assessment) -> JsonDict | None:
    """3.7.2 Handle QoS/SLA Violations (eTOM 1.1.1.7.2): the TMF623 slaViolation of one
    product, metric and period, exactly once (None when it was recorded before, by a
    rerun, a restarted flow or a concurrent assessor), then its consequences: the
    customer informed, a trouble ticket opened or linked, the credit recorded and
    announced to billing (``SlaCreditOwed``)."""
    key = violation_key(assessment.product_id, assessment.metric, assessment.period)
    if session.scalar(select(SlaViolationRow.id).where(SlaViolationRow.violation_key == key)):
        return None
    sla_row = session.scalar(select(SlaRow).where(SlaRow.product_id == assessment.product_id))
    if sla_row is None:
        raise LookupError(f"no SLA for product {assessment.product_id}")
    terms = terms_of(sla_row)
    now = utcnow()
    body: JsonDict = {
        "id": numeric_id(f"slaViolation/{key}"),
        "@type": "SlaViolation",
        "date": iso(now),
        "sla": {"href": f"{SLA_VIOLATION_KIND.doc.base_path}/sla/{sla_row.id}"},
        "violation": {
            "unit": UNITS[assessment.metric],
            "referenceValue": str(assessment.target),
            "operator": OPERATORS[assessment.metric],
            "actualValue": str(assessment.measured),
            "comment": (
                f"{assessment.metric} {assessment.measured} {UNITS[assessment.metric]} in "
                f"{assessment.period} against {OPERATORS[assessment.metric]} "
                f"{assessment.target}" + ("" if assessment.final else " (certain before month end)")
            ),
            "consequence": terms.penalty_rule,
            "rule": {"href": f"{sla_row.id}#{assessment.metric}", "description": assessment.metric},
        },
        "relatedParty": [{"role": "customer", "name": str(sla_row.owner_customer_id)}],
        "product": {"id": assessment.product_id, "@referredType": "Product"},
        "slaId": sla_row.id,
        "metric": assessment.metric,
        "period": assessment.period,
        "violationKey": key,
        "status": OPEN,
    }
    row = SlaViolationRow(
        id=str(body["id"]),
        violation_key=key,
        owner_customer_id=sla_row.owner_customer_id,
        # a copy: the consequences below complete `body`, and the row must see a change
        body=copy.deepcopy(body),
        version=1,
        at_type="SlaViolation",
        status=OPEN,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # another assessor recorded it first; its consequences are its own
        return None
    body["credit"] = {**_credit(session, sla_row, assessment), "status": "owed"}
    body["troubleTicket"] = _problem(session, sla_row, assessment, body)
    _inform(sla_row, assessment, body, session)
    row.body = copy.deepcopy(body)
    resources.record_audit(session, SYSTEM, "create", SLA_VIOLATION_KIND, row.id, {"created": body})
    session.flush()
    record(session, ViolationRecorded(row.id))
    return body


def close_violation(session: Session, violation_id: str, resolution: str) -> JsonDict:
    """3.7.2 Handle QoS/SLA Violations (eTOM 1.1.1.7.2): the problem behind the
    violation is resolved and closed: so is the violation. Closing twice changes
    nothing."""
    row = load_violation(session, violation_id)
    if row.status == CLOSED:
        return dict(row.body)
    body = copy.deepcopy(row.body)
    body.update(status=CLOSED, closedDate=iso(utcnow()), resolution=resolution)
    _save(session, row, body)
    return body


def hand_credit_to_billing(session: Session, violation_id: str) -> JsonDict:
    """3.8.2 Apply Pricing, Discounting, Adjustments & Rebates (eTOM 1.1.1.8.2), its
    hand-over: a closed violation's credit goes to billing, once, to be applied to the
    customer's next bill (``SlaCreditOwed``). Returns the credit."""
    row = load_violation(session, violation_id)
    body = copy.deepcopy(row.body)
    credit = dict(body.get("credit") or {"unit": "EUR", "value": "0.00"})
    if credit.get("status") == HANDED_TO_BILLING:
        return credit
    if row.status != CLOSED:
        raise IllegalTransition(
            f"SLA violation {violation_id} is {row.status!r}; its credit goes to billing "
            "once the violation is closed"
        )
    credit.update(status=HANDED_TO_BILLING, handedToBillingDate=iso(utcnow()))
    body["credit"] = credit
    _save(session, row, body)
    record(
        session,
        SlaCreditOwed(
            violation_id=row.id,
            customer_id=row.owner_customer_id,
            product_id=str(row.body["product"]["id"]),
            period=str(row.body["period"]),
            metric=str(row.body["metric"]),
            amount=str(credit.get("value", "0.00")),
            currency=str(credit.get("unit", "EUR")),
        ),
    )
    return credit


def load_violation(session: Session, violation_id: str) -> SlaViolationRow:
    row = session.get(SlaViolationRow, violation_id)
    if row is None:
        raise NotFound(f"no slaViolation with id {violation_id}")
    return row


def _save(session: Session, row: SlaViolationRow, body: JsonDict) -> None:
    old = row.body
    row.body, row.status = body, str(body["status"])
    row.version += 1
    row.updated_at = utcnow()
    changed = {k: {"old": old.get(k), "new": body.get(k)} for k in body if old.get(k) != body[k]}
    resources.record_audit(session, SYSTEM, "update", SLA_VIOLATION_KIND, row.id, changed)
    session.flush()


def _credit(session: Session, sla_row: SlaRow, assessment: Assessment) -> dict[str, Any]:
    """This violation's share of the period's credit: the rule's credit for every
    metric violated so far, less what earlier violations of the period took (so the
    cap holds across metrics)."""

    product = session.get(ProductRow, assessment.product_id)
    mrc = monthly_recurring_charge(product.body if product is not None else {})
    earlier = [
        b
        for b in session.scalars(
            select(SlaViolationRow.body).where(
                SlaViolationRow.violation_key.like(
                    f"{assessment.product_id}/%/{assessment.period}"
                ),
                SlaViolationRow.violation_key
                != violation_key(assessment.product_id, assessment.metric, assessment.period),
            )
        )
    ]
    taken = sum((Decimal(b.get("credit", {}).get("value", "0")) for b in earlier), Decimal(0))
    owed = sla.penalty(mrc, len(earlier) + 1, str(sla_row.body["penaltyRule"]))
    return {"unit": "EUR", "value": str(max(owed - taken, Decimal("0.00")))}


def _problem(
    session: Session, sla_row: SlaRow, assessment: Assessment, violation: JsonDict
) -> dict[str, Any]:
    """3.6.2 Report Customer Problem (eTOM 1.1.1.6.2) for a violation: the open ticket
    that already names the product (the cause is known) gets the violation attached;
    else a ticket is opened and a service problem raised to the network side."""

    violation_ref = {
        "id": str(violation["id"]),
        "@referredType": "SlaViolation",
        "role": "slaViolation",
    }
    candidates = session.scalars(
        select(TroubleTicketRow)
        .where(TroubleTicketRow.owner_customer_id == sla_row.owner_customer_id)
        .where(TroubleTicketRow.status.not_in(FINAL))
        .order_by(TroubleTicketRow.created_at)
    )
    for row in candidates:
        entities = row.body.get("relatedEntity") or []
        if any(isinstance(e, dict) and e.get("id") == assessment.product_id for e in entities):
            resources.patch(
                session,
                TROUBLE_TICKET_KIND,
                SYSTEM,
                row.id,
                {"relatedEntity": [*entities, violation_ref]},
            )
            return {"id": row.id, "linked": True}
    problem = _raise_problem(session, sla_row, assessment, violation)
    payload: JsonDict = {
        "name": f"SLA violated: {assessment.metric} {assessment.period}",
        "description": violation["violation"]["comment"],
        "severity": "Major",
        "ticketType": "slaViolation",
        "priority": "High",
        "relatedEntity": [
            {"id": assessment.product_id, "@referredType": "Product", "role": "affectedProduct"},
            violation_ref,
            {"id": problem["id"], "@referredType": "ServiceProblem", "role": "raisedProblem"},
        ],
    }
    if sla_row.owner_customer_id:
        payload["relatedParty"] = [
            {"id": sla_row.owner_customer_id, "@referredType": "Customer", "role": "customer"}
        ]
    ticket = open_ticket(session, SYSTEM, payload)
    return {"id": ticket["id"], "linked": False, "serviceProblem": {"id": problem["id"]}}


def _raise_problem(
    session: Session, sla_row: SlaRow, assessment: Assessment, violation: JsonDict
) -> JsonDict:
    """A TMF656 service problem for the network side to find the violation's cause;
    SLA management is its originator."""
    payload: JsonDict = {
        "category": "qos",
        "priority": 2,
        "impactImportanceFactor": "high",
        "description": f"SLA violated, cause unknown: {violation['violation']['comment']}",
        "reason": f"SLA violation {violation['id']}",
        "originatorParty": {
            "id": "qos_sla",
            "name": "SLA management",
            "role": "originator",
            "@referredType": "Organization",
        },
        "affectedNumberOfServices": 1,
        "affectedService": [{"id": assessment.product_id, "@referredType": "Product"}],
    }
    problem, _, _ = resources.create(session, SERVICE_PROBLEM_KIND, SYSTEM, payload)
    # SLA management raised it: only the network side needs telling.
    report_problem(session, problem, [assessment.product_id], assessment.period, to=["network"])
    return problem


def _inform(sla_row: SlaRow, assessment: Assessment, violation: JsonDict, session: Session) -> None:
    if not sla_row.owner_customer_id:
        return
    credit = violation["credit"]
    inform_customer(
        session,
        customer_id=sla_row.owner_customer_id,
        subject=f"SLA not met in {assessment.period}: {assessment.metric}",
        content=(
            f"{sla_row.body.get('name')}: {violation['violation']['comment']}. "
            f"You are owed a credit of {credit['value']} {credit['unit']}, which your next "
            f"bill applies. Trouble ticket {violation['troubleTicket']['id']} follows it up."
        ),
        key=f"sla-violation/{violation['violationKey']}",
        related_entity=[
            {"id": violation["id"], "role": "slaViolation", "@referredType": "SlaViolation"}
        ],
    )
