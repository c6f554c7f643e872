"""What the staff bill pages show and do (issue 11: "Bills: bill with its lines, PDF and
XML, payments, dunning state, credit note with approval"), and the billing work lists'
pages (credit notes awaiting approval, dunning cases, billing's tasks such as unmatched
payments), through the same service functions as the API:

- the PDF is :func:`etomcrm.billing.bills.bill_document`, the XML the invoice as issued;
- the dunning state is :func:`etomcrm.billing.dunning.dunning_of_bill`;
- an enquiry staff took by phone or e-mail is logged by
  :func:`etomcrm.billing.enquiries.dispute_bill`, answered by ``reject_enquiry`` or
  ``propose_adjustment`` (a credit note; above ``credit_note_approval_eur`` net it waits
  for a second person), and approved by ``approve_adjustment``, which refuses the
  proposer (four eyes) as the API does.

Every page reads a bounded number of queries whatever the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.billing import bills, dunning, enquiries
from etomcrm.billing.api_kinds import CUSTOMER_BILL_KIND
from etomcrm.billing.dunning_models import BillingEnquiryRow, DunningCaseRow
from etomcrm.billing.invoice import invoice_xml
from etomcrm.billing.models import (
    AppliedRateRow,
    CustomerBillRow,
    PaymentAllocationRow,
    PaymentRow,
)
from etomcrm.billing.work_list import BILLING_TASK
from etomcrm.config import get_settings
from etomcrm.core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from etomcrm.core.resources import READ
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import CustomerRow, PartyInteractionRow
from etomcrm.customer_interface.service import PARTY_INTERACTION_KIND
from etomcrm.pages.portal_views import Download, when
from etomcrm.security.service import Principal

TEXT_MAX = 2000
LIST_LIMIT = 200
# The channels an enquiry reaches staff by (the portal and the API are the customer's own).
STAFF_CHANNELS = ("phone", "email")


def staff_only(principal: Principal) -> None:
    """The staff pages are the provider's: a customer's users read bills in the portal."""
    if principal.is_customer:
        raise Forbidden("these pages are for the provider's staff; see your portal")


def _customer_names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    return {
        cid: str(name or cid)
        for cid, name in session.execute(
            select(CustomerRow.id, CustomerRow.name).where(CustomerRow.id.in_(ids))
        )
    }


def _money(value: Any) -> Decimal | None:
    """The amount of a TMF Money in a document, for the pages' number format."""
    try:
        return Decimal(str((value or {}).get("value")))
    except (InvalidOperation, AttributeError):
        return None


def _bill(session: Session, principal: Principal, bill_id: str) -> CustomerBillRow:
    staff_only(principal)
    CUSTOMER_BILL_KIND.authorize(principal, READ)
    row = session.get(CustomerBillRow, bill_id)
    if row is None:
        raise NotFound(f"no customerBill with id {bill_id}")
    return row


# ----- one bill ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    id: str
    name: str
    rate_type: str
    period_start: date | None
    period_end: date | None
    quantity: Decimal
    net: Decimal
    tax_rate: Decimal
    gross: Decimal


@dataclass(frozen=True)
class Allocation:
    payment_id: str
    payment_date: date
    reference: str
    paid: Decimal
    allocated: Decimal
    allocated_at: datetime


@dataclass(frozen=True)
class Enquiry:
    id: str
    status: str
    created: str
    channel: str
    description: str
    disputed: Decimal | None
    lines: list[str]
    adjustment: JsonDict
    # The credit note proposed: by whom, gross and net.
    proposer: str
    credit_gross: Decimal | None
    credit_net: Decimal | None
    resolution: JsonDict
    # What the signed-in person may do with it.
    can_answer: bool
    can_approve: bool
    proposed_by_me: bool


@dataclass(frozen=True)
class Related:
    id: str
    number: str
    amount: Decimal
    state: str


@dataclass
class BillPage:
    bill: CustomerBillRow
    customer_name: str
    lines: list[Line]
    allocations: list[Allocation]
    dunning: JsonDict
    enquiries: list[Enquiry]
    credit_notes: list[Related]
    referenced: str | None  # a credit note's bill
    billing_staff: bool
    threshold: Decimal
    # The forms' state after a refused post: which form, what was typed, what is wrong.
    form: str = ""
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    when = staticmethod(when)
    channels: tuple[str, ...] = STAFF_CHANNELS

    @property
    def number(self) -> str:
        return self.bill.bill_no or self.bill.id

    @property
    def issued(self) -> bool:
        return self.bill.bill_no is not None

    @property
    def disputable(self) -> bool:
        return (
            self.billing_staff
            and self.bill.category != "creditNote"
            and self.bill.status in enquiries.DISPUTABLE
        )

    @property
    def dunning_fee(self) -> Decimal:
        return _money(self.dunning.get("fee")) or Decimal("0.00")

    @property
    def dunning_disputed(self) -> Decimal:
        return _money(self.dunning.get("disputedAmount")) or Decimal("0.00")

    @property
    def paid(self) -> Decimal:
        return sum((a.allocated for a in self.allocations), Decimal("0.00"))


def _enquiry(body: JsonDict, principal: Principal, billing_staff: bool) -> Enquiry:
    adjustment = body.get("adjustment") or {}
    proposer = (adjustment.get("proposedBy") or {}).get("id")
    status = str(body.get("status"))
    return Enquiry(
        id=str(body["id"]),
        status=status,
        created=when(body.get("creationDate")),
        channel=str(body.get("channel") or ""),
        description=str(body.get("description") or ""),
        disputed=_money(body.get("disputedAmount")),
        lines=[str(line.get("name") or line.get("id")) for line in body.get("disputedLine") or []],
        adjustment=adjustment,
        proposer=str((adjustment.get("proposedBy") or {}).get("name") or proposer or ""),
        credit_gross=_money(adjustment.get("amount")),
        credit_net=_money(adjustment.get("netAmount")),
        resolution=body.get("resolution") or {},
        can_answer=billing_staff and status == "open",
        can_approve=billing_staff and status == "pendingApproval" and proposer != principal.id,
        proposed_by_me=status == "pendingApproval" and proposer == principal.id,
    )


def bill_page(
    session: Session,
    principal: Principal,
    bill_id: str,
    *,
    form: str = "",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> BillPage:
    """A bill with its lines, the payments allocated to it, its dunning, its enquiries
    with their credit notes (and the forms to answer them), the credit notes that
    correct it: at most nine queries whatever the number of lines or payments."""
    row = _bill(session, principal, bill_id)
    owner = row.owner_customer_id
    names = _customer_names(session, {owner} if owner else set())
    rates = session.scalars(
        select(AppliedRateRow)
        .where(AppliedRateRow.bill_id == row.id)
        .order_by(AppliedRateRow.period_start, AppliedRateRow.rated_at, AppliedRateRow.id)
    ).all()
    allocations = session.execute(
        select(
            PaymentRow.id,
            PaymentRow.payment_date,
            PaymentRow.reference,
            PaymentRow.amount,
            PaymentAllocationRow.amount,
            PaymentAllocationRow.allocated_at,
        )
        .join(PaymentRow, PaymentRow.id == PaymentAllocationRow.payment_id)
        .where(PaymentAllocationRow.bill_id == row.id)
        .order_by(PaymentAllocationRow.allocated_at, PaymentAllocationRow.id)
    ).all()
    billing_staff = not principal.is_customer and principal.role in enquiries.BILLING_STAFF
    found = session.scalars(
        select(BillingEnquiryRow.body)
        .where(BillingEnquiryRow.bill_id == row.id)
        .order_by(BillingEnquiryRow.created_at, BillingEnquiryRow.id)
    ).all()
    notes = session.scalars(
        select(CustomerBillRow)
        .where(
            CustomerBillRow.category == "creditNote",
            CustomerBillRow.body["referencedBill"].as_string() == row.id,
        )
        .order_by(CustomerBillRow.bill_date, CustomerBillRow.id)
    ).all()
    referenced = row.body.get("referencedBill") if row.category == "creditNote" else None
    return BillPage(
        bill=row,
        customer_name=names.get(owner, owner) if owner else "",
        lines=[
            Line(
                r.id,
                r.name,
                r.rate_type,
                r.period_start,
                r.period_end,
                r.quantity,
                r.tax_excluded,
                r.tax_rate,
                r.tax_included,
            )
            for r in rates
        ],
        allocations=[
            Allocation(p, d, ref or "", paid, a, at) for p, d, ref, paid, a, at in allocations
        ],
        dunning=dunning.dunning_of_bill(session, principal, row.id),
        enquiries=[_enquiry(body, principal, billing_staff) for body in found],
        credit_notes=[
            Related(n.id, n.bill_no or n.id, n.amount_due, n.status or "") for n in notes
        ],
        referenced=str(referenced) if referenced else None,
        billing_staff=billing_staff,
        threshold=Decimal(get_settings().credit_note_approval_eur),
        form=form,
        values=values or {},
        errors=errors or {},
    )


def bill_download(session: Session, principal: Principal, bill_id: str, kind: str) -> Download:
    """The issued bill's PDF (Factur-X, as the API serves it) or its XML."""
    row = _bill(session, principal, bill_id)
    if row.bill_no is None:
        raise NotFound(f"bill {bill_id} is not issued yet: it has no document")
    if kind == "pdf":
        return Download(
            bills.bill_document(session, row.id), f"{row.bill_no}.pdf", "application/pdf"
        )
    if kind == "xml":
        return Download(
            invoice_xml(bills.invoice_of(session, row.id)), f"{row.bill_no}.xml", "application/xml"
        )
    raise NotFound(f"no document {kind!r}; there are pdf and xml")


def _billing_staff(principal: Principal, what: str) -> None:
    """Refused before the form is read: the API refuses the role whatever it sends."""
    staff_only(principal)
    if principal.role not in enquiries.BILLING_STAFF:
        raise Forbidden(f"{what} is done by billing staff (role billing or admin)")


def _text(form: dict[str, str], name: str, errors: dict[str, str], values: dict[str, str]) -> str:
    value = form.get(name, "").strip()
    values[name] = value
    if not value:
        errors[name] = "empty"
    elif len(value) > TEXT_MAX:
        errors[name] = "long"
    return value


def log_enquiry(
    session: Session, principal: Principal, bill_id: str, form: dict[str, str]
) -> BillPage | str:
    """Log an enquiry the customer made by phone or e-mail about the bill or one of its
    lines (3.8.1, as the API's ``POST billingEnquiry``): the bill's id, or the page
    again with the reason beside each bad field."""
    _billing_staff(principal, "logging a billing enquiry")
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    description = _text(form, "description", errors, values)
    line = values["line"] = form.get("line", "").strip()
    channel = values["channel"] = form.get("channel", "").strip()
    if channel not in STAFF_CHANNELS:
        errors["channel"] = "channel"
    page = bill_page(session, principal, bill_id, form="new", values=values, errors=errors)
    if not page.disputable:
        raise Conflict(f"bill {page.number} cannot be disputed: it is {page.bill.status}")
    if line and line not in {rate.id for rate in page.lines}:
        errors["line"] = "line"
    if errors:
        return page
    try:
        enquiries.dispute_bill(
            session,
            principal,
            bill_id,
            description=description,
            line_ids=[line] if line else [],
            channel=channel,
        )
    except Conflict:
        # One open enquiry per disputed thing: the existing one is on the page.
        errors["line"] = "open"
        return page
    return bill_id


def _enquiry_bill(session: Session, principal: Principal, enquiry_id: str) -> str:
    staff_only(principal)
    row = session.get(BillingEnquiryRow, enquiry_id)
    if row is None:
        raise NotFound(f"no billingEnquiry with id {enquiry_id}")
    return row.bill_id


def _amount(text: str) -> Decimal | None:
    """A positive amount in cents as typed ("12.50", "12,50"); None when it is not one."""
    if len(text) > 20:
        return None
    try:
        amount = Decimal(text.replace(",", "."))
        # quantize raises on an exponent beyond the context ("1e999999"): not an amount.
        if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
            return None
    except InvalidOperation:
        return None
    return amount


def propose_credit_note(
    session: Session, principal: Principal, enquiry_id: str, form: dict[str, str]
) -> BillPage | str:
    """Agree with the enquiry and propose a credit note (the disputed lines, or the
    amount typed): issued at once up to the threshold, else awaiting a second person.
    The bill's id, or the page again with the reason beside each bad field."""
    _billing_staff(principal, "adjusting a bill")
    bill_id = _enquiry_bill(session, principal, enquiry_id)
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    reason = _text(form, "reason", errors, values)
    amount_text = values["amount"] = form.get("amount", "").strip()
    amount = _amount(amount_text) if amount_text else None
    if amount_text and amount is None:
        errors["amount"] = "amount"
    form_name = f"adjust-{enquiry_id}"
    if errors:
        return bill_page(session, principal, bill_id, form=form_name, values=values, errors=errors)
    try:
        enquiries.propose_adjustment(
            session,
            principal,
            enquiry_id,
            reason=reason,
            amount=f"{amount:.2f}" if amount is not None else None,
        )
    except InvalidRequest:
        # The service's one refusal of a well-formed amount: more than the bill.
        errors["amount"] = "high"
        return bill_page(session, principal, bill_id, form=form_name, values=values, errors=errors)
    return bill_id


def reject_enquiry(
    session: Session, principal: Principal, enquiry_id: str, form: dict[str, str]
) -> BillPage | str:
    """The bill stands: reject the enquiry with the reason the customer is told."""
    _billing_staff(principal, "answering a billing enquiry")
    bill_id = _enquiry_bill(session, principal, enquiry_id)
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    reason = _text(form, "reason", errors, values)
    if errors:
        return bill_page(
            session, principal, bill_id, form=f"reject-{enquiry_id}", values=values, errors=errors
        )
    enquiries.reject_enquiry(session, principal, enquiry_id, reason=reason)
    return bill_id


def approve_credit_note(session: Session, principal: Principal, enquiry_id: str) -> str:
    """The second person approves the proposed credit note, which is issued; the one who
    proposed it is refused by the service (four eyes), as in the API."""
    _billing_staff(principal, "approving a credit note")
    bill_id = _enquiry_bill(session, principal, enquiry_id)
    enquiries.approve_adjustment(session, principal, enquiry_id)
    return bill_id


# ----- billing's work lists -----------------------------------------------------------


@dataclass(frozen=True)
class ListPage:
    """One of billing's work lists: its rows (at most :data:`LIST_LIMIT`) and total."""

    rows: list[Any]
    total: int
    customer_names: dict[str, str]


def _list_reader(principal: Principal) -> None:
    staff_only(principal)
    CUSTOMER_BILL_KIND.authorize(principal, READ)


@dataclass(frozen=True)
class Approval:
    enquiry_id: str
    bill_id: str
    bill_no: str
    customer_id: str | None
    net: Decimal | None
    gross: Decimal | None
    reason: str
    proposed_by: str
    proposed_by_me: bool
    since: datetime


def approvals_page(session: Session, principal: Principal) -> ListPage:
    """Credit notes awaiting a second person's approval, oldest first: two queries."""
    _list_reader(principal)
    found = session.execute(
        select(
            BillingEnquiryRow.body,
            BillingEnquiryRow.bill_id,
            BillingEnquiryRow.owner_customer_id,
            BillingEnquiryRow.updated_at,
            CustomerBillRow.bill_no,
            func.count().over(),
        )
        .join(CustomerBillRow, CustomerBillRow.id == BillingEnquiryRow.bill_id)
        .where(BillingEnquiryRow.status == "pendingApproval")
        .order_by(BillingEnquiryRow.updated_at, BillingEnquiryRow.id)
        .limit(LIST_LIMIT)
    ).all()
    rows = []
    for body, bill_id, owner, since, bill_no, _ in found:
        adjustment = body.get("adjustment") or {}
        proposer = adjustment.get("proposedBy") or {}
        rows.append(
            Approval(
                enquiry_id=str(body["id"]),
                bill_id=bill_id,
                bill_no=bill_no or bill_id,
                customer_id=owner,
                net=_money(adjustment.get("netAmount")),
                gross=_money(adjustment.get("amount")),
                reason=str(adjustment.get("reason") or ""),
                proposed_by=str(proposer.get("name") or proposer.get("id") or ""),
                proposed_by_me=proposer.get("id") == principal.id,
                since=since,
            )
        )
    total = int(found[0][5]) if found else 0
    return ListPage(
        rows, total, _customer_names(session, {r.customer_id for r in rows if r.customer_id})
    )


@dataclass(frozen=True)
class Dunned:
    case_id: str
    bill_id: str
    bill_no: str
    customer_id: str | None
    status: str
    level: int
    level_name: str
    remaining: Decimal
    fee: Decimal
    next_step: datetime | None
    since: datetime


def dunning_page(session: Session, principal: Principal) -> ListPage:
    """Dunning cases not closed, oldest first, with their bill: two queries."""
    _list_reader(principal)
    found = session.execute(
        select(
            DunningCaseRow,
            CustomerBillRow.bill_no,
            CustomerBillRow.remaining_amount,
            func.count().over(),
        )
        .join(CustomerBillRow, CustomerBillRow.id == DunningCaseRow.bill_id)
        .where(DunningCaseRow.status != "closed")
        .order_by(DunningCaseRow.created_at, DunningCaseRow.id)
        .limit(LIST_LIMIT)
    ).all()
    rows = [
        Dunned(
            case_id=case.id,
            bill_id=case.bill_id,
            bill_no=bill_no or case.bill_id,
            customer_id=case.owner_customer_id,
            status=case.status or "",
            level=case.level,
            level_name=dunning.LEVEL_NAMES.get(case.level, str(case.level)),
            remaining=remaining,
            fee=case.fee,
            next_step=case.next_step_at,
            since=case.created_at,
        )
        for case, bill_no, remaining, _ in found
    ]
    total = int(found[0][3]) if found else 0
    return ListPage(
        rows, total, _customer_names(session, {r.customer_id for r in rows if r.customer_id})
    )


@dataclass(frozen=True)
class Task:
    id: str
    reason: str
    description: str
    since: datetime
    # What the task is about: (label, page link or "") per item.
    items: list[tuple[str, str]]


def _item(item: JsonDict, prefix: str) -> tuple[str, str]:
    kind, item_id = str(item.get("@referredType") or ""), str(item.get("id") or "")
    label = f"{kind} {item.get('name') or item_id}".strip()
    if kind == "CustomerBill":
        return label, f"{prefix}/billing/bills/{item_id}"
    if kind == "Customer":
        return label, f"{prefix}/customers/{item_id}"
    return label, ""


def tasks_page(session: Session, principal: Principal, prefix: str) -> ListPage:
    """Billing's open tasks (unmatched payments, credits owed, charging to start or
    stop), oldest first: one query."""
    staff_only(principal)
    PARTY_INTERACTION_KIND.authorize(principal, READ)
    row = PartyInteractionRow
    found = session.execute(
        select(row.id, row.body, row.created_at, func.count().over())
        .where(row.at_type == BILLING_TASK, row.status == "open")
        .order_by(row.created_at, row.id)
        .limit(LIST_LIMIT)
    ).all()
    rows = [
        Task(
            id=task_id,
            reason=str(body.get("reason") or ""),
            description=str(body.get("description") or ""),
            since=created,
            items=[
                _item(entry["item"], prefix)
                for entry in body.get("interactionItem") or []
                if isinstance(entry, dict) and isinstance(entry.get("item"), dict)
            ],
        )
        for task_id, body, created, _ in found
    ]
    total = int(found[0][3]) if found else 0
    return ListPage(rows, total, {})
