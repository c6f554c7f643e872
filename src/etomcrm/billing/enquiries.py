"""3.8.1 Handle billing enquiries: a customer disputes a bill or some of its lines.

The enquiry is logged as the customer's request (3.2.2, a TMF683 ``CustomerRequest``
classified ``billing``, so it sits in billing's queue and the customer sees its status)
and kept as a ``BillingEnquiry`` beside it, naming the bill, the disputed lines and the
disputed amount. While it is open, dunning (3.8.5) pauses on the disputed amount.

Billing staff answer it: rejected, with the reason; or adjusted, by a credit note that
references the bill. A credit note whose net amount is above ``credit_note_approval_eur``
needs a second person's approval (four eyes, as quote discounts): the approver cannot
be the one who proposed it. The customer is told the outcome.

Credit notes are made by the bills part (``billing.bills.credit_note``); this module
reaches it through the port :func:`issue_credit_notes_with`, wired by the composition
root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.billing.dunning_models import BillingEnquiryRow
from etomcrm.billing.events import BillDisputed, BillingEnquiryResolved
from etomcrm.billing.models import AppliedRateRow, CustomerBillRow
from etomcrm.config import get_settings
from etomcrm.core.bus import record
from etomcrm.core.clock import ServiceClock, iso
from etomcrm.core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface import requests
from etomcrm.customer_interface.communication import inform_customer
from etomcrm.db import new_id
from etomcrm.network.port import business_date
from etomcrm.security.service import SYSTEM, Principal, Role

CENT = Decimal("0.01")
ENQUIRY_TYPE = "BillingEnquiry"
# Who answers enquiries and approves credit notes.
BILLING_STAFF = frozenset({Role.ADMIN, Role.BILLING})
OPEN_STATES = ("open", "pendingApproval")
# Bills a customer can dispute: issued to it (a draft is not the customer's yet).
DISPUTABLE = ("validated", "sent", "partiallyPaid", "settled")


# The moment an enquiry is worked at: the clock, or the one a caller (the demo, whose
# bills are dated in months ahead) sets.
CLOCK = ServiceClock("billing_enquiry")


@dataclass(frozen=True)
class CreditLine:
    """One line of a credit note: what is credited, tax included, at the tax rate of the
    charge it corrects (percent); ``applied_rate_id`` names that charge, if one."""

    description: str
    amount: Decimal
    tax_rate: Decimal
    applied_rate_id: str | None = None


class CreditNoteIssuer(Protocol):
    """``bills.credit_note``: a credit note referencing the bill, numbered in its series,
    lowering what is open on the bill; returns the credit note's row."""

    def __call__(
        self,
        session: Session,
        bill_id: str,
        lines: Sequence[CreditLine],
        reason: str,
        *,
        today: date,
    ) -> CustomerBillRow: ...


_issuer: list[CreditNoteIssuer] = []


def issue_credit_notes_with(issuer: CreditNoteIssuer) -> None:
    """Wire the maker of credit notes (called by the composition root)."""
    _issuer[:] = [issuer]


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _amount(value: Any, what: str) -> Decimal:
    """A positive amount of money from a request: a number, a decimal string, or a TMF
    Money ``{"value": ..., "unit": "EUR"}``."""
    if isinstance(value, dict):
        if value.get("unit", "EUR") != "EUR":
            raise InvalidRequest(f"{what}: only EUR amounts are billed")
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidRequest(f'{what} must be an amount such as "12.50"')
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidRequest(f'{what} must be an amount such as "12.50"') from None
    if not amount.is_finite() or amount <= 0 or amount != _money(amount):
        raise InvalidRequest(f"{what} must be a positive amount in cents, not {value!r}")
    return amount


def _eur(value: Decimal) -> JsonDict:
    return {"unit": "EUR", "value": f"{value:.2f}"}


def _bill_for(session: Session, principal: Principal, bill_id: str) -> CustomerBillRow:
    bill = session.get(CustomerBillRow, bill_id)
    if bill is None or (principal.is_customer and bill.owner_customer_id != principal.customer_id):
        raise NotFound(f"no customerBill with id {bill_id}")
    return bill


def _label(bill: CustomerBillRow) -> str:
    return bill.bill_no or bill.id


def _load(session: Session, principal: Principal, enquiry_id: str) -> BillingEnquiryRow:
    row = session.get(BillingEnquiryRow, enquiry_id, with_for_update=True)
    if row is None or (principal.is_customer and row.owner_customer_id != principal.customer_id):
        raise NotFound(f"no billingEnquiry with id {enquiry_id}")
    return row


def _staff(principal: Principal, what: str) -> None:
    if principal.is_customer or principal.role not in BILLING_STAFF:
        raise Forbidden(f"{what} is done by billing staff (role billing or admin)")


def _save(row: BillingEnquiryRow, changes: JsonDict) -> JsonDict:
    now = CLOCK.now()
    row.body = {**row.body, **changes, "status": row.status, "lastUpdate": iso(now)}
    row.version += 1
    row.updated_at = now
    return dict(row.body)


def dispute_bill(
    session: Session,
    principal: Principal,
    bill_id: str,
    *,
    description: str,
    line_ids: Sequence[str] = (),
    amount: Any = None,
    channel: str = "api",
    request_id: str | None = None,
) -> JsonDict:
    """3.8.1 Handle billing enquiries (eTOM 1.1.1.8.1): a customer disputes a bill, some
    of its lines (``line_ids``, its appliedCustomerBillingRate ids) or an amount of it;
    the enquiry is logged as the customer's request, routed to billing, and dunning of
    the disputed amount pauses. Staff log an enquiry that came by phone or e-mail, or
    take up a customer request (``request_id``) that named the bill."""
    if principal.is_customer and request_id is not None:
        raise Forbidden("a customer disputes a bill; our staff link requests to it")
    bill = _bill_for(session, principal, bill_id)
    if not isinstance(description, str) or not description.strip():
        raise InvalidRequest("a dispute says what is wrong with the bill ('description')")
    if bill.category == "creditNote":
        raise Conflict(f"{_label(bill)} is a credit note; dispute the bill it corrects")
    if bill.status not in DISPUTABLE:
        raise Conflict(f"bill {_label(bill)} is {bill.status}: it has not been issued to you yet")
    customer_id = bill.owner_customer_id or ""
    lines = _lines(session, bill, line_ids)
    if lines and amount is not None:
        raise InvalidRequest("dispute either lines or an amount, not both")
    if lines:
        disputed = _money(sum((line.tax_included for line in lines), Decimal(0)))
    elif amount is not None:
        disputed = _amount(amount, "disputedAmount")
        if disputed > bill.amount_due:
            raise InvalidRequest(
                f"disputedAmount {disputed:.2f} is more than the bill's {bill.amount_due:.2f}"
            )
    else:
        disputed = bill.remaining_amount if bill.remaining_amount > 0 else bill.amount_due
    if disputed <= 0:
        raise InvalidRequest("the disputed lines amount to nothing: nothing to dispute")
    _refuse_overlap(session, bill, [line.id for line in lines])
    request = _request(
        session, principal, customer_id, bill, description.strip(), channel, request_id
    )
    enquiry_id = new_id()
    now = CLOCK.now()
    body: JsonDict = {
        "id": enquiry_id,
        "@type": ENQUIRY_TYPE,
        "status": "open",
        "creationDate": iso(now),
        "description": description.strip(),
        "channel": request["channel"][0]["id"] if request.get("channel") else channel,
        "routedTo": Role.BILLING.value,
        "customerBill": {"id": bill.id, "billNo": bill.bill_no, "@referredType": "CustomerBill"},
        "disputedLine": [
            {
                "id": line.id,
                "name": line.name,
                "amount": _eur(line.tax_included),
                "@referredType": "AppliedCustomerBillingRate",
            }
            for line in lines
        ],
        "disputedAmount": _eur(disputed),
        "customerRequest": {"id": request["id"], "@referredType": "PartyInteraction"},
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
    }
    session.add(
        BillingEnquiryRow(
            id=enquiry_id,
            at_type=ENQUIRY_TYPE,
            name=f"Enquiry on bill {_label(bill)}",
            status="open",
            owner_customer_id=customer_id,
            body=body,
            version=1,
            created_at=now,
            updated_at=now,
            bill_id=bill.id,
            disputed_amount=disputed,
        )
    )
    session.flush()
    inform_customer(
        session,
        customer_id=customer_id,
        subject=f"Your enquiry about bill {_label(bill)}",
        content=f"We received your enquiry about bill {_label(bill)} ({disputed:.2f} EUR "
        "disputed). Our billing team will answer it; meanwhile we send no reminders about "
        "the disputed amount.",
        key=f"billing-enquiry/{enquiry_id}/received",
        related_entity=[{"id": enquiry_id, "@referredType": ENQUIRY_TYPE, "role": "enquiry"}],
    )
    record(session, BillDisputed(enquiry_id, bill.id, customer_id, f"{disputed:.2f}"))
    return body


def _lines(
    session: Session, bill: CustomerBillRow, line_ids: Sequence[str]
) -> list[AppliedRateRow]:
    if isinstance(line_ids, str) or not all(isinstance(i, str) for i in line_ids):
        raise InvalidRequest("disputedLine is a list of the bill's line ids")
    if len(set(line_ids)) != len(line_ids):
        raise InvalidRequest("a line is disputed once per enquiry")
    if not line_ids:
        return []
    found = {
        row.id: row
        for row in session.scalars(
            select(AppliedRateRow).where(
                AppliedRateRow.id.in_(list(line_ids)), AppliedRateRow.bill_id == bill.id
            )
        )
    }
    missing = [i for i in line_ids if i not in found]
    if missing:
        raise InvalidRequest(f"not lines of bill {_label(bill)}: {', '.join(missing)}")
    return [found[i] for i in line_ids]


def _refuse_overlap(session: Session, bill: CustomerBillRow, line_ids: list[str]) -> None:
    """One open enquiry per disputed thing: the whole bill, or each line."""
    for body in session.scalars(
        select(BillingEnquiryRow.body).where(
            BillingEnquiryRow.bill_id == bill.id, BillingEnquiryRow.status.in_(OPEN_STATES)
        )
    ):
        theirs = {str(line["id"]) for line in body.get("disputedLine") or []}
        if not theirs or not line_ids or theirs & set(line_ids):
            raise Conflict(
                f"enquiry {body['id']} on bill {_label(bill)} is open already for "
                + ("these lines" if theirs and line_ids else "this bill")
                + "; add to it instead"
            )


def _request(
    session: Session,
    principal: Principal,
    customer_id: str,
    bill: CustomerBillRow,
    description: str,
    channel: str,
    request_id: str | None,
) -> JsonDict:
    """The customer request the enquiry is: the one staff name, or a new one in
    billing's queue."""
    if request_id is not None:
        current = requests.update_customer_request(
            session,
            principal,
            request_id,
            classification="billing",
            note=f"Taken up as a billing enquiry on bill {_label(bill)}",
        )
        if customer_id not in {p.get("id") for p in current.get("relatedParty") or []}:
            raise InvalidRequest(f"request {request_id} is not from the bill's customer")
        return current
    if principal.is_customer and channel not in requests.CUSTOMER_CHANNELS:
        raise InvalidRequest(
            f"a customer disputes a bill through {' or '.join(requests.CUSTOMER_CHANNELS)}"
        )
    # Logged on the customer's behalf: the classification is known, not guessed.
    return requests.handle_customer_request(
        session,
        SYSTEM,
        customer_id=customer_id,
        channel=channel,
        subject=f"Dispute of bill {_label(bill)}",
        description=description,
        classification="billing",
    )


def _close_request(
    session: Session, enquiry: BillingEnquiryRow, principal: Principal, note: str
) -> None:
    request_id = (enquiry.body.get("customerRequest") or {}).get("id")
    if not request_id:
        return
    worker = principal if not principal.is_customer else SYSTEM
    current = requests.update_customer_request(session, worker, str(request_id), note=note)
    if current.get("status") == "open":
        current = requests.update_customer_request(
            session, worker, str(request_id), status="inProgress"
        )
    if current.get("status") == "inProgress":
        requests.update_customer_request(session, worker, str(request_id), status="resolved")


def reject_enquiry(
    session: Session, principal: Principal, enquiry_id: str, *, reason: str
) -> JsonDict:
    """3.8.1 Handle billing enquiries (eTOM 1.1.1.8.1): billing finds the bill right and
    rejects the dispute with its reason; the customer is told, dunning goes on."""
    _staff(principal, "answering a billing enquiry")
    row = _load(session, principal, enquiry_id)
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidRequest("a rejection says why the bill is right ('reason')")
    if row.status not in OPEN_STATES:
        raise Conflict(f"enquiry {enquiry_id} is {row.status} already")
    bill = _bill_for(session, SYSTEM, row.bill_id)
    row.status = "rejected"
    body = _save(
        row,
        {
            "resolution": {
                "outcome": "rejected",
                "reason": reason.strip(),
                "date": iso(CLOCK.now()),
                "by": {"id": principal.id, "name": principal.name},
            }
        },
    )
    _close_request(session, row, principal, f"Rejected: {reason.strip()}")
    inform_customer(
        session,
        customer_id=row.owner_customer_id or "",
        subject=f"Your enquiry about bill {_label(bill)}: the bill stands",
        content=f"We have examined your enquiry about bill {_label(bill)}. The bill is "
        f"right: {reason.strip()}. {bill.remaining_amount:.2f} EUR remain to be paid.",
        key=f"billing-enquiry/{enquiry_id}/rejected",
        related_entity=[{"id": enquiry_id, "@referredType": ENQUIRY_TYPE, "role": "enquiry"}],
    )
    record(
        session,
        BillingEnquiryResolved(enquiry_id, bill.id, row.owner_customer_id or "", "rejected", None),
    )
    return body


def _credit_lines(
    session: Session, row: BillingEnquiryRow, amount: Decimal | None
) -> list[CreditLine]:
    """What the credit note credits: each disputed line in full, or ``amount`` (at the
    disputed lines' tax rate when they share one, else the standard rate)."""
    disputed_ids = [str(line["id"]) for line in row.body.get("disputedLine") or []]
    rates = (
        list(session.scalars(select(AppliedRateRow).where(AppliedRateRow.id.in_(disputed_ids))))
        if disputed_ids
        else []
    )
    if amount is None and rates:
        # A line credited in full is what the customer was charged for it: its list price
        # less the contract discount the bill took off it on a line of its own.
        discounts: dict[str, Decimal] = {}
        for discount in session.scalars(
            select(AppliedRateRow).where(
                AppliedRateRow.bill_id == row.bill_id, AppliedRateRow.rate_type == "discount"
            )
        ):
            of = str(((discount.characteristic or {}).get("discountOf") or {}).get("id"))
            discounts[of] = discounts.get(of, Decimal(0)) + discount.tax_included
        return [
            CreditLine(
                f"Credit: {rate.name}",
                rate.tax_included + discounts.get(rate.id, Decimal(0)),
                rate.tax_rate,
                rate.id,
            )
            for rate in sorted(rates, key=lambda r: disputed_ids.index(r.id))
        ]
    credited = amount if amount is not None else row.disputed_amount
    tax_rates = {rate.tax_rate for rate in rates}
    tax_rate = tax_rates.pop() if len(tax_rates) == 1 else Decimal(get_settings().vat_rate_percent)
    return [
        CreditLine(
            f"Adjustment of bill {row.body.get('customerBill', {}).get('billNo') or row.bill_id}",
            credited,
            tax_rate,
            rates[0].id if len(rates) == 1 else None,
        )
    ]


def _net(lines: Sequence[CreditLine]) -> Decimal:
    return sum((_money(line.amount * 100 / (100 + line.tax_rate)) for line in lines), Decimal(0))


def propose_adjustment(
    session: Session,
    principal: Principal,
    enquiry_id: str,
    *,
    reason: str,
    amount: Any = None,
) -> JsonDict:
    """3.8.1 Handle billing enquiries (eTOM 1.1.1.8.1): billing agrees and adjusts the
    bill by a credit note (the disputed lines, or ``amount``). Up to
    ``credit_note_approval_eur`` net it is issued at once; above, it waits for a second
    person's approval (:func:`approve_adjustment`)."""
    _staff(principal, "adjusting a bill")
    row = _load(session, principal, enquiry_id)
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidRequest("an adjustment says why the bill is corrected ('reason')")
    if row.status != "open":
        raise Conflict(f"enquiry {enquiry_id} is {row.status}: it has an answer already")
    bill = _bill_for(session, SYSTEM, row.bill_id)
    credited = _amount(amount, "amount") if amount is not None else None
    if credited is not None and credited > bill.amount_due:
        raise InvalidRequest(
            f"a credit of {credited:.2f} EUR is more than bill {_label(bill)} "
            f"({bill.amount_due:.2f} EUR)"
        )
    lines = _credit_lines(session, row, credited)
    total = _money(sum((line.amount for line in lines), Decimal(0)))
    net = _net(lines)
    proposal: JsonDict = {
        "reason": reason.strip(),
        "amount": _eur(total),
        "netAmount": _eur(net),
        "line": [
            {
                "description": line.description,
                "amount": _eur(line.amount),
                "taxRate": f"{line.tax_rate}",
                **({"appliedRate": {"id": line.applied_rate_id}} if line.applied_rate_id else {}),
            }
            for line in lines
        ],
        "proposedBy": {"id": principal.id, "name": principal.name},
        "date": iso(CLOCK.now()),
    }
    threshold = Decimal(get_settings().credit_note_approval_eur)
    if net > threshold:
        row.status = "pendingApproval"
        proposal["authorization"] = {
            "state": "pending",
            "name": f"Credit note of {net:.2f} EUR net is above {threshold:.2f} EUR: a "
            "second person approves it",
        }
        return _save(row, {"adjustment": proposal})
    _save(row, {"adjustment": proposal})
    return _issue(session, row, bill, lines, principal)


def approve_adjustment(session: Session, principal: Principal, enquiry_id: str) -> JsonDict:
    """3.8.1 Handle billing enquiries (eTOM 1.1.1.8.1): a second person approves a credit
    note above the threshold (not the one who proposed it), and it is issued."""
    _staff(principal, "approving a credit note")
    row = _load(session, principal, enquiry_id)
    if row.status != "pendingApproval":
        raise Conflict(f"enquiry {enquiry_id} is {row.status}: no credit note awaits approval")
    proposal = dict(row.body["adjustment"])
    if proposal["proposedBy"]["id"] == principal.id:
        raise Forbidden(
            f"{principal.name} proposed this credit note and cannot approve it too; another "
            "person in billing must approve it (four-eyes rule)"
        )
    bill = _bill_for(session, SYSTEM, row.bill_id)
    proposal["authorization"] = {
        **proposal.get("authorization", {}),
        "state": "approved",
        "givenDate": iso(CLOCK.now()),
        "approver": [{"id": principal.id, "name": principal.name, "@referredType": "StaffMember"}],
    }
    _save(row, {"adjustment": proposal})
    lines = [
        CreditLine(
            str(line["description"]),
            Decimal(str(line["amount"]["value"])),
            Decimal(str(line["taxRate"])),
            (line.get("appliedRate") or {}).get("id"),
        )
        for line in proposal["line"]
    ]
    return _issue(session, row, bill, lines, principal)


def _issue(
    session: Session,
    row: BillingEnquiryRow,
    bill: CustomerBillRow,
    lines: list[CreditLine],
    principal: Principal,
) -> JsonDict:
    if not _issuer:
        raise RuntimeError("no maker of credit notes is wired: call bootstrap() first")
    proposal = dict(row.body["adjustment"])
    note = _issuer[0](
        session, bill.id, lines, str(proposal["reason"]), today=business_date(CLOCK.now())
    )
    total = _money(sum((line.amount for line in lines), Decimal(0)))
    row.status = "resolved"
    body = _save(
        row,
        {
            "resolution": {
                "outcome": "adjusted",
                "reason": proposal["reason"],
                "date": iso(CLOCK.now()),
                "by": {"id": principal.id, "name": principal.name},
                "creditNote": {
                    "id": note.id,
                    "billNo": note.bill_no,
                    "amount": _eur(total),
                    "@referredType": "CustomerBill",
                },
            }
        },
    )
    _close_request(
        session,
        row,
        principal,
        f"Adjusted: credit note {note.bill_no or note.id} of {total:.2f} EUR",
    )
    inform_customer(
        session,
        customer_id=row.owner_customer_id or "",
        subject=f"Your enquiry about bill {_label(bill)}: credit note {note.bill_no or note.id}",
        content=f"You were right about bill {_label(bill)}: {proposal['reason']}. Credit note "
        f"{note.bill_no or note.id} credits {total:.2f} EUR to it.",
        key=f"billing-enquiry/{row.id}/adjusted",
        related_entity=[
            {"id": row.id, "@referredType": ENQUIRY_TYPE, "role": "enquiry"},
            {"id": note.id, "@referredType": "CustomerBill", "role": "creditNote"},
        ],
    )
    record(
        session,
        BillingEnquiryResolved(row.id, bill.id, row.owner_customer_id or "", "adjusted", note.id),
    )
    return body


def get_enquiry(session: Session, principal: Principal, enquiry_id: str) -> JsonDict:
    row = session.get(BillingEnquiryRow, enquiry_id)
    if row is None or (principal.is_customer and row.owner_customer_id != principal.customer_id):
        raise NotFound(f"no billingEnquiry with id {enquiry_id}")
    return dict(row.body)


def list_enquiries(
    session: Session, principal: Principal, *, status: str | None, offset: int, limit: int
) -> list[JsonDict]:
    """Billing's queue of enquiries (a customer: its own), one query."""
    query = select(BillingEnquiryRow.body).order_by(
        BillingEnquiryRow.created_at, BillingEnquiryRow.id
    )
    if principal.is_customer:
        query = query.where(BillingEnquiryRow.owner_customer_id == principal.customer_id)
    if status:
        query = query.where(BillingEnquiryRow.status.in_(status.split(",")))
    return [dict(body) for body in session.scalars(query.offset(offset).limit(limit))]
