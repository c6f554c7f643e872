"""3.8.5 Manage payments, dunning: the rules of the ladder an unpaid bill climbs.

A bill whose payment due date passed with an amount open (``BillOverdue``), or whose
direct debit came back (``PaymentReturned``), gets a dunning case. The case climbs one
level at a time, each a message to the customer:

1. reminder (Zahlungserinnerung), ``dunning_grace_business_days`` after the due date;
2. notice (Mahnung) with the fee ``dunning_fee_eur``, charged on the next bill;
3. final notice (letzte Mahnung) announcing the suspension date;
4. suspension: a TMF622 productOrder with ``modify`` items setting the customer's
   active products ``suspended``, run by the Fulfillment flow.

The waits between levels are business days (Monday to Friday, not a Bavarian public
holiday, core.calendar). A payment that settles the bill ends the case; a suspended
customer is resumed by an order setting the products ``active`` again. While an open
enquiry (3.8.1) disputes the whole open amount, the case pauses; a partly disputed bill
is dunned for the undisputed rest only. The durable flow (``flows.dunning``) calls
:func:`advance` at every look; everything here runs in the caller's transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.billing.dunning_models import BillingEnquiryRow, DunningCaseRow
from etomcrm.billing.events import BillOverdue
from etomcrm.billing.models import AppliedRateRow, CustomerBillRow
from etomcrm.config import get_settings
from etomcrm.core import resources
from etomcrm.core.bus import record
from etomcrm.core.calendar import BusinessCalendar
from etomcrm.core.clock import iso
from etomcrm.core.errors import NotFound
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.communication import inform_customer
from etomcrm.order_handling import service as orders
from etomcrm.order_handling.models import ProductOrderRow, ProductRow
from etomcrm.security.service import SYSTEM, Principal

CENT = Decimal("0.01")
BERLIN = ZoneInfo("Europe/Berlin")
# The provider's business days: Monday to Friday, Bavaria's public holidays off.
CALENDAR = BusinessCalendar()
OPENED, REMINDER, NOTICE, FINAL_NOTICE, SUSPENDED = 0, 1, 2, 3, 4
LEVEL_NAMES = {
    OPENED: "opened",
    REMINDER: "reminder",
    NOTICE: "notice",
    FINAL_NOTICE: "finalNotice",
    SUSPENDED: "suspended",
}
# Bills that were issued to the customer and can be overdue.
ISSUED_STATES = ("validated", "sent", "partiallyPaid")
OVERDUE = "overdue"
# Open enquiries: the amount they dispute is not dunned.
DISPUTING = ("open", "pendingApproval")
SEED, PROCESS = "3.8.5", "Manage payments: dunning"
# A paid case whose suspension is still being carried out looks again this often.
SUSPENSION_RECHECK_SECONDS = 300.0


def dunning_workflow_id(case_id: str) -> str:
    return f"dunning-{case_id}"


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def business_days_after(moment: datetime, days: int) -> datetime:
    """The moment ``days`` business days after ``moment``, at the same Berlin time."""
    local = moment.astimezone(BERLIN)
    day, left = local.date(), days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5 and not CALENDAR.is_holiday(day):
            left -= 1
    return datetime.combine(day, local.timetz()).astimezone(UTC)


def _end_of(day: date) -> datetime:
    """The last moment of a business date in Berlin (a due date is paid in time on it)."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), BERLIN).astimezone(UTC)


@dataclass
class Advance:
    """What one look at a case did: its steps (seed, process, outcome), the order to run
    through the Fulfillment flow, whether the case ended, and how long to wait."""

    ended: bool = False
    outcome: str = ""
    steps: list[tuple[str, str, str]] = field(default_factory=list)
    start_order: str | None = None
    wait_seconds: float = 0.001


def _bill(session: Session, bill_id: str) -> CustomerBillRow:
    bill = session.get(CustomerBillRow, bill_id)
    if bill is None:
        raise NotFound(f"no customerBill with id {bill_id}")
    return bill


def _currency(bill: CustomerBillRow) -> str:
    return str((bill.body.get("amountDue") or {}).get("unit") or "EUR")


def _bill_label(bill: CustomerBillRow) -> str:
    return bill.bill_no or bill.id


def disputed_amount(session: Session, bill_id: str) -> Decimal:
    """3.8.1: what open enquiries dispute of the bill (not dunned while they are open)."""
    total = session.scalar(
        select(func.coalesce(func.sum(BillingEnquiryRow.disputed_amount), 0)).where(
            BillingEnquiryRow.bill_id == bill_id, BillingEnquiryRow.status.in_(DISPUTING)
        )
    )
    return money(Decimal(str(total or 0)))


def case_document(case: DunningCaseRow, bill: CustomerBillRow) -> JsonDict:
    """The case as the API shows it (and as ``body`` keeps it)."""
    body = dict(case.body)
    body.update(
        {
            "id": case.id,
            "@type": "DunningCase",
            "status": case.status,
            "level": case.level,
            "levelName": LEVEL_NAMES[case.level],
            "trigger": case.trigger,
            "customerBill": {
                "id": bill.id,
                "billNo": bill.bill_no,
                "@referredType": "CustomerBill",
            },
            "billingAccount": {"id": case.billing_account_id, "@referredType": "BillingAccount"},
            "relatedParty": [
                {"id": case.owner_customer_id, "@referredType": "Customer", "role": "customer"}
            ],
            "remainingAmount": {"unit": _currency(bill), "value": f"{bill.remaining_amount:.2f}"},
            "fee": {"unit": _currency(bill), "value": f"{case.fee:.2f}"},
            "nextStepDate": iso(case.next_step_at) if case.next_step_at else None,
            "suspensionDate": case.suspension_date.isoformat() if case.suspension_date else None,
        }
    )
    return body


def _save(case: DunningCaseRow, bill: CustomerBillRow, now: datetime) -> None:
    case.body = case_document(case, bill)
    case.version += 1
    case.updated_at = now


def _history(case: DunningCaseRow, entry: JsonDict) -> None:
    case.body = {**case.body, "history": [*case.body.get("history", []), entry]}


def open_case(
    session: Session, bill_id: str, trigger: str, *, now: datetime
) -> DunningCaseRow | None:
    """3.8.5 Manage payments (eTOM 1.1.1.8.5), dunning: the bill's open dunning case, or
    a new one for ``trigger`` (``overdue`` or ``returned:<payment id>``). None when there
    is nothing to dun (the bill is settled) or this trigger's case ran already."""
    bill = _bill(session, bill_id)
    cases = list(session.scalars(select(DunningCaseRow).where(DunningCaseRow.bill_id == bill_id)))
    for case in cases:
        if case.status != "closed":
            return case
    if any(case.trigger == trigger for case in cases) or bill.remaining_amount <= 0:
        return None
    if trigger == OVERDUE and bill.payment_due_date is not None:
        first = business_days_after(
            _end_of(bill.payment_due_date), get_settings().dunning_grace_business_days
        )
    else:
        # A returned debit is dunned at once: the money the customer meant to pay is gone.
        first = now
    customer_id = bill.owner_customer_id or ""
    case = DunningCaseRow(
        id=str(uuid.uuid4()),
        at_type="DunningCase",
        name=f"Dunning of bill {_bill_label(bill)}",
        status="open",
        owner_customer_id=customer_id,
        bill_id=bill.id,
        billing_account_id=bill.billing_account_id,
        trigger=trigger,
        level=OPENED,
        next_step_at=first,
        fee=Decimal("0.00"),
        body={"history": [], "productOrder": []},
        version=1,
        created_at=now,
        updated_at=now,
    )
    case.body = {**case_document(case, bill), "openedAt": iso(now)}
    session.add(case)
    session.flush()
    return case


def record_overdue(session: Session, today: date, *, now: datetime) -> list[str]:
    """3.8.5 Manage payments (eTOM 1.1.1.8.5): every issued bill whose payment due date
    passed before ``today`` with an amount open and no dunning yet is overdue: the fact
    is stated (``BillOverdue``) and its dunning case opened. Returns the case ids."""
    already = select(DunningCaseRow.bill_id).where(DunningCaseRow.trigger == OVERDUE)
    bills = session.scalars(
        select(CustomerBillRow)
        .where(
            CustomerBillRow.payment_due_date < today,
            CustomerBillRow.remaining_amount > 0,
            CustomerBillRow.category != "creditNote",
            CustomerBillRow.status.in_(ISSUED_STATES),
            CustomerBillRow.id.not_in(already),
        )
        .order_by(CustomerBillRow.payment_due_date, CustomerBillRow.id)
    ).all()
    opened = []
    for bill in bills:
        case = open_case(session, bill.id, OVERDUE, now=now)
        if case is None:
            continue
        record(
            session,
            BillOverdue(
                bill_id=bill.id,
                billing_account_id=bill.billing_account_id,
                customer_id=bill.owner_customer_id or "",
            ),
        )
        opened.append(case.id)
    return opened


def open_cases_of_bills(session: Session, bill_ids: tuple[str, ...] | list[str]) -> list[str]:
    """The ids of the bills' dunning cases that are not closed."""
    if not bill_ids:
        return []
    return list(
        session.scalars(
            select(DunningCaseRow.id).where(
                DunningCaseRow.bill_id.in_(list(bill_ids)), DunningCaseRow.status != "closed"
            )
        )
    )


def _tell(
    session: Session,
    case: DunningCaseRow,
    bill: CustomerBillRow,
    step: str,
    subject: str,
    content: str,
) -> str:
    message = inform_customer(
        session,
        customer_id=case.owner_customer_id or "",
        subject=subject,
        content=content,
        key=f"dunning/{case.id}/{step}",
        related_entity=[{"id": bill.id, "@referredType": "CustomerBill", "role": "dunnedBill"}],
    )
    return str(message["id"])


def advance(session: Session, case_id: str, now: datetime) -> Advance:
    """3.8.5 Manage payments (eTOM 1.1.1.8.5), dunning: look at one case at ``now`` and
    take the step that is due, if any: end it when paid (resuming a suspended customer),
    pause it while disputed, or climb one level."""
    case = session.get(DunningCaseRow, case_id, with_for_update=True)
    if case is None:
        raise NotFound(f"no dunning case with id {case_id}")
    bill = _bill(session, case.bill_id)
    if case.status == "closed":
        return Advance(ended=True, outcome=str(case.body.get("outcome", "closed")))
    currency = _currency(bill)
    settings = get_settings()
    recheck = settings.dunning_recheck_seconds
    if bill.remaining_amount <= 0:
        return _paid(session, case, bill, now)
    disputed = disputed_amount(session, bill.id)
    dunned = money(bill.remaining_amount - disputed)
    if dunned <= 0:
        if case.status == "paused":
            return Advance(wait_seconds=recheck)
        case.status = "paused"
        case.body = {**case.body, "pausedAt": iso(now)}
        message = _tell(
            session,
            case,
            bill,
            f"paused/{len(case.body.get('history', []))}",
            f"Bill {_bill_label(bill)}: no reminders while we examine your enquiry",
            f"You dispute {disputed:.2f} {currency} of bill {_bill_label(bill)}. We send no "
            "reminders about it until our billing team has answered your enquiry.",
        )
        _history(case, {"event": "paused", "date": iso(now), "message": {"id": message}})
        _save(case, bill, now)
        return Advance(
            steps=[
                (
                    "3.8.1",
                    "Handle billing enquiries",
                    f"dunning of bill {_bill_label(bill)} paused: {disputed:.2f} {currency} "
                    "disputed; customer told",
                )
            ],
            wait_seconds=recheck,
        )
    steps: list[tuple[str, str, str]] = []
    if case.status == "paused":
        # The waiting period in which the enquiry came starts afresh: the customer gets
        # the full time to pay what the answer left open.
        paused_at = datetime.fromisoformat(str(case.body.get("pausedAt", iso(now))))
        case.status = "suspended" if case.level >= SUSPENDED else "open"
        if case.next_step_at is not None:
            case.next_step_at = max(case.next_step_at, now) + (now - paused_at)
        _history(case, {"event": "resumed", "date": iso(now), "openAmount": f"{dunned:.2f}"})
        steps.append(
            (
                "3.8.1",
                "Handle billing enquiries",
                f"enquiry answered: dunning of {dunned:.2f} {currency} goes on",
            )
        )
        _save(case, bill, now)
    if case.level >= SUSPENDED:
        return Advance(steps=steps, wait_seconds=recheck)
    due = case.next_step_at or now
    if now < due:
        return Advance(steps=steps, wait_seconds=max((due - now).total_seconds(), 0.001))
    level = case.level + 1
    label = _bill_label(bill)
    due_text = bill.payment_due_date.isoformat() if bill.payment_due_date else "its due date"
    advance_ = Advance()
    order_note: tuple[str, str, str] | None = None
    entry: JsonDict = {
        "level": level,
        "name": LEVEL_NAMES[level],
        "date": iso(now),
        "openAmount": {"unit": currency, "value": f"{dunned:.2f}"},
    }
    if level == REMINDER:
        case.next_step_at = business_days_after(now, settings.dunning_reminder_business_days)
        entry["message"] = {
            "id": _tell(
                session,
                case,
                bill,
                "reminder",
                f"Payment reminder: bill {label}",
                f"Zahlungserinnerung / payment reminder: bill {label} was due on {due_text}; "
                f"{dunned:.2f} {currency} are still open. Please pay by "
                f"{case.next_step_at.astimezone(BERLIN).date().isoformat()}. If you have "
                "paid meanwhile, please ignore this reminder.",
            )
        }
        text = f"reminder sent: {dunned:.2f} {currency} open on bill {label}"
    elif level == NOTICE:
        fee = money(Decimal(settings.dunning_fee_eur))
        rate_id = _charge_fee(session, case, bill, fee, currency, now)
        case.fee = fee
        case.next_step_at = business_days_after(now, settings.dunning_notice_business_days)
        entry["fee"] = {"unit": currency, "value": f"{fee:.2f}", "appliedRate": rate_id}
        entry["message"] = {
            "id": _tell(
                session,
                case,
                bill,
                "notice",
                f"Dunning notice: bill {label}",
                f"Mahnung / dunning notice: bill {label} is overdue since {due_text}; "
                f"{dunned:.2f} {currency} are still open. A dunning fee of {fee:.2f} "
                f"{currency} is charged on your next bill. Please pay by "
                f"{case.next_step_at.astimezone(BERLIN).date().isoformat()}.",
            )
        }
        text = (
            f"dunning notice sent: {dunned:.2f} {currency} open, fee {fee:.2f} {currency} "
            "charged for the next bill"
        )
    elif level == FINAL_NOTICE:
        suspend_at = business_days_after(now, settings.dunning_final_notice_business_days)
        case.next_step_at = suspend_at
        case.suspension_date = suspend_at.astimezone(BERLIN).date()
        entry["suspensionDate"] = case.suspension_date.isoformat()
        entry["message"] = {
            "id": _tell(
                session,
                case,
                bill,
                "final-notice",
                f"Final notice: bill {label}, services suspended on "
                f"{case.suspension_date.isoformat()}",
                f"Letzte Mahnung / final notice: bill {label} is overdue since {due_text}; "
                f"{dunned:.2f} {currency} are still open. Unless we receive the payment, your "
                f"services will be suspended on {case.suspension_date.isoformat()}.",
            )
        }
        text = f"final notice sent: suspension announced for {case.suspension_date.isoformat()}"
    else:
        order_id, products = _suspend(session, case, bill)
        case.status = "suspended"
        case.next_step_at = None
        entry["productOrder"] = {"id": order_id} if order_id else None
        entry["message"] = {
            "id": _tell(
                session,
                case,
                bill,
                "suspension",
                f"Your services are suspended: bill {label} unpaid",
                f"Bill {label} is still unpaid ({dunned:.2f} {currency}). As announced, "
                + (
                    f"we are suspending your {len(products)} active product(s). "
                    if products
                    else "your services are suspended. "
                )
                + "They are resumed as soon as the open amount is paid.",
            )
        }
        if order_id:
            advance_.start_order = order_id
            order_note = (
                "3.5.3",
                "Accept and issue orders",
                f"suspend order {order_id} placed for {len(products)} product(s)",
            )
        text = (
            f"services suspended: order {order_id} for {len(products)} product(s)"
            if order_id
            else "no active product to suspend"
        )
    case.level = level
    _history(case, entry)
    _save(case, bill, now)
    advance_.steps = [
        *steps,
        (SEED, PROCESS, text),
        *([order_note] if order_note else []),
        ("3.2.2", "Handle customer requests", f"customer sent the {LEVEL_NAMES[level]}"),
    ]
    wait = (case.next_step_at - now).total_seconds() if case.next_step_at else recheck
    advance_.wait_seconds = max(wait, 0.001)
    return advance_


def _charge_fee(
    session: Session,
    case: DunningCaseRow,
    bill: CustomerBillRow,
    fee: Decimal,
    currency: str,
    now: datetime,
) -> str:
    """The notice's fee as a rated charge for the next bill, once per case. A dunning fee
    is damages for late payment, not a service: no VAT on it (UStAE 1.3 (6))."""
    key = f"dunning-fee/{case.id}"
    existing = session.scalar(select(AppliedRateRow.id).where(AppliedRateRow.source_key == key))
    if existing is not None:
        return str(existing)
    rate = AppliedRateRow(
        id=str(uuid.uuid4()),
        source_key=key,
        billing_account_id=bill.billing_account_id,
        customer_id=case.owner_customer_id or "",
        bill_id=None,
        product_id=None,
        rate_type="fee",
        name="Mahngebühr / dunning fee",
        description=f"Dunning notice for bill {_bill_label(bill)}",
        quantity=Decimal(1),
        unit_price=fee,
        tax_excluded=fee,
        tax_rate=Decimal("0.00"),
        tax_amount=Decimal("0.00"),
        tax_included=fee,
        currency=currency,
        characteristic={
            "dunningCase": case.id,
            "customerBill": bill.id,
            "billNo": bill.bill_no,
            "taxNote": "damages for late payment, not subject to VAT",
        },
        rated_at=now,
    )
    session.add(rate)
    return rate.id


def _modify_order(
    session: Session,
    case: DunningCaseRow,
    bill: CustomerBillRow,
    product_ids: list[str],
    status: str,
    why: str,
) -> str:
    payload: JsonDict = {
        "description": why,
        "category": "dunning",
        "relatedParty": [
            {"id": case.owner_customer_id, "@referredType": "Customer", "role": "customer"}
        ],
        "billingAccount": {"id": bill.billing_account_id, "@referredType": "BillingAccount"},
        "productOrderItem": [
            {"id": str(n), "action": "modify", "product": {"id": pid, "status": status}}
            for n, pid in enumerate(product_ids, start=1)
        ],
    }
    body, _, _ = resources.create(
        session,
        orders.PRODUCT_ORDER_KIND,
        SYSTEM,
        payload,
        idempotency_key=f"dunning/{case.id}/{status}",
    )
    case.body = {
        **case.body,
        "productOrder": [
            *case.body.get("productOrder", []),
            {"id": body["id"], "@referredType": "ProductOrder", "role": status},
        ],
    }
    return str(body["id"])


def _products(session: Session, customer_id: str, status: str) -> list[str]:
    return list(
        session.scalars(
            select(ProductRow.id)
            .where(ProductRow.owner_customer_id == customer_id, ProductRow.status == status)
            .order_by(ProductRow.id)
        )
    )


def _suspend(
    session: Session, case: DunningCaseRow, bill: CustomerBillRow
) -> tuple[str | None, list[str]]:
    products = _products(session, case.owner_customer_id or "", "active")
    if not products:
        return None, []
    order_id = _modify_order(
        session,
        case,
        bill,
        products,
        orders.SUSPEND,
        f"Suspension for the unpaid bill {_bill_label(bill)} (dunning)",
    )
    case.body = {**case.body, "suspendedProducts": products}
    return order_id, products


def _suspensions_in_flight(session: Session, customer_id: str) -> list[str]:
    """The customer's dunning suspend orders the Fulfillment flow has not finished."""
    bodies = session.scalars(
        select(ProductOrderRow.body).where(
            ProductOrderRow.owner_customer_id == customer_id,
            ProductOrderRow.status.not_in(orders.FINAL_STATES),
        )
    )
    return [
        str(body["id"])
        for body in bodies
        if body.get("category") == "dunning" and orders.modify_status(body) == orders.SUSPEND
    ]


def _still_suspended_elsewhere(session: Session, case: DunningCaseRow) -> list[str]:
    """Other unpaid bills of the customer whose dunning suspended it."""
    rows = session.execute(
        select(CustomerBillRow.bill_no, CustomerBillRow.id)
        .join(DunningCaseRow, DunningCaseRow.bill_id == CustomerBillRow.id)
        .where(
            DunningCaseRow.owner_customer_id == case.owner_customer_id,
            DunningCaseRow.id != case.id,
            DunningCaseRow.status == "suspended",
            CustomerBillRow.remaining_amount > 0,
        )
    ).all()
    return [str(no or bill_id) for no, bill_id in rows]


def _paid(session: Session, case: DunningCaseRow, bill: CustomerBillRow, now: datetime) -> Advance:
    """The bill is settled: the case ends; a suspended customer is resumed unless
    another unpaid bill keeps it suspended."""
    label = _bill_label(bill)
    result = Advance(ended=True)
    if case.level >= SUSPENDED:
        in_flight = _suspensions_in_flight(session, case.owner_customer_id or "")
        if in_flight:
            # Resumed once the suspension is through: a resume order now would find the
            # products still active, and the suspension would then outlast the debt.
            waiting = Advance(wait_seconds=SUSPENSION_RECHECK_SECONDS)
            if not case.body.get("resumeAwaits"):
                case.body = {**case.body, "resumeAwaits": in_flight}
                _save(case, bill, now)
                waiting.steps.append(
                    (
                        SEED,
                        PROCESS,
                        f"bill {label} paid; resumption waits for suspend order(s) "
                        + ", ".join(in_flight)
                        + " to finish",
                    )
                )
            return waiting
        blocking = _still_suspended_elsewhere(session, case)
        # Every product dunning suspended, whichever of the customer's cases did it.
        suspended = _products(session, case.owner_customer_id or "", orders.SUSPEND)
        if blocking:
            result.outcome = "paid; services stay suspended for bill(s) " + ", ".join(blocking)
            content = (
                f"Thank you: bill {label} is paid. Your services stay suspended until bill(s) "
                + ", ".join(blocking)
                + " are paid as well."
            )
        else:
            order_id = (
                _modify_order(
                    session,
                    case,
                    bill,
                    suspended,
                    orders.RESUME,
                    f"Resumption: bill {label} paid (dunning ended)",
                )
                if suspended
                else None
            )
            result.start_order = order_id
            result.outcome = "paid; services resumed"
            content = f"Thank you: bill {label} is paid. Your services are being resumed."
            if order_id:
                result.steps.append(
                    (
                        "3.5.3",
                        "Accept and issue orders",
                        f"resume order {order_id} placed for {len(suspended)} product(s)",
                    )
                )
        message = _tell(session, case, bill, "paid", f"Bill {label} paid: thank you", content)
    elif case.level >= REMINDER:
        result.outcome = "paid"
        message = _tell(
            session,
            case,
            bill,
            "paid",
            f"Bill {label} paid: thank you",
            f"Thank you: bill {label} is paid; the dunning has ended.",
        )
    else:
        # Paid before the first reminder: nothing to tell the customer.
        result.outcome = "paid before the first reminder"
        message = None
    case.status = "closed"
    case.next_step_at = None
    case.body = {**case.body, "outcome": result.outcome, "closedAt": iso(now)}
    _history(
        case,
        {"event": "closed", "date": iso(now), "outcome": result.outcome}
        | ({"message": {"id": message}} if message else {}),
    )
    _save(case, bill, now)
    result.steps.insert(0, (SEED, PROCESS, f"dunning of bill {label} ended: {result.outcome}"))
    if message:
        result.steps.append(
            ("3.2.2", "Handle customer requests", "customer thanked for the payment")
        )
    return result


def dunning_of_bill(session: Session, principal: Principal, bill_id: str) -> JsonDict:
    """3.8.5: the bill's dunning as it stands (its latest case; level 0 and no case when
    never dunned). A customer sees only its own bills."""
    bill = session.get(CustomerBillRow, bill_id)
    if bill is None or (principal.is_customer and bill.owner_customer_id != principal.customer_id):
        raise NotFound(f"no customerBill with id {bill_id}")
    case = session.scalar(
        select(DunningCaseRow)
        .where(DunningCaseRow.bill_id == bill_id)
        .order_by(DunningCaseRow.created_at.desc(), DunningCaseRow.id)
        .limit(1)
    )
    if case is None:
        return {
            "@type": "DunningCase",
            "customerBill": {"id": bill.id, "billNo": bill.bill_no},
            "status": "none",
            "level": OPENED,
            "levelName": "none",
            "disputedAmount": {"unit": _currency(bill), "value": "0.00"},
        }
    document = case_document(case, bill)
    disputed = disputed_amount(session, bill.id)
    document["disputedAmount"] = {"unit": _currency(bill), "value": f"{disputed:.2f}"}
    return document


def dunning_cases(
    session: Session, *, status: str | None, offset: int, limit: int
) -> list[JsonDict]:
    """Billing's view of the dunning cases (two queries, whatever the page size)."""
    query = select(DunningCaseRow).order_by(DunningCaseRow.created_at, DunningCaseRow.id)
    if status:
        query = query.where(DunningCaseRow.status.in_(status.split(",")))
    cases = list(session.scalars(query.offset(offset).limit(limit)))
    bills = {
        b.id: b
        for b in session.scalars(
            select(CustomerBillRow).where(CustomerBillRow.id.in_({c.bill_id for c in cases}))
        )
    }
    return [case_document(c, bills[c.bill_id]) for c in cases if c.bill_id in bills]
