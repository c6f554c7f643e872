"""The staff landing page's work lists (issue 11): for each list the person's role may
work on, how many items wait and the oldest (or, for tickets, the one with the least
time left on its SLA clock), read from the service that holds them. One query per list:
the count rides along the first item as a window count."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.billing.dunning_models import BillingEnquiryRow, DunningCaseRow
from etomcrm.billing.work_list import BILLING_TASK
from etomcrm.customer_interface.models import PartyInteractionRow
from etomcrm.customer_interface.requests import QUEUES, REQUEST_TYPE
from etomcrm.customer_interface.service import PARTY_INTERACTION_KIND
from etomcrm.flows.api_kinds import PROCESS_FLOW_KIND
from etomcrm.flows.failures import RETRY_ROLES, is_failed
from etomcrm.flows.models import ProcessFlowRow
from etomcrm.network_view.service import CLOSED_TICKETS
from etomcrm.order_handling.models import ProductOrderRow
from etomcrm.order_handling.service import in_jeopardy
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.qos_sla.models import SlaViolationRow
from etomcrm.qos_sla.service import SLA_VIOLATION_KIND
from etomcrm.retention.tasks import RETENTION_QUEUE, RETENTION_TASK_TYPE
from etomcrm.security.service import Principal, Role
from etomcrm.selling.models import QuoteRow
from etomcrm.selling.quotes import APPROVER_ROLES

BILLING_WORKERS = frozenset({Role.ADMIN, Role.BILLING})
INTERACTIONS = PARTY_INTERACTION_KIND.path
# The lists that have their own pages (the ticket desk, billing's lists) link to them;
# the others to the API's list. ("/ui" is routes.PREFIX, which imports this module.)
PAGES = "/ui"


@dataclass(frozen=True)
class WorkList:
    key: str
    count: int
    # The first item: the oldest, or the ticket whose SLA clock runs out first.
    first_id: str | None
    first_name: str
    first_at: datetime | None
    customer_id: str | None
    href: str


@dataclass(frozen=True)
class _Spec:
    key: str
    roles: frozenset[Role]
    row: Any
    where: Callable[[Principal], list[Any]]
    href: Callable[[Principal], str]
    # The column the list is ordered by and the first item dated with.
    order: Callable[[], Any]


def _request_queue(principal: Principal) -> list[Any]:
    conditions: list[Any] = [
        PartyInteractionRow.at_type == REQUEST_TYPE,
        PartyInteractionRow.status.in_(["open", "inProgress"]),
    ]
    if principal.role is not Role.ADMIN:  # an admin sees every queue, as in the API
        conditions.append(PartyInteractionRow.body["routedTo"].as_string() == principal.role.value)
    return conditions


def _request_href(principal: Principal) -> str:
    queue = "" if principal.role is Role.ADMIN else f"&routedTo={principal.role.value}"
    return f"{INTERACTIONS}?@type={REQUEST_TYPE}&status=open{queue}"


SPECS: tuple[_Spec, ...] = (
    _Spec(
        "requests",
        frozenset({Role.ADMIN, *QUEUES.values()}),
        PartyInteractionRow,
        _request_queue,
        _request_href,
        lambda: PartyInteractionRow.created_at,
    ),
    _Spec(
        "quoteApprovals",
        frozenset(APPROVER_ROLES),
        QuoteRow,
        # A version superseded while pending is kept as it was: not a discount to approve.
        lambda _: [
            QuoteRow.status == "pending",
            QuoteRow.body["supersededBy"].as_string().is_(None),
        ],
        lambda _: "/ui/quotes/approvals",
        lambda: QuoteRow.updated_at,
    ),
    _Spec(
        "creditNoteApprovals",
        BILLING_WORKERS,
        BillingEnquiryRow,
        lambda _: [BillingEnquiryRow.status == "pendingApproval"],
        lambda _: f"{PAGES}/billing/approvals",
        lambda: BillingEnquiryRow.updated_at,
    ),
    _Spec(
        "ordersInJeopardy",
        frozenset({Role.ADMIN, Role.ORDER_MANAGER}),
        ProductOrderRow,
        # The same orders as the order tracker's list of them (one criterion).
        lambda _: in_jeopardy(),
        # the order tracker's list of them (pages.orders_routes)
        lambda _: "/ui/orders?jeopardy=true",
        lambda: ProductOrderRow.created_at,
    ),
    _Spec(
        "ticketsBySlaClock",
        frozenset({Role.ADMIN, Role.SUPPORT, Role.SLA_MANAGER}),
        TroubleTicketRow,
        lambda _: [
            # A resolved ticket's clock has stopped.
            TroubleTicketRow.status.not_in([*CLOSED_TICKETS, "resolved"]),
            TroubleTicketRow.resolution_due_at.is_not(None),
        ],
        lambda _: f"{PAGES}/desk/tickets",
        lambda: TroubleTicketRow.resolution_due_at,
    ),
    _Spec(
        "creditsOwed",
        frozenset({Role.ADMIN, Role.SLA_MANAGER, Role.BILLING}),
        SlaViolationRow,
        lambda _: [SlaViolationRow.body["credit"]["status"].as_string() == "owed"],
        lambda _: f"{SLA_VIOLATION_KIND.path}?credit.status=owed",
        lambda: SlaViolationRow.created_at,
    ),
    _Spec(
        "failedFlows",
        frozenset(RETRY_ROLES),
        ProcessFlowRow,
        lambda _: is_failed(),
        # The API's list of failed flows (a ProcessFlow has no status attribute to filter).
        lambda _: f"{PROCESS_FLOW_KIND.path}?failed=true",
        lambda: ProcessFlowRow.updated_at,
    ),
    _Spec(
        "retentionTasks",
        frozenset({Role.ADMIN, RETENTION_QUEUE}),
        PartyInteractionRow,
        lambda _: [
            PartyInteractionRow.at_type == RETENTION_TASK_TYPE,
            PartyInteractionRow.status == "open",
        ],
        lambda _: f"{INTERACTIONS}?@type={RETENTION_TASK_TYPE}&routedTo=sales&status=open",
        lambda: PartyInteractionRow.created_at,
    ),
    _Spec(
        "billingTasks",
        BILLING_WORKERS,
        PartyInteractionRow,
        lambda _: [
            PartyInteractionRow.at_type == BILLING_TASK,
            PartyInteractionRow.status == "open",
        ],
        lambda _: f"{PAGES}/billing/tasks",
        lambda: PartyInteractionRow.created_at,
    ),
    _Spec(
        "dunningCases",
        BILLING_WORKERS,
        DunningCaseRow,
        lambda _: [DunningCaseRow.status != "closed"],
        lambda _: f"{PAGES}/billing/dunning",
        lambda: DunningCaseRow.created_at,
    ),
)


def work_lists(session: Session, principal: Principal) -> list[WorkList]:
    """The lists the principal's role works on (none for a customer's user), each with
    its count and first item: one query per list."""
    if principal.is_customer:
        return []
    lists: list[WorkList] = []
    for spec in SPECS:
        if principal.role not in spec.roles:
            continue
        row, order = spec.row, spec.order()
        first = session.execute(
            select(row.id, row.name, order, row.owner_customer_id, func.count().over())
            .where(*spec.where(principal))
            .order_by(order, row.id)
            .limit(1)
        ).first()
        lists.append(
            WorkList(
                key=spec.key,
                count=int(first[4]) if first else 0,
                first_id=first[0] if first else None,
                first_name=str(first[1] or "") if first else "",
                first_at=first[2] if first else None,
                customer_id=first[3] if first else None,
                href=spec.href(principal),
            )
        )
    return lists
