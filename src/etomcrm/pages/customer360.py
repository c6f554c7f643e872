"""The staff workspace's Customer 360 (issue 11): a customer's whole story on one page,
each section read through the area's resource kind with the caller's role and scoping
(a section the role may not read is left out and named), at most :data:`SECTION_LIMIT`
items each with the section's total beside them: one query per section, whatever the
number of items."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.orm import Session

from etomcrm.billing.api_kinds import CUSTOMER_BILL_KIND
from etomcrm.billing.payments import PAYMENT_KIND, open_balance
from etomcrm.core import resources
from etomcrm.core.errors import Forbidden, NotFound
from etomcrm.core.resources import READ, ResourceKind
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.communication import COMMUNICATION_MESSAGE_KIND
from etomcrm.customer_interface.service import (
    CUSTOMER_KIND,
    GEOGRAPHIC_SITE_KIND,
    PARTY_INTERACTION_KIND,
)
from etomcrm.network_view import service as network_view
from etomcrm.order_handling.service import PRODUCT_KIND, PRODUCT_ORDER_KIND
from etomcrm.problem_handling.tickets import TROUBLE_TICKET_KIND
from etomcrm.qos_sla.service import SLA_VIOLATION_KIND
from etomcrm.retention.risk import PARTY_ROLE_RISK_ASSESSMENT_KIND
from etomcrm.retention.satisfaction import customer_satisfaction
from etomcrm.security.service import Principal
from etomcrm.selling.accounts import BILLING_ACCOUNT_KIND
from etomcrm.selling.quotes import QUOTE_KIND

SECTION_LIMIT = 10
# The sections whose items have a page of their own; the others link to the API.
PAGE_HREFS = {
    "site": "/ui/customers/{customer}/sites/{id}",
    # The quote page: the builder's view with its materials, costs and approval.
    "quote": "/ui/customers/{customer}/quotes/{id}",
    "order": "/ui/orders/{id}",  # the order tracker, per site
    "ticket": "/ui/desk/tickets/{id}",
    "bill": "/ui/billing/bills/{id}",
}

# The sections, in the page's order: label → the kind that holds them.
SECTIONS: tuple[tuple[str, ResourceKind], ...] = (
    ("site", GEOGRAPHIC_SITE_KIND),
    ("interaction", PARTY_INTERACTION_KIND),
    ("message", COMMUNICATION_MESSAGE_KIND),
    ("quote", QUOTE_KIND),
    ("order", PRODUCT_ORDER_KIND),
    ("product", PRODUCT_KIND),
    ("ticket", TROUBLE_TICKET_KIND),
    ("violation", SLA_VIOLATION_KIND),
    ("account", BILLING_ACCOUNT_KIND),
    ("bill", CUSTOMER_BILL_KIND),
    ("payment", PAYMENT_KIND),
    ("risk", PARTY_ROLE_RISK_ASSESSMENT_KIND),
)


@dataclass(frozen=True)
class Item:
    id: str
    name: str
    status: str
    at: datetime | None
    detail: str
    href: str


@dataclass(frozen=True)
class Section:
    label: str
    total: int
    items: list[Item]
    # Where the whole list is: the API's list filtered to the customer.
    list_href: str


@dataclass(frozen=True)
class Customer360:
    customer_id: str
    customer_name: str
    status: str
    party: JsonDict
    party_href: str
    customer_href: str
    contacts: list[str]
    period: str
    sections: dict[str, Section] = field(default_factory=dict)
    not_shown: list[str] = field(default_factory=list)
    sla_standing: list[JsonDict] = field(default_factory=list)
    credit_owed: Decimal | None = None
    open_balance: Decimal | None = None
    # 3.9.5: answered surveys (count, average CSAT, NPS), the latest answer and the
    # surveys still open; None when the role may not read the contact history.
    satisfaction: JsonDict | None = None


def _money(value: Any) -> str:
    if isinstance(value, dict) and value.get("value") is not None:
        return f"{value.get('value')} {value.get('unit') or ''}".strip()
    return ""


def _detail(label: str, body: JsonDict) -> str:
    """The one thing each item says beside its name and status."""
    if label == "interaction":
        channels = [
            str(c.get("name") or c.get("id") or "")
            for c in body.get("channel") or []
            if isinstance(c, dict)
        ]
        return ", ".join(c for c in channels if c) or str(body.get("reason") or "")
    if label == "message":
        return " · ".join(str(p) for p in (body.get("messageType"), body.get("subject")) if p)
    if label == "quote":
        return str(body.get("state") or "")
    if label == "order":
        return str(body.get("state") or "")
    if label == "ticket":
        return " · ".join(str(p) for p in (body.get("severity"), body.get("ticketType")) if p)
    if label == "violation":
        credit = body.get("credit") or {}
        owed = _money(credit)
        return f"{owed} ({credit.get('status')})" if owed and credit.get("status") else owed
    if label == "bill":
        return _money(body.get("remainingAmount")) or _money(body.get("amountDue"))
    if label == "payment":
        return _money(body.get("totalAmount")) or _money(body.get("amount"))
    if label == "risk":
        result = body.get("riskAssessmentResult") or {}
        return " · ".join(
            f"{s.get('risk') or s.get('riskName')}: {s.get('score')} ({s.get('level')})"
            for s in result.get("score") or []
            if isinstance(s, dict)
        )
    return ""


def _section(
    session: Session, principal: Principal, label: str, kind: ResourceKind, customer_id: str
) -> Section:
    row = kind.row
    # Open tickets first (the ones being worked on), then the recent closed ones.
    ended = (
        case((row.status.in_([*network_view.CLOSED_TICKETS, "resolved"]), 1), else_=0)
        if label == "ticket"
        else literal_column("0")
    ).label("ended")
    # The page of ten and its total (a window count riding along each row) are found
    # on the narrow columns, and only the ten rows' documents are read: sorting whole
    # documents to keep ten made the 360 of a customer with 10,000 tickets 3.6 times
    # the API's reads of the same (bench/pages.py). Still one query per section.
    page = kind.scoped(
        principal,
        select(
            row.id.label("id"),
            ended,
            row.created_at.label("created_at"),
            func.count().over().label("total"),
        )
        .where(row.owner_customer_id == customer_id)
        .order_by(ended, row.created_at.desc(), row.id)
        .limit(SECTION_LIMIT),
    ).subquery()
    stmt = (
        select(row.id, row.name, row.status, row.created_at, row.body, page.c.total)
        .join(page, page.c.id == row.id)
        .order_by(page.c.ended, page.c.created_at.desc(), row.id)
    )
    items: list[Item] = []
    total = 0
    for resource_id, name, status, at, body, count in session.execute(stmt):
        total = int(count)
        body = body or {}
        state = status or str(body.get("state") or "")
        href = (
            PAGE_HREFS[label].format(
                customer=quote(customer_id, safe=""), id=quote(resource_id, safe="")
            )
            if label in PAGE_HREFS
            else resources.href_for(kind, "", resource_id)
        )
        items.append(Item(resource_id, str(name or ""), str(state), at, _detail(label, body), href))
    return Section(label, total, items, kind.path)


def _credit_owed(session: Session, customer_id: str) -> Decimal:
    """The credits this customer's violations grant and no bill has yet settled: owed,
    or handed to billing for the next bill (one query)."""
    owed = Decimal("0.00")
    for (body,) in session.execute(
        select(SLA_VIOLATION_KIND.row.body).where(
            SLA_VIOLATION_KIND.row.owner_customer_id == customer_id
        )
    ):
        credit = (body or {}).get("credit") or {}
        if credit.get("status") in ("owed", "handedToBilling"):
            owed += Decimal(str(credit.get("value") or "0"))
    return owed


def customer_360(
    session: Session, principal: Principal, customer_id: str, *, now: datetime
) -> Customer360:
    """Everything the principal's role may read about one customer, bounded per section.
    The page is the staff's: a customer's user gets the 404 of anything not its own, and
    a 403 for its own customer (its pages are the portal's)."""
    if principal.is_customer:
        if principal.customer_id != customer_id:
            raise NotFound(f"no customer with id {customer_id}")
        raise Forbidden("the Customer 360 is for the provider's staff")
    customer, _ = resources.get(session, CUSTOMER_KIND, principal, customer_id)
    period = now.strftime("%Y-%m")
    party = customer.get("engagedParty") or {}
    contacts = []
    for medium in customer.get("contactMedium") or []:
        if isinstance(medium, dict):
            characteristic = medium.get("characteristic") or medium
            value = (
                characteristic.get("emailAddress")
                or characteristic.get("phoneNumber")
                or characteristic.get("city")
                or ""
            )
            if value:
                contacts.append(f"{medium.get('mediumType') or medium.get('contactType')}: {value}")
    sections: dict[str, Section] = {}
    not_shown: list[str] = []
    for label, kind in SECTIONS:
        try:
            kind.authorize(principal, READ)
        except Forbidden:
            not_shown.append(label)
            continue
        sections[label] = _section(session, principal, label, kind, customer_id)
    party_kind = ResourceKind.by_type.get(str(party.get("@referredType") or "Organization"))
    return Customer360(
        customer_id=customer_id,
        customer_name=str(customer.get("name") or customer_id),
        status=str(customer.get("status") or ""),
        party=party,
        party_href=(
            resources.href_for(party_kind, "", str(party.get("id")))
            if party_kind and party.get("id")
            else ""
        ),
        customer_href=resources.href_for(CUSTOMER_KIND, "", customer_id),
        contacts=contacts,
        period=period,
        sections=sections,
        not_shown=not_shown,
        sla_standing=(
            network_view.sla_standing(session, customer_id, period)
            if "violation" in sections
            else []
        ),
        credit_owed=(_credit_owed(session, customer_id) if "violation" in sections else None),
        open_balance=(
            open_balance(session, [customer_id])[customer_id] if "bill" in sections else None
        ),
        # Surveys are interactions: whoever reads the contact history reads them.
        satisfaction=(
            customer_satisfaction(session, customer_id) if "interaction" in sections else None
        ),
    )
