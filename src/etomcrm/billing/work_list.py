"""Billing's work list: what other areas hand to billing, waiting for a person.

Each hand-over is a TMF683 ``partyInteraction`` of type ``BillingTask`` routed to the
billing department (``GET .../partyInteraction?@type=BillingTask&routedTo=billing&
status=open``). It belongs to no customer (a customer's contact history shows what was
said to it, not the provider's internal work) and names the customer and what it is
about in ``interactionItem``. Each is written once, whatever the retries: its key makes
the create idempotent.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from etomcrm.core import resources
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.service import PARTY_INTERACTION_KIND
from etomcrm.db import session_scope
from etomcrm.order_handling.events import ProductsActivated, ProductsEnded
from etomcrm.qos_sla.events import SlaCreditOwed
from etomcrm.security.service import SYSTEM, Role

BILLING_TASK = "BillingTask"


def hand_over(
    session: Session, *, key: str, reason: str, description: str, items: list[JsonDict]
) -> JsonDict:
    """Put one hand-over on billing's work list (once per ``key``)."""
    payload: JsonDict = {
        "@type": BILLING_TASK,
        "@baseType": "PartyInteraction",
        "reason": reason,
        "description": description,
        "direction": "internal",
        "channel": [{"id": "internal", "name": "internal"}],
        "status": "open",
        "routedTo": Role.BILLING.value,
        "interactionItem": [
            {"id": str(number), "item": item, "reason": item.get("role", "about")}
            for number, item in enumerate(items, start=1)
        ],
    }
    body, _, _ = resources.create(
        session, PARTY_INTERACTION_KIND, SYSTEM, payload, idempotency_key=f"billing/{key}"
    )
    return body


def credit_to_work_list(event: SlaCreditOwed) -> None:
    """3.8.2: an SLA credit owed goes to billing, to be applied to the next bill."""
    items: list[JsonDict] = [
        {"id": event.violation_id, "@referredType": "SlaViolation", "role": "credit owed"},
        {"id": event.product_id, "@referredType": "Product", "role": "product"},
    ]
    if event.customer_id:
        items.append({"id": event.customer_id, "@referredType": "Customer", "role": "customer"})
    with session_scope() as session:
        hand_over(
            session,
            key=f"sla-credit/{event.violation_id}",
            reason=f"SLA credit {event.amount} {event.currency} for {event.period}",
            description=(
                f"Credit {event.amount} {event.currency} owed for the {event.metric} SLA "
                f"violation {event.violation_id} in {event.period}: apply it to the "
                "customer's next bill."
            ),
            items=items,
        )


def _order_items(order_id: str, customer_id: str, product_ids: list[str]) -> list[JsonDict]:
    return [
        {"id": order_id, "@referredType": "ProductOrder", "role": "order"},
        {"id": customer_id, "@referredType": "Customer", "role": "customer"},
        *({"id": p, "@referredType": "Product", "role": "product"} for p in product_ids),
    ]


def charging_to_work_list(event: ProductsActivated) -> None:
    """3.5.5 → 3.8.2: the products an order activated are to be charged from their
    activation (one-time charges once, recurring ones from that date)."""
    charges = [
        f"{p.offering_name or p.offering_id}: "
        + ", ".join(
            f"{c.amount} {c.currency} {c.price_type}"
            + (f"/{c.recurring_charge_period}" if c.recurring_charge_period else "")
            for c in p.charges
        )
        for p in event.products
        if p.charges
    ]
    with session_scope() as session:
        hand_over(
            session,
            key=f"charging-start/{event.order_id}",
            reason=f"Start charging {len(event.products)} product(s) of order {event.order_id}",
            description=(
                f"Active since {event.activated_at.isoformat()}: "
                + ("; ".join(charges) if charges else "no prices on the order")
            ),
            items=_order_items(
                event.order_id, event.customer_id, [p.product_id for p in event.products]
            ),
        )


def charging_stop_to_work_list(event: ProductsEnded) -> None:
    """3.9.1 → 3.8.2: the products a disconnect ended are no longer charged after their
    end (the final bill)."""
    with session_scope() as session:
        hand_over(
            session,
            key=f"charging-stop/{event.order_id}",
            reason=f"Stop charging {len(event.product_ids)} product(s) of order {event.order_id}",
            description=f"Ended {event.ended_at.isoformat()}: charge up to that day, no further.",
            items=_order_items(event.order_id, event.customer_id, list(event.product_ids)),
        )
