"""3.9.3 acting on a churn risk: the account manager's retention task.

A retention task is a TMF683 ``partyInteraction`` of ``@type`` ``RetentionTask``
(``@baseType`` PartyInteraction), ``direction`` outbound, ``status`` open, routed to
the sales queue (``routedTo`` ``sales``). Its ``relatedParty`` names the customer and,
when the customer record names one (a ``relatedParty`` with role ``accountManager``),
the account manager. ``interactionItem`` 1 is the risk assessment that raised it, 2
the next best offer: an answered TMF680 ``queryProductRecommendation`` (3.4.5) for the
customer, whose first item the ``description`` names.

3.9.4 offers at the right moment (:mod:`etomcrm.retention.moments`): a resolved
problem, a contract's end ahead, an upgrade-worthy usage. Such a task
(:func:`open_offer_task`) has ``reason`` "Next best offer: ...", ``interactionItem`` 1
the answered TMF680 query with the offer (``item.name`` names the offer: product and
site), and says in its ``description`` why now and what the offer is worth. A customer
never gets a second open task (of either kind) for the same offer.

The sales work list: ``GET /tmf-api/partyInteraction/v4/partyInteraction?@type=
RetentionTask&routedTo=sales&status=open``; an account manager's own:
``...&relatedParty.id=<their party id>``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.core import resources
from etomcrm.core.errors import NotFound
from etomcrm.core.models import IdempotencyRecord
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import CustomerRow, PartyInteractionRow
from etomcrm.customer_interface.service import PARTY_INTERACTION_KIND
from etomcrm.retention.models import PartyRoleRiskAssessmentRow
from etomcrm.retention.recommendations import (
    characteristic,
    offer_name,
    recommend_for_customer,
    recommendation_items,
)
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
    offer_ref: JsonDict = {
        "id": offer["id"],
        "@referredType": "QueryProductRecommendation",
        "role": "nextBestOffer",
    }
    if items:
        offer_ref["name"] = offer_name(items[0])
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
                "item": offer_ref,
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


def _parties(customer: CustomerRow) -> list[JsonDict]:
    parties: list[JsonDict] = [
        {"id": customer.id, "name": customer.name, "@referredType": "Customer", "role": "customer"}
    ]
    manager = _account_manager(customer.body)
    if manager is not None:
        parties.append(manager)
    return parties


def open_offers(session: Session, customer_id: str) -> set[str]:
    """The offers (product and site) the customer's open retention tasks carry."""
    bodies = session.scalars(
        select(PartyInteractionRow.body).where(
            PartyInteractionRow.owner_customer_id == customer_id,
            PartyInteractionRow.status == "open",
        )
    )
    return {
        str(entry["item"]["name"])
        for body in bodies
        if body.get("@type") == RETENTION_TASK_TYPE
        for entry in body.get("interactionItem") or []
        if isinstance(entry, dict)
        and isinstance(entry.get("item"), dict)
        and entry["item"].get("role") == "nextBestOffer"
        and entry["item"].get("name")
    }


def open_offer_task(
    session: Session,
    customer_id: str,
    *,
    moment: str,
    key: str,
    rules: frozenset[str] | None = None,
) -> JsonDict | None:
    """3.9.4 Personalise Customer Profiles (eTOM 1.1.1.9.4), optimise: at the right
    moment (``moment`` says why now), the account manager's retention task carrying the
    customer's next best offer (among the items of ``rules`` when given).

    None when there is nothing to offer or an open task already carries the same offer.
    ``key`` names the moment: one task per moment, even after the first was closed."""
    # Locked: two moments of one customer at once must not both find no open task.
    customer = session.scalars(
        select(CustomerRow).where(CustomerRow.id == customer_id).with_for_update()
    ).first()
    if customer is None:
        raise NotFound(f"no customer with id {customer_id}")
    if session.get(IdempotencyRecord, (SYSTEM.id, f"offer-task:{key}")) is not None:
        return None  # this moment gave its task already (cheap: the usage tick repeats)
    items = [
        i
        for i in recommendation_items(session, customer_id)
        if rules is None or characteristic(i, "recommendationRule") in rules
    ]
    if not items:
        return None
    wanted = offer_name(items[0])
    if wanted in open_offers(session, customer_id):
        return None
    offer = recommend_for_customer(session, SYSTEM, customer_id, idempotency_key=f"offer:{key}")
    chosen = next(
        (i for i in offer.get("recommendationItem") or [] if offer_name(i) == wanted), items[0]
    )
    product = chosen["product"]
    worth = characteristic(chosen, "expectedValueExplanation")
    payload: JsonDict = {
        "@type": RETENTION_TASK_TYPE,
        "@baseType": "PartyInteraction",
        "reason": f"Next best offer: {wanted}",
        "description": f"Offer {wanted} to {customer.name or customer_id}. Why now: {moment}. "
        f"Why this product: {product.get('description')}. Worth: {worth}",
        "direction": "outbound",
        "channel": [{"id": "accountManagement", "name": "account management"}],
        "status": "open",
        "routedTo": RETENTION_QUEUE.value,
        "relatedParty": _parties(customer),
        "interactionItem": [
            {
                "id": "1",
                "reason": f"next best offer ({moment})",
                "item": {
                    "id": offer["id"],
                    "name": wanted,
                    "@referredType": "QueryProductRecommendation",
                    "role": "nextBestOffer",
                },
            }
        ],
    }
    task, _, _ = resources.create(
        session, PARTY_INTERACTION_KIND, SYSTEM, payload, idempotency_key=f"offer-task:{key}"
    )
    return task
