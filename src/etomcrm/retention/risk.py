"""3.9.3 Analyse and manage customer risk: churn risk and bad-debt risk per customer,
with the reasons, as TMF696 ``partyRoleRiskAssessment`` records.

Each assessment is a new record (never changed or deleted): ``status`` ``succeeded``,
``partyRole`` the customer, ``riskAssessmentResult`` with two scores of 0-100 and the
higher one as ``overallScore``, valid for 30 days. ``characteristic`` names every input
and its value; extension attributes: ``reason`` (what raised or lowered each score, in
words), ``trigger`` (why the assessment ran, e.g. "SLA violation 123 resolved"),
``assessedBy`` and ``previousAssessment`` (the customer's assessment before this one).

TMF696's ``RiskType`` knows no churn: the bad-debt score is a ``RiskScore`` with
``riskName`` ``BadPaymentRisk``; the churn score is a ``ChurnRiskScore`` (``@baseType``
``RiskScore``) without ``riskName``. Both carry ``risk`` (``churn`` or ``badDebt``)
and ``level``.

Churn risk, in points, from the 12 months (365 days) before the assessment:

- 10 to start with: a customer we know nothing bad about is a low risk, not none;
- +15 per SLA violation of the customer;
- of its trouble tickets opened in those months (and older ones still open):
  +10 per ticket escalated (its ``escalation`` list is not empty), +10 per ticket
  reopened (a ``statusChange`` to ``inProgress`` after one to ``resolved``), +5 per
  ticket still open (not closed, cancelled, rejected or resolved);
- of its satisfaction survey answers (3.9.5): +15 per detractor (NPS 0-6), +10 per
  low CSAT (1 or 2), -10 per promoter (NPS 9-10);
- the total is kept within 0-100.

Bad-debt risk from the customer's latest ``creditProfile`` entry (3.5.2): its
``creditRiskRating`` 1 (low) ... 5 (high) gives 10, 30, 50, 70, 90. Without a credit
assessment the risk is 50: not known to be good or bad. Once billing has billed the
customer (3.8.5), how it really pays counts too: 10, +20 per bill paid late or still open
past its due date and +25 per returned direct debit in the 12 months, +10 while an
amount is open past its due date, within 0-100; the bad-debt risk is the higher of the
two, the reason naming the figures.

**The churn model replaces the rule** (seed 5.3, :mod:`etomcrm.analytics.churn`) when a
fitted model exists that was trained on enough history (setting ``churn_min_customers``,
200 labelled customers, with ``churn_min_per_outcome``, 20, of each outcome: churned and
stayed) and is better than chance (out-of-fold AUC at least ``churn_min_auc``, 0.6), and
the customer is in the analytical store. The churn score is then the model's calibrated
probability * 100, and its reason names the model and the features that pushed the
score up and down (each feature's exact share of the log-odds). Otherwise the rule above
gives the score and one more reason says why the rule was used, e.g. "churn rule used:
too little history (35 labelled customers ...)". The characteristics then carry
``churnScoredBy`` (``model vN`` or ``rule``) and the model's feature values.

Levels: low below 40, medium from 40, high from 70. When the churn level becomes high
(the customer's previous assessment was not high, or there was none), the domain event
``CustomerRiskRaised`` is recorded; its handler gives the account manager a retention
task with the next best offer (:mod:`etomcrm.retention.tasks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from etomcrm.analytics import churn as churn_model
from etomcrm.billing.payments import payment_history
from etomcrm.core import resources
from etomcrm.core.bus import record
from etomcrm.core.clock import ServiceClock, iso
from etomcrm.core.errors import InvalidRequest, NotFound
from etomcrm.core.resources import ResourceKind
from etomcrm.core.tmf_schemas import RISK_MANAGEMENT, JsonDict
from etomcrm.customer_interface.models import CustomerRow, PartyInteractionRow
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.qos_sla.models import SlaViolationRow
from etomcrm.retention.events import CustomerRiskRaised
from etomcrm.retention.models import PartyRoleRiskAssessmentRow
from etomcrm.retention.satisfaction import DETRACTOR_TO, PROMOTER_FROM, SURVEY_TYPE
from etomcrm.security.service import Principal, Role

RISK_READERS = frozenset(
    {Role.ADMIN, Role.SALES, Role.ANALYST, Role.BILLING, Role.SLA_MANAGER, Role.SUPPORT}
)
RISK_ASSESSORS = frozenset({Role.ADMIN, Role.SALES, Role.ANALYST, Role.BILLING})

WINDOW = timedelta(days=365)
VALID_DAYS = 30
CHURN, BAD_DEBT = "churn", "badDebt"
LOW, MEDIUM, HIGH = "low", "medium", "high"
MEDIUM_FROM, HIGH_FROM = 40, 70
MAX_SCORE = 100

CHURN_BASE = 10
PER_VIOLATION = 15
PER_ESCALATED = 10
PER_REOPENED = 10
PER_OPEN = 5
PER_DETRACTOR = 15
PER_LOW_CSAT = 10
PER_PROMOTER = -10
LOW_CSAT_TO = 2
NOT_OPEN = frozenset({"closed", "cancelled", "rejected", "resolved"})

BAD_DEBT_BY_RATING = {1: 10, 2: 30, 3: 50, 4: 70, 5: 90}
BAD_DEBT_UNKNOWN = 50
PAYER_BASE = 10
PER_LATE_BILL = 20
PER_RETURNED_DEBIT = 25
WHILE_OVERDUE = 10

# What a client may send: the customer, and why it asks. The rest is the result.
CLIENT_ATTRIBUTES = frozenset({"partyRole", "trigger", "@type"})
MAX_TRIGGER = 500
# Listed by name in a reason; the count says how many more there are.
NAMED_IN_REASON = 5

# The moment the service function assesses at; the API path leaves it unset (the clock).
_CLOCK = ServiceClock("risk_now")


def level(score: int) -> str:
    """low < 40 <= medium < 70 <= high."""
    if score >= HIGH_FROM:
        return HIGH
    return MEDIUM if score >= MEDIUM_FROM else LOW


def _capped(points: int) -> int:
    return max(0, min(MAX_SCORE, points))


def _named(labels: list[str]) -> str:
    shown = ", ".join(labels[:NAMED_IN_REASON])
    more = len(labels) - NAMED_IN_REASON
    return shown + (f" and {more} more" if more > 0 else "")


@dataclass
class _Churn:
    """The churn inputs of one customer, counted from its records."""

    violations: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    still_open: list[str] = field(default_factory=list)
    answers: int = 0
    detractors: int = 0
    low_csat: int = 0
    promoters: int = 0

    def score_and_reasons(self) -> tuple[int, list[str]]:
        points = CHURN_BASE
        reasons: list[str] = []

        def add(count: int, each: int, text: str) -> None:
            nonlocal points
            if count:
                points += count * each
                sign = "+" if each > 0 else "-"
                reasons.append(f"churn {sign}{abs(count * each)}: {text}")

        add(
            len(self.violations),
            PER_VIOLATION,
            f"{len(self.violations)} SLA violation(s) in the last 12 months "
            f"({_named(self.violations)})",
        )
        add(
            len(self.escalated),
            PER_ESCALATED,
            f"{len(self.escalated)} trouble ticket(s) escalated ({_named(self.escalated)})",
        )
        add(
            len(self.reopened),
            PER_REOPENED,
            f"{len(self.reopened)} trouble ticket(s) reopened after a resolution "
            f"({_named(self.reopened)})",
        )
        add(
            len(self.still_open),
            PER_OPEN,
            f"{len(self.still_open)} trouble ticket(s) still open ({_named(self.still_open)})",
        )
        add(
            self.detractors,
            PER_DETRACTOR,
            f"{self.detractors} survey answer(s) from a detractor (NPS {DETRACTOR_TO} or less)",
        )
        add(
            self.low_csat,
            PER_LOW_CSAT,
            f"{self.low_csat} survey answer(s) with a low satisfaction (CSAT {LOW_CSAT_TO} "
            "or less)",
        )
        add(
            self.promoters,
            PER_PROMOTER,
            f"{self.promoters} survey answer(s) from a promoter (NPS {PROMOTER_FROM} or more)",
        )
        if not reasons:
            reasons.append(
                f"churn {CHURN_BASE}: no SLA violations, escalated, reopened or open tickets "
                "and no survey answers in the last 12 months"
            )
        return _capped(points), reasons

    def characteristics(self) -> list[JsonDict]:
        counts = (
            ("slaViolationsLast12Months", len(self.violations)),
            ("escalatedTickets", len(self.escalated)),
            ("reopenedTickets", len(self.reopened)),
            ("openTickets", len(self.still_open)),
            ("surveyAnswersLast12Months", self.answers),
            ("detractorAnswers", self.detractors),
            ("lowCsatAnswers", self.low_csat),
            ("promoterAnswers", self.promoters),
        )
        return [{"name": n, "valueType": "integer", "value": v} for n, v in counts]


def _was_reopened(history: Any) -> bool:
    resolved = False
    for entry in history if isinstance(history, list) else []:
        status = entry.get("status") if isinstance(entry, dict) else None
        if status == "resolved":
            resolved = True
        elif status == "inProgress" and resolved:
            return True
    return False


def _churn_inputs(session: Session, customer_id: str, since: datetime, now: datetime) -> _Churn:
    """One query per source, however many records the customer has."""
    churn = _Churn()
    violations = session.execute(
        select(SlaViolationRow.id, SlaViolationRow.body)
        .where(
            SlaViolationRow.owner_customer_id == customer_id,
            SlaViolationRow.created_at >= since,
            SlaViolationRow.created_at <= now,
        )
        .order_by(SlaViolationRow.created_at, SlaViolationRow.id)
    )
    for violation_id, body in violations:
        metric, period = body.get("metric"), body.get("period")
        churn.violations.append(f"{metric} {period}" if metric and period else str(violation_id))
    tickets = session.execute(
        select(TroubleTicketRow.id, TroubleTicketRow.status, TroubleTicketRow.body)
        .where(
            TroubleTicketRow.owner_customer_id == customer_id,
            TroubleTicketRow.created_at <= now,
            or_(
                TroubleTicketRow.created_at >= since,
                TroubleTicketRow.status.not_in(NOT_OPEN),
            ),
        )
        .order_by(TroubleTicketRow.created_at, TroubleTicketRow.id)
    )
    for ticket_id, status, body in tickets:
        label = f"'{body['name']}'" if body.get("name") else str(ticket_id)
        if body.get("escalation"):
            churn.escalated.append(label)
        if _was_reopened(body.get("statusChange")):
            churn.reopened.append(label)
        if status not in NOT_OPEN:
            churn.still_open.append(label)
    surveys = session.scalars(
        select(PartyInteractionRow.body).where(
            and_(
                PartyInteractionRow.owner_customer_id == customer_id,
                PartyInteractionRow.at_type == SURVEY_TYPE,
                PartyInteractionRow.status == "completed",
                # an answer is the survey's last change: answered after `since` means
                # changed after it
                PartyInteractionRow.updated_at >= since,
            )
        )
    )
    for body in surveys:
        answer = body.get("surveyAnswer") or {}
        try:
            answered = datetime.fromisoformat(str(answer.get("answeredAt")))
            csat, nps = int(answer["csat"]), int(answer["nps"])
        except (KeyError, TypeError, ValueError):
            continue
        if not since <= answered <= now:
            continue
        churn.answers += 1
        churn.detractors += int(nps <= DETRACTOR_TO)
        churn.promoters += int(nps >= PROMOTER_FROM)
        churn.low_csat += int(csat <= LOW_CSAT_TO)
    return churn


def _profile_date(entry: JsonDict) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(entry.get("creditProfileDate")))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _bad_debt(customer: JsonDict, now: datetime) -> tuple[int, str, list[JsonDict]]:
    """The score, its reason and the characteristics naming its inputs."""
    dated = [
        (moment, entry)
        for entry in customer.get("creditProfile") or []
        if isinstance(entry, dict)
        and (moment := _profile_date(entry)) is not None
        and moment <= now
    ]
    latest = max(dated, key=lambda pair: pair[0])[1] if dated else None
    rating = latest.get("creditRiskRating") if latest else None
    date = latest.get("creditProfileDate") if latest else None
    inputs = [
        {"name": "creditRiskRating", "valueType": "integer", "value": rating},
        {"name": "creditProfileDate", "valueType": "string", "value": date},
    ]
    if latest is None:
        return BAD_DEBT_UNKNOWN, f"bad debt {BAD_DEBT_UNKNOWN}: no credit assessment yet", inputs
    if isinstance(rating, bool) or not isinstance(rating, int) or rating not in BAD_DEBT_BY_RATING:
        return (
            BAD_DEBT_UNKNOWN,
            f"bad debt {BAD_DEBT_UNKNOWN}: the credit assessment of {date} has no risk "
            f"rating of 1 to 5 ({rating!r})",
            inputs,
        )
    score = BAD_DEBT_BY_RATING[rating]
    outcome = f", {latest['outcome']}" if latest.get("outcome") else ""
    return (
        score,
        f"bad debt {score}: credit risk rating {rating} of 5 in the credit assessment of "
        f"{date}{outcome}",
        inputs,
    )


def _payer_risk(
    session: Session, customer_id: str, now: datetime
) -> tuple[int | None, str, list[JsonDict]]:
    """The bad-debt score from how the customer paid its bills (None: never billed)."""
    history = payment_history(session, customer_id, today=now.date())
    if history.bills_issued == 0 and history.returns == 0 and not history.open_balance:
        return None, "", []
    points = (
        PAYER_BASE
        + PER_LATE_BILL * history.late
        + PER_RETURNED_DEBIT * history.returns
        + (WHILE_OVERDUE if history.overdue_open else 0)
    )
    score = _capped(points)
    inputs: list[JsonDict] = [
        {"name": "openBalance", "valueType": "string", "value": str(history.open_balance)},
        {"name": "billsDue", "valueType": "integer", "value": history.bills_issued},
        {"name": "billsPaidLate", "valueType": "integer", "value": history.paid_late},
        {"name": "billsOverdue", "valueType": "integer", "value": history.overdue_open},
        {"name": "returnedDebits", "valueType": "integer", "value": history.returns},
    ]
    reason = (
        f"bad debt {score}: of {history.bills_issued} bill(s) due in 12 months "
        f"{history.paid_late} paid late, {history.overdue_open} open past due; "
        f"{history.returns} direct debit(s) returned; open balance {history.open_balance} EUR"
    )
    return score, reason, inputs


def _previous(session: Session, customer_id: str) -> JsonDict | None:
    body: JsonDict | None = session.scalar(
        select(PartyRoleRiskAssessmentRow.body)
        .where(PartyRoleRiskAssessmentRow.owner_customer_id == customer_id)
        .order_by(
            PartyRoleRiskAssessmentRow.created_at.desc(), PartyRoleRiskAssessmentRow.id.desc()
        )
        .limit(1)
    )
    return body


def _scores_of(body: JsonDict) -> dict[str, Any]:
    result = body.get("riskAssessmentResult") or {}
    return {
        str(s["risk"]): s
        for s in result.get("score") or []
        if isinstance(s, dict) and s.get("risk") in (CHURN, BAD_DEBT)
    }


def _summary(body: JsonDict) -> JsonDict:
    scores = _scores_of(body)
    summary: JsonDict = {"id": body["id"]}
    start = (body.get("riskAssessmentResult") or {}).get("validFor", {}).get("startDateTime")
    if start:
        summary["assessmentDate"] = start
    for risk in (CHURN, BAD_DEBT):
        if risk in scores:
            summary[f"{risk}Score"] = scores[risk].get("score")
            summary[f"{risk}Level"] = scores[risk].get("level")
    return summary


def _check_request(body: JsonDict) -> str:
    """The customer id the client asks about; refuses anything it may not set."""
    refused = sorted(set(body) - CLIENT_ATTRIBUTES - {"id"})
    if refused:
        raise InvalidRequest(
            "an assessment is computed by etomcrm: send partyRole (the customer) and "
            f"optionally trigger (why you ask), not {', '.join(refused)}"
        )
    if body.get("@type", "PartyRoleRiskAssessment") != "PartyRoleRiskAssessment":
        raise InvalidRequest(f"@type must be PartyRoleRiskAssessment, not {body['@type']!r}")
    party = body.get("partyRole")
    if not isinstance(party, dict) or not isinstance(party.get("id"), str) or not party["id"]:
        raise InvalidRequest('name the customer: "partyRole": {"id": ..., "@referredType": ...}')
    if party.get("@referredType") != "Customer":
        raise InvalidRequest(
            "etomcrm assesses customers: partyRole needs @referredType Customer, not "
            f"{party.get('@referredType')!r}"
        )
    trigger = body.get("trigger")
    if trigger is not None and (
        not isinstance(trigger, str) or not trigger.strip() or len(trigger) > MAX_TRIGGER
    ):
        raise InvalidRequest(
            f"trigger must be a text of 1 to {MAX_TRIGGER} characters saying why you ask"
        )
    return str(party["id"])


def _model_or_rule(
    session: Session, customer_id: str, now: datetime, rule: int, reasons: list[str]
) -> tuple[int, list[str], list[JsonDict]]:
    """The churn model's score and reason where it may replace the rule, else the rule's
    with one more reason saying why the rule was used."""
    model = churn_model.current_model(session)
    why_not = churn_model.usable(model)
    if why_not is None and model is not None:
        rows = churn_model.customer_features(session, [customer_id], now)
        if customer_id in rows:
            explained = churn_model.explain(model, rows[customer_id].reshape(1, -1))[0]
            auc = float(model.evaluation["auc"])
            reason = (
                f"churn {explained.score}: churn model v{model.version} (fitted "
                f"{model.trained_at.date().isoformat()} on {model.customers} customers, "
                f"out-of-fold AUC {auc:.2f}) gives a probability of "
                f"{explained.probability:.0%}; {explained.reason()}"
            )
            inputs: list[JsonDict] = [
                {
                    "name": "churnScoredBy",
                    "valueType": "string",
                    "value": f"model v{model.version}",
                },
                *(
                    {"name": f"model:{name}", "valueType": "number", "value": round(float(v), 4)}
                    for name, v in zip(model.features, rows[customer_id], strict=True)
                ),
            ]
            return explained.score, [reason], inputs
        why_not = "the customer is not in the analytical store yet"
    if model is None:
        size = churn_model.history_size(session, now)
        why_not = (
            size.too_little()
            if not size.enough()
            else f"{why_not} ({size.customers} labelled customers)"
        )
    scored_by = [{"name": "churnScoredBy", "valueType": "string", "value": "rule"}]
    return rule, [*reasons, f"churn rule used: {why_not}"], scored_by


@dataclass
class PartyRoleRiskAssessmentKind(ResourceKind):
    """Staff only. Creating one runs 3.9.3 (the client names the customer, etomcrm
    computes the rest); an assessment is a record, never changed or deleted."""

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        return str(body["partyRole"]["id"])

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        customer_id = _check_request(body)
        now = _CLOCK.now()
        if now.tzinfo is None:
            raise InvalidRequest("the moment of an assessment needs a time zone")
        # Locked: two assessments of one customer at once must not both find the
        # previous one below high and both tell the account team.
        found = session.execute(
            select(CustomerRow.name, CustomerRow.body)
            .where(CustomerRow.id == customer_id)
            .with_for_update()
        ).first()
        if found is None:
            raise NotFound(f"no customer with id {customer_id}")
        name, customer = found
        previous = _previous(session, customer_id)
        churn_inputs = _churn_inputs(session, customer_id, now - WINDOW, now)
        churn, churn_reasons = churn_inputs.score_and_reasons()
        churn, churn_reasons, model_inputs = _model_or_rule(
            session, customer_id, now, churn, churn_reasons
        )
        bad_debt, bad_debt_reason, credit_inputs = _bad_debt(customer, now)
        paid, paid_reason, paid_inputs = _payer_risk(session, customer_id, now)
        credit_inputs = [*credit_inputs, *paid_inputs]
        if paid is not None and paid > bad_debt:
            bad_debt, bad_debt_reason = paid, paid_reason
        party: JsonDict = {"id": customer_id, "@referredType": "Customer", "role": "customer"}
        if name:
            party["name"] = name
        body["partyRole"] = party
        body["@type"] = self.type_name
        body["status"] = "succeeded"
        body["riskAssessmentResult"] = {
            "@type": "RiskAssessmentResult",
            "overallScore": max(churn, bad_debt),
            "score": [
                {
                    "@type": "ChurnRiskScore",
                    "@baseType": "RiskScore",
                    "risk": CHURN,
                    "score": churn,
                    "level": level(churn),
                },
                {
                    "@type": "RiskScore",
                    "riskName": "BadPaymentRisk",
                    "risk": BAD_DEBT,
                    "score": bad_debt,
                    "level": level(bad_debt),
                },
            ],
            "validFor": {
                "startDateTime": iso(now),
                "endDateTime": iso(now + timedelta(days=VALID_DAYS)),
            },
        }
        body["characteristic"] = [
            {"name": "assessedFrom", "valueType": "string", "value": iso(now - WINDOW)},
            *churn_inputs.characteristics(),
            *model_inputs,
            *credit_inputs,
        ]
        body["reason"] = [*churn_reasons, bad_debt_reason]
        body["trigger"] = body.get("trigger") or f"requested by {principal.name}"
        body["assessedBy"] = principal.name
        if previous is not None:
            body["previousAssessment"] = _summary(previous)

    def after_save(
        self, session: Session, principal: Principal, body: JsonDict, owner: str | None
    ) -> None:
        churn = _scores_of(body)[CHURN]
        before = (body.get("previousAssessment") or {}).get(f"{CHURN}Level")
        if churn["level"] != HIGH or before == HIGH or owner is None:
            return
        record(session, CustomerRiskRaised(customer_id=owner, assessment_id=str(body["id"])))


PARTY_ROLE_RISK_ASSESSMENT_KIND = PartyRoleRiskAssessmentKind(
    name="partyRoleRiskAssessment",
    type_name="PartyRoleRiskAssessment",
    doc=RISK_MANAGEMENT,
    row=PartyRoleRiskAssessmentRow,
    read_roles=RISK_READERS,
    write_roles=RISK_ASSESSORS,
    name_attribute=None,
    changeable=False,
    extensions={
        "trigger": resources.TEXT,
        "reason": resources.TEXT_LIST,
        "assessedBy": resources.TEXT,
    },
)


def assess_customer_risk(
    session: Session,
    principal: Principal,
    customer_id: str,
    *,
    reason: str,
    now: datetime | None = None,
) -> JsonDict:
    """3.9.3 Analyse and Manage Customer Risk (eTOM 1.1.1.9.3): score the customer's
    churn and bad-debt risk with the reasons (the rule of the module docstring), record
    it as a TMF696 partyRoleRiskAssessment and return it; ``reason`` says why it ran.

    Staff of the assessing roles (or SYSTEM) only; NotFound for an unknown customer.
    A churn risk that became high records ``CustomerRiskRaised`` (a retention task).
    """
    payload: JsonDict = {
        "partyRole": {"id": customer_id, "@referredType": "Customer"},
        "trigger": reason,
    }
    with _CLOCK.at(now):
        body, _, _ = resources.create(session, PARTY_ROLE_RISK_ASSESSMENT_KIND, principal, payload)
    return body
