"""What the order tracker shows (seed 3.5.4 "Track order and handle delays", issue 11):
a product order followed per site, with its milestones, the dates promised, expected
and reached, the jeopardy 3.5.4 raised when the network put a site later than promised
(:func:`etomcrm.order_handling.service.track_order`), and, for staff, the network's
answers (the TMF641 service orders sent for each site, with their states and notes).

The staff read any order their role may read; the portal shows a customer's own orders
in its words and without the network's internals (the API serves service orders to
staff only). Every read goes through the order's resource kind with the caller's role
and scoping, and each page takes a fixed number of queries whatever its rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.core import resources
from etomcrm.core.errors import Forbidden, NotFound
from etomcrm.core.resources import READ
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import CustomerRow, GeographicSiteRow
from etomcrm.customer_interface.service import CUSTOMER_KIND, customer_of
from etomcrm.flows.api_kinds import PROCESS_FLOW_KIND
from etomcrm.flows.fulfillment import ordering_workflow_id
from etomcrm.flows.models import ProcessFlowRow, TaskFlowRow
from etomcrm.network.api_kinds import SERVICE_ORDER_KIND
from etomcrm.network.models import NetworkServiceOrderRow
from etomcrm.order_handling.models import ProductOrderRow
from etomcrm.order_handling.service import (
    ACCEPTANCE,
    ENDED_STATES,
    ORDER_TRANSITIONS,
    PRODUCT_ORDER_KIND,
    accept_delivery,
    in_jeopardy,
    order_sites,
    site_action,
)
from etomcrm.pages.portal_views import when
from etomcrm.security.service import Principal

# A list page shows at most this many orders; the next ones are a page further.
PAGE_SIZE_MAX = 200
PAGE_SIZE = 50
# Order states the list filters on: TMF622's own.
STATES = tuple(ORDER_TRANSITIONS)
# The orders of a customer the portal lists, newest first.
CUSTOMER_LIMIT = 200


def _day(text: object) -> date | None:
    """The business date of a TMF date or date-time ("2026-12-14", "…T00:00:00Z")."""
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


# ----- one order, per site -----------------------------------------------------------


@dataclass(frozen=True)
class Milestone:
    """One step of a site's way to service: done, planned, failed or still open."""

    name: str  # received | accepted | serviceOrderIssued | jeopardy | siteActivated | completed
    status: str  # done | planned | failed | open
    at: str  # as a person reads it ("2026-12-01 10:06 UTC", "2026-12-14"), or ""
    detail: str = ""


@dataclass(frozen=True)
class NetworkAnswer:
    """A service order sent for a site (one per attempt) and what the network said."""

    id: str
    attempt: int
    state: str
    sent: str
    expected: str
    completed: str
    notes: list[tuple[str, str]]  # when, text


@dataclass(frozen=True)
class ItemLine:
    id: str
    offering: str
    action: str
    state: str


@dataclass(frozen=True)
class SiteTrack:
    site_id: str
    site_name: str
    action: str  # add | delete | modify: what the network is asked to do there
    state: str
    items: list[ItemLine]
    committed: date | None
    expected: date | None
    completed: str  # the moment the network reported the site active, or ""
    jeopardy: JsonDict | None  # raised by 3.5.4 and still open
    overdue: bool  # not active, and the expected date has passed
    milestones: list[Milestone]
    answers: list[NetworkAnswer] | None  # None: not shown (the portal, or the role)

    @property
    def late(self) -> bool:
        return self.jeopardy is not None or self.overdue


@dataclass(frozen=True)
class OrderTrack:
    order_id: str
    customer_id: str
    customer_name: str
    description: str
    state: str
    ordered: str
    expected: date | None
    completed: str
    in_jeopardy: bool
    acceptance: str  # the customer's acceptance of the completed order, or ""
    sites: list[SiteTrack]
    other_items: list[ItemLine]  # items without a site (nothing for the network to build)
    notes: list[JsonDict]
    has_trace: bool
    api_href: str
    when = staticmethod(when)

    @property
    def late_sites(self) -> int:
        return sum(1 for site in self.sites if site.late)


def _items(items: list[JsonDict]) -> list[ItemLine]:
    return [
        ItemLine(
            id=str(item.get("id")),
            offering=str((item.get("productOffering") or {}).get("name") or ""),
            action=str(item.get("action") or "add"),
            state=str(item.get("state") or ""),
        )
        for item in items
    ]


def _answers(rows: list[NetworkServiceOrderRow]) -> dict[str, list[NetworkAnswer]]:
    """site id → the service orders sent for it, first attempt first."""
    out: dict[str, list[NetworkAnswer]] = {}
    for row in sorted(rows, key=lambda r: (r.attempt, r.created_at)):
        body = row.body or {}
        site = str((body.get("simulation") or {}).get("siteId") or "")
        if not site:
            # A real OSS's order names its site in the item's service place.
            for item in body.get("serviceOrderItem") or []:
                for place in (item.get("service") or {}).get("place") or []:
                    site = site or str(place.get("id") or "")
        out.setdefault(site, []).append(
            NetworkAnswer(
                id=row.id,
                attempt=row.attempt,
                state=str(body.get("state") or row.status or ""),
                sent=when(body.get("orderDate")),
                expected=str(body.get("expectedCompletionDate") or "")[:10],
                completed=when(body.get("completionDate")) if body.get("completionDate") else "",
                notes=[
                    (when(note.get("date")), str(note.get("text") or ""))
                    for note in body.get("note") or []
                    if isinstance(note, dict)
                ],
            )
        )
    return out


def _site_track(
    order: JsonDict,
    site_id: str,
    items: list[JsonDict],
    name: str,
    accepted: Milestone,
    answers: list[NetworkAnswer] | None,
    today: date,
) -> SiteTrack:
    first = items[0]
    state = str(first.get("state") or "")
    marks = {m.get("name"): m for m in first.get("milestone") or [] if isinstance(m, dict)}
    committed = _day(first.get("committedCompletionDate"))
    expected = _day(first.get("expectedCompletionDate"))
    ended = state in ("completed", "failed") or order.get("state") in ENDED_STATES
    raised = first.get("jeopardy") if isinstance(first.get("jeopardy"), dict) else None
    jeopardy = raised if raised is not None and not ended else None
    milestones = [
        Milestone("received", "done", when(order.get("orderDate"))),
        accepted,
    ]
    issued = marks.get("serviceOrderIssued")
    milestones.append(
        Milestone("serviceOrderIssued", "done", when(issued.get("date")))
        if issued
        else Milestone("serviceOrderIssued", "open", "")
    )
    if raised is not None:
        milestones.append(
            # It happened (done); the page marks it in the colour of a problem.
            Milestone(
                "jeopardy",
                "done",
                when(raised.get("raisedAt")),
                str(raised.get("reason") or ""),
            )
        )
    activated = marks.get("siteActivated")
    if activated is None:
        milestones.append(Milestone("siteActivated", "open", ""))
    elif activated.get("status") == "planned":
        # The plan's date is the one promised; the expected one may have moved since.
        milestones.append(Milestone("siteActivated", "planned", str(expected or "")))
    else:
        milestones.append(
            Milestone("siteActivated", str(activated.get("status")), when(activated.get("date")))
        )
    completion = order.get("completionDate")
    milestones.append(
        Milestone("completed", "done", when(completion))
        if completion
        else Milestone("completed", "open", "")
    )
    return SiteTrack(
        site_id=site_id,
        site_name=name,
        action=site_action(items),
        state=state,
        items=_items(items),
        committed=committed,
        expected=expected,
        completed=when(first.get("completionDate")) if first.get("completionDate") else "",
        jeopardy=jeopardy,
        overdue=not ended and expected is not None and expected < today,
        milestones=milestones,
        answers=answers,
    )


def _accepted(session: Session, order: JsonDict, customer_id: str) -> tuple[Milestone, bool]:
    """The acceptance milestone, dated by the ordering flow's first 3.5.3 step (the
    acceptance decision), and whether the order has a flow trace: one query."""
    order_id = str(order["id"])
    found = session.execute(
        select(TaskFlowRow.created_at, TaskFlowRow.seed_number, TaskFlowRow.process_flow_id)
        .join(ProcessFlowRow, ProcessFlowRow.id == TaskFlowRow.process_flow_id)
        .where(
            ProcessFlowRow.case_id == order_id,
            TaskFlowRow.owner_customer_id == customer_id,
        )
        .order_by(TaskFlowRow.created_at, TaskFlowRow.seq)
    ).all()
    decided = next(
        (
            at
            for at, seed, flow in found
            if seed == "3.5.3" and flow == ordering_workflow_id(order_id)
        ),
        None,
    )
    state = str(order.get("state") or "")
    if state == "rejected":
        status = "failed"
    elif state in ("acknowledged", "assessingCancellation") and decided is None:
        status = "open"
    else:
        status = "done"
    at = decided.strftime("%Y-%m-%d %H:%M UTC") if decided is not None else ""
    return Milestone("accepted", status, at), bool(found)


def _site_names(session: Session, customer_id: str, site_ids: list[str]) -> dict[str, str]:
    if not site_ids:
        return {}
    return {
        site_id: str(name or site_id)
        for site_id, name in session.execute(
            select(GeographicSiteRow.id, GeographicSiteRow.name).where(
                GeographicSiteRow.id.in_(site_ids),
                GeographicSiteRow.owner_customer_id == customer_id,
            )
        )
    }


def _track(
    session: Session, principal: Principal, order: JsonDict, *, network: bool, now: datetime
) -> OrderTrack:
    order_id = str(order["id"])
    customer_id = customer_of(order) or ""
    customer_name = session.scalar(select(CustomerRow.name).where(CustomerRow.id == customer_id))
    by_site = order_sites(order)
    names = _site_names(session, customer_id, list(by_site))
    answers: dict[str, list[NetworkAnswer]] | None = None
    if network:
        # The network's orders for this product order carry its id first in their key
        # ("<order>/<site>/<attempt>"): one query for every site and attempt.
        answers = _answers(
            list(
                session.scalars(
                    select(NetworkServiceOrderRow).where(
                        NetworkServiceOrderRow.name.startswith(f"{order_id}/", autoescape=True)
                    )
                )
            )
        )
    accepted, has_trace = _accepted(session, order, customer_id)
    today = now.date()
    sites = [
        _site_track(
            order,
            site_id,
            items,
            names.get(site_id, site_id),
            accepted,
            None if answers is None else answers.get(site_id, []),
            today,
        )
        for site_id, items in by_site.items()
    ]
    sited = {str(item["id"]) for items in by_site.values() for item in items}
    acceptance = order.get(ACCEPTANCE) if isinstance(order.get(ACCEPTANCE), dict) else {}
    return OrderTrack(
        order_id=order_id,
        customer_id=customer_id,
        customer_name=str(customer_name or customer_id),
        description=str(order.get("description") or ""),
        state=str(order.get("state") or ""),
        ordered=when(order.get("orderDate")),
        expected=_day(order.get("expectedCompletionDate")),
        completed=when(order.get("completionDate")) if order.get("completionDate") else "",
        in_jeopardy=bool(order.get("inJeopardy")),
        acceptance=str((acceptance or {}).get("state") or ""),
        sites=sorted(sites, key=lambda s: (not s.late, s.site_name.casefold(), s.site_id)),
        other_items=_items(
            [i for i in order.get("productOrderItem") or [] if str(i.get("id")) not in sited]
        ),
        notes=[n for n in order.get("note") or [] if isinstance(n, dict)],
        has_trace=has_trace
        and not principal.is_customer
        and principal.role in PROCESS_FLOW_KIND.read_roles,
        api_href=resources.href_for(PRODUCT_ORDER_KIND, "", order_id),
    )


def order_track(
    session: Session, principal: Principal, order_id: str, *, now: datetime
) -> OrderTrack:
    """The staff's tracker of one order: every site with its milestones, dates,
    jeopardy and, when the role may read them, the network's answers. A customer's
    user gets the 404 of an order not its own, and a 403 for its own (its page is the
    portal's)."""
    if principal.is_customer:
        body, _ = resources.get(session, PRODUCT_ORDER_KIND, principal, order_id)
        raise Forbidden(
            "the order tracker is for the provider's staff; follow your order in the portal"
        )
    body, _ = resources.get(session, PRODUCT_ORDER_KIND, principal, order_id)
    network = principal.role in SERVICE_ORDER_KIND.read_roles
    return _track(session, principal, body, network=network, now=now)


def customer_order(
    session: Session, principal: Principal, customer_id: str, order_id: str, *, now: datetime
) -> OrderTrack:
    """One of the customer's orders for the portal: the same per-site track without
    the network's internals. Another customer's order (or one typed under the wrong
    customer) is a 404."""
    resources.get(session, CUSTOMER_KIND, principal, customer_id)
    body, _ = resources.get(session, PRODUCT_ORDER_KIND, principal, order_id)
    if customer_of(body) != customer_id:
        raise NotFound(f"no productOrder with id {order_id}")
    return _track(session, principal, body, network=False, now=now)


NOTE_MAX = 2000


def accept_order(
    session: Session, principal: Principal, customer_id: str, order_id: str, form: dict[str, str]
) -> None:
    """3.5.5: the customer accepts what its completed order delivered, as the API's
    PATCH of ``customerAcceptance`` (another customer's order is a 404; an order not
    awaiting acceptance, the API's 409)."""
    resources.get(session, CUSTOMER_KIND, principal, customer_id)
    body, _ = resources.get(session, PRODUCT_ORDER_KIND, principal, order_id)
    if customer_of(body) != customer_id:
        raise NotFound(f"no productOrder with id {order_id}")
    note = form.get("note", "").strip()[:NOTE_MAX]
    accept_delivery(session, principal, order_id, note or None)


# ----- lists -------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderLine:
    id: str
    description: str
    state: str
    customer_id: str
    customer_name: str
    ordered: str
    expected: date | None
    sites: int
    sites_active: int
    late_sites: int
    in_jeopardy: bool


def _line(body: JsonDict, customer_id: str, customer_name: str, today: date) -> OrderLine:
    by_site = order_sites(body)
    state = str(body.get("state") or "")
    late = 0
    active = 0
    for items in by_site.values():
        first = items[0]
        item_state = first.get("state")
        if item_state == "completed":
            active += 1
            continue
        expected = _day(first.get("expectedCompletionDate"))
        moving = state not in ENDED_STATES and item_state != "failed"
        if moving and (first.get("jeopardy") or (expected is not None and expected < today)):
            late += 1
    return OrderLine(
        id=str(body.get("id")),
        description=str(body.get("description") or ""),
        state=state,
        customer_id=customer_id,
        customer_name=customer_name,
        ordered=str(body.get("orderDate") or "")[:10],
        expected=_day(body.get("expectedCompletionDate")),
        sites=len(by_site),
        sites_active=active,
        late_sites=late,
        in_jeopardy=bool(body.get("inJeopardy")),
    )


@dataclass(frozen=True)
class OrdersPage:
    orders: list[OrderLine]
    total: int
    page: int
    size: int
    state: str
    jeopardy: bool
    customer_id: str
    states: tuple[str, ...] = STATES
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_shown(self) -> int:
        return (self.page - 1) * self.size + 1 if self.orders else 0

    @property
    def last_shown(self) -> int:
        return (self.page - 1) * self.size + len(self.orders)


def _whole(text: str, name: str, default: int, errors: dict[str, str], low: int, high: int) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        errors[name] = name
        return default
    if not low <= value <= high:
        errors[name] = name
        return default
    return value


def orders_page(
    session: Session,
    principal: Principal,
    query: dict[str, str],
    *,
    now: datetime,
) -> OrdersPage:
    """The orders the staff member's role may read, newest first, filtered by state,
    jeopardy (the order manager's work list: the orders 3.5.4 found late) and customer,
    a page of at most :data:`PAGE_SIZE_MAX` at a time: two queries whatever the rows.
    A bad filter is named (the page answers 400) and the list shown unfiltered by it."""
    if principal.is_customer:
        raise Forbidden("the order list is for the provider's staff; your orders are in the portal")
    PRODUCT_ORDER_KIND.authorize(principal, READ)
    errors: dict[str, str] = {}
    state = query.get("state", "")
    if state and state not in STATES:
        errors["state"] = "state"
        state = ""
    jeopardy = query.get("jeopardy", "") in ("true", "1", "on")
    customer_id = query.get("customer", "")[:64]
    size = _whole(query.get("size", ""), "size", PAGE_SIZE, errors, 1, PAGE_SIZE_MAX)
    page = _whole(query.get("page", ""), "page", 1, errors, 1, 1_000_000)
    row = ProductOrderRow
    conditions: list[Any] = []
    if state:
        conditions.append(row.status == state)
    if jeopardy:
        conditions += in_jeopardy()
    if customer_id:
        conditions.append(row.owner_customer_id == customer_id)
    found = session.execute(
        PRODUCT_ORDER_KIND.scoped(
            principal,
            select(row.body, row.owner_customer_id, func.count().over())
            .where(*conditions)
            .order_by(row.created_at.desc(), row.id)
            .offset((page - 1) * size)
            .limit(size),
        )
    ).all()
    customers = {str(owner) for _, owner, _ in found if owner}
    names: dict[str, str] = {}
    if customers:
        names = {
            cid: str(name or cid)
            for cid, name in session.execute(
                select(CustomerRow.id, CustomerRow.name).where(CustomerRow.id.in_(customers))
            )
        }
    today = now.date()
    return OrdersPage(
        orders=[
            _line(body, str(owner or ""), names.get(str(owner or ""), str(owner or "")), today)
            for body, owner, _ in found
        ],
        total=int(found[0][2]) if found else 0,
        page=page,
        size=size,
        state=state,
        jeopardy=jeopardy,
        customer_id=customer_id,
        errors=errors,
    )


@dataclass(frozen=True)
class CustomerOrdersPage:
    customer_id: str
    customer_name: str
    orders: list[OrderLine]


def customer_orders(
    session: Session, principal: Principal, customer_id: str, *, now: datetime
) -> CustomerOrdersPage:
    """The portal's list of the customer's orders, newest first (at most
    :data:`CUSTOMER_LIMIT`): two queries whatever their number."""
    body, _ = resources.get(session, CUSTOMER_KIND, principal, customer_id)
    name = str(body.get("name") or customer_id)
    PRODUCT_ORDER_KIND.authorize(principal, READ)
    row = ProductOrderRow
    bodies = session.scalars(
        PRODUCT_ORDER_KIND.scoped(
            principal,
            select(row.body)
            .where(row.owner_customer_id == customer_id)
            .order_by(row.created_at.desc(), row.id)
            .limit(CUSTOMER_LIMIT),
        )
    ).all()
    today = now.date()
    return CustomerOrdersPage(
        customer_id, name, [_line(b, customer_id, name, today) for b in bodies]
    )
