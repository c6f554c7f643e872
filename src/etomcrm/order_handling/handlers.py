"""What order handling does when other areas report what happened (wired in
``etomcrm.bootstrap``). Each handler works in a transaction of its own."""

from __future__ import annotations

import logging

from sqlalchemy import select

from etomcrm.core import resources
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.events import CustomerTerminated
from etomcrm.db import session_scope
from etomcrm.order_handling.models import ProductOrderRow, ProductRow
from etomcrm.order_handling.service import (
    CANCEL_PRODUCT_ORDER_KIND,
    PRODUCT_ORDER_KIND,
    is_disconnect,
    products_being_disconnected,
)
from etomcrm.security.service import SYSTEM

log = logging.getLogger(__name__)
TERMINATION_REASON = "the customer relationship ended (3.9.1)"
# Orders a cancellation request can still stop (not being cancelled already).
CANCELLABLE_STATES = ("acknowledged", "pending", "held", "inProgress")


def disconnect_terminated_customer(event: CustomerTerminated) -> None:
    """3.9.1 Establish and Terminate Customer Relationship (eTOM 1.1.1.9.1): a terminated
    customer's orders still open are cancelled, and one disconnect order, placed by the
    system, ends its active products; the ordering flow ceases each site at the network
    and marks the products terminated. Running it again places nothing twice."""
    with session_scope() as session:
        open_orders = session.scalars(
            select(ProductOrderRow.body).where(
                ProductOrderRow.owner_customer_id == event.customer_id,
                ProductOrderRow.status.in_(CANCELLABLE_STATES),
            )
        ).all()
        for order in open_orders:
            if is_disconnect(order):
                continue
            # Refused (with the reason on the request) when sites are active already;
            # those products are then ended by a later termination run or by staff.
            resources.create(
                session,
                CANCEL_PRODUCT_ORDER_KIND,
                SYSTEM,
                {
                    "productOrder": {"id": order["id"], "@referredType": "ProductOrder"},
                    "cancellationReason": TERMINATION_REASON,
                },
            )
        ending = products_being_disconnected(session, event.customer_id)
        products = session.scalars(
            select(ProductRow.id)
            .where(ProductRow.owner_customer_id == event.customer_id, ProductRow.status == "active")
            .order_by(ProductRow.id)
        ).all()
        items: list[JsonDict] = [
            {"id": str(number), "action": "delete", "quantity": 1, "product": {"id": product_id}}
            for number, product_id in enumerate((p for p in products if p not in ending), start=1)
        ]
        if not items:
            return
        body, _, _ = resources.create(
            session,
            PRODUCT_ORDER_KIND,
            SYSTEM,
            {
                "description": "Disconnection: " + TERMINATION_REASON,
                "category": "disconnect",
                "relatedParty": [
                    {"id": event.customer_id, "@referredType": "Customer", "role": "customer"}
                ],
                "productOrderItem": items,
            },
        )
        log.info(
            "customer %s terminated: disconnect order %s for %d product(s)",
            event.customer_id,
            body["id"],
            len(items),
        )
