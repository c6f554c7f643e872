"""3.5 Order handling: product orders (TMF622), their cancellation, and the product
inventory (TMF637) they fill.

The order flow (``flows.fulfillment``) calls the process functions here one step at a
time; each runs in the step's transaction and changes the order through the same
resource machinery as the API, so every change is audited and announced on the hub.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from holidays.countries.germany import Germany
from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.catalog import stock
from etomcrm.catalog.service import access_offering_ids
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
from etomcrm.core.resources import CREATE, READ, UPDATE, RefSpec, ResourceKind
from etomcrm.core.tmf_schemas import PRODUCT_INVENTORY, PRODUCT_ORDERING, JsonDict
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.customer_interface.service import (
    CUSTOMER_KIND,
    CustomerOwnedKind,
    customer_of,
    refuse_if_relationship_ended,
)
from etomcrm.db import utcnow
from etomcrm.order_handling.events import (
    ActivatedProduct,
    ChargeLine,
    OrderAccepted,
    OrderAcknowledged,
    OrderReleased,
    ProductsActivated,
    ProductsEnded,
)
from etomcrm.order_handling.models import CancelProductOrderRow, ProductOrderRow, ProductRow
from etomcrm.security.service import SYSTEM, Principal, Role
from etomcrm.selling.credit import assess_credit
from etomcrm.selling.customer_data import missing_contract_data
from etomcrm.selling.models import QuoteRow

# TMF622 v4 product order states and the moves between them. Terminal states have none.
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    "acknowledged": frozenset(
        {"rejected", "pending", "held", "inProgress", "assessingCancellation"}
    ),
    "pending": frozenset({"inProgress", "held", "failed", "assessingCancellation"}),
    "held": frozenset({"inProgress", "pending", "failed", "assessingCancellation"}),
    "inProgress": frozenset(
        {"pending", "held", "partial", "completed", "failed", "assessingCancellation"}
    ),
    "assessingCancellation": frozenset(
        {"pendingCancellation", "acknowledged", "pending", "held", "inProgress"}
    ),
    "pendingCancellation": frozenset({"cancelled"}),
    "rejected": frozenset(),
    "partial": frozenset(),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
FINAL_STATES = frozenset(s for s, moves in ORDER_TRANSITIONS.items() if not moves)
# States in which an order no longer moves: no jeopardy, no overdue site.
ENDED_STATES = FINAL_STATES | {"pendingCancellation"}


def in_jeopardy() -> list[Any]:
    """3.5.4 Track order handling: the orders in jeopardy as the work lists count them —
    flagged by the tracking (a site later than promised) and still moving (a partial or
    completed order is final, whatever its flag still says)."""
    return [
        ProductOrderRow.body["inJeopardy"].as_boolean().is_(True),
        ProductOrderRow.status.not_in(sorted(ENDED_STATES)),
    ]


# What staff may set by hand; the rest follows from what the network reports.
STAFF_SETTABLE = frozenset({"pending", "held", "inProgress"})
ORDERABLE_ACTIONS = frozenset({"add", "delete", "modify"})
# What a modify item may set: suspend an active product, resume a suspended one (3.8.5
# dunning); the product status each needs before.
SUSPEND, RESUME = "suspended", "active"
MODIFY_FROM = {SUSPEND: "active", RESUME: "suspended"}
# The order flow waits in these until staff resume or cancel the order.
WAITING_STATES = frozenset({"pending", "held", "assessingCancellation"})
MAX_ACTIVATION_ATTEMPTS = 3
ORDER_WRITERS = frozenset({Role.ADMIN, Role.SALES, Role.ORDER_MANAGER})
# 3.5.5 the customer's acceptance of a completed order (extension attribute of TMF622
# productOrder): state awaiting → accepted (PATCH by the customer, or by staff on its
# behalf) or deemedAccepted (the acceptance period passed without objection).
ACCEPTANCE = "customerAcceptance"
AWAITING, ACCEPTED, DEEMED_ACCEPTED = "awaiting", "accepted", "deemedAccepted"
ACCEPTANCE_TIMEZONE = ZoneInfo("Europe/Berlin")
ACCEPTANCE_HOLIDAY_STATE = "BY"  # the provider's business days: Bavaria's holidays are off


def site_of(item: JsonDict) -> str | None:
    """The site an order or quote item is for: its product's first place."""
    product = item.get("product") or {}
    for place in product.get("place", []) or []:
        if isinstance(place, dict) and place.get("id"):
            return str(place["id"])
    return None


def check_transition(kind_name: str, before: str, after: str) -> None:
    states.check_transition(f"{kind_name} state", ORDER_TRANSITIONS, before, after)


class ProductOrderKind(ResourceKind):
    """TMF622 productOrder: items per site; the order flow drives its state."""

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        if principal.is_customer:
            return principal.customer_id
        return customer_of(body) or current

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        if old is None:
            self._on_create(session, principal, body)
            return
        if principal.is_customer:
            changed = sorted(
                k
                for k in set(old) | set(body)
                if old.get(k) != body.get(k) and k not in (ACCEPTANCE, "lastUpdate")
            )
            if changed:
                raise Forbidden(
                    f"a customer may only accept its completed order ({ACCEPTANCE}), not "
                    f"change {', '.join(changed)}; ask the order manager, or cancel the "
                    "order (cancelProductOrder)"
                )
        if principal is not SYSTEM and old.get(ACCEPTANCE) != body.get(ACCEPTANCE):
            _accept_explicitly(session, principal, body, old)
        before, after = old.get("state"), body.get("state")
        if before != after:
            check_transition("productOrder", str(before), str(after))
            if principal is not SYSTEM and after not in STAFF_SETTABLE:
                raise IllegalTransition(
                    f"productOrder state {after!r} follows from the network's reports; "
                    f"staff may set only {', '.join(sorted(STAFF_SETTABLE))}"
                )
        if principal is not SYSTEM and old.get("productOrderItem") != body.get("productOrderItem"):
            raise Conflict(
                "the items of an order in fulfilment cannot be changed; cancel the order "
                "(cancelProductOrder) and place a new one"
            )

    def _on_create(self, session: Session, principal: Principal, body: JsonDict) -> None:
        if principal.is_customer:
            parties = [
                p for p in body.get("relatedParty", []) if p.get("@referredType") != "Customer"
            ]
            body["relatedParty"] = [
                *parties,
                {"id": principal.customer_id, "@referredType": "Customer", "role": "customer"},
            ]
        customer_id = customer_of(body)
        if customer_id is None:
            raise InvalidRequest(
                "a productOrder names its customer: add a relatedParty with "
                '"@referredType": "Customer"'
            )
        _take_from_quotes(session, customer_id, body)
        body["state"] = "acknowledged"
        # When the order was placed and completed are facts etomcrm records, not a
        # client's say (TMF622 leaves both out of ProductOrder_Create).
        body["orderDate"] = iso(utcnow())
        body.pop("completionDate", None)
        seen: set[str] = set()
        for item in body["productOrderItem"]:
            if item["id"] in seen:
                raise InvalidRequest(f"productOrderItem id {item['id']!r} is used twice")
            seen.add(item["id"])
            action = item.setdefault("action", "add")
            if action not in ORDERABLE_ACTIONS:
                raise InvalidRequest(
                    f"productOrderItem {item['id']}: action {action!r} is not supported; "
                    "order new products with 'add', end installed ones with 'delete', and "
                    "suspend or resume them with 'modify' (a change of offering is a delete "
                    "of the old product and an add of the new one)"
                )
            if action == "delete":
                _check_disconnect_item(session, customer_id, item)
            if action == "modify":
                if principal.is_customer:
                    raise Forbidden(
                        "a product is suspended or resumed by the provider (dunning); ask "
                        "billing about a suspension"
                    )
                _check_modify_item(session, customer_id, item)
            item["state"] = "acknowledged"
        if is_disconnect(body) or is_modify(body):
            # Ending, suspending or resuming what a customer has needs neither contract
            # data nor a live relationship.
            return
        refuse_if_relationship_ended(session, customer_id, "order new products")
        missing = _missing_contract_data(session, customer_id)
        if missing:
            raise Conflict(
                "the customer's data is not complete enough to contract: " + "; ".join(missing)
            )

    def after_save(
        self, session: Session, principal: Principal, body: JsonDict, owner: str | None
    ) -> None:
        order_id = str(body["id"])
        if body.get("state") == "acknowledged":
            record(session, OrderAcknowledged(order_id))
        elif body.get("state") in ("inProgress", "cancelled") and principal is not SYSTEM:
            # Staff resumed a held order: wake its flow rather than let it sleep on.
            record(session, OrderReleased(order_id))


def is_disconnect(order: JsonDict) -> bool:
    """An order that only ends installed products (every item's action is delete)."""
    items = order.get("productOrderItem") or []
    return bool(items) and all(i.get("action") == "delete" for i in items)


def is_modify(order: JsonDict) -> bool:
    """An order that only suspends or resumes installed products (every item's action
    is modify)."""
    items = order.get("productOrderItem") or []
    return bool(items) and all(i.get("action") == "modify" for i in items)


def modify_status(order: JsonDict) -> str | None:
    """What a suspend or resume order sets its products to (suspended or active)."""
    for item in order.get("productOrderItem") or []:
        if item.get("action") == "modify":
            return str((item.get("product") or {}).get("status"))
    return None


def _check_modify_item(session: Session, customer_id: str, item: JsonDict) -> None:
    """A modify item names a product of the order's customer and the status it is to
    have: suspended (from active) or active again (from suspended)."""
    product_ref = item.get("product") or {}
    product_id, wanted = product_ref.get("id"), product_ref.get("status")
    if not product_id or wanted not in MODIFY_FROM:
        raise InvalidRequest(
            f"productOrderItem {item['id']}: a modify item names the product and the status "
            'it is to have: {"product": {"id": ..., "status": "suspended"}} suspends it, '
            '"active" resumes it'
        )
    row = session.get(ProductRow, str(product_id))
    if row is None or row.owner_customer_id != customer_id:
        raise UnknownReference(
            f"productOrderItem {item['id']}: customer {customer_id} has no product {product_id}"
        )
    if row.status != MODIFY_FROM[wanted]:
        raise Conflict(
            f"productOrderItem {item['id']}: product {product_id} is {row.status!r}; only "
            f"a {MODIFY_FROM[wanted]} product can be set {wanted}"
        )
    product = row.body
    if not product.get("productOffering"):
        raise Conflict(
            f"productOrderItem {item['id']}: product {product_id} names no productOffering; "
            "the network cannot tell which service to change"
        )
    item["product"] = {**product_ref, **{k: product[k] for k in ("place",) if product.get(k)}}
    item["productOffering"] = product["productOffering"]


def _check_disconnect_item(session: Session, customer_id: str, item: JsonDict) -> None:
    """A delete item names an active product of the order's customer; its site and
    offering are the product's, so the network knows what to cease where."""
    product_id = (item.get("product") or {}).get("id")
    if not product_id:
        raise InvalidRequest(
            f"productOrderItem {item['id']}: a delete item names the product to end "
            '(product: {"id": ...})'
        )
    row = session.get(ProductRow, str(product_id))
    if row is None or row.owner_customer_id != customer_id:
        raise UnknownReference(
            f"productOrderItem {item['id']}: customer {customer_id} has no product {product_id}"
        )
    if row.status != "active":
        raise Conflict(
            f"productOrderItem {item['id']}: product {product_id} is {row.status!r}; "
            "only an active product is disconnected"
        )
    if str(product_id) in products_being_disconnected(session, customer_id):
        raise Conflict(
            f"productOrderItem {item['id']}: product {product_id} is being disconnected "
            "by an open order already"
        )
    product = row.body
    item["product"] = {
        **item["product"],
        **{k: product[k] for k in ("place",) if product.get(k)},
    }
    if product.get("productOffering"):
        item["productOffering"] = product["productOffering"]


def products_being_disconnected(session: Session, customer_id: str) -> set[str]:
    """The customer's products that an open order (not in a final state) ends."""
    bodies = session.scalars(
        select(ProductOrderRow.body).where(
            ProductOrderRow.owner_customer_id == customer_id,
            ProductOrderRow.status.not_in(FINAL_STATES),
        )
    )
    return {
        str((item.get("product") or {}).get("id"))
        for body in bodies
        for item in body.get("productOrderItem", [])
        if item.get("action") == "delete"
    }


def _accept_explicitly(
    session: Session, principal: Principal, body: JsonDict, old: JsonDict
) -> None:
    """3.5.5 Complete Order (eTOM 1.1.1.5.5), the customer's reaction: the customer (or
    staff on its behalf) accepts a completed order."""
    current = old.get(ACCEPTANCE) or {}
    wanted = body.get(ACCEPTANCE) or {}
    if not isinstance(wanted, dict):
        raise InvalidRequest(
            f'{ACCEPTANCE} is an object: {{"state": "accepted", "note": "..."}} accepts the order'
        )
    if current.get("state") in (ACCEPTED, DEEMED_ACCEPTED):
        raise Conflict(
            f"order {old['id']} is {current['state']} since {current.get('date')}: an "
            "acceptance is recorded once; report a fault as a trouble ticket"
        )
    if current.get("state") != AWAITING:
        raise Conflict(
            f"order {old['id']} is {old.get('state')}: an order is accepted once it is "
            f"completed (or partial), when its {ACCEPTANCE}.state is {AWAITING!r}"
        )
    if wanted.get("state") != ACCEPTED:
        raise InvalidRequest(
            f'to accept the order set {ACCEPTANCE}.state to "accepted" (with an optional '
            f"note); {wanted.get('state')!r} is not a decision the customer records here: "
            "to object, open a trouble ticket on the product"
        )
    now = utcnow()
    accepted: JsonDict = {
        **current,
        "state": ACCEPTED,
        "date": iso(now),
        "by": {"name": principal.name, "role": principal.role.value},
    }
    if isinstance(wanted.get("note"), str) and wanted["note"].strip():
        accepted["note"] = wanted["note"].strip()
    body[ACCEPTANCE] = accepted
    customer_id = customer_of(old)
    assert customer_id is not None  # every stored order names its customer
    record(
        session,
        OrderAccepted(
            order_id=str(old["id"]),
            customer_id=customer_id,
            accepted_at=now,
            deemed=False,
            by=principal.name,
        ),
    )


def _missing_contract_data(session: Session, customer_id: str) -> list[str]:
    """3.4.4's check: what the customer record still lacks to contract."""
    return list(missing_contract_data(session, customer_id))


class CancelProductOrderKind(ResourceKind):
    """TMF622 cancelProductOrder: a request to cancel, decided at once."""

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        order = session.get(ProductOrderRow, body["productOrder"]["id"])
        return order.owner_customer_id if order is not None else current

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        if old is not None:
            if old.get("state") != body.get("state"):
                raise IllegalTransition("a cancellation request's state is set by etomcrm")
            return
        decide_cancellation(session, principal, body)


PRODUCT_ORDER_KIND = ProductOrderKind(
    name="productOrder",
    type_name="ProductOrder",
    doc=PRODUCT_ORDERING,
    row=ProductOrderRow,
    write_roles=ORDER_WRITERS,
    # a customer updates only its acceptance (customerAcceptance) of a completed order
    customer_operations=frozenset({READ, CREATE, UPDATE}),
    refs=(
        RefSpec("relatedParty[]"),
        RefSpec("quote[]", "quote"),
        RefSpec("productOrderItem[].productOffering", "productOffering"),
        RefSpec("productOrderItem[].product.place[]", "geographicSite"),
    ),
    status_attribute="state",
    name_attribute="description",
    server_set={
        "orderDate": "the moment etomcrm received the order",
        "completionDate": "the moment the order's flow completed it",
    },
    ended_not_deleted="cancel it with a cancelProductOrder, or end its products with a "
    "disconnect (action delete) order",
    # the order manager's work list: productOrder?inJeopardy=true; the orders awaiting
    # the customer's acceptance: productOrder?customerAcceptance.state=awaiting
    extensions={"inJeopardy": {"type": "boolean"}, ACCEPTANCE: resources.OBJECT},
)
CANCEL_PRODUCT_ORDER_KIND = CancelProductOrderKind(
    name="cancelProductOrder",
    type_name="CancelProductOrder",
    doc=PRODUCT_ORDERING,
    row=CancelProductOrderRow,
    write_roles=ORDER_WRITERS,
    customer_operations=frozenset({READ, CREATE}),
    refs=(RefSpec("productOrder", "productOrder"),),
    status_attribute="state",
    name_attribute=None,
    ended_not_deleted="a cancellation request is decided, and kept as decided",
)
# Owned by the customer its relatedParty names, like sites: products are created by
# the order flow (as the system), not by the customer.
PRODUCT_KIND = CustomerOwnedKind(
    name="product",
    type_name="Product",
    doc=PRODUCT_INVENTORY,
    row=ProductRow,
    write_roles=frozenset({Role.ADMIN, Role.ORDER_MANAGER}),
    customer_operations=frozenset({READ}),
    refs=(RefSpec("relatedParty[]"), RefSpec("place[]", "geographicSite")),
    ended_not_deleted="a product leaves service through a disconnect (action delete) order, "
    "which terminates it in the inventory",
)


# ----- the order's life, one process step at a time -----------------------------------


def load_order(session: Session, order_id: str) -> JsonDict:
    row = session.get(ProductOrderRow, order_id)
    if row is None:
        raise NotFound(f"no productOrder with id {order_id}")
    return dict(row.body)


def save_order(session: Session, order: JsonDict, changes: JsonDict) -> JsonDict:
    """Apply the flow's change through the resource machinery (audit, events)."""
    body, _ = resources.patch(
        session, PRODUCT_ORDER_KIND, SYSTEM, str(order["id"]), changes, by_service=True
    )
    return body


def order_value(order: JsonDict) -> Decimal:
    """One-time charges plus a year of recurring charges: what credit is granted for."""
    total = Decimal(0)
    for item in order.get("productOrderItem", []):
        quantity = Decimal(item.get("quantity", 1))
        for price in item.get("itemPrice", []) or []:
            amount = (price.get("price") or {}).get("dutyFreeAmount") or (
                price.get("price") or {}
            ).get("taxIncludedAmount")
            if not amount:
                continue
            value = Decimal(str(amount.get("value", 0)))
            if price.get("priceType") == "recurring":
                value *= 12
            total += value * quantity
    return total


def order_from_quote(session: Session, principal: Principal, quote_id: str) -> JsonDict:
    """3.5.3 Accept and Issue Orders (eTOM 1.1.1.5.3): the accepted quote becomes a
    product order with one item per quote item, prices and sites carried over."""

    quote_row = session.get(QuoteRow, quote_id)
    if quote_row is None:
        raise NotFound(f"no quote with id {quote_id}")
    quote = quote_row.body
    if quote.get("state") != "accepted":
        raise Conflict(
            f"quote {quote_id} is {quote.get('state')!r}; only an accepted quote is ordered"
        )
    existing = session.scalars(
        select(ProductOrderRow.body).where(
            ProductOrderRow.owner_customer_id == quote_row.owner_customer_id
        )
    ).all()
    for order in existing:
        if any(ref.get("id") == quote_id for ref in order.get("quote", []) or []):
            return dict(order)  # ordered already: the same order, not a second one
    customer_id = quote_row.owner_customer_id
    items = []
    for number, quote_item in enumerate(_leaf_items(quote.get("quoteItem", [])), start=1):
        item: JsonDict = {
            "id": str(number),
            "action": "add",
            "quantity": quote_item.get("quantity", 1),
            "productOffering": quote_item["productOffering"],
            "quoteItem": {"id": quote_item["id"], "quoteId": quote_id},
        }
        if quote_item.get("product"):
            item["product"] = quote_item["product"]
        prices = _order_prices(quote_item)
        if prices:
            item["itemPrice"] = prices
        items.append(item)
    payload: JsonDict = {
        "description": (
            f"Order from quote {quote.get('externalId') or quote_id} v{quote.get('version', '1')}"
        ),
        "quote": [{"id": quote_id, "@referredType": "Quote"}],
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "productOrderItem": items,
    }
    if quote.get("requestedCompletionDate"):
        payload["requestedCompletionDate"] = quote["requestedCompletionDate"]
    body, _, _ = resources.create(session, PRODUCT_ORDER_KIND, principal, payload)
    return body


ORDER_PRICE_ATTRIBUTES = (
    "name",
    "priceType",
    "recurringChargePeriod",
    "price",
    "priceAlteration",
    "description",
)


def _order_prices(quote_item: JsonDict) -> list[JsonDict]:
    """A quote item's prices as an order item's itemPrice."""
    return [
        {k: v for k, v in p.items() if k in ORDER_PRICE_ATTRIBUTES}
        for p in quote_item.get("quoteItemPrice", []) or []
        if isinstance(p, dict)
    ]


def _accepted_quote_items(session: Session, customer_id: str, refs: Any) -> dict[str, JsonDict]:
    """The items of the accepted quotes an order names in ``quote[]``, by quote/item id."""
    if not isinstance(refs, list) or not all(
        isinstance(r, dict) and isinstance(r.get("id"), str) for r in refs
    ):
        raise InvalidRequest("'quote' lists the quotes the order follows: [{'id': ...}]")
    found: dict[str, JsonDict] = {}
    for ref in refs:
        row = session.get(QuoteRow, ref["id"])
        if row is None or row.owner_customer_id != customer_id:
            raise UnknownReference(
                f"referenced resource not found: quote {ref['id']} (of this order's customer)"
            )
        quote = row.body
        if quote.get("state") != "accepted":
            raise Conflict(
                f"quote {ref['id']} is {quote.get('state')!r}; an order follows only an "
                "accepted quote (the customer accepts it first)"
            )
        for item in _leaf_items(quote.get("quoteItem", []) or []):
            found[f"{ref['id']}/{item['id']}"] = {**item, "quoteId": ref["id"]}
    return found


def _quote_item_for(item: JsonDict, quoted: dict[str, JsonDict]) -> JsonDict | None:
    """The quote item an order item follows: the one its ``quoteItem`` names, else the
    one quoting the same offering for the same site (when exactly one does)."""
    ref = item.get("quoteItem")
    if isinstance(ref, dict) and ref.get("id") is not None:
        quote_ids = {q["quoteId"] for q in quoted.values()}
        quote_id = ref.get("quoteId") or (next(iter(quote_ids)) if len(quote_ids) == 1 else None)
        named = quoted.get(f"{quote_id}/{ref['id']}")
        if named is None:
            raise UnknownReference(
                f"productOrderItem {item.get('id')}: quoteItem {ref['id']} is not an item of "
                f"the quotes the order names ({', '.join(sorted(quote_ids))})"
            )
        return named
    offering = (item.get("productOffering") or {}).get("id")
    site = site_of(item)
    matches = [
        q
        for q in quoted.values()
        if q["productOffering"].get("id") == offering and (site is None or site_of(q) == site)
    ]
    return matches[0] if len(matches) == 1 else None


def _take_from_quotes(session: Session, customer_id: str, body: JsonDict) -> None:
    """An order that names the accepted quote(s) it follows in ``quote[]`` takes from
    them what its items leave out: the prices (``itemPrice``), the site, the contract
    term and the characteristics, the SLA level (``slaLevel``) among them."""
    refs = body.get("quote")
    if not refs:
        return
    quoted = _accepted_quote_items(session, customer_id, refs)
    for item in body.get("productOrderItem", []) or []:
        if item.get("action", "add") != "add":
            continue
        quote_item = _quote_item_for(item, quoted)
        if quote_item is None:
            continue
        item.setdefault("quoteItem", {"id": quote_item["id"], "quoteId": quote_item["quoteId"]})
        if not item.get("itemPrice"):
            prices = _order_prices(quote_item)
            if prices:
                item["itemPrice"] = prices
        quoted_product = quote_item.get("product")
        if not isinstance(quoted_product, dict):
            continue
        product = item.setdefault("product", {})
        for attribute, value in quoted_product.items():
            if attribute != "productCharacteristic" and not product.get(attribute):
                product[attribute] = value
        given = product.get("productCharacteristic") or []
        named = {c.get("name") for c in given if isinstance(c, dict)}
        product["productCharacteristic"] = [
            *given,
            *(
                c
                for c in quoted_product.get("productCharacteristic", []) or []
                if c.get("name") not in named
            ),
        ]


def _leaf_items(items: Iterable[JsonDict]) -> list[JsonDict]:
    """Quote items with an offering, flattened (child items are orderable too)."""
    out: list[JsonDict] = []
    for item in items:
        if item.get("productOffering"):
            out.append(item)
        out.extend(_leaf_items(item.get("quoteItem", []) or []))
    return out


@dataclass
class Acceptance:
    accepted: bool
    reasons: list[str] = field(default_factory=list)
    credit_outcome: str = "accept"
    deposit: str = "0"
    # Why the customer cannot buy at all (its relationship ended), if so.
    relationship_ended: str | None = None


def accept_order(session: Session, order_id: str) -> Acceptance:
    """3.5.3 Accept and Issue Orders (eTOM 1.1.1.5.3): accept the order when the
    customer's data is complete (3.4.4) and credit is granted (3.5.2); reject it, with
    the reasons, when not."""
    order = load_order(session, order_id)
    if order["state"] != "acknowledged":
        return Acceptance(accepted=order["state"] not in ("rejected", "cancelled"))
    customer_id = customer_of(order)
    assert customer_id is not None
    if is_disconnect(order) or is_modify(order):
        # Ending, suspending or resuming products needs no contract data and no credit.
        save_order(session, order, {"state": "inProgress"})
        return Acceptance(accepted=True, credit_outcome="notAssessed")
    reasons = _missing_contract_data(session, customer_id)
    ended: str | None = None
    try:
        refuse_if_relationship_ended(session, customer_id, "order new products")
    except Conflict as refusal:
        ended = refusal.message
        reasons.insert(0, ended)
    outcome, deposit = "accept", Decimal(0)
    if not reasons:
        decision = assess_credit(session, SYSTEM, customer_id, order_value=order_value(order))
        outcome, deposit = decision.outcome, decision.deposit
        if decision.outcome == "reject":
            reasons.append(f"credit refused: {decision.reason}")
    if reasons:
        save_order(
            session,
            order,
            {
                "state": "rejected",
                "note": [
                    *order.get("note", []),
                    {"text": "Rejected: " + "; ".join(reasons), "author": "etomcrm"},
                ],
                "productOrderItem": [{**i, "state": "rejected"} for i in order["productOrderItem"]],
            },
        )
        return Acceptance(
            accepted=False, reasons=reasons, credit_outcome=outcome, relationship_ended=ended
        )
    notes = list(order.get("note", []))
    if outcome == "acceptWithDeposit":
        notes.append(
            {"text": f"Credit granted against a deposit of {deposit:.2f} EUR", "author": "etomcrm"}
        )
    short = allot_materials(session, order)
    if short:
        notes.append(
            {
                "text": "Material not in stock, waiting for replenishment: "
                + "; ".join(f"item {item_id}: {amount}" for item_id, amount in short.items()),
                "author": "etomcrm",
                "date": iso(utcnow()),
            }
        )
    save_order(session, order, {"state": "inProgress", "note": notes})
    return Acceptance(accepted=True, credit_outcome=outcome, deposit=f"{deposit:.2f}")


def order_sites(order: JsonDict) -> dict[str, list[JsonDict]]:
    """The order's items grouped by site: the network builds a site once."""
    sites: dict[str, list[JsonDict]] = {}
    for item in order["productOrderItem"]:
        site = site_of(item)
        if site is not None:
            sites.setdefault(site, []).append(item)
    return sites


def site_action(items: list[JsonDict]) -> str:
    """What the network is asked to do at a site: cease it when every item there ends a
    product, suspend or resume it when every item there does, else build it."""
    if all(i.get("action") == "delete" for i in items):
        return "delete"
    if all(i.get("action") == "modify" for i in items):
        return "modify"
    return "add"


def _service_order_terms(items: list[JsonDict]) -> dict[str, Any]:
    """The action of a site's service order and, for a modify, the service state."""
    action = site_action(items)
    if action != "modify":
        return {"action": action}
    return {"action": action, "service_state": modify_status({"productOrderItem": items})}


def _access_offerings(session: Session, order: JsonDict) -> set[str]:
    """The order's offerings that are network access (they carry a bandwidth): what the
    network builds a site for. Routers, installation and SLAs ride along."""
    return access_offering_ids(
        session, {str(i["productOffering"]["id"]) for i in order["productOrderItem"]}
    )


def _materials(session: Session, order: JsonDict) -> dict[str, str]:
    """offering id → stocked specification id, for the order's material items."""
    return stock.stocked_materials(
        session, {str(i["productOffering"]["id"]) for i in order["productOrderItem"]}
    )


def _site_ref(item: JsonDict) -> JsonDict | None:
    for place in (item.get("product") or {}).get("place", []) or []:
        if isinstance(place, dict) and place.get("id"):
            return {k: place[k] for k in ("id", "name", "@referredType") if k in place}
    return None


def allot_materials(session: Session, order: JsonDict) -> dict[str, Decimal]:
    """3.5.3 Accept and Issue Orders (eTOM 1.1.1.5.3), materials: the stock of each
    material item (the managed router) is allotted to its item and site when the order
    is accepted, so no later quote offers it again. Returns item id → what the stock
    could not give (those wait for replenishment)."""
    materials = _materials(session, order)
    short: dict[str, Decimal] = {}
    for item in order["productOrderItem"]:
        spec_id = materials.get(str(item["productOffering"]["id"]))
        if spec_id is None:
            continue
        move = stock.reserve(
            session,
            order_id=str(order["id"]),
            item_id=str(item["id"]),
            specification_id=spec_id,
            quantity=Decimal(str(item.get("quantity", 1))),
            site=_site_ref(item),
            customer_id=customer_of(order),
        )
        if move.short:
            short[str(item["id"])] = move.short
    return short


def _activation_offering(items: list[JsonDict], access: set[str]) -> str:
    for item in items:
        if item["productOffering"]["id"] in access:
            return str(item["productOffering"]["id"])
    return str(items[0]["productOffering"]["id"])


def issue_service_orders(session: Session, order_id: str, network: Any) -> list[Any]:
    """3.5.3 Accept and Issue Orders (eTOM 1.1.1.5.3): one service order per site to the
    network side; each item gets its expected date and milestones."""
    order = load_order(session, order_id)
    customer_id = customer_of(order)
    statuses = []
    access = _access_offerings(session, order)
    expected: dict[str, date] = {}
    service_order_of: dict[str, str] = {}
    for site_id, items in order_sites(order).items():
        status = network.submit_service_order(
            session,
            key=f"{order_id}/{site_id}/1",
            customer_id=customer_id,
            product_order_id=order_id,
            order_item_id=items[0]["id"],
            site_id=site_id,
            offering_id=_activation_offering(items, access),
            attempt=1,
            **_service_order_terms(items),
        )
        statuses.append(status)
        expected[site_id] = status.expected_completion_date
        service_order_of[site_id] = status.id
    now = iso(utcnow())
    new_items = []
    for item in order["productOrderItem"]:
        site = site_of(item)
        updated = {**item, "state": "inProgress"}
        if site in expected:
            updated["expectedCompletionDate"] = expected[site].isoformat()
            updated["committedCompletionDate"] = expected[site].isoformat()
            updated["serviceOrder"] = {"id": service_order_of[site], "attempt": 1}
            updated["milestone"] = [
                {"name": "serviceOrderIssued", "status": "done", "date": now},
                {"name": "siteActivated", "status": "planned", "date": expected[site].isoformat()},
            ]
        new_items.append(updated)
    latest = max(expected.values(), default=utcnow().date())
    save_order(
        session,
        order,
        {
            "productOrderItem": new_items,
            "expectedCompletionDate": f"{latest.isoformat()}T00:00:00Z",
        },
    )
    return statuses


@dataclass
class Progress:
    """What one look at the network found."""

    activated: list[str] = field(default_factory=list)
    late: list[tuple[str, str, str]] = field(default_factory=list)  # site, new date, detail
    failed: list[tuple[str, str]] = field(default_factory=list)  # site, detail
    retried: list[str] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)
    open_sites: int = 0
    next_check_at: datetime | None = None
    cancelled: bool = False
    # Held or pending by staff (or a cancellation being assessed): nothing moves.
    held: bool = False

    @property
    def done(self) -> bool:
        return self.open_sites == 0 and not self.held


def track_order(session: Session, order_id: str, network: Any) -> Progress:
    """3.5.4 Track Order and Handle Delays (eTOM 1.1.1.5.4): ask the network about every
    open site; record activations, announce late sites (jeopardy) and reissue failed
    service orders, up to a limit."""
    order = load_order(session, order_id)
    progress = Progress()
    if order["state"] in WAITING_STATES:
        progress.held = True
        return progress
    if order["state"] in FINAL_STATES or order["state"] == "pendingCancellation":
        progress.cancelled = order["state"] in ("cancelled", "pendingCancellation")
        return progress
    now = iso(utcnow())
    by_site = order_sites(order)
    access: set[str] | None = None
    updated_items = {item["id"]: dict(item) for item in order["productOrderItem"]}
    next_check: list[datetime] = []
    for site_id, items in by_site.items():
        first = updated_items[items[0]["id"]]
        if first["state"] in ("completed", "failed"):
            continue
        service_order = first["serviceOrder"]
        status = network.service_order_status(session, service_order["id"])
        changes: JsonDict = {}
        if status.state == "completed":
            progress.activated.append(site_id)
            changes = {"state": "completed", "completionDate": now}
            changes["milestone"] = _milestone(first, "siteActivated", "done", now)
        elif status.state == "failed":
            attempt = int(service_order["attempt"])
            progress.failed.append((site_id, status.detail))
            if attempt >= MAX_ACTIVATION_ATTEMPTS:
                progress.given_up.append(site_id)
                changes = {
                    "state": "failed",
                    "milestone": _milestone(first, "siteActivated", "failed", now),
                }
            else:
                access = _access_offerings(session, order) if access is None else access
                again = network.submit_service_order(
                    session,
                    key=f"{order_id}/{site_id}/{attempt + 1}",
                    customer_id=customer_of(order),
                    product_order_id=order_id,
                    order_item_id=first["id"],
                    site_id=site_id,
                    offering_id=_activation_offering(items, access),
                    attempt=attempt + 1,
                    **_service_order_terms(items),
                )
                progress.retried.append(site_id)
                progress.open_sites += 1
                next_check.append(again.ready_at)
                changes = {
                    "serviceOrder": {"id": again.id, "attempt": attempt + 1},
                    "expectedCompletionDate": again.expected_completion_date.isoformat(),
                }
        else:
            progress.open_sites += 1
            next_check.append(status.ready_at)
            committed = date.fromisoformat(
                first.get("committedCompletionDate", status.expected_completion_date.isoformat())
            )
            if status.expected_completion_date > committed and not first.get("jeopardy"):
                progress.late.append(
                    (site_id, status.expected_completion_date.isoformat(), status.detail)
                )
                changes = {
                    "expectedCompletionDate": status.expected_completion_date.isoformat(),
                    "jeopardy": {
                        "raisedAt": now,
                        "reason": status.detail,
                        "committedDate": committed.isoformat(),
                        "expectedDate": status.expected_completion_date.isoformat(),
                    },
                }
        if changes:
            for item in items:
                updated_items[item["id"]].update(changes)
    progress.next_check_at = min(next_check) if next_check else None
    new_items = [updated_items[item["id"]] for item in order["productOrderItem"]]
    if new_items != order["productOrderItem"]:
        order_changes: JsonDict = {"productOrderItem": new_items}
        late_sites = sorted(
            {site_of(i) or "" for i in new_items if i.get("jeopardy") and i["state"] != "completed"}
        )
        # The order manager's work list: GET productOrder?inJeopardy=true
        order_changes["inJeopardy"] = bool(late_sites)
        notes = list(order.get("note", []))
        for site_id, new_date, detail in progress.late:
            notes.append(
                {
                    "text": f"Jeopardy: site {site_id} now expected {new_date} ({detail})",
                    "author": "etomcrm",
                    "date": now,
                }
            )
        order_changes["note"] = notes
        save_order(session, order, order_changes)
    return progress


def _milestone(item: JsonDict, name: str, status: str, at: str) -> list[JsonDict]:
    out = [m for m in item.get("milestone", []) if m.get("name") != name]
    out.append({"name": name, "status": status, "date": at})
    return out


@dataclass
class Completion:
    state: str
    products: list[str]
    activated_sites: int
    failed_sites: int
    # Products a disconnect ended (terminated in the inventory).
    terminated: list[str] = field(default_factory=list)
    # Products a suspend or resume order set suspended or active again.
    modified: list[str] = field(default_factory=list)
    # the products that are a site's access: what an SLA is monitored on
    access_products: list[str] = field(default_factory=list)
    materials_installed: Decimal = Decimal(0)
    materials_released: Decimal = Decimal(0)
    # installed, yet the stock did not hold them: the stock count needs correcting
    materials_short: Decimal = Decimal(0)
    reorders: list[JsonDict] = field(default_factory=list)
    acceptance_due: datetime | None = None


def acceptance_due(completed_at: datetime, business_days: int) -> datetime:
    """The moment a completed order is deemed accepted: ``business_days`` working days
    (Monday to Friday, not a public holiday in Bavaria) after ``completed_at``, at the
    same time of day in Berlin."""
    local = completed_at.astimezone(ACCEPTANCE_TIMEZONE)
    day, left = local.date(), business_days
    closed = Germany(subdiv=ACCEPTANCE_HOLIDAY_STATE)
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in closed:
            left -= 1
    return datetime.combine(day, local.timetz()).astimezone(UTC)


def _charges(item: JsonDict) -> tuple[ChargeLine, ...]:
    lines = []
    for price in item.get("itemPrice", []) or []:
        amount = (price.get("price") or {}).get("dutyFreeAmount") or (price.get("price") or {}).get(
            "taxIncludedAmount"
        )
        if not isinstance(amount, dict):
            continue
        lines.append(
            ChargeLine(
                name=price.get("name"),
                price_type=str(price.get("priceType", "recurring")),
                recurring_charge_period=price.get("recurringChargePeriod"),
                amount=Decimal(str(amount.get("value", 0))),
                currency=str(amount.get("unit", "EUR")),
            )
        )
    return tuple(lines)


def complete_order(session: Session, order_id: str) -> Completion:
    """3.5.5 Complete Order (eTOM 1.1.1.5.5): activated items become active products in
    the customer's inventory; the materials they installed leave the stock and those
    of failed items go back to it; billing is handed the products to charge
    (``ProductsActivated``); the customer's acceptance is awaited until the acceptance
    period ends."""
    order = load_order(session, order_id)
    if order["state"] in ("completed", "partial", "failed"):
        products = session.scalars(
            select(ProductRow.id).where(ProductRow.owner_customer_id == customer_of(order))
        ).all()
        return Completion(order["state"], list(products), 0, 0)
    customer_id = customer_of(order)
    assert customer_id is not None  # every stored order names its customer
    now = utcnow()
    # A product without a site has nothing for the network to cease, suspend or resume:
    # ending it (or changing its status) is done.
    done = [
        i
        for i in order["productOrderItem"]
        if i["state"] == "completed"
        or (i.get("action") in ("delete", "modify") and site_of(i) is None)
    ]
    failed = [i for i in order["productOrderItem"] if i not in done]
    access = _access_offerings(session, order)
    materials = _materials(session, order)
    product_ids = []
    ended: list[str] = []
    modified: list[str] = []
    activated: list[ActivatedProduct] = []
    access_products: list[str] = []
    installed = short = Decimal(0)
    reorders: list[JsonDict] = []
    for item in done:
        if item.get("action") == "delete":
            ended.append(_end_product(session, order_id, item, now))
            continue
        if item.get("action") == "modify":
            modified.append(_set_product_status(session, order_id, item))
            continue
        payload: JsonDict = {
            "name": f"{item['productOffering'].get('name', item['productOffering']['id'])}",
            "status": "active",
            "isCustomerVisible": True,
            "orderDate": order.get("orderDate"),
            "startDate": iso(now),
            "productOffering": item["productOffering"],
            "productOrderItem": [
                {"productOrderId": order_id, "orderItemId": item["id"], "orderItemAction": "add"}
            ],
            "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        }
        product = item.get("product") or {}
        if product.get("place"):
            payload["place"] = product["place"]
        if product.get("productCharacteristic"):
            payload["productCharacteristic"] = product["productCharacteristic"]
        if item.get("itemPrice"):
            payload["productPrice"] = item["itemPrice"]
        # Billing charges the product to the account the order names (3.8.2).
        if isinstance(order.get("billingAccount"), dict) and order["billingAccount"].get("id"):
            payload["billingAccount"] = order["billingAccount"]
        body, _, _ = resources.create(session, PRODUCT_KIND, SYSTEM, payload)
        product_ids.append(body["id"])
        offering_id = str(item["productOffering"]["id"])
        if offering_id in access:
            access_products.append(body["id"])
        activated.append(
            ActivatedProduct(
                product_id=body["id"],
                order_item_id=str(item["id"]),
                offering_id=offering_id,
                offering_name=item["productOffering"].get("name"),
                site_id=site_of(item),
                charges=_charges(item),
            )
        )
        if offering_id in materials:
            move = stock.consume(
                session,
                order_id=order_id,
                item_id=str(item["id"]),
                specification_id=materials[offering_id],
                quantity=Decimal(str(item.get("quantity", 1))),
            )
            installed += move.consumed
            short += move.short
            reorders += move.reorders
    released = stock.release(
        session, order_id=order_id, item_ids=[str(i["id"]) for i in failed]
    ).released
    state = "completed" if not failed else ("partial" if done else "failed")
    changes: JsonDict = {"state": state, "completionDate": iso(now)}
    due = None
    if activated:
        due = acceptance_due(now, get_settings().order_acceptance_business_days)
        changes[ACCEPTANCE] = {"state": AWAITING, "dueDate": iso(due)}
    if short:
        changes["inJeopardy"] = True
        changes["note"] = [
            *order.get("note", []),
            {
                "text": f"Material shortfall: {short} unit(s) installed that the stock did not "
                "hold; count the warehouse and correct the productStock",
                "author": "etomcrm",
                "date": iso(now),
            },
        ]
    save_order(session, order, changes)
    if activated:
        record(
            session,
            ProductsActivated(
                order_id=order_id,
                customer_id=customer_id,
                billing_account_id=(order.get("billingAccount") or {}).get("id"),
                activated_at=now,
                products=tuple(activated),
            ),
        )
    if ended:
        record(session, ProductsEnded(order_id, customer_id, now, tuple(ended)))
    sites = {site_of(i) for i in done} - {None}
    return Completion(
        state,
        product_ids,
        len(sites),
        len({site_of(i) for i in failed if site_of(i)}),
        terminated=ended,
        modified=modified,
        access_products=access_products,
        materials_installed=installed,
        materials_released=released,
        materials_short=short,
        reorders=reorders,
        acceptance_due=due,
    )


def _end_product(session: Session, order_id: str, item: JsonDict, at: datetime) -> str:
    """A disconnected item's product leaves service: terminated in the inventory."""
    product_id = str(item["product"]["id"])
    current, _ = resources.get(session, PRODUCT_KIND, SYSTEM, product_id)
    if current.get("status") == "terminated":
        return product_id
    resources.patch(
        session,
        PRODUCT_KIND,
        SYSTEM,
        product_id,
        {
            "status": "terminated",
            "terminationDate": iso(at),
            "productOrderItem": [
                *(current.get("productOrderItem") or []),
                {
                    "productOrderId": order_id,
                    "orderItemId": item["id"],
                    "orderItemAction": "delete",
                },
            ],
        },
    )
    return product_id


def _set_product_status(session: Session, order_id: str, item: JsonDict) -> str:
    """A modify item's product is suspended, or active again, in the inventory."""
    product_id = str(item["product"]["id"])
    status = str(item["product"]["status"])
    current, _ = resources.get(session, PRODUCT_KIND, SYSTEM, product_id)
    if current.get("status") == status:
        return product_id
    resources.patch(
        session,
        PRODUCT_KIND,
        SYSTEM,
        product_id,
        {
            "status": status,
            "productOrderItem": [
                *(current.get("productOrderItem") or []),
                {
                    "productOrderId": order_id,
                    "orderItemId": item["id"],
                    "orderItemAction": "modify",
                },
            ],
        },
    )
    return product_id


def accept_delivery(
    session: Session, principal: Principal, order_id: str, note: str | None = None
) -> JsonDict:
    """3.5.5 Complete Order (eTOM 1.1.1.5.5), the customer's reaction: the customer (or
    staff on its behalf) accepts what a completed order delivered; the same as
    ``PATCH productOrder/{id}`` with ``{"customerAcceptance": {"state": "accepted"}}``."""
    acceptance: JsonDict = {"state": ACCEPTED}
    if note:
        acceptance["note"] = note
    body, _ = resources.patch(
        session, PRODUCT_ORDER_KIND, principal, order_id, {ACCEPTANCE: acceptance}
    )
    return body


@dataclass(frozen=True)
class CustomerAcceptance:
    """Where the customer's acceptance of a completed order stands."""

    state: str | None  # awaiting, accepted, deemedAccepted; None: nothing to accept
    date: datetime | None = None  # when accepted or deemed accepted
    due: datetime | None = None
    by: str | None = None


def settle_acceptance(session: Session, order_id: str, now: datetime) -> CustomerAcceptance:
    """3.5.5 Complete Order (eTOM 1.1.1.5.5), the customer's reaction: the acceptance
    of a completed order as it stands at ``now``; when the acceptance period has passed
    without the customer's word, the order is deemed accepted at the period's end."""
    order = load_order(session, order_id)
    acceptance = order.get(ACCEPTANCE) or {}
    state = acceptance.get("state")
    due = datetime.fromisoformat(acceptance["dueDate"]) if acceptance.get("dueDate") else None
    if state == AWAITING and due is not None and now >= due:
        customer_id = customer_of(order)
        assert customer_id is not None
        save_order(
            session,
            order,
            {
                ACCEPTANCE: {
                    **acceptance,
                    "state": DEEMED_ACCEPTED,
                    "date": iso(due),
                    "reason": "no objection within "
                    f"{get_settings().order_acceptance_business_days} business days",
                }
            },
        )
        record(
            session,
            OrderAccepted(
                order_id=order_id, customer_id=customer_id, accepted_at=due, deemed=True, by=None
            ),
        )
        return CustomerAcceptance(DEEMED_ACCEPTED, due, due)
    when = datetime.fromisoformat(acceptance["date"]) if acceptance.get("date") else None
    by = (acceptance.get("by") or {}).get("name")
    return CustomerAcceptance(state, when, due, by)


def establish_relationship(session: Session, customer_id: str) -> bool:
    """3.9.1 Establish and Terminate Customer Relationship (eTOM 1.1.1.9.1): a prospect
    becomes an active customer with its first completed order. True when it changed."""

    row = session.get(CustomerRow, customer_id)
    if row is None or row.status != "prospect":
        return False
    resources.patch(session, CUSTOMER_KIND, SYSTEM, customer_id, {"status": "active"})
    return True


def decide_cancellation(session: Session, principal: Principal, request: JsonDict) -> None:
    """3.5.3 Accept and Issue Orders (eTOM 1.1.1.5.3), cancellation: an order is
    cancelled while no site has been activated; otherwise the request is refused with
    the reason. The order flow sees the cancelled state at its next look and stops."""
    order_id = request["productOrder"]["id"]
    row = session.get(ProductOrderRow, order_id)
    if row is None or (principal.is_customer and row.owner_customer_id != principal.customer_id):
        raise NotFound(f"no productOrder with id {order_id}")
    order = dict(row.body)
    state = order["state"]
    activated = [i["id"] for i in order["productOrderItem"] if i.get("state") == "completed"]
    request["state"] = "acknowledged"
    if state in FINAL_STATES or activated:
        why = (
            f"the order is {state}"
            if state in FINAL_STATES
            else f"items {', '.join(activated)} are active already; "
            "terminate those products instead"
        )
        request["state"] = "terminatedWithError"
        request["cancellationReason"] = request.get("cancellationReason") or ""
        request["description"] = f"Cancellation refused: {why}"
        return
    reason = request.get("cancellationReason") or "cancelled at the customer's request"
    for step in ("assessingCancellation", "pendingCancellation", "cancelled"):
        check_transition("productOrder", order["state"], step)
        order = save_order(session, order, {"state": step})
    now = iso(utcnow())
    save_order(
        session,
        order,
        {
            "cancellationDate": now,
            "cancellationReason": reason,
            "productOrderItem": [{**i, "state": "cancelled"} for i in order["productOrderItem"]],
        },
    )
    stock.release(
        session, order_id=order_id, item_ids=[str(i["id"]) for i in order["productOrderItem"]]
    )
    request["state"] = "done"
    request["effectiveCancellationDate"] = now
    record(session, OrderReleased(order_id))
