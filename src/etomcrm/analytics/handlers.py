"""The analytical store kept up to date from the bus: each handler marks what its events
say changed, in the transaction of the change itself (an in-transaction subscription:
the mark commits with the change or not at all, and costs no transaction of its own);
the catch-up (:func:`etomcrm.analytics.store.catch_up`: the scheduled tick, or a report
asked for) derives it again, off the request and the flow that made the change. The
composition root wires them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

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

CustomerFact = (
    BillIssued
    | BillOverdue
    | PaymentReceived
    | PaymentReturned
    | ProductsActivated
    | ProductsEnded
    | SlaCreditOwed
    | TicketEnded
)


def _add(changes: dict[str, set[Any]], customer_id: str, tables: Collection[Any]) -> None:
    changes.setdefault(customer_id, set()).update(tables)


def mark_resource_changes(session: Session, events: list[ResourceChanged]) -> None:
    changes: dict[str, set[Any]] = {}
    for event in events:
        if event.kind == "campaign":
            store.mark_campaign(session, event.resource_id)
            continue
        tables = BY_KIND.get(event.kind)
        customer_id = event.resource_id if event.kind == "customer" else event.owner
        if tables and customer_id:
            _add(changes, customer_id, tables)
    store.mark_customers(session, changes)


def mark_customers_of(session: Session, events: list[CustomerFact]) -> None:
    """Bills (revenue, credits), dunning, installations and tickets of customers."""
    changes: dict[str, set[Any]] = {}
    for event in events:
        if event.customer_id:
            _add(changes, event.customer_id, BY_EVENT[type(event)])
    store.mark_customers(session, changes)


def mark_usage(session: Session, events: list[UsageIngested]) -> None:
    store.mark_usage(
        session,
        {(customer, date.fromisoformat(day)) for e in events for customer, day in e.customer_days},
    )
