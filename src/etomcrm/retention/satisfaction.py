"""3.9.5 Validate customer satisfaction: short surveys after orders and problems.

A survey is a TMF683 ``partyInteraction`` of ``@type`` ``SatisfactionSurvey``
(outbound, ``status`` ``open`` until answered, then ``completed``). It names what it
asks about (the order or ticket) in ``interactionItem`` and carries, as extension
attributes, its ``question`` list (CSAT 1-5, NPS 0-10, a free comment), the sender's
``surveyKey`` and, once answered, ``surveyAnswer`` (csat, nps, comment, answeredAt,
answeredBy).

NPS follows its usual definition: promoters answer 9-10, detractors 0-6; NPS is the
percentage of promoters minus the percentage of detractors (-100 to 100).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.core import resources
from etomcrm.core.clock import iso
from etomcrm.core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.communication import inform_customer
from etomcrm.customer_interface.models import CustomerRow, PartyInteractionRow
from etomcrm.customer_interface.service import PARTY_INTERACTION_KIND
from etomcrm.db import utcnow
from etomcrm.security.service import SYSTEM, Principal, Role

SURVEY_TYPE = "SatisfactionSurvey"
CSAT_RANGE = (1, 5)
NPS_RANGE = (0, 10)
PROMOTER_FROM = 9
DETRACTOR_TO = 6
MAX_COMMENT = 2000
QUESTIONS = [
    {
        "id": "csat",
        "text": "How satisfied are you with what we did? (1 = very dissatisfied, 5 = very "
        "satisfied)",
        "minimum": CSAT_RANGE[0],
        "maximum": CSAT_RANGE[1],
    },
    {
        "id": "nps",
        "text": "How likely are you to recommend us to a colleague? (0 = not at all, 10 = "
        "extremely likely)",
        "minimum": NPS_RANGE[0],
        "maximum": NPS_RANGE[1],
    },
    {"id": "comment", "text": "What should we do better?"},
]
# Staff who take an answer on the phone record it for the customer.
ANSWER_RECORDERS = frozenset({Role.ADMIN, Role.SUPPORT, Role.SALES, Role.ORDER_MANAGER})
HUNDRED = Decimal(100)
TENTH = Decimal("0.1")
CENT = Decimal("0.01")


def send_survey(session: Session, *, customer_id: str, about: JsonDict, key: str) -> JsonDict:
    """3.9.5 Validate Customer Satisfaction (eTOM 1.1.1.9.5): ask for the customer's view.

    ``about`` is a reference to what the survey follows up (``{"id": ...,
    "@referredType": "ProductOrder"}`` or ``"TroubleTicket"``). Sent once per ``key``:
    a flow step that runs again gets the first survey back. The customer is told by a
    service message (TMF681).
    """
    if not key.strip():
        raise InvalidRequest("a survey needs a key that makes sending it idempotent")
    if (
        not isinstance(about, dict)
        or not isinstance(about.get("id"), str)
        or not isinstance(about.get("@referredType"), str)
    ):
        raise InvalidRequest(
            'a survey asks about an order or a ticket: {"id": ..., "@referredType": ...}'
        )
    if session.get(CustomerRow, customer_id) is None:
        raise NotFound(f"no customer with id {customer_id}")
    subject = f"How did we do? ({about['@referredType']} {about.get('name') or about['id']})"
    payload: JsonDict = {
        "@type": SURVEY_TYPE,
        "@baseType": "PartyInteraction",
        "reason": "Satisfaction survey",
        "description": subject,
        "direction": "outbound",
        "channel": [{"id": "email", "name": "email"}],
        "status": "open",
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "interactionItem": [
            {"id": "1", "reason": "surveyed", "item": {**about, "role": "surveyedEntity"}}
        ],
        "question": QUESTIONS,
        "surveyKey": key,
    }
    survey, _, _ = resources.create(
        session, PARTY_INTERACTION_KIND, SYSTEM, payload, idempotency_key=f"survey:{key}"
    )
    # Imported here: customer_interface must not depend on retention at import time.

    inform_customer(
        session,
        customer_id=customer_id,
        subject=subject,
        content=(
            "Thank you for working with us. Two questions, one minute: how satisfied are you "
            "(1 to 5), and how likely are you to recommend us (0 to 10)? Answer in the "
            f"customer portal under your contacts, survey {survey['id']}."
        ),
        key=f"survey:{key}",
        related_entity=[
            {"id": survey["id"], "role": "satisfactionSurvey", "@referredType": "PartyInteraction"}
        ],
    )
    return survey


def survey_sent_for(session: Session, key: str) -> JsonDict | None:
    """The survey ``send_survey`` sent for ``key``, or None."""
    found, _ = resources.list_resources(
        session, PARTY_INTERACTION_KIND, SYSTEM, {"surveyKey": [key]}, 0, 1
    )
    return found[0] if found else None


def _check_range(name: str, value: int, bounds: tuple[int, int]) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (bounds[0] <= value <= bounds[1])
    ):
        raise InvalidRequest(
            f"{name} must be a whole number from {bounds[0]} to {bounds[1]}, not {value!r}"
        )


def answer_survey(
    session: Session,
    principal: Principal,
    survey_id: str,
    *,
    csat: int,
    nps: int,
    comment: str = "",
) -> JsonDict:
    """3.9.5 Validate Customer Satisfaction (eTOM 1.1.1.9.5): record the customer's answer.

    A customer answers its own survey (another's is not found); staff may record an
    answer given on the phone. Out-of-range scores are a 400, a second answer a 409.
    """
    if not principal.is_customer and principal.role not in ANSWER_RECORDERS:
        raise Forbidden(f"the role {principal.role.value!r} may not record survey answers")
    _check_range("csat", csat, CSAT_RANGE)
    _check_range("nps", nps, NPS_RANGE)
    if len(comment) > MAX_COMMENT:
        raise InvalidRequest(f"the comment has {len(comment)} characters; at most {MAX_COMMENT}")
    current, _ = resources.get(session, PARTY_INTERACTION_KIND, principal, survey_id)
    if current.get("@type") != SURVEY_TYPE:
        raise NotFound(f"no satisfaction survey with id {survey_id}")
    # Locked, so two answers sent at once cannot both find the survey open.
    locked = session.scalar(
        select(PartyInteractionRow.body)
        .where(PartyInteractionRow.id == survey_id)
        .with_for_update()
    )
    if locked is None or locked.get("status") != "open":
        answered = (locked or {}).get("surveyAnswer", {}).get("answeredAt", "earlier")
        raise Conflict(f"survey {survey_id} was answered already ({answered}); thank you")
    now = iso(utcnow())
    answer: JsonDict = {"csat": csat, "nps": nps, "answeredAt": now, "answeredBy": principal.name}
    if comment.strip():
        answer["comment"] = comment.strip()
    # The customer may not change interactions itself; the house records its answer,
    # naming who gave it in answeredBy.
    body, _ = resources.patch(
        session,
        PARTY_INTERACTION_KIND,
        SYSTEM,
        survey_id,
        {"status": "completed", "statusChangeDate": now, "surveyAnswer": answer},
    )
    return body


def _summary(answers: list[JsonDict]) -> JsonDict:
    count = len(answers)
    promoters = sum(1 for a in answers if a["nps"] >= PROMOTER_FROM)
    detractors = sum(1 for a in answers if a["nps"] <= DETRACTOR_TO)
    summary: JsonDict = {
        "count": count,
        "promoters": promoters,
        "passives": count - promoters - detractors,
        "detractors": detractors,
        "averageCsat": None,
        "nps": None,
    }
    if count:
        average = Decimal(sum(a["csat"] for a in answers)) / count
        nps = (Decimal(promoters - detractors) * HUNDRED) / count
        summary["averageCsat"] = str(average.quantize(CENT))
        summary["nps"] = str(nps.quantize(TENTH))
    return summary


def satisfaction_report(session: Session, *, since: datetime | None = None) -> JsonDict:
    """3.9.5 Validate Customer Satisfaction (eTOM 1.1.1.9.5): how satisfied customers are.

    Answers given since ``since`` (all when None): their count, average CSAT and NPS,
    overall and per customer (decimal strings).
    """
    if since is not None and since.tzinfo is None:
        raise InvalidRequest("since needs a time zone, e.g. 2026-01-01T00:00:00Z")
    per_customer: dict[str, list[JsonDict]] = defaultdict(list)
    everyone: list[JsonDict] = []
    rows = session.execute(
        select(PartyInteractionRow.owner_customer_id, PartyInteractionRow.body)
        .where(
            PartyInteractionRow.at_type == SURVEY_TYPE,
            PartyInteractionRow.status == "completed",
        )
        .order_by(PartyInteractionRow.id)
    )
    for owner, body in rows:
        answer = body.get("surveyAnswer") or {}
        if since is not None and datetime.fromisoformat(answer["answeredAt"]) < since:
            continue
        everyone.append(answer)
        per_customer[owner or ""].append(answer)
    report = _summary(everyone)
    report["since"] = iso(since.astimezone(UTC)) if since is not None else None
    report["perCustomer"] = [
        {"customerId": customer_id, **_summary(answers)}
        for customer_id, answers in sorted(per_customer.items())
    ]
    return report


def customer_satisfaction(session: Session, customer_id: str) -> JsonDict:
    """3.9.5 Validate Customer Satisfaction (eTOM 1.1.1.9.5): one customer's standing.

    Its answered surveys' count, average CSAT and NPS (as :func:`satisfaction_report`),
    the latest answer (csat, nps, comment, answeredAt; None before the first) and how
    many surveys wait for an answer: one query.
    """
    answers: list[JsonDict] = []
    waiting = 0
    for status, body in session.execute(
        select(PartyInteractionRow.status, PartyInteractionRow.body).where(
            PartyInteractionRow.owner_customer_id == customer_id,
            PartyInteractionRow.at_type == SURVEY_TYPE,
        )
    ):
        answer = (body or {}).get("surveyAnswer")
        if status == "completed" and isinstance(answer, dict):
            answers.append(answer)
        elif status == "open":
            waiting += 1
    standing = _summary(answers)
    standing["open"] = waiting
    standing["latest"] = max(answers, key=lambda a: str(a.get("answeredAt")), default=None)
    return standing
