"""3.4.3 Negotiate the sale: TMF648 quotes with versions, prices, materials and approval.

How a quote is shaped (the order flow and the portal read exactly this):

- ``quoteItem[]``: one item per site and offering, ids "1", "2", ... Each item has
  ``productOffering`` (a catalog reference), ``quantity`` and ``product`` with
  ``place[0]`` = the site (``id``, ``@referredType`` GeographicSite, ``role``
  installationAddress), ``productTerm`` (the contract duration) and
  ``productCharacteristic``: ``slaLevel`` (the name of the SLA offering quoted for the
  site, or "none") and, for materials, the stock answer (below).
- Prices come from the catalog only: whatever prices a client sends are replaced. Each
  of the offering's productOfferingPrices becomes one ``quoteItemPrice`` (priceType
  oneTime or recurring with recurringChargePeriod month; usage prices are quoted as a
  rate per unit and are not part of any total). ``price.dutyFreeAmount`` is what the
  customer pays for the line (list price times quantity, less the discount, in cents,
  ROUND_HALF_UP); ``priceAlteration[0]`` states the discount percentage and the amount
  taken off. ``quoteTotalPrice`` has one entry per priceType, the exact sum of the
  lines. Amounts are computed as Decimal and written as JSON numbers from the quantized
  Decimal; read them back with ``Decimal(str(value))`` (see :func:`quote_totals`).
- Materials: an item whose offering's product specification is kept in stock (the
  managed router) is a material. Its characteristics ``materialAvailability``
  (inStock or replenishment), ``materialLeadTimeDays`` and ``materialReadyBy`` come from
  :func:`etomcrm.catalog.service.material_availability`; the quote's demand is counted
  in item order, so when 50 sites need a router and 40 are in stock, the last ten wait
  for replenishment. Materials stay items of their own (they have their own price);
  their site says where they go.
- Terms and discount are extension attributes of the quote: ``contractDurationMonths``
  and ``discountPercent``. A client may state the discount as TMF648 does instead, as
  ``priceAlteration[].price.percentage`` of its quoteItemPrices (one percentage for the
  whole quote); ``validFor`` runs ``quote_validity_days`` from each version.
- A discount above ``quote_discount_approval_percent`` puts an ``authorization`` entry
  (@type DiscountApproval) on the quote naming who set it; a different sales or admin
  person approves it.

Versions: the quote keeps its id; ``version`` counts "1", "2", ... Every change of
items, SLA, discount or terms is a revision: the version being replaced is frozen as a
read-only quote resource with id ``{quote id}-v{n}`` (so ``GET .../quote/{id}-v1`` reads
version 1 as it was) carrying ``supersededBy``; the current quote lists its
predecessors in ``previousVersion``. A revision starts the new version in inProgress.

States (TMF648 v4): inProgress → pending (discount needs approval) or approved (ready
for the customer) → accepted or rejected by the customer; cancelled from any open
state. accepted, rejected and cancelled are final: after a rejection, negotiating on
means drafting a new quote.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.catalog.models import (
    ProductOfferingPriceRow,
    ProductOfferingRow,
    ProductSpecificationRow,
)
from etomcrm.catalog.service import SLA_TYPE, material_availability
from etomcrm.config import get_settings
from etomcrm.core import resources, states
from etomcrm.core.bus import record
from etomcrm.core.clock import iso
from etomcrm.core.errors import (
    Conflict,
    Forbidden,
    IllegalTransition,
    InvalidRequest,
    NotFound,
    UnknownReference,
)
from etomcrm.core.resources import READ, UPDATE, RefSpec, ResourceKind
from etomcrm.core.tmf_schemas import QUOTE, JsonDict
from etomcrm.customer_interface.models import GeographicSiteRow, PartyInteractionRow
from etomcrm.customer_interface.service import customer_of, refuse_if_relationship_ended
from etomcrm.db import utcnow
from etomcrm.security.service import Principal, Role
from etomcrm.selling.customer_data import missing_contract_data
from etomcrm.selling.events import QuoteDecided
from etomcrm.selling.models import QuoteRow

log = logging.getLogger(__name__)

CURRENCY = "EUR"
CENT = Decimal("0.01")
QUOTE_WRITERS = frozenset({Role.ADMIN, Role.SALES})
# Who may approve a discount: a sales manager, which this installation models as any
# sales or admin person other than the one who set the discount.
APPROVER_ROLES = QUOTE_WRITERS
SITE_ROLE = "installationAddress"
EDUCATION_TYPE = "CustomerEducation"
DISCOUNT_APPROVAL_TYPE = "DiscountApproval"
DISCOUNT_NAME = "Negotiated discount"
TOTALLED_PRICE_TYPES = ("oneTime", "recurring")

QUOTE_TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "inProgress": frozenset({"pending", "approved", "cancelled"}),
    "pending": frozenset({"approved", "inProgress", "cancelled"}),
    "approved": frozenset({"accepted", "rejected", "cancelled", "inProgress"}),
    "accepted": frozenset(),
    "rejected": frozenset(),
    "cancelled": frozenset(),
}
DECIDED_STATES = frozenset({"accepted", "rejected", "cancelled"})
# Attributes whose change makes a new version: they decide what is sold and for how much.
PRICED_ATTRIBUTES = ("quoteItem", "discountPercent", "contractDurationMonths")
# What a customer may change on its own quote: its decision and a note with the reason.
CUSTOMER_ATTRIBUTES = frozenset({"state", "note"})
# Only the server writes these; a client's value is put back.
SERVER_ATTRIBUTES = (
    "version",
    "quoteTotalPrice",
    "authorization",
    "validFor",
    "quoteDate",
    "previousVersion",
    "supersededBy",
    "effectiveQuoteCompletionDate",
)


class _Unchanged:
    """Marks an argument of :func:`revise_quote` the caller leaves as it is."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged()


@dataclass(frozen=True)
class QuoteLine:
    """One offering for one site, as a sales person puts it on a quote."""

    site_id: str
    offering_id: str
    quantity: int = 1


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _number(value: Decimal) -> float | int:
    """A JSON number written from a quantized Decimal.

    The document store writes JSON with orjson, which has no Decimal; a float prints as
    the shortest text that reads back to the same float, so an amount in cents of up to
    15 digits makes the round trip exactly (``Decimal(str(number))``).
    """
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _decimal(value: Any, what: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise InvalidRequest(f"{what} must be a number, not {value!r}") from None
    if not result.is_finite():
        raise InvalidRequest(f"{what} must be a finite number, not {value!r}")
    return result


def _money(value: Decimal) -> JsonDict:
    return {"unit": CURRENCY, "value": _number(value)}


def discount_needs_approval(discount_percent: Decimal) -> bool:
    threshold = Decimal(str(get_settings().quote_discount_approval_percent))
    return discount_percent > threshold


def quote_totals(body: JsonDict) -> dict[str, Decimal]:
    """The quote's total per priceType (oneTime, recurring), exact."""
    totals: dict[str, Decimal] = {}
    for entry in body.get("quoteTotalPrice", []) or []:
        amount = entry.get("price", {}).get("dutyFreeAmount", {}).get("value")
        if isinstance(entry.get("priceType"), str) and amount is not None:
            totals[entry["priceType"]] = Decimal(str(amount))
    return totals


def line_amounts(body: JsonDict) -> dict[str, list[Decimal]]:
    """Every line's net amount per priceType, as stored (for checks and reports)."""
    lines: dict[str, list[Decimal]] = {}
    for item in body.get("quoteItem", []) or []:
        for price in item.get("quoteItemPrice", []) or []:
            if price.get("priceType") in TOTALLED_PRICE_TYPES:
                value = price["price"]["dutyFreeAmount"]["value"]
                lines.setdefault(price["priceType"], []).append(Decimal(str(value)))
    return lines


# ----- reading the catalog ---------------------------------------------------------------


@dataclass(frozen=True)
class _Offering:
    id: str
    name: str
    specification_id: str | None
    is_sla: bool
    prices: tuple[JsonDict, ...]


def _offerings(session: Session, ids: set[str]) -> dict[str, _Offering]:
    """The offerings named, with their prices; refuses unknown or retired ones."""
    rows = {
        r.id: r.body
        for r in session.execute(
            select(ProductOfferingRow.id, ProductOfferingRow.body).where(
                ProductOfferingRow.id.in_(ids)
            )
        )
    }
    missing = sorted(ids - set(rows))
    if missing:
        raise UnknownReference(f"no product offering with id {', '.join(missing)}")
    price_ids = {
        ref["id"]
        for body in rows.values()
        for ref in body.get("productOfferingPrice", []) or []
        if isinstance(ref, dict) and isinstance(ref.get("id"), str)
    }
    prices = {
        r.id: r.body
        for r in session.execute(
            select(ProductOfferingPriceRow.id, ProductOfferingPriceRow.body).where(
                ProductOfferingPriceRow.id.in_(price_ids)
            )
        )
    }
    spec_ids = {
        b["productSpecification"]["id"]
        for b in rows.values()
        if isinstance(b.get("productSpecification"), dict)
    }
    spec_types = dict(
        session.execute(
            select(ProductSpecificationRow.id, ProductSpecificationRow.at_type).where(
                ProductSpecificationRow.id.in_(spec_ids)
            )
        ).all()
    )
    found: dict[str, _Offering] = {}
    for offering_id, body in rows.items():
        status = str(body.get("lifecycleStatus", "Active"))
        if body.get("isSellable") is False or status.lower() in ("retired", "obsolete"):
            raise Conflict(f"product offering {body.get('name')!r} ({offering_id}) is not sold")
        spec = body.get("productSpecification")
        spec_id = spec["id"] if isinstance(spec, dict) else None
        refs = [r["id"] for r in body.get("productOfferingPrice", []) or [] if isinstance(r, dict)]
        found[offering_id] = _Offering(
            id=offering_id,
            name=str(body.get("name", offering_id)),
            specification_id=spec_id,
            is_sla=spec_id is not None and spec_types.get(spec_id) == SLA_TYPE,
            prices=tuple(prices[p] for p in refs if p in prices),
        )
    return found


def _check_sites(session: Session, customer_id: str, site_ids: set[str]) -> dict[str, str]:
    """Site id -> name; every site must exist and belong to the quote's customer."""
    rows = session.execute(
        select(
            GeographicSiteRow.id, GeographicSiteRow.name, GeographicSiteRow.owner_customer_id
        ).where(GeographicSiteRow.id.in_(site_ids))
    ).all()
    known = {r.id: r for r in rows}
    missing = sorted(site_ids - set(known))
    if missing:
        raise UnknownReference(f"no geographic site with id {', '.join(missing)}")
    foreign = sorted(i for i, r in known.items() if r.owner_customer_id != customer_id)
    if foreign:
        raise InvalidRequest(
            f"site(s) {', '.join(foreign)} belong to another customer than {customer_id}; "
            "a quote covers one customer's sites"
        )
    return {i: r.name or i for i, r in known.items()}


# ----- pricing ----------------------------------------------------------------------------


def _lines_from_items(items: Any) -> list[QuoteLine]:
    """The lines a client's quoteItem[] asks for (prices it sends are ignored)."""
    if not isinstance(items, list) or not items:
        raise InvalidRequest("a quote needs at least one quoteItem")
    lines = []
    for position, item in enumerate(items, start=1):
        offering = item.get("productOffering") if isinstance(item, dict) else None
        if not isinstance(offering, dict) or not isinstance(offering.get("id"), str):
            raise InvalidRequest(f"quoteItem {position} needs productOffering.id")
        places = (item.get("product") or {}).get("place") or []
        site = places[0] if places and isinstance(places[0], dict) else {}
        if not isinstance(site.get("id"), str):
            raise InvalidRequest(
                f"quoteItem {position} needs product.place[0] = the GeographicSite it is for"
            )
        quantity = item.get("quantity", 1)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise InvalidRequest(f"quoteItem {position}: quantity must be a whole number >= 1")
        lines.append(QuoteLine(site["id"], offering["id"], quantity))
    return lines


def _sla_name_per_site(
    lines: Sequence[QuoteLine], offerings: dict[str, _Offering]
) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for line in lines:
        offering = offerings[line.offering_id]
        if offering.is_sla:
            if line.site_id in chosen and chosen[line.site_id] != offering.name:
                raise InvalidRequest(
                    f"site {line.site_id} has two SLA levels ({chosen[line.site_id]} and "
                    f"{offering.name}); quote one SLA level per site"
                )
            chosen[line.site_id] = offering.name
    return chosen


def _item_price(
    price: JsonDict, quantity: int, discount: Decimal
) -> tuple[JsonDict, str | None, Decimal, Decimal]:
    """One quoteItemPrice; returns it with its priceType, net amount and discount."""
    price_type = str(price.get("priceType", "oneTime"))
    unit_price = _decimal(price.get("price", {}).get("value", 0), f"price of {price.get('name')}")
    ref = {"id": price["id"], "name": price.get("name"), "@referredType": "ProductOfferingPrice"}
    entry: JsonDict = {
        "name": price.get("name") or price_type,
        "priceType": price_type,
        "productOfferingPrice": {k: v for k, v in ref.items() if v is not None},
    }
    if price_type == "usage":
        # A rate, not an amount: what it comes to depends on use, so no total holds it.
        unit = price.get("unitOfMeasure") or {}
        entry["unitOfMeasure"] = str(unit.get("units", "unit"))
        entry["price"] = {"dutyFreeAmount": _money(_cents(unit_price))}
        return entry, None, Decimal(0), Decimal(0)
    if price_type == "recurring":
        entry["recurringChargePeriod"] = str(price.get("recurringChargePeriodType", "month"))
    gross = _cents(unit_price * quantity)
    off = _cents(gross * discount / 100)
    net = gross - off
    entry["price"] = {"dutyFreeAmount": _money(net)}
    entry["description"] = f"list price {gross} {CURRENCY}"
    if discount:
        entry["priceAlteration"] = [_alteration(price_type, entry, discount, off)]
    return entry, price_type, net, off


def _alteration(price_type: str, entry: JsonDict, discount: Decimal, off: Decimal) -> JsonDict:
    alteration: JsonDict = {
        "name": DISCOUNT_NAME,
        "priceType": price_type,
        "priority": 1,
        "price": {"percentage": _number(discount), "dutyFreeAmount": _money(-off)},
    }
    if "recurringChargePeriod" in entry:
        alteration["recurringChargePeriod"] = entry["recurringChargePeriod"]
    return alteration


def _altered_percentages(items: Any) -> set[Decimal]:
    """The discount percentages a client states as TMF648 defines them:
    ``quoteItem[].quoteItemPrice[].priceAlteration[].price.percentage``."""
    found: set[Decimal] = set()
    for position, item in enumerate(items if isinstance(items, list) else [], start=1):
        prices = item.get("quoteItemPrice") if isinstance(item, dict) else None
        for price in prices if isinstance(prices, list) else []:
            alterations = price.get("priceAlteration") if isinstance(price, dict) else None
            for alteration in alterations if isinstance(alterations, list) else []:
                amount = alteration.get("price") if isinstance(alteration, dict) else None
                if isinstance(amount, dict) and amount.get("percentage") is not None:
                    found.add(
                        _decimal(
                            amount["percentage"],
                            f"quoteItem {position}: priceAlteration price.percentage",
                        )
                    )
    return found


def _requested_discount(body: JsonDict, old: JsonDict | None) -> Decimal:
    """The quote's one discount: ``discountPercent``, or the percentage of the
    ``priceAlteration`` of its quoteItemPrices (TMF648's own shape).

    On a change, a new ``discountPercent`` wins; else a new percentage in the items.
    """
    stated = body.get("discountPercent")
    before = None if old is None else old.get("discountPercent")
    altered = _altered_percentages(body.get("quoteItem"))
    if old is not None and before is not None:
        altered.discard(_decimal(before, "discountPercent"))
    if stated is not None and (old is None or stated != before):
        discount = _decimal(stated, "discountPercent")
        if old is None and altered - {discount}:
            raise InvalidRequest(
                f"discountPercent {discount} and the priceAlteration percentages "
                f"{', '.join(str(p) for p in sorted(altered))} disagree; a quote has one "
                "discount, state it once"
            )
    elif len(altered) > 1:
        raise InvalidRequest(
            "the priceAlteration percentages of the quoteItemPrices differ "
            f"({', '.join(str(p) for p in sorted(altered))}); a quote has one discount for "
            "all its items"
        )
    elif altered:
        (discount,) = altered
    else:
        discount = _decimal(stated if stated is not None else 0, "discountPercent")
    if not Decimal(0) <= discount <= Decimal(100):
        raise InvalidRequest(f"a discount lies between 0 and 100 percent, not {discount}")
    return discount


def _price_quote(
    session: Session, body: JsonDict, customer_id: str, old: JsonDict | None = None
) -> None:
    """Rebuild quoteItem[] and quoteTotalPrice from the catalog and the stock."""
    discount = _requested_discount(body, old)
    lines = _lines_from_items(body.get("quoteItem"))
    months = body.get("contractDurationMonths", 36)
    if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 120:
        raise InvalidRequest("contractDurationMonths must be a whole number from 1 to 120")
    offerings = _offerings(session, {line.offering_id for line in lines})
    site_names = _check_sites(session, customer_id, {line.site_id for line in lines})
    sla_names = _sla_name_per_site(lines, offerings)
    today = utcnow().date()
    stock: dict[str, Any] = {}
    demand: dict[str, Decimal] = {}
    totals: dict[str, Decimal] = {t: Decimal(0) for t in TOTALLED_PRICE_TYPES}
    discounts: dict[str, Decimal] = {t: Decimal(0) for t in TOTALLED_PRICE_TYPES}
    items = []
    for position, line in enumerate(lines, start=1):
        offering = offerings[line.offering_id]
        characteristics: list[JsonDict] = [
            {
                "name": "slaLevel",
                "valueType": "string",
                "value": sla_names.get(line.site_id, "none"),
            }
        ]
        spec_id = offering.specification_id
        if spec_id is not None and not offering.is_sla:
            if spec_id not in stock:
                try:
                    stock[spec_id] = material_availability(session, spec_id)
                except NotFound:
                    stock[spec_id] = None  # not a stocked material
            availability = stock[spec_id]
            if availability is not None:
                demand[spec_id] = demand.get(spec_id, Decimal(0)) + line.quantity
                in_stock = demand[spec_id] <= availability.available
                ready_by = availability.ready_by(demand[spec_id], today)
                characteristics += [
                    {
                        "name": "materialAvailability",
                        "valueType": "string",
                        "value": "inStock" if in_stock else "replenishment",
                    },
                    {
                        "name": "materialLeadTimeDays",
                        "valueType": "integer",
                        "value": 0 if in_stock else availability.lead_time_days,
                    },
                    {"name": "materialReadyBy", "valueType": "date", "value": ready_by.isoformat()},
                ]
        item_prices = []
        for price in offering.prices:
            entry, price_type, net, off = _item_price(price, line.quantity, discount)
            item_prices.append(entry)
            if price_type in totals:
                totals[price_type] += net
                discounts[price_type] += off
        items.append(
            {
                "id": str(position),
                "action": "add",
                "quantity": line.quantity,
                "state": "inProgress",
                "productOffering": {
                    "id": offering.id,
                    "name": offering.name,
                    "@referredType": "ProductOffering",
                },
                "product": {
                    "@type": "Product",
                    "name": offering.name,
                    "place": [
                        {
                            "id": line.site_id,
                            "name": site_names[line.site_id],
                            "role": SITE_ROLE,
                            "@referredType": "GeographicSite",
                        }
                    ],
                    "productCharacteristic": characteristics,
                    "productTerm": [
                        {
                            "name": "Contract term",
                            "duration": {"amount": months, "units": "month"},
                        }
                    ],
                },
                "quoteItemPrice": item_prices,
            }
        )
    body["quoteItem"] = items
    body["discountPercent"] = _number(discount)
    body["contractDurationMonths"] = months
    body["quoteTotalPrice"] = [
        _total(price_type, totals[price_type], discounts[price_type], discount)
        for price_type in TOTALLED_PRICE_TYPES
    ]


def _total(price_type: str, amount: Decimal, off: Decimal, discount: Decimal) -> JsonDict:
    names = {"oneTime": "Total one-time charges", "recurring": "Total monthly charges"}
    entry: JsonDict = {
        "name": names[price_type],
        "priceType": price_type,
        "price": {"dutyFreeAmount": _money(amount)},
    }
    if price_type == "recurring":
        entry["recurringChargePeriod"] = "month"
    if discount:
        entry["priceAlteration"] = [_alteration(price_type, entry, discount, off)]
    return entry


# ----- the resource kind ----------------------------------------------------------------


def _version_number(body: JsonDict) -> int:
    try:
        return int(str(body.get("version", "1")))
    except ValueError:
        return 1


def archive_id(quote_id: str, version: int | str) -> str:
    """The id under which a superseded version of a quote stays readable."""
    return f"{quote_id}-v{version}"


def education_reason(quote_id: str, version: str) -> str:
    """The reason of the TMF683 interaction that records education on one version.

    The accept rule finds the record by this text (the interaction's indexed name).
    """
    return f"Customer education on quote {quote_id} version {version}"


def education_recorded(session: Session, body: JsonDict) -> bool:
    """Whether the customer was educated (3.4.2) on the quote's current version."""
    found = session.scalar(
        select(PartyInteractionRow.id)
        .where(
            PartyInteractionRow.at_type == EDUCATION_TYPE,
            PartyInteractionRow.owner_customer_id == customer_of(body),
            PartyInteractionRow.name == education_reason(body["id"], str(body.get("version"))),
        )
        .limit(1)
    )
    return found is not None


def _awaits_approval(authorization: JsonDict | None) -> bool:
    return authorization is not None and authorization.get("state") != "approved"


def _discount_authorization(body: JsonDict) -> JsonDict | None:
    for entry in body.get("authorization", []) or []:
        if isinstance(entry, dict) and entry.get("@type") == DISCOUNT_APPROVAL_TYPE:
            return entry
    return None


@dataclass
class QuoteKind(ResourceKind):
    """TMF648 quote: priced by the server, versioned on every priced change."""

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        return customer_of(body) or current

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        if old is None:
            self._new(session, principal, body)
            return
        if old.get("supersededBy"):
            raise Conflict(
                f"quote {old['id']} is version {old.get('version')} of quote "
                f"{old['supersededBy']['id']}, kept as it was; change the current quote"
            )
        before, after = str(old.get("state")), str(body.get("state"))
        if before in DECIDED_STATES:
            raise Conflict(f"quote {old['id']} is {before}; a decided quote does not change")
        if principal.is_customer:
            changed = {k for k in set(old) | set(body) if old.get(k) != body.get(k)}
            refused = sorted(changed - CUSTOMER_ATTRIBUTES)
            if refused:
                raise Forbidden(
                    "a customer may only accept or reject its quote (state) and add a note, "
                    f"not change {', '.join(refused)}"
                )
            if before != after and after not in ("accepted", "rejected"):
                raise Forbidden(
                    f"a customer may set its quote to accepted or rejected, not {after!r}"
                )
        if customer_of(body) != customer_of(old):
            raise InvalidRequest("a quote stays with its customer; draft a new quote instead")
        for attribute in SERVER_ATTRIBUTES:
            if attribute in old:
                body[attribute] = old[attribute]
            else:
                body.pop(attribute, None)
        if any(old.get(a) != body.get(a) for a in PRICED_ATTRIBUTES):
            self._revise(session, principal, body, old)
            return
        if before != after:
            self._transition(session, principal, body, old, before, after)

    def _new(self, session: Session, principal: Principal, body: JsonDict) -> None:
        customer_id = customer_of(body)
        if customer_id is None:
            raise InvalidRequest(
                "a quote needs relatedParty with @referredType Customer: the customer it is for"
            )
        state = body.get("state", "inProgress")
        if state != "inProgress":
            raise InvalidRequest(f"a new quote starts inProgress, not {state!r}")
        for attribute in SERVER_ATTRIBUTES:
            body.pop(attribute, None)
        body["state"] = "inProgress"
        body["version"] = "1"
        body["quoteDate"] = iso(utcnow())
        _price_quote(session, body, customer_id)
        self._stamp_version(principal, body)

    def _stamp_version(self, principal: Principal, body: JsonDict) -> None:
        now = utcnow()
        body["validFor"] = {
            "startDateTime": iso(now),
            "endDateTime": iso(now + timedelta(days=get_settings().quote_validity_days)),
        }
        body.pop("authorization", None)
        discount = Decimal(str(body.get("discountPercent", 0)))
        if discount_needs_approval(discount):
            body["authorization"] = [
                {
                    "@type": DISCOUNT_APPROVAL_TYPE,
                    "name": f"Discount of {discount}% needs a second person's approval",
                    "state": "requested",
                    "requestedDate": iso(now),
                    "requestedBy": {"id": principal.id, "name": principal.name},
                }
            ]

    def _revise(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict
    ) -> None:
        if body.get("state") not in (old.get("state"), "inProgress"):
            raise InvalidRequest(
                "change the quote's content or its state, not both: a revision starts the "
                "new version inProgress"
            )
        customer_id = customer_of(old)
        assert customer_id is not None  # every stored quote has one
        _price_quote(session, body, customer_id, old)
        number = _version_number(old)
        frozen = dict(old)
        frozen["id"] = archive_id(old["id"], number)
        frozen["supersededBy"] = {"id": old["id"], "version": str(number + 1)}
        frozen.pop("previousVersion", None)
        session.add(
            QuoteRow(
                id=frozen["id"],
                at_type=str(frozen.get("@type", "Quote")),
                name=None,
                status=frozen.get("state"),
                owner_customer_id=customer_id,
                body=frozen,
                version=1,
            )
        )
        body["previousVersion"] = [
            *(old.get("previousVersion") or []),
            {"id": frozen["id"], "version": str(number)},
        ]
        body["version"] = str(number + 1)
        body["state"] = "inProgress"
        self._stamp_version(principal, body)

    def _transition(
        self,
        session: Session,
        principal: Principal,
        body: JsonDict,
        old: JsonDict,
        before: str,
        after: str,
    ) -> None:
        states.check_transition("quote state", QUOTE_TRANSITIONS, before, after)
        authorization = _discount_authorization(body)
        now = iso(utcnow())
        if after == "pending" and not _awaits_approval(authorization):
            raise Conflict(
                "this quote has no discount awaiting approval; set it to approved when it is "
                "ready for the customer"
            )
        if after == "approved" and _awaits_approval(authorization):
            assert authorization is not None
            if before == "inProgress":
                raise Conflict(
                    f"the discount of {body.get('discountPercent')}% is above "
                    f"{get_settings().quote_discount_approval_percent}% and needs a second "
                    "person's approval: submit the quote (state pending) first"
                )
            _approve(principal, authorization, now)
        if after == "accepted":
            end = (body.get("validFor") or {}).get("endDateTime")
            if isinstance(end, str) and end < now:
                raise Conflict(f"quote {body['id']} expired at {end}; ask for a revised version")
            if not education_recorded(session, body):
                raise Conflict(
                    f"the customer has not been educated on version {body.get('version')} of "
                    f"quote {body['id']} (lead times, installation effort, site prerequisites, "
                    "risks); record the education before the quote can be accepted"
                )
            _check_customer_can_contract(session, body)
        if after in DECIDED_STATES:
            body["effectiveQuoteCompletionDate"] = now
            for item in body.get("quoteItem", []) or []:
                item["state"] = after
            record(session, QuoteDecided(body["id"], customer_of(body), after))
        elif after == "approved":
            for item in body.get("quoteItem", []) or []:
                item["state"] = "approved"

    def after_save(
        self, session: Session, principal: Principal, body: JsonDict, owner: str | None
    ) -> None:
        """Nothing beyond the quote itself changes."""


def _check_customer_can_contract(session: Session, quote: JsonDict) -> None:
    """An accepted quote becomes an order at once: refuse the acceptance now, saying
    what to do, rather than let the order fail behind the customer's back."""
    customer_id = customer_of(quote)
    assert customer_id is not None  # every stored quote has one
    refuse_if_relationship_ended(session, customer_id, "accept a quote")
    missing = missing_contract_data(session, customer_id)
    if missing:
        raise Conflict(
            f"quote {quote['id']} cannot be accepted yet: the customer's data is not "
            "complete enough to contract (3.4.4): " + " ".join(missing),
            reason="Customer data incomplete",
        )


def _approve(principal: Principal, authorization: JsonDict, now: str) -> None:
    if principal.is_customer or principal.role not in APPROVER_ROLES:
        raise Forbidden("a discount is approved by a sales manager (role sales or admin)")
    requester = authorization.get("requestedBy") or {}
    if requester.get("id") == principal.id:
        raise Forbidden(
            f"{principal.name} set this discount and cannot approve it too; "
            "another sales manager must approve it (four-eyes rule)"
        )
    authorization["state"] = "approved"
    authorization["givenDate"] = now
    authorization["approver"] = [
        {
            "id": principal.id,
            "name": principal.name,
            "role": "salesManager",
            "@referredType": "StaffMember",
        }
    ]


QUOTE_KIND = QuoteKind(
    name="quote",
    type_name="Quote",
    doc=QUOTE,
    row=QuoteRow,
    write_roles=QUOTE_WRITERS,
    customer_operations=frozenset({READ, UPDATE}),
    refs=(RefSpec("relatedParty[]"),),
    status_attribute="state",
    name_attribute=None,
    extensions={
        "discountPercent": resources.NUMBER,
        "contractDurationMonths": resources.NUMBER,
        "previousVersion": resources.LIST,
        "supersededBy": resources.OBJECT,
    },
)


# ----- 3.4.3 process functions --------------------------------------------------------------


def _items_payload(lines: Sequence[QuoteLine]) -> list[JsonDict]:
    return [
        {
            "productOffering": {"id": line.offering_id},
            "quantity": line.quantity,
            "product": {
                "place": [
                    {"id": line.site_id, "role": SITE_ROLE, "@referredType": "GeographicSite"}
                ]
            },
        }
        for line in lines
    ]


def _with_sla(
    session: Session,
    lines: Sequence[QuoteLine],
    sla: str | Mapping[str, str | None] | None,
) -> list[QuoteLine]:
    """The lines without any SLA offering, plus one SLA line per site: the one SLA level
    given for every site, or the level given per site id (a site left out, or given
    None, gets none)."""
    offerings = _offerings(session, {line.offering_id for line in lines})
    kept = [line for line in lines if not offerings[line.offering_id].is_sla]
    if sla is None:
        return kept
    sites = list(dict.fromkeys(line.site_id for line in kept))
    per_site = {site: sla for site in sites} if isinstance(sla, str) else dict(sla)
    chosen = {site: per_site[site] for site in sites if per_site.get(site)}
    levels = _offerings(session, {str(v) for v in chosen.values()})
    for level in levels.values():
        if not level.is_sla:
            raise InvalidRequest(
                f"offering {level.name!r} is not an SLA level (its specification is not an "
                f"{SLA_TYPE})"
            )
    return kept + [QuoteLine(site, str(chosen[site])) for site in sites if site in chosen]


def draft_quote(
    session: Session,
    principal: Principal,
    *,
    customer_id: str,
    items: Sequence[QuoteLine],
    sla_offering_id: str | Mapping[str, str | None] | None,
    discount_percent: Decimal = Decimal(0),
    contract_months: int = 36,
    description: str = "",
) -> JsonDict:
    """3.4.3 Negotiate the sale (eTOM 1.1.1.4.3): draft version 1 of a quote.

    One item per site and offering, priced from the catalog, materials checked against
    stock, the SLA level added per site (one level for all, or a level per site id);
    the quote starts inProgress.
    """
    if not items:
        raise InvalidRequest("a quote needs at least one line (site and offering)")
    lines = _with_sla(session, items, sla_offering_id)
    payload: JsonDict = {
        "category": "enterprise",
        "quoteItem": _items_payload(lines),
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "discountPercent": _number(discount_percent),
        "contractDurationMonths": contract_months,
    }
    if description:
        payload["description"] = description
    body, _, _ = resources.create(session, QUOTE_KIND, principal, payload)
    return body


def revise_quote(
    session: Session,
    principal: Principal,
    quote_id: str,
    *,
    items: Sequence[QuoteLine] | None = None,
    discount_percent: Decimal | None = None,
    sla_offering_id: str | Mapping[str, str | None] | _Unchanged | None = UNCHANGED,
    contract_months: int | None = None,
    description: str | None = None,
) -> JsonDict:
    """3.4.3 Negotiate the sale (eTOM 1.1.1.4.3): a new version of a quote.

    What is not given stays as it was. The version replaced stays readable as
    ``{quote_id}-v{n}``; the new version starts inProgress and is priced afresh.
    """
    current, _ = resources.get(session, QUOTE_KIND, principal, quote_id)
    lines = list(items) if items is not None else _lines_from_items(current.get("quoteItem"))
    new_sla: str | Mapping[str, str | None] | None
    if isinstance(sla_offering_id, _Unchanged):
        current_lines = _lines_from_items(current.get("quoteItem"))
        offerings = _offerings(session, {line.offering_id for line in current_lines})
        by_site: dict[str, str | None] = {
            line.site_id: line.offering_id
            for line in current_lines
            if offerings[line.offering_id].is_sla
        }
        levels = set(by_site.values())
        # One level for the whole quote covers the sites a revision adds too; with a
        # level per site, each site keeps its own and a site new to the quote gets none.
        new_sla = by_site if len(levels) > 1 else next(iter(levels), None)
    else:
        new_sla = sla_offering_id
    changes: JsonDict = {"quoteItem": _items_payload(_with_sla(session, lines, new_sla))}
    if discount_percent is not None:
        changes["discountPercent"] = _number(discount_percent)
    if contract_months is not None:
        changes["contractDurationMonths"] = contract_months
    if description is not None:
        changes["description"] = description
    body, _ = resources.patch(session, QUOTE_KIND, principal, quote_id, changes)
    return body


def _set_state(
    session: Session, principal: Principal, quote_id: str, state: str, extra: JsonDict | None = None
) -> JsonDict:
    changes: JsonDict = {"state": state, **(extra or {})}
    body, _ = resources.patch(session, QUOTE_KIND, principal, quote_id, changes)
    return body


def submit_quote(session: Session, principal: Principal, quote_id: str) -> JsonDict:
    """3.4.3 Negotiate the sale (eTOM 1.1.1.4.3): the sales person marks the quote ready.

    Without a discount above the threshold it is approved at once and goes to the
    customer; otherwise it waits (pending) for a second person's approval.
    """
    current, _ = resources.get(session, QUOTE_KIND, principal, quote_id)
    target = "pending" if _awaits_approval(_discount_authorization(current)) else "approved"
    return _set_state(session, principal, quote_id, target)


def approve_quote(session: Session, principal: Principal, quote_id: str) -> JsonDict:
    """3.4.3 Negotiate the sale (eTOM 1.1.1.4.3): a sales manager approves the discount.

    The four-eyes rule: the person who set the discount may not approve it.
    """
    current, _ = resources.get(session, QUOTE_KIND, principal, quote_id)
    if current.get("state") != "pending":
        raise IllegalTransition(
            f"quote {quote_id} is {current.get('state')!r}; only a pending quote (one whose "
            "discount awaits approval) is approved"
        )
    return _set_state(session, principal, quote_id, "approved")


def accept_quote(session: Session, principal: Principal, quote_id: str) -> JsonDict:
    """3.4.3 Negotiate the sale (eTOM 1.1.1.4.3): the customer accepts the quote.

    Only an approved, still valid quote whose current version the customer was
    educated on (3.4.2) can be accepted; the pre-sale flow is woken after the commit.
    """
    return _set_state(session, principal, quote_id, "accepted")


def reject_quote(session: Session, principal: Principal, quote_id: str, reason: str) -> JsonDict:
    """3.4.3 Negotiate the sale (eTOM 1.1.1.4.3): the customer rejects the quote, saying why."""
    if not reason.strip():
        raise InvalidRequest("say why the quote is rejected (reason)")
    current, _ = resources.get(session, QUOTE_KIND, principal, quote_id)
    note = {
        "id": str(len(current.get("note", []) or []) + 1),
        "author": principal.name,
        "date": iso(utcnow()),
        "text": f"Rejected: {reason.strip()}",
    }
    return _set_state(
        session, principal, quote_id, "rejected", {"note": [*(current.get("note") or []), note]}
    )


def cancel_quote(session: Session, principal: Principal, quote_id: str) -> JsonDict:
    """3.4.3 Negotiate the sale (eTOM 1.1.1.4.3): the provider withdraws an open quote."""
    if principal.is_customer:
        raise Forbidden("a customer rejects a quote; cancelling is the provider's")
    return _set_state(session, principal, quote_id, "cancelled")
