"""3.4.5 Cross/up-selling and 3.9.4's next best offer: TMF680 product recommendations
from the installed base. (It lives in retention, above the areas whose facts it reads:
products, tickets, measured traffic.)

A ``queryProductRecommendation`` names a customer (``relatedParty``); posting it
answers it at once (``state`` ``done``) with ``recommendationItem[]`` computed from the
customer's active TMF637 products, grouped by site (``place[0].id``), and from the facts
etomcrm holds about each site:

- **tickets**: the customer's TMF621 trouble tickets opened in the last 90 days that
  name the site or one of its products in ``relatedEntity`` (each ticket once per site);
- **traffic**: the site's measured volume (bytes in and out of the network's
  performance data) in the last calendar month (Europe/Berlin), in GB of 10^9 bytes;
- **access**: the site's access product (the one with a bandwidth: its offering's
  ``bandwidth`` and ``includedVolumeGB``, else the product's ``bandwidthMbit`` and
  ``includedVolumeGB`` characteristics);
- **router**: the site's managed router products (offering or product named
  "Managed router") and their age from ``startDate``;
- **SLA**: the best of the site's SLA products ("SLA Gold", "SLA Silver") and ``slaLevel``
  characteristics.

The rules, per site:

1. **Gold SLA** (priority 1): 3 or more tickets on a site whose SLA is not Gold:
   frequent faults are cheaper for the customer with a 4 h time to repair.
2. **Higher bandwidth** (priority 2): last month's traffic is 80 % or more of the
   access's included volume and a higher tier of :data:`BANDWIDTH_TIERS` exists: the
   next tier before the site runs into usage charges or congestion.
3. **Managed router** (priority 3): an access without a managed router at the site (the
   customer runs its own), or a router 60 months old or more (end of support).

All facts for a customer are read in a fixed number of queries, however many products
and sites it has. Each item proposes a product (by value) at the site, related to the
product it upgrades, with the reason in its ``description`` and in the characteristic
``recommendationReason``; the item names the catalog offering when one of the names in
:data:`OFFERING_NAMES` exists.

3.9.4 Optimise: the items are ranked by **expected value** for the customer
(:mod:`etomcrm.retention.offers`: P(accept) from the provider's decided quotes times the
margin over the term), highest first; ``priority`` is that rank (1 = the next best
offer), ties keep the rule's order. Each item's product characteristics explain it:
``recommendationRule`` (gold, usage, router), ``recommendationReason`` (why this
product), ``recommendationMoment`` (why now), ``expectedValue``,
``acceptanceProbability``, ``acceptanceBasis`` (segment, all or prior),
``acceptedQuotes``, ``decidedQuotes``, ``marginOverTerm``, ``termMonths`` and
``expectedValueExplanation`` (the arithmetic in words).

A query is answered once and does not change afterwards: post a new one for fresh
recommendations. TMF680 has no update operation; the served document adds an empty
``QueryProductRecommendation_Update`` so the shared routes stay well-formed, and every
change is refused.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from etomcrm.catalog.models import ProductOfferingRow
from etomcrm.catalog.service import characteristic_values
from etomcrm.core import resources
from etomcrm.core.errors import Conflict, InvalidRequest, NotFound
from etomcrm.core.json_filters import document_path_equals
from etomcrm.core.resources import CREATE, READ, RefSpec, ResourceKind
from etomcrm.core.tmf_schemas import PRODUCT_INVENTORY, RECOMMENDATION, JsonDict, TmfDocument
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.db import utcnow
from etomcrm.network.models import NetworkMeasurementRow
from etomcrm.order_handling.models import ProductRow
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.retention.offers import (
    Valuation,
    acceptance,
    acceptance_record,
    as_characteristics,
    margins,
    segment_of,
)
from etomcrm.security.service import Principal, Role
from etomcrm.selling.models import RecommendationRow

BANDWIDTH_TIERS = (10, 100, 1000)
VOLUME_THRESHOLD = Decimal("0.8")
TICKET_THRESHOLD = 3
ROUTER_END_OF_SUPPORT_MONTHS = 60
RECENT_TICKETS = timedelta(days=90)
BYTES_PER_GB = Decimal(10**9)
BUSINESS_ZONE = ZoneInfo("Europe/Berlin")
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


def _site_of(product: JsonDict) -> tuple[str, str] | None:
    """The product's site: (id, name)."""
    for place in product.get("place") or []:
        if isinstance(place, dict) and place.get("id"):
            return str(place["id"]), str(place.get("name") or place["id"])
    return None


def _offering_values(offering: JsonDict) -> dict[str, Any]:
    return characteristic_values(offering.get("prodSpecCharValueUse"))


def _months_between(start: datetime, end: datetime) -> int:
    months = (end.year - start.year) * 12 + end.month - start.month
    return months - (1 if end.day < start.day else 0)


@dataclass
class _Site:
    """What etomcrm knows about one site of the customer."""

    id: str
    name: str
    products: list[JsonDict] = field(default_factory=list)
    access: JsonDict | None = None
    bandwidth: Decimal | None = None
    included_gb: Decimal | None = None
    routers: list[tuple[JsonDict, int | None]] = field(default_factory=list)  # (product, age)
    sla: str = "none"
    sla_product: JsonDict | None = None
    tickets: int = 0
    volume_gb: Decimal | None = None

    @property
    def anchor(self) -> JsonDict:
        """The product a proposal upgrades: the access, else the site's first product."""
        return self.access or self.products[0]


@dataclass(frozen=True)
class _Proposal:
    priority: int
    offering_key: str
    name: str
    reason: str
    product: JsonDict
    characteristics: tuple[tuple[str, Any], ...] = ()
    # How strongly the facts speak for it (tickets, share of the volume, router age):
    # within a priority the strongest comes first.
    weight: Decimal = Decimal(0)
    # Why now: the recent fact that makes it timely.
    moment: str = ""
    # The product the offer replaces (its price is no longer paid), if any.
    replaces: JsonDict | None = None

    @property
    def rule(self) -> str:
        return RULES[self.priority]


RULES = {1: "gold", 2: "usage", 3: "router"}


def _sla_rank(name: str) -> int:
    lowered = name.lower()
    return 2 if "gold" in lowered else 1 if "silver" in lowered else 0


def _last_month(now: datetime) -> tuple[datetime, datetime]:
    local = now.astimezone(BUSINESS_ZONE)
    this_month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    previous = (this_month - timedelta(days=1)).replace(day=1)
    return previous.astimezone(UTC), this_month.astimezone(UTC)


def _sites(
    session: Session, products: list[JsonDict], customer_id: str, now: datetime
) -> list[_Site]:
    """The customer's sites with their facts: four queries, whatever the numbers."""
    sites: dict[str, _Site] = {}
    for product in products:
        found = _site_of(product)
        if found is not None:
            sites.setdefault(found[0], _Site(*found)).products.append(product)
    if not sites:
        return []
    offering_ids = {
        str(p["productOffering"]["id"])
        for p in products
        if isinstance(p.get("productOffering"), dict) and p["productOffering"].get("id")
    }
    offerings = {
        row.id: (row.name or "", _offering_values(row.body))
        for row in session.scalars(
            select(ProductOfferingRow).where(ProductOfferingRow.id.in_(offering_ids))
        )
    }
    for site in sites.values():
        for product in site.products:
            _classify(site, product, offerings, now)
    _count_tickets(session, customer_id, sites, now)
    start, end = _last_month(now)
    volumes = session.execute(
        select(
            NetworkMeasurementRow.site_id,
            func.sum(NetworkMeasurementRow.bytes_in + NetworkMeasurementRow.bytes_out),
        )
        .where(
            NetworkMeasurementRow.site_id.in_(sites),
            NetworkMeasurementRow.at >= start,
            NetworkMeasurementRow.at < end,
        )
        .group_by(NetworkMeasurementRow.site_id)
    )
    for site_id, total in volumes:
        if total:
            sites[site_id].volume_gb = (Decimal(int(total)) / BYTES_PER_GB).quantize(Decimal(1))
    return sorted(sites.values(), key=lambda s: s.id)


def _classify(
    site: _Site, product: JsonDict, offerings: dict[str, tuple[str, dict[str, Any]]], now: datetime
) -> None:
    offering = product.get("productOffering") or {}
    offering_name, offered = offerings.get(str(offering.get("id")), ("", {}))
    values = _characteristics(product)
    name = offering_name or str(product.get("name") or "")
    sla = str(values.get("slaLevel") or "")
    if name.lower().startswith("sla "):
        sla = name
    if sla and _sla_rank(sla) >= _sla_rank(site.sla) and sla.lower() != "none":
        site.sla = sla.removeprefix("SLA ").strip() or sla
        if name.lower().startswith("sla "):
            site.sla_product = product
    if name == OFFERING_NAMES["router"]:
        started = _instant(product.get("startDate"))
        site.routers.append((product, _months_between(started, now) if started else None))
        return
    bandwidth = _number(offered.get("bandwidth")) or _number(values.get("bandwidthMbit"))
    if bandwidth is not None and (site.bandwidth is None or bandwidth > site.bandwidth):
        site.access, site.bandwidth = product, bandwidth
        site.included_gb = _number(offered.get("includedVolumeGB")) or _number(
            values.get("includedVolumeGB")
        )


def _instant(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _count_tickets(
    session: Session, customer_id: str, sites: dict[str, _Site], now: datetime
) -> None:
    site_of_product = {str(p["id"]): s.id for s in sites.values() for p in s.products}
    bodies = session.scalars(
        select(TroubleTicketRow.body).where(
            TroubleTicketRow.owner_customer_id == customer_id,
            TroubleTicketRow.created_at >= now - RECENT_TICKETS,
            TroubleTicketRow.created_at <= now,
        )
    )
    for body in bodies:
        named: set[str] = set()
        for entity in body.get("relatedEntity") or []:
            if not isinstance(entity, dict):
                continue
            if entity.get("@referredType") == "GeographicSite" and entity.get("id") in sites:
                named.add(str(entity["id"]))
            elif entity.get("@referredType") == "Product" and entity.get("id") in site_of_product:
                named.add(site_of_product[str(entity["id"])])
        for site_id in named:
            sites[site_id].tickets += 1


def _proposals(site: _Site) -> list[_Proposal]:
    found: list[_Proposal] = []
    if site.tickets >= TICKET_THRESHOLD and site.sla.lower() != GOLD.lower():
        found.append(
            _Proposal(
                1,
                "gold",
                "SLA Gold",
                f"{site.name} had {site.tickets} trouble tickets in the last 90 days on SLA "
                f"{site.sla}; Gold repairs within 4 hours at 99.9 % availability",
                site.anchor,
                (("slaLevel", GOLD),),
                Decimal(site.tickets),
                f"{site.tickets} faults in the last 90 days: the cost of each outage is fresh",
                site.sla_product,
            )
        )
    used, included, bandwidth = site.volume_gb, site.included_gb, site.bandwidth
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
                    f"{site.name} used {used} GB of its {included} GB included volume last "
                    f"month ({percent} %) at {bandwidth} Mbit/s; {higher[0]} Mbit/s avoids "
                    "congestion and usage charges",
                    site.anchor,
                    (("bandwidthMbit", higher[0]),),
                    share,
                    f"last month's traffic reached {percent} % of the included volume",
                    site.access,
                )
            )
    old = [
        (p, age)
        for p, age in site.routers
        if age is not None and age >= ROUTER_END_OF_SUPPORT_MONTHS
    ]
    if site.access is not None and not site.routers:
        found.append(
            _Proposal(
                3,
                "router",
                "Managed router",
                f"{site.name} runs its own router, outside monitoring and the SLA's time to repair",
                site.anchor,
                moment="the site is live without managed equipment today",
            )
        )
    elif old:
        router, age = old[0]
        found.append(
            _Proposal(
                3,
                "router",
                "Managed router",
                f"the router at {site.name} is {age} months old and out of vendor support",
                router,
                weight=Decimal(age or 0),
                moment=f"the router reached {age} months, past the end of vendor support",
                replaces=router,
            )
        )
    return found


def _item(
    number: int, proposal: _Proposal, offerings: dict[str, JsonDict], valuation: Valuation
) -> JsonDict:
    product = proposal.product
    characteristics = [
        {"name": "recommendationRule", "valueType": "string", "value": proposal.rule},
        {"name": "recommendationReason", "valueType": "string", "value": proposal.reason},
        {"name": "recommendationMoment", "valueType": "string", "value": proposal.moment},
        *as_characteristics(valuation),
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
    item: JsonDict = {"id": str(number), "priority": number, "product": proposed}
    offering = offerings.get(OFFERING_NAMES[proposal.offering_key])
    if offering is not None:
        item["productOffering"] = offering
    return item


def recommendation_items(
    session: Session, customer_id: str, *, now: datetime | None = None
) -> list[JsonDict]:
    """The recommendations of the rules above for a customer's active products, ranked
    by expected value (3.9.4), in a fixed number of queries."""
    now = now or utcnow()
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
        (p for site in _sites(session, products, customer_id, now) for p in _proposals(site)),
        key=lambda p: (p.priority, -p.weight),
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
    valuations = _valuations(session, customer_id, proposals, offerings)
    ranked = sorted(
        enumerate(proposals), key=lambda pair: (-valuations[pair[0]].expected_value, pair[0])
    )
    return [
        _item(rank, proposal, offerings, valuations[index])
        for rank, (index, proposal) in enumerate(ranked, start=1)
    ]


def _offering_id(product: JsonDict | None) -> str | None:
    offering = (product or {}).get("productOffering")
    if isinstance(offering, dict) and offering.get("id"):
        return str(offering["id"])
    return None


def _valuations(
    session: Session,
    customer_id: str,
    proposals: list[_Proposal],
    offerings: dict[str, JsonDict],
) -> list[Valuation]:
    """Each proposal's P(accept) and margin (3.9.4): four queries for all of them."""
    offers = {
        str(index): (
            str((offerings.get(OFFERING_NAMES[p.offering_key]) or {}).get("id") or ""),
            _offering_id(p.replaces),
        )
        for index, p in enumerate(proposals)
    }
    found = margins(session, offers)
    record = acceptance_record(session)
    segment = segment_of(session, customer_id)
    return [
        Valuation(
            acceptance(record, offers[str(index)][0] or None, segment),
            replace(found[str(index)], offering=proposal.name),
        )
        for index, proposal in enumerate(proposals)
    ]


def characteristic(item: JsonDict, name: str) -> Any:
    """The value of a recommendation item's product characteristic, or None."""
    for entry in (item.get("product") or {}).get("productCharacteristic") or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry.get("value")
    return None


def offer_name(item: JsonDict) -> str:
    """What an item offers where: "SLA Gold at Dealer Leipzig" (the same offer for the
    same site is the same, whichever query proposed it)."""
    product = item.get("product") or {}
    places = product.get("place") or []
    where = places[0].get("name") or places[0].get("id") if places else None
    return f"{product.get('name')} at {where}" if where else str(product.get("name"))


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


def recommend_for_customer(
    session: Session, principal: Principal, customer_id: str, *, idempotency_key: str | None = None
) -> JsonDict:
    """3.4.5 Cross/Up Selling (eTOM 1.1.1.4.5): recommend what fits the installed base.

    Records and returns an answered TMF680 ``queryProductRecommendation`` for the
    customer (a customer may ask for its own); with ``idempotency_key``, asking again
    returns the first answer.
    """
    payload: JsonDict = {
        "relatedParty": {"id": customer_id, "@referredType": "Customer", "role": "customer"},
        "instantSyncRecommendation": True,
    }
    body, _, _ = resources.create(
        session,
        QUERY_PRODUCT_RECOMMENDATION_KIND,
        principal,
        payload,
        idempotency_key=idempotency_key,
    )
    return body
