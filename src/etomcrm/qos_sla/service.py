"""SLAs per product (TMF623 ``sla``): what 3.7.1 assesses and 3.7.2 enforces.

An SLA is made from the product's SLA level (its ``slaLevel`` characteristic names a
catalog ``SlaSpecification``) when the product is active, once per product. Its rules
(TMF623 ``rule``) are the metrics:

``availability``  percent over the calendar month, at least the level's target;
``timeToRepair``  hours on the SLA's calendar, at most the level's figure;
``latency``       mean round-trip milliseconds over the month, at most the bound;
``loss``          mean packet loss percent over the month, at most the level's
                  ``lossBoundPercent`` or, when the level names none, 0.5 %.

The SLA keeps the level's calendar characteristics (``serviceCalendar``, read by
:func:`etomcrm.core.calendar.calendar_for`) and its ``penaltyRule``.

TMF623 v2 numbers its resources (``id`` is an int64): an SLA's id is derived from its
product's id, a violation's from its key, so the same SLA or violation always gets the
same number. The v2 document has no Error or hub definitions; the v4 ones (TMF621)
are added to the served document so errors and listeners follow the v4 conventions
of every other API.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.catalog.models import ProductSpecificationRow
from etomcrm.catalog.service import access_offering_ids, characteristic_values, sla_level
from etomcrm.core import resources
from etomcrm.core.calendar import BusinessCalendar, calendar_for
from etomcrm.core.clock import iso
from etomcrm.core.errors import InvalidRequest, NotFound
from etomcrm.core.resources import READ, ResourceKind
from etomcrm.core.tmf_schemas import SLA_MANAGEMENT, TROUBLE_TICKET, JsonDict, TmfDocument
from etomcrm.db import utcnow
from etomcrm.order_handling.models import ProductRow
from etomcrm.qos_sla.models import SlaRow, SlaViolationRow
from etomcrm.security.service import SYSTEM, Principal

DEFAULT_LOSS_BOUND_PERCENT = Decimal("0.5")
CALENDAR_CHARACTERISTICS = ("serviceHours", "holidayState", "timeZone")
AVAILABILITY, TIME_TO_REPAIR, LATENCY, LOSS = "availability", "timeToRepair", "latency", "loss"


def _with_v4_conventions(doc: TmfDocument) -> TmfDocument:
    raw = dict(doc.raw)
    definitions = dict(raw["definitions"])
    for name in ("Error", "EventSubscription", "EventSubscriptionInput"):
        definitions.setdefault(name, TROUBLE_TICKET.definitions[name])
    raw["definitions"] = definitions
    return replace(doc, raw=raw)


SLA_DOC = _with_v4_conventions(SLA_MANAGEMENT)


def numeric_id(key: str) -> int:
    """A stable positive int64 for a TMF623 id (53 bits: exact in every JSON reader)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 11


@dataclass
class SlaKind(ResourceKind):
    """Staff read every SLA, a customer its own; only etomcrm writes them."""


SLA_KIND = SlaKind(
    name="sla",
    type_name="Sla",
    doc=SLA_DOC,
    row=SlaRow,
    customer_operations=frozenset({READ}),
    status_attribute=None,
    writable=False,
    extensions={
        "product": resources.OBJECT,
        "slaSpecification": resources.OBJECT,
        "serviceCalendar": resources.OBJECT,
        "penaltyRule": resources.TEXT,
        # The service problems that put the SLA at risk until repaired (3.6.2 → 3.7).
        "atRisk": resources.LIST,
    },
)
SLA_VIOLATION_KIND = SlaKind(
    name="slaViolation",
    type_name="SlaViolation",
    doc=SLA_DOC,
    row=SlaViolationRow,
    customer_operations=frozenset({READ}),
    status_attribute=None,
    name_attribute=None,
    writable=False,
    # billing's list: slaViolation?credit.status=handedToBilling
    extensions={
        **dict.fromkeys(
            ("slaId", "metric", "period", "violationKey", "status", "resolution"), resources.TEXT
        ),
        "product": resources.OBJECT,
        "credit": resources.OBJECT,
        "troubleTicket": resources.OBJECT,
        "closedDate": resources.INSTANT,
    },
)


@dataclass(frozen=True)
class SlaTerms:
    """An SLA as 3.7.1 and 3.7.2 read it back from its TMF623 document."""

    sla_id: str
    product_id: str
    customer_id: str | None
    availability_target: Decimal
    time_to_repair_hours: Decimal
    latency_bound_ms: Decimal
    loss_bound_percent: Decimal
    penalty_rule: str
    calendar: BusinessCalendar

    def target(self, metric: str) -> Decimal:
        return {
            AVAILABILITY: self.availability_target,
            TIME_TO_REPAIR: self.time_to_repair_hours,
            LATENCY: self.latency_bound_ms,
            LOSS: self.loss_bound_percent,
        }[metric]


def terms_of(row: SlaRow) -> SlaTerms:
    body: JsonDict = row.body
    rules = {r["id"]: Decimal(r["referenceValue"]) for r in body["rule"]}
    return SlaTerms(
        sla_id=row.id,
        product_id=str(row.product_id),
        customer_id=row.owner_customer_id,
        availability_target=rules[AVAILABILITY],
        time_to_repair_hours=rules[TIME_TO_REPAIR],
        latency_bound_ms=rules[LATENCY],
        loss_bound_percent=rules[LOSS],
        penalty_rule=str(body["penaltyRule"]),
        calendar=calendar_for(body.get("serviceCalendar") or {}),
    )


def establish_sla(session: Session, product_id: str) -> JsonDict:
    """3.7.1 Assess QoS Performance (eTOM 1.1.1.7.1), set-up: the TMF623 SLA of an
    active product, from the catalog SLA level its ``slaLevel`` characteristic names.

    Once per product: a second call returns the SLA made the first time. Raises
    NotFound for an unknown product and InvalidRequest when the product names no SLA
    level or one the catalog does not hold.
    """

    existing = session.scalar(select(SlaRow).where(SlaRow.product_id == product_id))
    if existing is not None:
        return dict(existing.body)
    product = session.get(ProductRow, product_id)
    if product is None:
        raise NotFound(f"no product with id {product_id}")
    level_name = characteristic_values(product.body.get("productCharacteristic")).get("slaLevel")
    if not isinstance(level_name, str) or not level_name:
        raise InvalidRequest(
            f"product {product_id} has no slaLevel characteristic naming the catalog SLA "
            "level it was sold with"
        )
    spec = session.scalar(
        select(ProductSpecificationRow).where(
            ProductSpecificationRow.at_type == "SlaSpecification",
            ProductSpecificationRow.name == level_name,
        )
    )
    if spec is None:
        raise InvalidRequest(
            f"product {product_id} names the SLA level {level_name!r}, which the catalog "
            "does not hold as an SlaSpecification"
        )
    level = sla_level(session, spec.id)
    figures = characteristic_values(spec.body.get("productSpecCharacteristic"))
    loss_bound = Decimal(str(figures.get("lossBoundPercent") or DEFAULT_LOSS_BOUND_PERCENT))
    service_calendar = {
        name: figures[name] for name in CALENDAR_CHARACTERISTICS if figures.get(name) is not None
    }
    calendar_for(service_calendar)  # refuses an unreadable calendar before it is stored
    rule = level.penalty_rule
    sla_id = numeric_id(f"sla/{product_id}")
    body: JsonDict = {
        "id": sla_id,
        "@type": "Sla",
        "name": f"{level.name} for {product.body.get('name', product_id)}",
        "description": (
            f"{level.name}: availability at least {level.availability_target} % per month, "
            f"repair within {level.time_to_repair_hours} h, latency at most "
            f"{level.latency_bound_ms} ms, loss at most {loss_bound} %; {rule}"
        ),
        "version": "1",
        "validFor": {"startDateTime": iso(utcnow())},
        "template": {"name": level.name, "description": f"SlaSpecification {spec.id}"},
        "relatedParty": [{"role": "customer", "name": str(product.owner_customer_id)}],
        "rule": [
            _rule(AVAILABILITY, "%", level.availability_target, ">=", rule),
            _rule(TIME_TO_REPAIR, "h", level.time_to_repair_hours, "<=", rule),
            _rule(LATENCY, "ms", level.latency_bound_ms, "<=", rule),
            _rule(LOSS, "%", loss_bound, "<=", rule),
        ],
        "product": {"id": product_id, "@referredType": "Product"},
        "slaSpecification": {"id": spec.id, "name": level.name},
        "serviceCalendar": service_calendar,
        "penaltyRule": rule,
    }
    row = SlaRow(
        id=str(sla_id),
        product_id=product_id,
        owner_customer_id=product.owner_customer_id,
        body=body,
        version=1,
        name=str(body["name"])[:200],
        at_type="Sla",
    )
    session.add(row)
    resources.record_audit(session, SYSTEM, "create", SLA_KIND, row.id, {"created": body})
    session.flush()
    return body


def _rule(metric: str, unit: str, value: Decimal, operator: str, rule: str) -> JsonDict:
    return {
        "id": metric,
        "metric": metric,
        "unit": unit,
        "referenceValue": str(value),
        "operator": operator,
        "consequence": rule,
    }


def sla_level_of(product: JsonDict) -> str | None:
    """The SLA level a product was sold with (its ``slaLevel``), None when none."""
    name = characteristic_values(product.get("productCharacteristic")).get("slaLevel")
    return name if isinstance(name, str) and name and name != "none" else None


def start_sla_monitoring(session: Session, access_product_ids: list[str]) -> list[JsonDict]:
    """3.7.1 Assess QoS Performance (eTOM 1.1.1.7.1), set-up at order completion: one
    TMF623 SLA for each of the given access products sold with an SLA level (the
    others have nothing to monitor). Returns the SLAs, made now or before: a step
    replayed after a crash finds the first ones and makes no second."""
    if not access_product_ids:
        return []
    levelled = [
        product_id
        for product_id, body in session.execute(
            select(ProductRow.id, ProductRow.body)
            .where(ProductRow.id.in_(access_product_ids))
            .order_by(ProductRow.id)
        )
        if sla_level_of(body) is not None
    ]
    return [establish_sla(session, product_id) for product_id in levelled]


def establish_slas(session: Session) -> int:
    """3.7.1 Assess QoS Performance (eTOM 1.1.1.7.1), safety net of the monthly run: an
    SLA for every active access product sold with an SLA level that has none yet (one
    completed before completion made SLAs, or whose level was added to the catalog
    since); returns how many were made. Order completion makes them
    (:func:`start_sla_monitoring`), so this normally makes none. Installation,
    routers, traffic and the SLA items themselves are never monitored."""
    missing = session.execute(
        select(ProductRow.id, ProductRow.body)
        .where(ProductRow.status == "active")
        .where(
            ProductRow.id.not_in(select(SlaRow.product_id).where(SlaRow.product_id.is_not(None)))
        )
        .order_by(ProductRow.id)
    ).all()
    offering_of = {
        product_id: str((body.get("productOffering") or {}).get("id"))
        for product_id, body in missing
        if sla_level_of(body) is not None and (body.get("productOffering") or {}).get("id")
    }
    access = access_offering_ids(session, set(offering_of.values()))
    made = 0
    for product_id, offering_id in offering_of.items():
        if offering_id not in access:
            continue
        try:
            establish_sla(session, product_id)
        except InvalidRequest:
            continue  # a level the catalog does not hold: nothing to monitor against
        made += 1
    return made


def sla_for_product(session: Session, principal: Principal, product_id: str) -> JsonDict:
    """The SLA of a product as the caller may see it (NotFound otherwise)."""
    SLA_KIND.authorize(principal, READ)
    stmt = SLA_KIND.scoped(principal, select(SlaRow).where(SlaRow.product_id == product_id))
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(f"no SLA for product {product_id}")
    return dict(row.body)
