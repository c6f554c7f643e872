"""3.1 Support & Readiness, materials: TMF687 product stock allotted to orders,
taken out when installed, given back when not, and reordered below the minimum.

How the stock reads (every figure is a TMF687 ``productStock`` in the API):

- The warehouse stock of a material is a productStock with
  ``productStockStatusType`` ``available``; :func:`etomcrm.catalog.service.
  material_availability` (feasibility, quotes) counts only these, so what is allotted
  is no longer offered to the next customer.
- An allotment is a productStock of the same stocked product with status ``reserved``,
  one per order item, named ``reserved for productOrder <order> item <item>``; its
  ``reservedFor`` extension names the order, the item and the site, and its
  ``productStockRelationship`` (``reservedFrom``) the warehouse stock it came from.
  ``GET /productStock?productStockStatusType=reserved`` is what is promised to sites.
- Installed (the order completes the item), the allotment is gone from the stock: the
  reserved record is deleted, and the router lives on as the customer's product. Not
  installed (the order or the item is cancelled, or the site failed for good), it goes
  back to the warehouse stock it came from.
- Below ``minStockLevel``: when a change brings a warehouse stock from at least its
  minimum to below it (an allotment, an installation, a count booked through the API),
  a reorder of ``reorderQuantity`` is raised on that stock (the ``reorder`` extension,
  ``state`` ``raised``), once per such crossing; :func:`receive_stock` (or a PATCH of
  ``reorder.state``) marks it received. The order manager's work list:
  ``GET /productStock?reorder.state=raised``.

A stock never goes below zero: an allotment takes what there is (the rest waits for
replenishment), and a change that would make a level negative is refused with 409.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.catalog.models import ProductOfferingRow, ProductStockRow
from etomcrm.catalog.service import PRODUCT_STOCK_KIND, REORDER_RAISED, quantity_amount
from etomcrm.core import resources
from etomcrm.core.clock import iso
from etomcrm.core.errors import InvalidRequest, NotFound
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.db import utcnow
from etomcrm.security.service import SYSTEM, Principal

AVAILABLE, RESERVED = "available", "reserved"


def level_of(body: JsonDict) -> Decimal:
    return quantity_amount(body.get("productStockLevel"))


def _quantity(amount: Decimal, body: JsonDict) -> JsonDict:
    units = (body.get("productStockLevel") or {}).get("units", "unit")
    value: int | float = int(amount) if amount == amount.to_integral_value() else float(amount)
    return {"amount": value, "units": units}


def stocked_materials(session: Session, offering_ids: set[str]) -> dict[str, str]:
    """offering id → product specification id, for the offerings that are materials
    (their specification is kept in an available stock)."""
    if not offering_ids:
        return {}
    spec_of = {
        offering_id: str(spec_id)
        for offering_id, spec_id in session.execute(
            select(
                ProductOfferingRow.id,
                ProductOfferingRow.body["productSpecification", "id"].as_string(),
            ).where(ProductOfferingRow.id.in_(offering_ids))
        )
        if spec_id
    }
    stocked = {
        str(spec_id)
        for spec_id in session.scalars(
            select(
                ProductStockRow.body["stockedProduct", "productSpecification", "id"].as_string()
            ).where(ProductStockRow.status == AVAILABLE)
        )
    }
    return {o: s for o, s in spec_of.items() if s in stocked}


def _warehouse_stocks(session: Session, specification_id: str) -> list[ProductStockRow]:
    return list(
        session.scalars(
            select(ProductStockRow)
            .where(
                ProductStockRow.status == AVAILABLE,
                ProductStockRow.body["stockedProduct", "productSpecification", "id"].as_string()
                == specification_id,
            )
            .order_by(ProductStockRow.id)
            .with_for_update()
        )
    )


def reservation_name(order_id: str, item_id: str) -> str:
    return f"reserved for productOrder {order_id} item {item_id}"


def _reservations(session: Session, order_id: str, item_ids: list[str]) -> list[ProductStockRow]:
    names = [reservation_name(order_id, item_id) for item_id in item_ids]
    return list(
        session.scalars(
            select(ProductStockRow)
            .where(ProductStockRow.status == RESERVED, ProductStockRow.name.in_(names))
            .order_by(ProductStockRow.name)
        )
    )


@dataclass
class StockMove:
    """What one move of material did, for the trace and the order's notes."""

    reserved: Decimal = Decimal(0)
    short: Decimal = Decimal(0)  # asked for and not in stock
    consumed: Decimal = Decimal(0)
    released: Decimal = Decimal(0)
    reorders: list[JsonDict] = field(default_factory=list)  # the stocks a reorder was raised on


def _take(session: Session, stock: ProductStockRow, amount: Decimal, move: StockMove) -> None:
    """Take ``amount`` (at most the level) out of a warehouse stock; the stock raises
    its reorder when this takes it below the minimum."""
    before = stock.body.get("reorder")
    body, _ = resources.patch(
        session,
        PRODUCT_STOCK_KIND,
        SYSTEM,
        stock.id,
        {"productStockLevel": _quantity(level_of(stock.body) - amount, stock.body)},
    )
    reorder = body.get("reorder")
    if reorder != before and isinstance(reorder, dict) and reorder.get("state") == REORDER_RAISED:
        move.reorders.append({"id": stock.id, "name": stock.name, **reorder})


def reserve(
    session: Session,
    *,
    order_id: str,
    item_id: str,
    specification_id: str,
    quantity: Decimal,
    site: JsonDict | None,
    customer_id: str | None,
) -> StockMove:
    """Allot ``quantity`` of a material to one order item from the warehouse stock:
    as much as is there (the rest is ``short`` and waits for replenishment). Once per
    item: a second call finds the first allotment and changes nothing."""
    move = StockMove()
    if _reservations(session, order_id, [item_id]):
        return move
    wanted = quantity
    for stock in _warehouse_stocks(session, specification_id):
        if wanted <= 0:
            break
        taken = min(wanted, level_of(stock.body))
        if taken <= 0:
            continue
        _take(session, stock, taken, move)
        wanted -= taken
        reserved_for: JsonDict = {
            "productOrder": {"id": order_id, "@referredType": "ProductOrder"},
            "productOrderItem": {"id": item_id},
        }
        if site is not None:
            reserved_for["place"] = site
        payload: JsonDict = {
            "name": reservation_name(order_id, item_id),
            "description": f"{taken} of {stock.name} allotted to order {order_id}, item "
            f"{item_id}" + (f", for site {site.get('name') or site['id']}" if site else ""),
            "productStockStatusType": RESERVED,
            "productStockLevel": _quantity(taken, stock.body),
            "stockedProduct": stock.body["stockedProduct"],
            "productStockRelationship": [
                {
                    "relationshipType": "reservedFrom",
                    "stockLevel": {"id": stock.id, "name": stock.name},
                }
            ],
            "reservedFor": reserved_for,
        }
        if customer_id:
            payload["relatedParty"] = [
                {"id": customer_id, "@referredType": "Customer", "role": "reservedFor"}
            ]
        if stock.body.get("place"):
            payload["place"] = stock.body["place"]
        resources.create(session, PRODUCT_STOCK_KIND, SYSTEM, payload)
        move.reserved += taken
    move.short = max(wanted, Decimal(0))
    return move


def consume(
    session: Session,
    *,
    order_id: str,
    item_id: str,
    specification_id: str,
    quantity: Decimal,
) -> StockMove:
    """The item is installed: its allotment leaves the stock; what was never allotted
    (it waited for replenishment) is taken from the warehouse stock now, as far as it
    holds it. What the stock cannot give is ``short``: the level stays at zero."""
    move = StockMove()
    for row in _reservations(session, order_id, [item_id]):
        move.consumed += level_of(row.body)
        resources.delete(session, PRODUCT_STOCK_KIND, SYSTEM, row.id)
    wanted = quantity - move.consumed
    for stock in _warehouse_stocks(session, specification_id):
        if wanted <= 0:
            break
        taken = min(wanted, level_of(stock.body))
        if taken > 0:
            _take(session, stock, taken, move)
            move.consumed += taken
            wanted -= taken
    move.short = max(wanted, Decimal(0))
    return move


def release(session: Session, *, order_id: str, item_ids: list[str]) -> StockMove:
    """The items will not be installed: their allotments go back to the warehouse
    stock they came from."""
    move = StockMove()
    for row in _reservations(session, order_id, item_ids):
        amount = level_of(row.body)
        origin_ids = [
            str(r["stockLevel"]["id"])
            for r in row.body.get("productStockRelationship", []) or []
            if r.get("relationshipType") == "reservedFrom"
        ]
        origin = session.get(ProductStockRow, origin_ids[0]) if origin_ids else None
        resources.delete(session, PRODUCT_STOCK_KIND, SYSTEM, row.id)
        if origin is None:
            continue  # the warehouse stock was removed since: nothing to give back to
        resources.patch(
            session,
            PRODUCT_STOCK_KIND,
            SYSTEM,
            origin.id,
            {"productStockLevel": _quantity(level_of(origin.body) + amount, origin.body)},
        )
        move.released += amount
    return move


def receive_stock(
    session: Session, principal: Principal, stock_id: str, quantity: Decimal
) -> JsonDict:
    """3.1 Support & Readiness (eTOM 1.1.1.1), goods received: ``quantity`` units arrive
    at a warehouse stock; a reorder raised on it is marked received."""
    if quantity <= 0:
        raise InvalidRequest(f"a delivery brings at least one unit, not {quantity}")
    row = session.get(ProductStockRow, stock_id)
    if row is None or row.status != AVAILABLE:
        raise NotFound(f"no warehouse productStock (status available) with id {stock_id}")
    changes: JsonDict = {"productStockLevel": _quantity(level_of(row.body) + quantity, row.body)}
    reorder = row.body.get("reorder") or {}
    if reorder.get("state") == REORDER_RAISED:
        changes["reorder"] = {**reorder, "state": "received", "receivedDate": iso(utcnow())}
    body, _ = resources.patch(session, PRODUCT_STOCK_KIND, principal, stock_id, changes)
    return body
