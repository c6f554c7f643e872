"""What the portal's ticket and bill pages show and do (seed 5.1: "Tickets: open one
for a site, follow it, confirm or reject a resolution"; "Bills with PDF and XML, and a
dispute of a line"), through the same service functions as the API:

- a ticket is opened by :func:`etomcrm.problem_handling.tickets.open_ticket` (the
  TMF621 create, so 3.6.1 isolation and the Assurance flow start as from the API), its
  resolution confirmed or rejected by ``confirm_resolution`` / ``reject_resolution``
  (the API's ``.../confirmResolution`` and ``.../rejectResolution``);
- a bill's PDF is :func:`etomcrm.billing.bills.bill_document` (the API's
  ``customerBill/{id}/document``), its Factur-X XML that of
  :func:`etomcrm.billing.bills.invoice_of`, the bill as issued;
- a line is disputed by :func:`etomcrm.billing.enquiries.dispute_bill` (the API's
  ``POST billingEnquiry``), channel ``portal``.

Every read is scoped as in the API: the customer is read first (another customer's
user gets 404), then only that customer's tickets and bills, each in one query
whatever their number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from etomcrm.billing import bills, enquiries
from etomcrm.billing.api_kinds import CUSTOMER_BILL_KIND
from etomcrm.billing.dunning_models import BillingEnquiryRow
from etomcrm.billing.invoice import invoice_xml
from etomcrm.billing.models import AppliedRateRow, CustomerBillRow
from etomcrm.core import resources
from etomcrm.core.errors import InvalidRequest, NotFound
from etomcrm.core.resources import READ
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface import requests
from etomcrm.customer_interface.models import GeographicSiteRow
from etomcrm.customer_interface.service import CUSTOMER_KIND, GEOGRAPHIC_SITE_KIND
from etomcrm.network.models import NetworkLinkRow
from etomcrm.problem_handling import tickets
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.problem_handling.tickets import FINAL, PAUSED, TROUBLE_TICKET_KIND
from etomcrm.security.service import Principal

T = TypeVar("T")
S = TypeVar("S", bound=Select)  # type: ignore[type-arg]

# TMF621's own examples of a severity, mildest last.
SEVERITIES = ("Critical", "Major", "Minor")
DESCRIPTION_MAX = 2000
NAME_MAX = 80
# The most rows a list shows on one page; the next and previous links lead on.
PAGE_SIZE = 200
# No list is longer than this many pages; a larger number is a typed URL, not a link.
LAST_PAGE = 100_000


@dataclass(frozen=True)
class Paging:
    """Where a list's page stands: its number (from 1) and whether more follow."""

    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def page_number(text: str | None) -> int:
    """The ``page`` of a list's address: 1 when none, a 400 when it is no page number."""
    if text is None or text == "":
        return 1
    if not text.isdigit() or not 1 <= int(text) <= LAST_PAGE:
        raise InvalidRequest(f"page must be a whole number from 1 to {LAST_PAGE}, not {text!r}")
    return int(text)


def paged(stmt: S, number: int) -> S:
    """One page of a list's query, and one row more: that row tells a next page exists,
    without a second query to count."""
    return stmt.offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)


def page_of(rows: Sequence[T], number: int) -> tuple[list[T], Paging]:
    """The rows :func:`paged` read, without the one that looked ahead."""
    return list(rows[:PAGE_SIZE]), Paging(number, len(rows) > PAGE_SIZE)


def scoped_customer(session: Session, principal: Principal, customer_id: str) -> str:
    """The customer's name, or the 404 the API gives (another customer's user too)."""
    body, _ = resources.get(session, CUSTOMER_KIND, principal, customer_id)
    return str(body.get("name") or body.get("id") or "")


def sites_of(session: Session, customer_id: str) -> dict[str, str]:
    """The customer's sites, id → name, in one query."""
    return {
        site_id: str(name or site_id)
        for site_id, name in session.execute(
            select(GeographicSiteRow.id, GeographicSiteRow.name)
            .where(GeographicSiteRow.owner_customer_id == customer_id)
            .order_by(GeographicSiteRow.name, GeographicSiteRow.id)
        )
    }


def _sites_of_products(session: Session, customer_id: str) -> dict[str, str]:
    """Product id → the site its access link reaches (one query)."""
    return {
        product_id: site_id
        for product_id, site_id in session.execute(
            select(NetworkLinkRow.product_id, NetworkLinkRow.site_id).where(
                NetworkLinkRow.customer_id == customer_id, NetworkLinkRow.product_id.is_not(None)
            )
        )
        if product_id
    }


def _ticket_sites(body: JsonDict, product_sites: dict[str, str]) -> list[str]:
    """The sites a ticket is about: named (GeographicSite) or reached by its products."""
    found: list[str] = []
    for entity in body.get("relatedEntity") or []:
        if not isinstance(entity, dict):
            continue
        site = None
        if entity.get("@referredType") == "GeographicSite":
            site = entity.get("id")
        elif entity.get("@referredType") == "Product":
            site = product_sites.get(str(entity.get("id")))
        if isinstance(site, str) and site not in found:
            found.append(site)
    return found


def when(text: object) -> str:
    """An instant of a document ("2026-12-01T06:37:17.19Z") as a person reads it, in
    UTC to the minute; a dash when there is none."""
    if not isinstance(text, str) or not text:
        return "\u2013"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Clock:
    """A ticket's SLA clock as the customer sees it."""

    state: str  # running | paused | ended
    due: datetime | None = None
    minutes_left: int | None = None  # negative: overdue by

    @property
    def overdue(self) -> bool:
        return self.minutes_left is not None and self.minutes_left < 0


def clock(body: JsonDict, now: datetime) -> Clock:
    """Running towards the resolution target, paused while the ticket waits for the
    customer (pending, resolved: its time does not count), or ended."""
    status = str(body.get("status"))
    if status in FINAL:
        return Clock("ended")
    due_text = body.get("resolutionDueDate") or body.get("expectedResolutionDate")
    due = datetime.fromisoformat(str(due_text)) if due_text else None
    if status in PAUSED:
        return Clock("paused", due)
    if due is None:
        return Clock("running")
    return Clock("running", due, int((due - now).total_seconds() // 60))


@dataclass(frozen=True)
class TicketLine:
    id: str
    name: str
    status: str
    severity: str
    priority: str
    created: str
    sites: list[str]
    clock: Clock


@dataclass(frozen=True)
class TicketsPage:
    customer_id: str
    customer_name: str
    tickets: list[TicketLine]
    site_names: dict[str, str]
    # The customer's open tickets, on every page of the list.
    open_count: int
    paging: Paging


def _title(body: JsonDict) -> str:
    return str(body.get("name") or body.get("description") or body.get("id"))[:NAME_MAX]


def tickets_page(
    session: Session, principal: Principal, customer_id: str, *, now: datetime, number: int = 1
) -> TicketsPage:
    """One page of the customer's tickets, open ones first (newest first within), each
    with its status, sites and SLA clock: four queries whatever the number of tickets
    (the count of open ones rides along each row)."""
    name = scoped_customer(session, principal, customer_id)
    TROUBLE_TICKET_KIND.authorize(principal, READ)
    row = TroubleTicketRow
    ended = case((row.status.in_(FINAL), 1), else_=0)
    found = session.execute(
        TROUBLE_TICKET_KIND.scoped(
            principal,
            paged(
                select(row.body, func.sum(1 - ended).over().label("open"))
                .where(row.owner_customer_id == customer_id)
                .order_by(ended, row.created_at.desc(), row.id),
                number,
            ),
        )
    ).all()
    shown, paging = page_of(found, number)
    bodies = [body for body, _ in shown]
    open_count = int(found[0][1] or 0) if found else 0
    site_names = sites_of(session, customer_id)
    product_sites = _sites_of_products(session, customer_id)
    return TicketsPage(
        customer_id,
        name,
        [
            TicketLine(
                id=str(body["id"]),
                name=_title(body),
                status=str(body.get("status")),
                severity=str(body.get("severity") or ""),
                priority=str(body.get("priority") or ""),
                created=str(body.get("creationDate") or "")[:16].replace("T", " "),
                sites=_ticket_sites(body, product_sites),
                clock=clock(body, now),
            )
            for body in bodies
        ],
        site_names,
        open_count,
        paging,
    )


@dataclass(frozen=True)
class TicketPage:
    customer_id: str
    customer_name: str
    ticket: JsonDict
    title: str
    sites: list[tuple[str, str]]
    clock: Clock
    history: list[JsonDict]
    notes: list[JsonDict]
    # The customer's own answer to a resolved ticket: confirm, or reject with a reason.
    can_answer: bool
    when = staticmethod(when)


def _own_ticket(
    session: Session, principal: Principal, customer_id: str, ticket_id: str
) -> JsonDict:
    body, _ = resources.get(session, TROUBLE_TICKET_KIND, principal, ticket_id)
    if not any(
        isinstance(p, dict) and p.get("id") == customer_id for p in body.get("relatedParty") or []
    ):
        # A staff user typing another customer's ticket under this customer: nothing here.
        raise NotFound(f"no troubleTicket with id {ticket_id}")
    return body


def ticket_page(
    session: Session, principal: Principal, customer_id: str, ticket_id: str, *, now: datetime
) -> TicketPage:
    name = scoped_customer(session, principal, customer_id)
    body = _own_ticket(session, principal, customer_id, ticket_id)
    site_names = sites_of(session, customer_id)
    sites = _ticket_sites(body, _sites_of_products(session, customer_id))
    return TicketPage(
        customer_id=customer_id,
        customer_name=name,
        ticket=body,
        title=_title(body),
        sites=[(site, site_names.get(site, site)) for site in sites],
        clock=clock(body, now),
        history=[e for e in body.get("statusChange") or [] if isinstance(e, dict)],
        notes=[n for n in body.get("note") or [] if isinstance(n, dict)],
        can_answer=principal.is_customer and body.get("status") == "resolved",
    )


@dataclass
class TicketForm:
    """The form to open a ticket for a site: what was typed, and what is wrong with it."""

    customer_id: str
    customer_name: str
    sites: dict[str, str]
    site: str = ""
    description: str = ""
    severity: str = "Major"
    errors: dict[str, str] = field(default_factory=dict)
    severities: tuple[str, ...] = SEVERITIES


def ticket_form(
    session: Session, principal: Principal, customer_id: str, site: str = ""
) -> TicketForm:
    name = scoped_customer(session, principal, customer_id)
    TROUBLE_TICKET_KIND.authorize(principal, resources.CREATE)
    return TicketForm(customer_id, name, sites_of(session, customer_id), site=site)


def open_ticket(
    session: Session,
    principal: Principal,
    customer_id: str,
    form: dict[str, str],
    *,
    now: datetime | None = None,
) -> TicketForm | str:
    """Open a ticket for one of the customer's sites (TMF621 create, as the API's POST):
    the new ticket's id, or the form again with the reason beside each bad field."""
    page = ticket_form(session, principal, customer_id)
    page.site = form.get("site", "").strip()
    page.description = form.get("description", "").strip()
    page.severity = form.get("severity", "").strip()
    if page.site not in page.sites:
        page.errors["site"] = "site"
    if not page.description:
        page.errors["description"] = "empty"
    elif len(page.description) > DESCRIPTION_MAX:
        page.errors["description"] = "long"
    if page.severity not in SEVERITIES:
        page.errors["severity"] = "severity"
    if page.errors:
        return page
    first_line = page.description.splitlines()[0]
    payload: JsonDict = {
        "name": f"{page.sites[page.site]}: {first_line}"[:NAME_MAX],
        "description": page.description,
        "severity": page.severity,
        "ticketType": "network",
        "channel": {"id": "portal", "name": "portal"},
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "relatedEntity": [
            {
                "id": page.site,
                "@referredType": GEOGRAPHIC_SITE_KIND.type_name,
                "role": "affectedSite",
                "name": page.sites[page.site],
            }
        ],
    }
    body = tickets.open_ticket(session, principal, payload, now=now)
    return str(body["id"])


def answer_resolution(
    session: Session,
    principal: Principal,
    customer_id: str,
    ticket_id: str,
    form: dict[str, str],
) -> None:
    """The customer confirms a resolved ticket's resolution (it closes) or rejects it
    with what is still wrong (it reopens), through the API's service functions."""
    scoped_customer(session, principal, customer_id)
    _own_ticket(session, principal, customer_id, ticket_id)
    answer = form.get("answer")
    if answer == "confirm":
        tickets.confirm_resolution(session, principal, ticket_id)
    elif answer == "reject":
        tickets.reject_resolution(session, principal, ticket_id, form.get("reason", ""))
    else:
        raise InvalidRequest("answer is confirm or reject")


# ----- bills ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BillLine:
    id: str
    number: str
    category: str
    period_start: date | None
    period_end: date | None
    bill_date: date | None
    amount: Decimal
    due_date: date | None
    state: str
    open_amount: Decimal


@dataclass(frozen=True)
class BillsPage:
    customer_id: str
    customer_name: str
    bills: list[BillLine]
    # What the customer's bills (not its credit notes) leave open, on every page.
    open_total: Decimal
    paging: Paging


def _bill_line(row: CustomerBillRow) -> BillLine:
    return BillLine(
        id=row.id,
        number=row.bill_no or row.id,
        category=row.category,
        period_start=row.period_start,
        period_end=row.period_end,
        bill_date=row.bill_date,
        amount=row.amount_due,
        due_date=row.payment_due_date,
        state=row.status or "",
        open_amount=row.remaining_amount,
    )


def bills_page(
    session: Session, principal: Principal, customer_id: str, *, number: int = 1
) -> BillsPage:
    """One page of the customer's issued bills and credit notes, newest first: two
    queries whatever their number (a bill not yet issued is not the customer's yet; the
    open total rides along each row)."""
    name = scoped_customer(session, principal, customer_id)
    CUSTOMER_BILL_KIND.authorize(principal, READ)
    row = CustomerBillRow
    owed = case((row.category != "creditNote", row.remaining_amount), else_=0)
    found = session.execute(
        CUSTOMER_BILL_KIND.scoped(
            principal,
            paged(
                select(row, func.sum(owed).over().label("open"))
                .where(row.owner_customer_id == customer_id, row.bill_no.is_not(None))
                .order_by(row.bill_date.desc(), row.bill_no.desc(), row.id),
                number,
            ),
        )
    ).all()
    shown, paging = page_of(found, number)
    open_total = Decimal(str(found[0][1] if found and found[0][1] is not None else 0))
    open_total = open_total.quantize(Decimal("0.01"))
    return BillsPage(customer_id, name, [_bill_line(r) for r, _ in shown], open_total, paging)


@dataclass(frozen=True)
class RateLine:
    id: str
    name: str
    rate_type: str
    period_start: date | None
    period_end: date | None
    quantity: Decimal
    net: Decimal
    tax_rate: Decimal
    gross: Decimal
    disputed: bool


@dataclass(frozen=True)
class BillPage:
    customer_id: str
    customer_name: str
    bill: BillLine
    lines: list[RateLine]
    enquiries: list[JsonDict]
    disputable: bool
    # The dispute form's state after a refused post: what was typed, what is wrong.
    line: str = ""
    description: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    when = staticmethod(when)


def _own_bill(
    session: Session, principal: Principal, customer_id: str, bill_id: str
) -> CustomerBillRow:
    CUSTOMER_BILL_KIND.authorize(principal, READ)
    row: CustomerBillRow | None = session.scalar(
        CUSTOMER_BILL_KIND.scoped(
            principal,
            select(CustomerBillRow).where(
                CustomerBillRow.id == bill_id,
                CustomerBillRow.owner_customer_id == customer_id,
                CustomerBillRow.bill_no.is_not(None),
            ),
        )
    )
    if row is None:
        raise NotFound(f"no customerBill with id {bill_id}")
    return row


def bill_page(
    session: Session,
    principal: Principal,
    customer_id: str,
    bill_id: str,
    *,
    line: str = "",
    description: str = "",
    errors: dict[str, str] | None = None,
) -> BillPage:
    """A bill with its lines (the applied rates it charges) and the enquiries on it:
    four queries whatever the number of lines."""
    name = scoped_customer(session, principal, customer_id)
    row = _own_bill(session, principal, customer_id, bill_id)
    found = list(
        session.scalars(
            select(BillingEnquiryRow.body)
            .where(BillingEnquiryRow.bill_id == row.id)
            .order_by(BillingEnquiryRow.created_at, BillingEnquiryRow.id)
        )
    )
    disputed = {
        str(item["id"])
        for body in found
        if body.get("status") in enquiries.OPEN_STATES
        for item in body.get("disputedLine") or []
        if isinstance(item, dict)
    }
    rates = session.scalars(
        select(AppliedRateRow)
        .where(AppliedRateRow.bill_id == row.id)
        .order_by(AppliedRateRow.period_start, AppliedRateRow.rated_at, AppliedRateRow.id)
    ).all()
    return BillPage(
        customer_id=customer_id,
        customer_name=name,
        bill=_bill_line(row),
        lines=[
            RateLine(
                id=r.id,
                name=r.name,
                rate_type=r.rate_type,
                period_start=r.period_start,
                period_end=r.period_end,
                quantity=r.quantity,
                net=r.tax_excluded,
                tax_rate=r.tax_rate,
                gross=r.tax_included,
                disputed=r.id in disputed,
            )
            for r in rates
        ],
        enquiries=found,
        disputable=row.category != "creditNote" and row.status in enquiries.DISPUTABLE,
        line=line,
        description=description,
        errors=errors or {},
    )


def dispute_line(
    session: Session,
    principal: Principal,
    customer_id: str,
    bill_id: str,
    form: dict[str, str],
) -> BillPage | str:
    """Dispute one line of the bill through the billing enquiry service (3.8.1, as the
    API's ``POST billingEnquiry``): the enquiry's id, or the bill page again with the
    reason beside each bad field."""
    line, description = form.get("line", "").strip(), form.get("description", "").strip()
    page = bill_page(session, principal, customer_id, bill_id, line=line, description=description)
    if line not in {rate.id for rate in page.lines}:
        page.errors["line"] = "line"
    if not description:
        page.errors["description"] = "empty"
    elif len(description) > DESCRIPTION_MAX:
        page.errors["description"] = "long"
    if page.errors:
        return page
    enquiry = enquiries.dispute_bill(
        session, principal, bill_id, description=description, line_ids=[line], channel="portal"
    )
    return str(enquiry["id"])


@dataclass(frozen=True)
class Download:
    content: bytes
    filename: str
    media_type: str


def bill_download(
    session: Session, principal: Principal, customer_id: str, bill_id: str, kind: str
) -> Download:
    """The issued bill's PDF (Factur-X, as the API's ``customerBill/{id}/document``
    serves it) or its XML (the same invoice as issued)."""
    scoped_customer(session, principal, customer_id)
    row = _own_bill(session, principal, customer_id, bill_id)
    number = row.bill_no or row.id
    if kind == "pdf":
        return Download(bills.bill_document(session, row.id), f"{number}.pdf", "application/pdf")
    if kind == "xml":
        return Download(
            invoice_xml(bills.invoice_of(session, row.id)), f"{number}.xml", "application/xml"
        )
    raise NotFound(f"no document {kind!r}; there are pdf and xml")


REQUEST_SUBJECT_MAX = 200


@dataclass
class RequestForm:
    """The form to log a customer request (3.2.2): what was typed, what is wrong with
    it, and the reference of the request just logged (shown once, after the redirect)."""

    customer_id: str
    customer_name: str
    subject: str = ""
    description: str = ""
    sent: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def request_form(
    session: Session, principal: Principal, customer_id: str, sent: str = ""
) -> RequestForm:
    name = scoped_customer(session, principal, customer_id)
    return RequestForm(customer_id, name, sent=sent[:NAME_MAX])


def file_request(
    session: Session, principal: Principal, customer_id: str, form: dict[str, str]
) -> RequestForm | str:
    """Log the request as the API's POST customerRequest does (classified, routed, a
    selling request opening a lead): its id, or the form again with the bad fields.
    A customer files it through the portal; staff log what a customer said by phone."""
    page = request_form(session, principal, customer_id)
    page.subject = form.get("subject", "").strip()
    page.description = form.get("description", "").strip()
    if not page.subject:
        page.errors["subject"] = "empty"
    elif len(page.subject) > REQUEST_SUBJECT_MAX:
        page.errors["subject"] = "long"
    if len(page.description) > DESCRIPTION_MAX:
        page.errors["description"] = "long"
    if page.errors:
        return page
    body = requests.handle_customer_request(
        session,
        principal,
        customer_id=customer_id,
        channel="portal" if principal.is_customer else "phone",
        subject=page.subject,
        description=page.description,
    )
    return str(body["id"])
