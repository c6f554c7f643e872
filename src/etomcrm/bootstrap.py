"""The composition root: the one place where etomcrm is put together.

Resource kinds, API routers, flows, schedules and the handlers of every domain event
are wired here, and nowhere else; nothing registers itself by being imported. Entry
points (the API, the CLI, the demo, the worker) call :func:`bootstrap` first, or
:func:`create_app` for the HTTP service.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy.orm import Session

from etomcrm.analytics import handlers as analytics_handlers
from etomcrm.api import analytics as analytics_api
from etomcrm.api import billing as billing_api
from etomcrm.api import billing_enquiries as billing_enquiries_api
from etomcrm.api import billing_rates as billing_rates_api
from etomcrm.api import contract as contract_api
from etomcrm.api import marketing as marketing_api
from etomcrm.api import network_feed as network_feed_api
from etomcrm.api import network_view as network_view_api
from etomcrm.api import offers as offers_api
from etomcrm.api import problem_handling as problem_handling_api
from etomcrm.api import process_flows as process_flows_api
from etomcrm.api import qos_sla as qos_sla_api
from etomcrm.api import quotes as quotes_api
from etomcrm.api import requests as requests_api
from etomcrm.api import retention as retention_api
from etomcrm.api import usage as usage_api
from etomcrm.api.app import build_app
from etomcrm.billing import api_kinds as billing_kinds
from etomcrm.billing import bills
from etomcrm.billing import enquiries as billing_enquiries
from etomcrm.billing import payments as billing_payments
from etomcrm.billing import rating as billing_rating
from etomcrm.billing import work_list as billing_work_list
from etomcrm.billing.events import (
    BillDisputed,
    BillingEnquiryResolved,
    BillIssued,
    BillOverdue,
    BillSent,
    PaymentReceived,
    PaymentReturned,
    UsageIngested,
)
from etomcrm.catalog import service as catalog
from etomcrm.core.bus import BUS, DomainEvent
from etomcrm.core.resources import ResourceChanged, ResourceKind
from etomcrm.core.tmf_schemas import CUSTOMER_BILL, TmfDocument
from etomcrm.customer_interface import api_kinds as customer_interface_kinds
from etomcrm.customer_interface.communication import deliver_messages
from etomcrm.customer_interface.events import CustomerTerminated, SellingRequestLogged
from etomcrm.customer_interface.requests import route_selling_requests_to
from etomcrm.flows import analytics as analytics_flow
from etomcrm.flows import api_kinds as flows_kinds
from etomcrm.flows import (
    assurance,
    billing,
    churn,
    dunning,
    engine,
    failures,
    fulfillment,
    handlers,
    offers,
    qos,
    sla_violation,
    usage,
)
from etomcrm.flows.framework import STEP_SEEDS, register_flow
from etomcrm.marketing import api_kinds as marketing_kinds
from etomcrm.network import api_kinds as network_kinds
from etomcrm.network.port import set_default_network
from etomcrm.network.simulator import SimulatedNetwork
from etomcrm.network_view import handlers as network_view_handlers
from etomcrm.order_handling import api_kinds as order_handling_kinds
from etomcrm.order_handling import handlers as order_handlers
from etomcrm.order_handling.events import (
    OrderAccepted,
    OrderAcknowledged,
    OrderReleased,
    ProductsActivated,
    ProductsEnded,
)
from etomcrm.pages import routes as pages
from etomcrm.problem_handling import api_kinds as problem_handling_kinds
from etomcrm.problem_handling.events import (
    AlarmCleared,
    ServiceProblemRaisedForTicket,
    ServiceProblemRepaired,
    ServiceProblemReported,
    TicketEnded,
)
from etomcrm.qos_sla import api_kinds as qos_sla_kinds
from etomcrm.qos_sla import handlers as qos_sla_handlers
from etomcrm.qos_sla.events import SlaCreditOwed, ViolationRecorded
from etomcrm.retention import api_kinds as retention_kinds
from etomcrm.retention import handlers as retention_handlers
from etomcrm.retention.events import ContractEndApproaching, CustomerRiskRaised
from etomcrm.selling import api_kinds as selling_kinds
from etomcrm.selling import prospects
from etomcrm.selling.credit import read_payment_history_from
from etomcrm.selling.events import QuoteDecided

# Every TMF resource kind etomcrm serves, area by area.
KINDS: list[ResourceKind] = [
    *customer_interface_kinds.KINDS,
    catalog.CATALOG_KIND,
    catalog.CATEGORY_KIND,
    catalog.PRODUCT_SPECIFICATION_KIND,
    catalog.PRODUCT_OFFERING_KIND,
    catalog.PRODUCT_OFFERING_PRICE_KIND,
    catalog.PRODUCT_STOCK_KIND,
    *marketing_kinds.KINDS,
    *selling_kinds.KINDS,
    *order_handling_kinds.KINDS,
    *flows_kinds.KINDS,
    *retention_kinds.KINDS,
    *network_kinds.KINDS,
    *problem_handling_kinds.KINDS,
    *qos_sla_kinds.KINDS,
    *billing_kinds.KINDS,
]

# The routes beyond the resource life cycle (task resources, reports, the network view).
ROUTERS: list[APIRouter] = [
    requests_api.router,
    network_view_api.router,
    marketing_api.router,
    quotes_api.router,
    contract_api.router,
    process_flows_api.router,
    retention_api.router,
    network_feed_api.router,
    problem_handling_api.router,
    qos_sla_api.router,
    billing_api.router,
    usage_api.router,
    billing_rates_api.router,
    billing_enquiries_api.router,
    # Analytical CRM (seed 5.3): contact statistics, profitability, history import.
    analytics_api.router,
    # 3.9.4: customer profiles and the overview of next best offers.
    offers_api.router,
    # The pages in the browser (issue 11): sign-in, the customer network portal.
    pages.router,
]

# TMF documents whose schemas only the routers above use (no resource kind serves them).
ROUTER_DOCUMENTS: list[TmfDocument] = [CUSTOMER_BILL]

# The end-to-end flows (DESIGN.md section 2), by the names they are started with.
FLOWS: dict[str, Callable[..., str]] = {
    **fulfillment.FLOWS,
    "problem": assurance.problem_flow,
    "violation": sla_violation.violation_flow,
    "qos": qos.qos_period_flow,
    "dunning": dunning.dunning_flow,
    "dunning-overdue": dunning.overdue_flow,
    **billing.FLOWS,
}

# What runs on the clock in whichever process runs flows: name, workflow, crontab.
SCHEDULES: list[tuple[str, Callable[..., Any], str]] = [
    # Alarm correlation (3.6.1) every 30 s.
    ("etomcrm-alarm-correlation", assurance.correlation_tick, assurance.SCHEDULE),
    # Every ticket's targets warned and escalated, silent ones closed (3.6.3, 3.6.4).
    ("etomcrm-ticket-sweep", assurance.ticket_sweep_tick, assurance.TICKET_SWEEP_SCHEDULE),
    # Last month's QoS assessment, violations and reports (3.7).
    ("etomcrm-monthly-qos", qos.qos_tick, qos.SCHEDULE),
    # Last month's bill run: every account due rated, billed, issued and sent (3.8).
    ("etomcrm-monthly-bill-run", billing.bill_run_tick, billing.SCHEDULE),
    # The traffic of every site's access product per hour as TMF635 usage (3.8.2).
    ("etomcrm-hourly-usage", usage.usage_tick, usage.SCHEDULE),
    # Bills past their payment due date with an amount open are dunned (3.8.5).
    ("etomcrm-daily-dunning", dunning.dunning_tick, dunning.SCHEDULE),
    # What the bus marked is derived again in the analytical store (seed 5.3).
    ("etomcrm-analytics-catch-up", analytics_flow.analytics_tick, analytics_flow.SCHEDULE),
    # The churn model refitted when older than churn_refit_after_days (seed 5.3).
    ("etomcrm-daily-churn-refit", churn.churn_tick, churn.SCHEDULE),
    # Contracts ending within the notice period get the next best offer as a task (3.9.4).
    ("etomcrm-daily-contract-ends", offers.contract_end_tick, offers.SCHEDULE),
]

# Event type → the handlers acting on it, in order. A handler does its work in its own
# transaction or starts or signals a flow (DESIGN.md section 3, "Events").
EVENT_HANDLERS: dict[type[DomainEvent], list[Callable[[Any], None]]] = {
    SellingRequestLogged: [handlers.start_presale],
    QuoteDecided: [handlers.wake_presale],
    OrderAcknowledged: [handlers.start_ordering],
    OrderReleased: [handlers.wake_ordering],
    OrderAccepted: [handlers.wake_post_ordering_on_acceptance],
    ProductsActivated: [
        billing_work_list.charging_to_work_list,
        # A completed order's sites get their access links in the network inventory.
        network_view_handlers.links_for_activated_products,
    ],
    ProductsEnded: [
        billing_work_list.charging_stop_to_work_list,
        # The customer's last product ended: its final bill (3.8.3).
        bills.final_bill_when_last_product_ends,
    ],
    AlarmCleared: [handlers.wake_problem_flows],
    TicketEnded: [
        retention_handlers.survey_closed_ticket,
        # 3.9.4: a resolved problem is a moment for the next best offer.
        retention_handlers.offer_after_resolved_problem,
        handlers.wake_flows_waiting_on_ticket,
    ],
    ViolationRecorded: [handlers.start_violation_flow],
    SlaCreditOwed: [
        billing_work_list.credit_to_work_list,
        billing_rating.record_sla_credit,
    ],
    ServiceProblemRaisedForTicket: [handlers.start_flow_of_ticket_problem],
    ServiceProblemReported: [qos_sla_handlers.mark_slas_at_risk],
    ServiceProblemRepaired: [handlers.wake_repaired_problem, qos_sla_handlers.clear_slas_at_risk],
    CustomerRiskRaised: [retention_handlers.task_account_manager],
    BillSent: [billing_payments.settle_from_credit],
    BillOverdue: [dunning.start_dunning_of_overdue_bill],
    PaymentReturned: [
        dunning.start_dunning_of_returned_debit,
    ],
    PaymentReceived: [dunning.wake_dunning_on_payment],
    BillDisputed: [dunning.wake_dunning_on_dispute],
    BillingEnquiryResolved: [dunning.wake_dunning_on_resolution],
    # 3.9.4: a completed month of usage near a site's volume is a moment to offer.
    UsageIngested: [retention_handlers.offer_on_usage_trend],
    ContractEndApproaching: [retention_handlers.offer_before_contract_end],
    CustomerTerminated: [
        order_handlers.disconnect_terminated_customer,
        bills.final_bill_on_termination,
    ],
}

# What a serving or worker process delivers in the background besides hub events.
DELIVERIES: list[Callable[[], int]] = [deliver_messages]

_lock = threading.Lock()
_done = False

# Event type → bookkeeping done in the transaction of the change itself, just before it
# commits: the analytical store (seed 5.3) marks what each change touched, and its
# catch-up (SCHEDULES, and before every report) derives it again.
IN_TRANSACTION_HANDLERS: dict[type[DomainEvent], list[Callable[[Session, list[Any]], None]]] = {
    ResourceChanged: [analytics_handlers.mark_resource_changes],
    UsageIngested: [analytics_handlers.mark_usage],
    **{
        event_type: [analytics_handlers.mark_customers_of]
        for event_type in analytics_handlers.BY_EVENT
    },
}
# 3.8.5: the balances of the accounts billed, with the bills that raise them.
IN_TRANSACTION_HANDLERS[BillIssued] = [
    billing_payments.balances_on_issue,
    *IN_TRANSACTION_HANDLERS.get(BillIssued, []),
]


def bootstrap() -> None:
    """Wire the system once per process (idempotent)."""
    global _done
    with _lock:
        if _done:
            return
        for kind in KINDS:
            ResourceKind.register(kind)
        STEP_SEEDS.update(fulfillment.STEP_SEEDS)
        STEP_SEEDS.update(dunning.STEP_SEEDS)
        STEP_SEEDS.update(billing.STEP_SEEDS)
        for name, flow in FLOWS.items():
            register_flow(name, flow)
        engine.ON_LAUNCH[:] = [failures.sweep_failed_flows]
        for name, workflow, crontab in SCHEDULES:
            engine.register_schedule(name, workflow, crontab)
        route_selling_requests_to(prospects.open_lead)
        billing_enquiries.issue_credit_notes_with(bills.credit_note_for_enquiry)
        read_payment_history_from(billing_payments.payment_record)
        set_default_network(SimulatedNetwork)
        for event_type, event_handlers in EVENT_HANDLERS.items():
            for handler in event_handlers:
                BUS.subscribe(event_type, handler)
        for event_type, in_transaction in IN_TRANSACTION_HANDLERS.items():
            for transaction_handler in in_transaction:
                BUS.subscribe_in_transaction(event_type, transaction_handler)
        _done = True


def create_app(*, deliver_events: bool | None = None, run_flows: bool | None = None) -> FastAPI:
    """The HTTP service, wired (the factory ``etomcrm serve`` hands to Uvicorn)."""
    bootstrap()
    return build_app(
        KINDS,
        ROUTERS,
        deliveries=DELIVERIES,
        deliver_events=deliver_events,
        run_flows=run_flows,
        documents=ROUTER_DOCUMENTS,
    )
