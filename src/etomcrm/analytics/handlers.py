"""The analytical store kept up to date from the bus: each handler re-derives, in its own
transaction, what the event says changed (the composition root wires them)."""

from __future__ import annotations

from datetime import date
from typing import Any

from etomcrm.analytics import store
from etomcrm.analytics.models import (
    AnCampaignLeadFact,
    AnCampaignTouchFact,
    AnContactFact,
    AnCustomer,
    AnDunningFact,
    AnOrderFact,
    AnProduct,
    AnRevenueFact,
    AnSite,
    AnTicketFact,
)
from etomcrm.billing.events import (
    BillIssued,
    BillOverdue,
    PaymentReceived,
    PaymentReturned,
    UsageIngested,
)
from etomcrm.core.bus import DomainEvent
from etomcrm.core.resources import ResourceChanged
from etomcrm.db import session_scope
from etomcrm.order_handling.events import ProductsActivated, ProductsEnded
from etomcrm.problem_handling.events import TicketEnded
from etomcrm.qos_sla.events import SlaCreditOwed

# What a change of each resource can touch in the store, per customer.
BY_KIND: dict[str, tuple[Any, ...]] = {
    "customer": (AnCustomer,),
    "geographicSite": (AnSite,),
    "partyInteraction": (AnContactFact,),
    "troubleTicket": (AnTicketFact,),
    "productOrder": (AnOrderFact,),
    "product": (AnProduct,),
    "salesLead": (AnCampaignTouchFact, AnCampaignLeadFact),
    "salesOpportunity": (AnCampaignLeadFact,),
}
# What each fact of another area can touch.
BY_EVENT: dict[type[DomainEvent], tuple[Any, ...]] = {
    BillIssued: (AnRevenueFact,),
    SlaCreditOwed: (AnRevenueFact,),
    BillOverdue: (AnDunningFact,),
    PaymentReceived: (AnDunningFact,),
    PaymentReturned: (AnDunningFact,),
    ProductsActivated: (AnProduct, AnOrderFact),
    ProductsEnded: (AnProduct, AnOrderFact),
    TicketEnded: (AnTicketFact,),
}


def refresh_on_resource_change(event: ResourceChanged) -> None:
    if event.kind == "campaign":
        with session_scope() as session:
            store.refresh_campaign(session, event.resource_id)
        return
    tables = BY_KIND.get(event.kind)
    customer_id = event.resource_id if event.kind == "customer" else event.owner
    if tables and customer_id:
        with session_scope() as session:
            store.refresh_customers(session, [customer_id], tables)


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
    """Bills (revenue, credits), dunning, installations and tickets of a customer."""
    if event.customer_id:
        with session_scope() as session:
            store.refresh_customers(session, [event.customer_id], BY_EVENT[type(event)])


def refresh_usage(event: UsageIngested) -> None:
    with session_scope() as session:
        store.refresh_usage(
            session, [(customer, date.fromisoformat(day)) for customer, day in event.customer_days]
        )
