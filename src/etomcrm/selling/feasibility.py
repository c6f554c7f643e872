"""3.5.1 Check feasibility before contract: TMF679 productOfferingQualification.

A qualification asks, per site and offering, whether the network side can serve the
site and how soon. It is answered at once (``instantSyncQualification``): the request
is stored with its answer, in state ``done``. Per item (one site and one offering):

- ``qualificationItemResult``: ``qualified``, or ``unqualified`` with an
  ``eligibilityUnavailabilityReason`` (code ``notServiceable``, the network's reason).
  No ``alternate`` is proposed: the simulated network refuses a site only when no access
  network reaches it, which another offering would not change.
- ``expectedActivationDate``: the start of today (Europe/Berlin) plus the lead time.
- ``product.productCharacteristic``, documented here as the contract other processes
  read (quotes, education): ``leadTimeDays`` (integer: the longer of network and
  material), ``networkLeadTimeDays``, ``materialLeadTimeDays`` (0 when the managed
  router comes from stock), ``specialBuild`` (boolean).
- ``note``: the network's explanation (access technology, special build).

Every qualified site needs one managed router: the router stock (3.1,
:func:`etomcrm.catalog.service.material_availability`) is allotted to the sites in the
order asked; sites beyond the stock wait for replenishment, so their lead time is at
least the replenishment lead time. The overall ``qualificationResult`` is ``green``
(every item qualified), ``yellow`` (some) or ``red`` (none), as the document suggests.

An item may name several sites in ``product.place`` (or take the qualification's own
``place``); it is answered as one item per site, with ids ``<item id>.<n>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.catalog.models import ProductOfferingRow, ProductSpecificationRow
from etomcrm.catalog.service import MaterialAvailability, material_availability
from etomcrm.config import get_settings
from etomcrm.core import resources
from etomcrm.core.clock import iso
from etomcrm.core.errors import Conflict, Forbidden, InvalidRequest, NotFound, UnknownReference
from etomcrm.core.resources import CREATE, READ, RefSpec, ResourceKind
from etomcrm.core.tmf_schemas import PRODUCT_OFFERING_QUALIFICATION, JsonDict
from etomcrm.customer_interface.models import GeographicSiteRow
from etomcrm.customer_interface.service import GEOGRAPHIC_SITE_KIND
from etomcrm.db import utcnow
from etomcrm.network.port import business_date, get_network, start_of_business_date
from etomcrm.security.service import Principal, Role
from etomcrm.selling.models import ProductOfferingQualificationRow

# The material every site needs; its stock is kept under this product specification.
ROUTER_SPECIFICATION_NAME = "Managed router"
# After a qualification is done, only these may still change (a note, a description).
MUTABLE_AFTER_ANSWER = frozenset({"description", "note", "lastUpdate"})


def _customer_refs(body: JsonDict) -> list[str]:
    return sorted(
        {
            p["id"]
            for p in body.get("relatedParty", []) or []
            if isinstance(p, dict)
            and p.get("@referredType") == "Customer"
            and isinstance(p.get("id"), str)
        }
    )


@dataclass(frozen=True)
class _Question:
    """One site and one offering, as asked."""

    item: JsonDict
    item_id: str
    site_id: str
    offering_id: str


def _questions(body: JsonDict) -> list[_Question]:
    items = body.get("productOfferingQualificationItem") or []
    if not items:
        raise InvalidRequest(
            "a productOfferingQualification needs at least one productOfferingQualificationItem "
            "naming a productOffering and the sites (product.place) to qualify"
        )
    default_places = body.get("place") or []
    questions: list[_Question] = []
    seen_ids: set[str] = set()
    for item in items:
        item_id = str(item["id"])
        if item_id in seen_ids:
            raise InvalidRequest(f"productOfferingQualificationItem id {item_id!r} is used twice")
        seen_ids.add(item_id)
        offering = item.get("productOffering") or {}
        if not offering.get("id"):
            raise InvalidRequest(
                f"productOfferingQualificationItem {item_id} needs productOffering.id: "
                "the offering to qualify"
            )
        places = (item.get("product") or {}).get("place") or default_places
        if not places:
            raise InvalidRequest(
                f"productOfferingQualificationItem {item_id} names no site: give product.place "
                "(or the qualification's place) as GeographicSite references"
            )
        for place in places:
            referred = place.get("@referredType")
            if not place.get("id") or referred not in (None, "GeographicSite"):
                raise InvalidRequest(
                    f"productOfferingQualificationItem {item_id}: each place must reference a "
                    "GeographicSite by id (a site of the customer), not "
                    f"{referred or 'a place without id'}"
                )
        for number, place in enumerate(places, start=1):
            split_id = item_id if len(places) == 1 else f"{item_id}.{number}"
            questions.append(_Question(item, split_id, str(place["id"]), str(offering["id"])))
    return questions


def _router_stock(session: Session) -> MaterialAvailability | None:
    spec_id = session.scalar(
        select(ProductSpecificationRow.id)
        .where(ProductSpecificationRow.name == ROUTER_SPECIFICATION_NAME)
        .order_by(ProductSpecificationRow.id)
        .limit(1)
    )
    if spec_id is None:
        return None
    try:
        return material_availability(session, spec_id)
    except NotFound:
        return None


def _site_place(site_id: str) -> JsonDict:
    return {"id": site_id, "role": "installationAddress", "@referredType": "GeographicSite"}


def _characteristic(name: str, value: Any, value_type: str) -> JsonDict:
    return {"name": name, "valueType": value_type, "value": value}


def check_feasibility(
    session: Session, principal: Principal, body: JsonDict, customer_id: str
) -> None:
    """3.5.1 Check feasibility before contract (eTOM 1.1.1.5.1): answer a qualification.

    Asks the network side about every site and offering, allots the managed router
    stock, and writes the answer into ``body`` (items, results, dates, state ``done``).
    """
    questions = _questions(body)
    site_ids = sorted({q.site_id for q in questions})
    sites = {
        row.id: row
        for row in session.scalars(
            GEOGRAPHIC_SITE_KIND.scoped(
                principal, select(GeographicSiteRow).where(GeographicSiteRow.id.in_(site_ids))
            )
        )
    }
    missing = [s for s in site_ids if s not in sites]
    if missing:
        raise UnknownReference(
            f"referenced resource not found: geographicSite {', '.join(missing)}"
        )
    foreign = [s for s in site_ids if sites[s].owner_customer_id != customer_id]
    if foreign:
        raise InvalidRequest(
            f"site(s) {', '.join(foreign)} do not belong to customer {customer_id}; "
            "qualify the sites of one customer per productOfferingQualification"
        )
    offering_ids = sorted({q.offering_id for q in questions})
    known = set(
        session.scalars(
            select(ProductOfferingRow.id).where(ProductOfferingRow.id.in_(offering_ids))
        )
    )
    unknown = [o for o in offering_ids if o not in known]
    if unknown:
        raise UnknownReference(
            f"referenced resource not found: productOffering {', '.join(unknown)}"
        )

    network = get_network()
    now = utcnow()
    today = business_date(now)
    stock = _router_stock(session)
    routers_left = stock.available if stock is not None else Decimal(0)
    material_days_of: dict[str, int] = {}
    answered: list[JsonDict] = []
    qualified_count = 0
    for question in questions:
        answer = network.qualify(
            session, site=sites[question.site_id].body, offering_id=question.offering_id
        )
        item = {
            key: value
            for key, value in question.item.items()
            if key
            not in (
                "qualificationItemResult",
                "eligibilityUnavailabilityReason",
                "expectedActivationDate",
                "alternateProductOfferingProposal",
                "terminationError",
            )
        }
        product = dict(item.get("product") or {})
        product["place"] = [
            {
                "id": question.site_id,
                "role": "installationAddress",
                "@referredType": "GeographicSite",
            }
        ]
        item["id"] = question.item_id
        item["state"] = "done"
        notes = [{"id": "1", "author": "network", "date": iso(now), "text": answer.reason}]
        if not answer.serviceable:
            item["qualificationItemResult"] = "unqualified"
            item["eligibilityUnavailabilityReason"] = [
                {"code": "notServiceable", "label": answer.reason}
            ]
            product.pop("productCharacteristic", None)
        else:
            qualified_count += 1
            if question.site_id not in material_days_of:
                if stock is not None and routers_left >= 1:
                    routers_left -= 1
                    material_days_of[question.site_id] = 0
                else:
                    material_days_of[question.site_id] = stock.lead_time_days if stock else 0
            material_days = material_days_of[question.site_id]
            lead = max(answer.lead_time_days, material_days)
            if stock is None:
                notes.append(
                    {
                        "id": "2",
                        "author": "feasibility",
                        "text": "no stock of the managed router is kept: material not checked",
                    }
                )
            elif material_days:
                notes.append(
                    {
                        "id": "2",
                        "author": "feasibility",
                        "date": iso(now),
                        "text": "the managed router is out of stock for this site: "
                        f"replenishment takes {material_days} days",
                    }
                )
            item["qualificationItemResult"] = "qualified"
            item["expectedActivationDate"] = start_of_business_date(
                today + timedelta(days=lead)
            ).isoformat()
            product["productCharacteristic"] = [
                _characteristic("leadTimeDays", lead, "integer"),
                _characteristic("networkLeadTimeDays", answer.lead_time_days, "integer"),
                _characteristic("materialLeadTimeDays", material_days, "integer"),
                _characteristic("specialBuild", answer.special_build, "boolean"),
            ]
        item["product"] = product
        item["note"] = notes
        answered.append(item)

    body["productOfferingQualificationItem"] = answered
    body["state"] = "done"
    body["instantSyncQualification"] = True
    body["qualificationResult"] = (
        "green" if qualified_count == len(answered) else "yellow" if qualified_count else "red"
    )
    body["productOfferingQualificationDate"] = iso(now)
    body["effectiveQualificationDate"] = iso(now)
    body["expirationDate"] = iso(now + timedelta(days=get_settings().quote_validity_days))


@dataclass
class ProductOfferingQualificationKind(ResourceKind):
    """TMF679: answered when created; afterwards only a note or description changes."""

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        if principal.is_customer:
            return principal.customer_id
        refs = _customer_refs(body)
        return refs[0] if refs else current

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        if old is not None:
            changed = sorted(
                k for k in set(old) | set(body) if old.get(k) != body.get(k) and k != "id"
            )
            refused = [k for k in changed if k not in MUTABLE_AFTER_ANSWER]
            if refused:
                raise Conflict(
                    "a productOfferingQualification is answered when it is created; only "
                    f"{', '.join(sorted(MUTABLE_AFTER_ANSWER - {'lastUpdate'}))} may change "
                    f"afterwards, not {', '.join(refused)}. Ask again with a new one."
                )
            return
        refs = _customer_refs(body)
        if len(refs) > 1:
            raise InvalidRequest(
                "a productOfferingQualification is for one customer; "
                f"relatedParty names {len(refs)}"
            )
        if principal.is_customer:
            if refs and refs[0] != principal.customer_id:
                raise Forbidden("a customer may qualify only its own sites")
            customer_id = str(principal.customer_id)
        elif refs:
            customer_id = refs[0]
        else:
            customer_id = self._customer_of_sites(session, principal, body)
        if not refs:
            body.setdefault("relatedParty", []).append(
                {"id": customer_id, "@referredType": "Customer", "role": "customer"}
            )
        check_feasibility(session, principal, body, customer_id)

    def _customer_of_sites(self, session: Session, principal: Principal, body: JsonDict) -> str:
        site_ids = sorted({q.site_id for q in _questions(body)})
        owner_of = dict(
            session.execute(
                select(GeographicSiteRow.id, GeographicSiteRow.owner_customer_id).where(
                    GeographicSiteRow.id.in_(site_ids)
                )
            ).all()
        )
        missing = [s for s in site_ids if s not in owner_of]
        if missing:
            raise UnknownReference(
                f"referenced resource not found: geographicSite {', '.join(missing)}"
            )
        owners = {o for o in owner_of.values() if o is not None}
        if len(owners) != 1:
            raise InvalidRequest(
                "name the customer in relatedParty (@referredType Customer): the sites "
                + ("belong to several customers" if owners else "belong to no customer")
            )
        return str(owners.pop())


PRODUCT_OFFERING_QUALIFICATION_KIND = ProductOfferingQualificationKind(
    name="productOfferingQualification",
    type_name="ProductOfferingQualification",
    doc=PRODUCT_OFFERING_QUALIFICATION,
    row=ProductOfferingQualificationRow,
    write_roles=frozenset({Role.ADMIN, Role.SALES, Role.ORDER_MANAGER}),
    customer_operations=frozenset({READ, CREATE}),
    refs=(RefSpec("relatedParty[]"),),
    status_attribute="state",
    name_attribute="description",
)


def qualify_sites(
    session: Session,
    principal: Principal,
    *,
    customer_id: str,
    site_ids: Sequence[str],
    offering_id: str,
) -> JsonDict:
    """3.5.1 Check feasibility before contract (eTOM 1.1.1.5.1): qualify sites for one
    offering.

    Creates a TMF679 productOfferingQualification with one item per site, answered at
    once from the network side (see the module docstring); returns it as stored.
    """
    if not site_ids:
        raise InvalidRequest("name at least one site to qualify")
    payload: JsonDict = {
        "description": f"Feasibility of {len(site_ids)} site(s)",
        "instantSyncQualification": True,
        "provideUnavailabilityReason": True,
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "productOfferingQualificationItem": [
            {
                "id": str(number),
                "productOffering": {"id": offering_id, "@referredType": "ProductOffering"},
                "product": {"place": [_site_place(site_id)]},
            }
            for number, site_id in enumerate(site_ids, start=1)
        ],
    }
    body, _, _ = resources.create(session, PRODUCT_OFFERING_QUALIFICATION_KIND, principal, payload)
    return body
