"""3.4.5 Cross/up-selling: TMF680 product recommendations from the installed base.

A ``queryProductRecommendation`` names a customer (``relatedParty``); posting it
answers it at once (``state`` ``done``) with ``recommendationItem[]`` computed from the
customer's active TMF637 products. The rules, per product:

1. **Gold SLA** (priority 1): ``ticketsLast90Days`` ≥ 3 on a site whose ``slaLevel`` is
   not Gold: frequent faults are cheaper for the customer with a 4 h time to repair.
2. **Higher bandwidth** (priority 2): ``monthlyVolumeGB`` is 80 % or more of
   ``includedVolumeGB`` and ``bandwidthMbit`` is below the top tier: the next tier of
   :data:`BANDWIDTH_TIERS` before the site runs into usage charges or congestion.
3. **Managed router** (priority 3): ``managedRouter`` is false (the customer runs its
   own router), or ``routerAgeMonths`` is 60 or more (end of support).

Characteristics are TMF637 ``productCharacteristic`` entries. Each item proposes a
product (by value) at the same place, related to the product it upgrades, with the
reason in its ``description`` and in the characteristic ``recommendationReason``; the
item names the catalog offering when one of the names in :data:`OFFERING_NAMES` exists.

A query is answered once and does not change afterwards: post a new one for fresh
recommendations. TMF680 has no update operation; the served document adds an empty
``QueryProductRecommendation_Update`` so the shared routes stay well-formed, and every
change is refused.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from etomcrm.catalog.models import ProductOfferingRow
from etomcrm.core import resources
from etomcrm.core.errors import Conflict, InvalidRequest, NotFound
from etomcrm.core.json_filters import document_path_equals
from etomcrm.core.resources import CREATE, READ, RefSpec, ResourceKind
from etomcrm.core.tmf_schemas import PRODUCT_INVENTORY, RECOMMENDATION, JsonDict, TmfDocument
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.order_handling.models import ProductRow
from etomcrm.security.service import Principal, Role
from etomcrm.selling.models import RecommendationRow

BANDWIDTH_TIERS = (10, 100, 1000)
VOLUME_THRESHOLD = Decimal("0.8")
TICKET_THRESHOLD = 3
ROUTER_END_OF_SUPPORT_MONTHS = 60
GOLD = "Gold"
OFFERING_NAMES = {
    "gold": "SLA Gold",
    "router": "Managed router",
    **{f"bandwidth{tier}": f"Site access {tier} Mbit/s" for tier in BANDWIDTH_TIERS},
}


def _recommendation_document() -> TmfDocument:
    raw = copy.deepcopy(RECOMMENDATION.raw)
    raw["definitions"]["QueryProductRecommendation_Update"] = {
        "type": "object",
        "description": "An answered query does not change; post a new query instead.",
        "properties": {},
    }
    return TmfDocument(
        code=RECOMMENDATION.code,
        filename=RECOMMENDATION.filename,
        base_path=RECOMMENDATION.base_path,
        raw=raw,
    )


RECOMMENDATION_DOCUMENT = _recommendation_document()


def _characteristics(product: JsonDict) -> dict[str, Any]:
    return {
        c["name"]: c.get("value")
        for c in product.get("productCharacteristic") or []
        if isinstance(c, dict) and isinstance(c.get("name"), str)
    }


def _number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _site_name(product: JsonDict) -> str:
    for place in product.get("place") or []:
        if isinstance(place, dict) and place.get("name"):
            return str(place["name"])
    return str(product.get("name") or product["id"])


@dataclass(frozen=True)
class _Proposal:
    priority: int
    offering_key: str
    name: str
    reason: str
    product: JsonDict
    characteristics: tuple[tuple[str, Any], ...] = ()


def _proposals(product: JsonDict) -> list[_Proposal]:
    values = _characteristics(product)
    site = _site_name(product)
    found: list[_Proposal] = []
    tickets = _number(values.get("ticketsLast90Days"))
    sla = str(values.get("slaLevel") or "none")
    if tickets is not None and tickets >= TICKET_THRESHOLD and sla.lower() != GOLD.lower():
        found.append(
            _Proposal(
                1,
                "gold",
                "SLA Gold",
                f"{site} had {tickets} trouble tickets in the last 90 days on SLA {sla}; "
                "Gold repairs within 4 hours at 99.9 % availability",
                product,
                (("slaLevel", GOLD),),
            )
        )
    used, included = _number(values.get("monthlyVolumeGB")), _number(values.get("includedVolumeGB"))
    bandwidth = _number(values.get("bandwidthMbit"))
    if used is not None and included and bandwidth is not None:
        share = used / included
        higher = [tier for tier in BANDWIDTH_TIERS if tier > bandwidth]
        if share >= VOLUME_THRESHOLD and higher:
            percent = (share * 100).quantize(Decimal(1))
            found.append(
                _Proposal(
                    2,
                    f"bandwidth{higher[0]}",
                    f"Site access {higher[0]} Mbit/s",
                    f"{site} used {used} GB of its {included} GB included volume last month "
                    f"({percent} %) at {bandwidth} Mbit/s; {higher[0]} Mbit/s avoids "
                    "congestion and usage charges",
                    product,
                    (("bandwidthMbit", higher[0]),),
                )
            )
    age = _number(values.get("routerAgeMonths"))
    if values.get("managedRouter") is False or (
        age is not None and age >= ROUTER_END_OF_SUPPORT_MONTHS
    ):
        why = (
            f"{site} runs its own router, outside monitoring and the SLA's time to repair"
            if values.get("managedRouter") is False
            else f"the router at {site} is {age} months old and out of vendor support"
        )
        found.append(_Proposal(3, "router", "Managed router", why, product))
    return found


def _item(number: int, proposal: _Proposal, offerings: dict[str, JsonDict]) -> JsonDict:
    product = proposal.product
    characteristics = [
        {"name": "recommendationReason", "valueType": "string", "value": proposal.reason},
        *({"name": n, "value": v} for n, v in proposal.characteristics),
    ]
    proposed: JsonDict = {
        "name": proposal.name,
        "description": proposal.reason,
        "productCharacteristic": characteristics,
        "productRelationship": [
            {
                "relationshipType": "upgrades",
                "product": {
                    "id": product["id"],
                    "name": str(product.get("name") or product["id"]),
                    "@referredType": "Product",
                },
            }
        ],
    }
    if product.get("place"):
        proposed["place"] = product["place"]
    item: JsonDict = {"id": str(number), "priority": proposal.priority, "product": proposed}
    offering = offerings.get(OFFERING_NAMES[proposal.offering_key])
    if offering is not None:
        item["productOffering"] = offering
    return item


def recommendation_items(session: Session, customer_id: str) -> list[JsonDict]:
    """The recommendations of the rules above for a customer's active products."""
    # Owned by the customer, or naming it as relatedParty: inventory written by the house
    # (system principal) may carry the customer only in the document.
    named = document_path_equals(
        session.get_bind().dialect.name,
        ProductRow.__tablename__,
        PRODUCT_INVENTORY,
        "Product",
        ["relatedParty", "id"],
        customer_id,
    )
    products = [
        body
        for body in session.scalars(
            select(ProductRow.body)
            .where(
                or_(ProductRow.owner_customer_id == customer_id, named),
                ProductRow.status == "active",
            )
            .order_by(ProductRow.id)
        )
        if body.get("status") == "active"
    ]
    proposals = sorted(
        (p for product in products for p in _proposals(product)), key=lambda p: p.priority
    )
    if not proposals:
        return []
    names = {OFFERING_NAMES[p.offering_key] for p in proposals}
    offerings = {
        name: {"id": offering_id, "name": name, "@referredType": "ProductOffering"}
        for offering_id, name in session.execute(
            select(ProductOfferingRow.id, ProductOfferingRow.name).where(
                ProductOfferingRow.name.in_(names)
            )
        )
        if name is not None
    }
    return [_item(n, p, offerings) for n, p in enumerate(proposals, start=1)]


@dataclass
class RecommendationKind(ResourceKind):
    """TMF680 queryProductRecommendation: answered when posted, never changed."""

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        return str(body["relatedParty"]["id"])

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        if old is not None:
            raise Conflict(
                "a product recommendation query is answered when posted and does not "
                "change; post a new query for fresh recommendations"
            )
        party = body.get("relatedParty")
        if party is None and principal.is_customer:
            party = body["relatedParty"] = {
                "id": principal.customer_id,
                "@referredType": "Customer",
                "role": "customer",
            }
        if not isinstance(party, dict) or party.get("@referredType") != "Customer":
            raise InvalidRequest(
                "name the customer to recommend for in relatedParty "
                '({"id": ..., "@referredType": "Customer"})'
            )
        customer_id = str(party["id"])
        if principal.is_customer and customer_id != principal.customer_id:
            raise NotFound(f"no customer with id {customer_id}")
        if session.get(CustomerRow, customer_id) is None:
            raise NotFound(f"no customer with id {customer_id}")
        items = recommendation_items(session, customer_id)
        body["recommendationItem"] = items
        body["state"] = "done"
        body.setdefault("recommendationType", "crossSellUpSell")
        body.setdefault("name", "Recommendations from the installed base")
        body["description"] = f"{len(items)} recommendation(s) from the customer's active products"


QUERY_PRODUCT_RECOMMENDATION_KIND = RecommendationKind(
    name="queryProductRecommendation",
    type_name="QueryProductRecommendation",
    doc=RECOMMENDATION_DOCUMENT,
    row=RecommendationRow,
    write_roles=frozenset({Role.ADMIN, Role.SALES, Role.MARKETING}),
    customer_operations=frozenset({READ, CREATE}),
    refs=(RefSpec("relatedParty", "customer"),),
    status_attribute="state",
)


def recommend_for_customer(session: Session, principal: Principal, customer_id: str) -> JsonDict:
    """3.4.5 Cross/Up Selling (eTOM 1.1.1.4.5): recommend what fits the installed base.

    Records and returns an answered TMF680 ``queryProductRecommendation`` for the
    customer (a customer may ask for its own).
    """
    payload: JsonDict = {
        "relatedParty": {"id": customer_id, "@referredType": "Customer", "role": "customer"},
        "instantSyncRecommendation": True,
    }
    body, _, _ = resources.create(session, QUERY_PRODUCT_RECOMMENDATION_KIND, principal, payload)
    return body
