"""3.1 Support & Readiness: what the catalog and the stock must hold for the others.

SLA levels are product specifications of ``@type`` ``SlaSpecification`` whose
characteristics carry the contracted figures; later processes (quotes, SLA
assessment, credits) read them through :func:`sla_level`. Materials (a managed
router) are product stocks whose stocked product names its specification and carries
its replenishment lead time; :func:`material_availability` answers "how many, how soon".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.catalog.models import (
    CatalogRow,
    CategoryRow,
    ProductOfferingPriceRow,
    ProductOfferingRow,
    ProductSpecificationRow,
    ProductStockRow,
)
from etomcrm.core import resources
from etomcrm.core.clock import iso
from etomcrm.core.errors import Conflict, InvalidRequest, NotFound, UnknownReference
from etomcrm.core.resources import READ, RefSpec, ResourceKind
from etomcrm.core.tmf_schemas import PRODUCT_CATALOG, STOCK, JsonDict
from etomcrm.db import utcnow
from etomcrm.security.service import Principal, Role

CATALOG_WRITERS = frozenset({Role.ADMIN, Role.MARKETING})
SLA_TYPE = "SlaSpecification"
# characteristic name -> what it means; all four are required on an SLA level.
SLA_CHARACTERISTICS = {
    "availabilityTarget": "monthly availability in percent, e.g. 99.9",
    "timeToRepairHours": "time to repair in (business) hours, e.g. 4",
    "latencyBoundMs": "round-trip latency bound in milliseconds, e.g. 30",
    "penaltyRule": "credit per violated metric as a share of the monthly recurring charge, "
    "and its cap, e.g. '10% per violated metric, max 30%'",
}
LEAD_TIME_CHARACTERISTIC = "replenishmentLeadTimeDays"


def characteristic_values(items: Any) -> dict[str, Any]:
    """name -> value of product characteristics or the chosen (default, else first)
    value of specification characteristics."""
    values: dict[str, Any] = {}
    for item in items or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        if "value" in item:
            values[item["name"]] = item["value"]
            continue
        options = [
            v for v in item.get("productSpecCharacteristicValue") or [] if isinstance(v, dict)
        ]
        chosen = [v for v in options if v.get("isDefault")] or options
        if chosen:
            values[item["name"]] = chosen[0].get("value")
    return values


def _first_value(characteristic: JsonDict) -> Any:
    values = characteristic.get("productSpecCharacteristicValue") or []
    defaults = [v for v in values if isinstance(v, dict) and v.get("isDefault")]
    chosen = (defaults or values or [{}])[0]
    return chosen.get("value") if isinstance(chosen, dict) else None


@dataclass(frozen=True)
class SlaLevel:
    """The contracted figures of one SLA level (Gold, Silver, ...)."""

    specification_id: str
    name: str
    availability_target: Decimal
    time_to_repair_hours: Decimal
    latency_bound_ms: Decimal
    penalty_rule: str


def _sla_figures(body: JsonDict) -> dict[str, Any]:
    found = {
        c.get("name"): _first_value(c)
        for c in body.get("productSpecCharacteristic", []) or []
        if isinstance(c, dict)
    }
    missing = [name for name in SLA_CHARACTERISTICS if found.get(name) in (None, "")]
    if missing:
        details = "; ".join(f"{name}: {SLA_CHARACTERISTICS[name]}" for name in missing)
        raise InvalidRequest(f"an SLA level needs the characteristics {details}")
    numbers: dict[str, Any] = {}
    for name in ("availabilityTarget", "timeToRepairHours", "latencyBoundMs"):
        try:
            numbers[name] = Decimal(str(found[name]))
        except InvalidOperation:
            raise InvalidRequest(
                f"SLA characteristic {name} must be a number, not {found[name]!r}"
            ) from None
        if not numbers[name] > 0:
            raise InvalidRequest(f"SLA characteristic {name} must be positive")
    if numbers["availabilityTarget"] > 100:
        raise InvalidRequest("SLA characteristic availabilityTarget is a percentage (at most 100)")
    numbers["penaltyRule"] = str(found["penaltyRule"])
    return numbers


# What a catalog entity is when its writer does not say: TMF620 makes lifecycleStatus
# mandatory in every response, and an entry marketing writes here is in use (a quote
# takes an offering without a status as Active; "In design", "Retired", ... are said).
DEFAULT_LIFECYCLE_STATUS = "Active"


@dataclass
class CatalogEntityKind(ResourceKind):
    """A TMF620 entity: always answered with its ``lifecycleStatus``."""

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        status = body.get("lifecycleStatus")
        if status is None:
            kept = (old or {}).get("lifecycleStatus")
            body["lifecycleStatus"] = kept if isinstance(kept, str) else DEFAULT_LIFECYCLE_STATUS
        elif not isinstance(status, str) or not status.strip():
            raise InvalidRequest(
                f"lifecycleStatus of a {self.type_name} is a name such as 'In design', "
                "'Active' or 'Retired'"
            )


@dataclass
class ProductSpecificationKind(CatalogEntityKind):
    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        super().before_save(session, principal, body, old)
        if body.get("@type") == SLA_TYPE:
            _sla_figures(body)


@dataclass
class CategoryKind(CatalogEntityKind):
    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        super().before_save(session, principal, body, old)
        parent = body.get("parentId")
        if parent is None:
            return
        if parent == body["id"]:
            raise InvalidRequest("a category cannot be its own parent")
        if session.get(CategoryRow, parent) is None:
            raise UnknownReference(f"referenced resource not found: parentId {parent} (category)")


def sla_level(session: Session, specification_id: str) -> SlaLevel:
    """The SLA level a product specification defines."""
    body = session.scalar(
        select(ProductSpecificationRow.body).where(ProductSpecificationRow.id == specification_id)
    )
    if body is None or body.get("@type") != SLA_TYPE:
        raise NotFound(f"no SLA level with id {specification_id}")
    figures = _sla_figures(body)
    return SlaLevel(
        specification_id=specification_id,
        name=str(body.get("name")),
        availability_target=figures["availabilityTarget"],
        time_to_repair_hours=figures["timeToRepairHours"],
        latency_bound_ms=figures["latencyBoundMs"],
        penalty_rule=figures["penaltyRule"],
    )


def sla_levels(session: Session) -> list[SlaLevel]:
    ids = session.scalars(
        select(ProductSpecificationRow.id)
        .where(ProductSpecificationRow.at_type == SLA_TYPE)
        .order_by(ProductSpecificationRow.name)
    )
    return [sla_level(session, spec_id) for spec_id in ids]


def quantity_amount(quantity: Any) -> Decimal:
    """The amount of a TMF Quantity (0 when there is none)."""
    if not isinstance(quantity, dict):
        return Decimal(0)
    return Decimal(str(quantity.get("amount", 0)))


ACCESS_CHARACTERISTIC = "bandwidth"


def access_offering_ids(session: Session, offering_ids: set[str]) -> set[str]:
    """The offerings among ``offering_ids`` that are a site's access: they carry a
    bandwidth, in their own characteristic values or in their product
    specification's characteristics. Routers, installation, traffic and SLA levels
    carry none."""
    if not offering_ids:
        return set()
    rows = session.execute(
        select(ProductOfferingRow.id, ProductOfferingRow.body).where(
            ProductOfferingRow.id.in_(offering_ids)
        )
    ).all()
    access: set[str] = set()
    spec_of: dict[str, str] = {}
    for offering_id, body in rows:
        uses = body.get("prodSpecCharValueUse", []) or []
        if any(isinstance(u, dict) and u.get("name") == ACCESS_CHARACTERISTIC for u in uses):
            access.add(offering_id)
        elif isinstance(body.get("productSpecification"), dict):
            spec_id = body["productSpecification"].get("id")
            if isinstance(spec_id, str):
                spec_of[offering_id] = spec_id
    if spec_of:
        with_bandwidth = {
            spec_id
            for spec_id, spec in session.execute(
                select(ProductSpecificationRow.id, ProductSpecificationRow.body).where(
                    ProductSpecificationRow.id.in_(set(spec_of.values()))
                )
            )
            if any(
                isinstance(c, dict) and c.get("name") == ACCESS_CHARACTERISTIC
                for c in spec.get("productSpecCharacteristic", []) or []
            )
        }
        access |= {o for o, s in spec_of.items() if s in with_bandwidth}
    return access


@dataclass(frozen=True)
class MaterialAvailability:
    """How many of a material are in stock and when more can be had."""

    specification_id: str
    available: Decimal
    lead_time_days: int

    def ready_by(self, quantity: Decimal, today: date) -> date:
        """The date ``quantity`` units can be at hand: now if in stock, else after lead time."""
        return today if quantity <= self.available else today + timedelta(days=self.lead_time_days)


def material_availability(session: Session, specification_id: str) -> MaterialAvailability:
    """Stock on hand (status available) and replenishment lead time of one material."""
    rows = session.scalars(
        select(ProductStockRow.body).where(
            ProductStockRow.body["stockedProduct", "productSpecification", "id"].as_string()
            == specification_id
        )
    ).all()
    if not rows:
        raise NotFound(f"no stock is kept of product specification {specification_id}")
    available = Decimal(0)
    lead_times = []
    for body in rows:
        if body.get("productStockStatusType") == "available":
            available += Decimal(str(body.get("productStockLevel", {}).get("amount", 0)))
        for characteristic in body.get("stockedProduct", {}).get("productCharacteristic", []) or []:
            if (
                isinstance(characteristic, dict)
                and characteristic.get("name") == LEAD_TIME_CHARACTERISTIC
            ):
                lead_times.append(int(characteristic["value"]))
    return MaterialAvailability(specification_id, available, min(lead_times, default=0))


CATALOG_KIND = CatalogEntityKind(
    name="catalog",
    type_name="Catalog",
    doc=PRODUCT_CATALOG,
    row=CatalogRow,
    write_roles=CATALOG_WRITERS,
    customer_operations=frozenset({READ}),
    customer_owned=False,
    refs=(RefSpec("category[]", "category"), RefSpec("relatedParty[]")),
    status_attribute="lifecycleStatus",
)
CATEGORY_KIND = CategoryKind(
    name="category",
    type_name="Category",
    doc=PRODUCT_CATALOG,
    row=CategoryRow,
    write_roles=CATALOG_WRITERS,
    customer_operations=frozenset({READ}),
    customer_owned=False,
    refs=(RefSpec("productOffering[]", "productOffering"), RefSpec("subCategory[]", "category")),
    status_attribute="lifecycleStatus",
)
PRODUCT_SPECIFICATION_KIND = ProductSpecificationKind(
    name="productSpecification",
    type_name="ProductSpecification",
    doc=PRODUCT_CATALOG,
    row=ProductSpecificationRow,
    write_roles=CATALOG_WRITERS,
    customer_operations=frozenset({READ}),
    customer_owned=False,
    refs=(
        RefSpec("bundledProductSpecification[]", "productSpecification"),
        RefSpec("productSpecificationRelationship[]", "productSpecification"),
        RefSpec("relatedParty[]"),
    ),
    status_attribute="lifecycleStatus",
)
PRODUCT_OFFERING_KIND = CatalogEntityKind(
    name="productOffering",
    type_name="ProductOffering",
    doc=PRODUCT_CATALOG,
    row=ProductOfferingRow,
    write_roles=CATALOG_WRITERS,
    customer_operations=frozenset({READ}),
    customer_owned=False,
    refs=(
        RefSpec("productSpecification", "productSpecification"),
        RefSpec("category[]", "category"),
        RefSpec("productOfferingPrice[]", "productOfferingPrice"),
        RefSpec("bundledProductOffering[]", "productOffering"),
    ),
    status_attribute="lifecycleStatus",
)
PRODUCT_OFFERING_PRICE_KIND = CatalogEntityKind(
    name="productOfferingPrice",
    type_name="ProductOfferingPrice",
    doc=PRODUCT_CATALOG,
    row=ProductOfferingPriceRow,
    write_roles=CATALOG_WRITERS,
    customer_operations=frozenset({READ}),
    customer_owned=False,
    refs=(
        RefSpec("bundledPopRelationship[]", "productOfferingPrice"),
        RefSpec("popRelationship[]", "productOfferingPrice"),
    ),
    status_attribute="lifecycleStatus",
)


REORDER_RAISED = "raised"


@dataclass
class ProductStockKind(ResourceKind):
    """TMF687 productStock: a level is never negative, and a warehouse stock that falls
    below its ``minStockLevel`` raises a reorder of its ``reorderQuantity`` (the
    ``reorder`` extension), once per fall, whatever took it there."""

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        for attribute in ("productStockLevel", "minStockLevel", "reorderQuantity"):
            if attribute in body and quantity_amount(body[attribute]) < 0:
                raise Conflict(
                    f"{attribute}.amount of productStock {body.get('id')} would be "
                    f"{quantity_amount(body[attribute])}: a stock level is never negative; "
                    "count the stock and correct it, or wait for the replenishment"
                )
        if old is not None and body.get("productStockStatusType") == "available":
            self._reorder_below_minimum(session, body, old)

    def _reorder_below_minimum(self, session: Session, body: JsonDict, old: JsonDict) -> None:
        minimum = body.get("minStockLevel")
        before = quantity_amount(old.get("productStockLevel"))
        after = quantity_amount(body.get("productStockLevel"))
        if minimum is None or not before >= quantity_amount(minimum) > after:
            return
        if body.get("reorder") != old.get("reorder"):
            return  # the caller decides on the reorder itself
        reorder: JsonDict = {
            "state": REORDER_RAISED,
            "raisedDate": iso(utcnow()),
            "reason": f"stock fell to {after} below the minimum of {quantity_amount(minimum)}",
            "quantity": body.get("reorderQuantity") or minimum,
        }
        # The order manager's work list: productStock?reorder.state=raised
        body["reorder"] = reorder


PRODUCT_STOCK_KIND = ProductStockKind(
    name="productStock",
    type_name="ProductStock",
    doc=STOCK,
    row=ProductStockRow,
    write_roles=frozenset({Role.ADMIN, Role.ORDER_MANAGER}),
    customer_owned=False,
    refs=(
        RefSpec("stockedProduct.productSpecification", "productSpecification"),
        RefSpec("stockedProduct.productOffering", "productOffering"),
        RefSpec("relatedParty[]"),
    ),
    status_attribute="productStockStatusType",
    # reorder: the order manager's work list (reorder.state=raised); reservedFor: the
    # order item and site an allotment is for (reservedFor.productOrder.id=...).
    extensions={"reorder": resources.OBJECT, "reservedFor": resources.OBJECT},
)
