"""3.9.3 acting on a churn risk: the account manager's retention task.

A retention task is a TMF683 ``partyInteraction`` of ``@type`` ``RetentionTask``
(``@baseType`` PartyInteraction), ``direction`` outbound, ``status`` open, routed to
the sales queue (``routedTo`` ``sales``). Its ``relatedParty`` names the customer and,
when the customer record names one (a ``relatedParty`` with role ``accountManager``),
the account manager. ``interactionItem`` 1 is the risk assessment that raised it, 2
the next best offer: an answered TMF680 ``queryProductRecommendation`` (3.4.5) for the
customer, whose first item the ``description`` names.

The sales work list: ``GET /tmf-api/partyInteraction/v4/partyInteraction?@type=
RetentionTask&routedTo=sales&status=open``; an account manager's own:
``...&relatedParty.id=<their party id>``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from etomcrm.core import resources
from etomcrm.core.errors import NotFound
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.customer_interface.service import PARTY_INTERACTION_KIND
from etomcrm.retention.models import PartyRoleRiskAssessmentRow
from etomcrm.retention.recommendations import recommend_for_customer
from etomcrm.security.service import SYSTEM, Role

RETENTION_TASK_TYPE = "RetentionTask"
RETENTION_QUEUE = Role.SALES
ACCOUNT_MANAGER_ROLES = frozenset({"accountmanager", "account manager"})


def _account_manager(customer: JsonDict) -> JsonDict | None:
    for party in customer.get("relatedParty") or []:
        if (
            isinstance(party, dict)
            and str(party.get("role", "")).strip().lower() in ACCOUNT_MANAGER_ROLES
            and party.get("id")
        ):
            manager = {k: v for k, v in party.items() if k in ("id", "name", "@referredType")}
            return {**manager, "role": "accountManager"}
    return None


def _churn(assessment: JsonDict) -> dict[str, Any]:
    for score in (assessment.get("riskAssessmentResult") or {}).get("score") or []:
        if isinstance(score, dict) and score.get("risk") == "churn":
            return score
    return {}


def open_retention_task(session: Session, customer_id: str, assessment_id: str) -> JsonDict:
    """3.9.3 Analyse and Manage Customer Risk (eTOM 1.1.1.9.3): a churn risk that became
    high is the account manager's task, with the next best offer (3.4.5) attached.
    Once per assessment: asked again, the first task is returned."""
    customer = session.get(CustomerRow, customer_id)
    assessment = session.get(PartyRoleRiskAssessmentRow, assessment_id)
    if customer is None or assessment is None:
        raise NotFound(f"no customer {customer_id} with risk assessment {assessment_id}")
    offer = recommend_for_customer(
        session, SYSTEM, customer_id, idempotency_key=f"retention-offer:{assessment_id}"
    )
    items = offer.get("recommendationItem") or []
    best = (
        f"{items[0]['product']['name']}: {items[0]['product']['description']}"
        if items
        else "nothing from the installed base; ask the customer what it misses"
    )
    churn = _churn(assessment.body)
    reasons = "; ".join(r for r in assessment.body.get("reason") or [] if r.startswith("churn"))
    parties: list[JsonDict] = [
        {"id": customer_id, "name": customer.name, "@referredType": "Customer", "role": "customer"}
    ]
    manager = _account_manager(customer.body)
    if manager is not None:
        parties.append(manager)
    payload: JsonDict = {
        "@type": RETENTION_TASK_TYPE,
        "@baseType": "PartyInteraction",
        "reason": f"Retention: churn risk high ({churn.get('score')})",
        "description": f"The churn risk of {customer.name or customer_id} rose to high "
        f"({churn.get('score')}). Why: {reasons}. Next best offer: {best}",
        "direction": "outbound",
        "channel": [{"id": "accountManagement", "name": "account management"}],
        "status": "open",
        "routedTo": RETENTION_QUEUE.value,
        "relatedParty": parties,
        "interactionItem": [
            {
                "id": "1",
                "reason": "churn risk assessment",
                "item": {
                    "id": assessment_id,
                    "@referredType": "PartyRoleRiskAssessment",
                    "role": "riskAssessment",
                },
            },
            {
                "id": "2",
                "reason": f"next best offer: {best}",
                "item": {
                    "id": offer["id"],
                    "@referredType": "QueryProductRecommendation",
                    "role": "nextBestOffer",
                },
            },
        ],
    }
    task, _, _ = resources.create(
        session,
        PARTY_INTERACTION_KIND,
        SYSTEM,
        payload,
        idempotency_key=f"retention-task:{assessment_id}",
    )
    return task
