"""The analytical store kept up to date from the bus: each handler re-derives, in its own
transaction, what the event says changed (the composition root wires them)."""

from __future__ import annotations

from datetime import date

from etomcrm.analytics import store
from etomcrm.billing.events import (
    BillIssued,
    BillOverdue,
    PaymentReceived,
    PaymentReturned,
    UsageIngested,
)
from etomcrm.core.resources import ResourceChanged
from etomcrm.db import session_scope
from etomcrm.order_handling.events import ProductsActivated, ProductsEnded
from etomcrm.problem_handling.events import TicketEnded
from etomcrm.qos_sla.events import SlaCreditOwed

# The resources whose changes the store derives from, per customer.
CUSTOMER_KINDS = frozenset(
    {
        "customer",
        "geographicSite",
        "partyInteraction",
        "troubleTicket",
        "productOrder",
        "product",
        "salesLead",
    }
)


def refresh_on_resource_change(event: ResourceChanged) -> None:
    if event.kind == "campaign":
        with session_scope() as session:
            store.refresh_campaign(session, event.resource_id)
        return
    if event.kind not in CUSTOMER_KINDS:
        return
    customer_id = event.resource_id if event.kind == "customer" else event.owner
    if customer_id:
        with session_scope() as session:
            store.refresh_customers(session, [customer_id])


def refresh_customer_of(
    event: BillIssued
    | BillOverdue
    | PaymentReceived
    | PaymentReturned
    | ProductsActivated
    | ProductsEnded
    | SlaCreditOwed
    | TicketEnded,
) -> None:
    """Bills (revenue, credits), dunning and installations change a customer's figures."""
    if event.customer_id:
        with session_scope() as session:
            store.refresh_customers(session, [event.customer_id])


def refresh_usage(event: UsageIngested) -> None:
    with session_scope() as session:
        store.refresh_usage(
            session, [(customer, date.fromisoformat(day)) for customer, day in event.customer_days]
        )
