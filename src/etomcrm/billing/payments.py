"""3.8.5 Manage customer payments: TMF676 ``payment`` records and their allocation to bills.

A payment is money an account paid us. It is allocated to the account's open bills (issued:
``validated``, ``sent`` or ``partiallyPaid``, with an amount open): first to the bill whose
number the remittance reference names, then the oldest open bill first (by payment due
date). A bill paid in part is ``partiallyPaid``, paid in full ``settled``. What no bill
takes stays on the payment as ``unallocated``: the account's credit, which the next bill
takes (:func:`apply_account_credit`). A payment never allocates more than is open.

A returned direct debit (:func:`reverse_payment`) is a second payment record of the negative
amount: the bills the first paid are open again, the credit it left is taken back, the
bank's return fee becomes a charge (``AppliedRateRow`` of ``rate_type`` ``fee``) for the next
bill, and ``PaymentReturned`` is recorded. Payments are records: never changed through the
API, never deleted (405).

Body: ``account`` (the billing account), ``paymentMethod`` (``@type`` ``BankAccountTransfer``
or ``DirectDebit``), ``totalAmount`` and ``amount``, ``paymentDate``, ``status``
(``succeeded``, ``returned``, or ``reversal`` for the record of a return),
``paymentItem`` (one per bill, ``item`` the CustomerBill, ``amount`` taken), and the
extensions ``reference`` (the remittance text), ``unallocatedAmount``, ``bankEntryId`` (the
statement entry booked), ``reverses`` / ``returnReason`` on a reversal.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.billing.events import BillIssued, BillSent, PaymentReceived, PaymentReturned
from etomcrm.billing.models import AppliedRateRow, CustomerBillRow, PaymentAllocationRow, PaymentRow
from etomcrm.core import resources
from etomcrm.core.bus import record
from etomcrm.core.clock import iso
from etomcrm.core.errors import Conflict, InvalidRequest, NotFound
from etomcrm.core.resources import READ, ResourceKind
from etomcrm.core.tmf_schemas import PAYMENT, JsonDict
from etomcrm.db import among, new_id, session_scope, utcnow
from etomcrm.security.service import STAFF_ROLES, SYSTEM, Principal, Role
from etomcrm.selling.accounts import record_account_balance, record_account_balances
from etomcrm.selling.credit import PaymentRecord
from etomcrm.selling.models import BillingAccountRow

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# The states of an issued bill that can still take money.
OPEN_STATES = ("validated", "sent", "partiallyPaid")
PARTLY_PAID, SETTLED = "partiallyPaid", "settled"
# A bill whose payment came back entirely is open as it was when sent.
REOPENED = "sent"
SUCCEEDED, RETURNED, REVERSAL = "succeeded", "returned", "reversal"
Means = Literal["sepaDirectDebit", "bankTransfer"]
MEANS_TYPE = {"sepaDirectDebit": "DirectDebit", "bankTransfer": "BankAccountTransfer"}
PAYERS = frozenset({Role.ADMIN, Role.BILLING})
MAX_REFERENCE = 200
FEE = "fee"
# A bill counts as paid late when it is settled after its due date, or open past it.
HISTORY_WINDOW = timedelta(days=365)


def money(amount: Decimal, currency: str) -> JsonDict:
    """TMF Money: the value a JSON number (the official schema's type), in cents."""
    return {"unit": currency, "value": float(amount)}


def day_time(day: date) -> str:
    """A booking day as the date-time TMF676 ``paymentDate`` is (midnight UTC)."""
    return f"{day.isoformat()}T00:00:00Z"


def _cents(value: Any, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InvalidRequest(f"{what} must be an amount, not {value!r}") from None
    if not number.is_finite():
        raise InvalidRequest(f"{what} must be a finite amount, not {value!r}")
    if number != number.quantize(CENT, rounding=ROUND_HALF_UP):
        raise InvalidRequest(f"{what} must be whole cents, not {value!r}")
    return number.quantize(CENT)


def names_bill(reference: str | None, bill_no: str | None) -> bool:
    """Does the remittance ``reference`` name the bill number (as a word of its own)?"""
    if not reference or not bill_no:
        return False
    pattern = rf"(?<![A-Z0-9]){re.escape(bill_no.upper())}(?![A-Z0-9])"
    return re.search(pattern, reference.upper()) is not None


def _bill_currency(bill: CustomerBillRow, default: str) -> str:
    due = bill.body.get("amountDue") if isinstance(bill.body, dict) else None
    return str(due.get("unit", default)) if isinstance(due, dict) else default


def _set_bill_open(bill: CustomerBillRow, remaining: Decimal, currency: str) -> None:
    """The bill's open amount and the state that follows from it (column and body)."""
    bill.remaining_amount = remaining
    if remaining <= 0:
        state = SETTLED
    elif remaining >= bill.amount_due:
        state = REOPENED
    else:
        state = PARTLY_PAID
    bill.status = state
    body = dict(bill.body)
    body["remainingAmount"] = money(remaining, _bill_currency(bill, currency))
    body["state"] = state
    bill.body = body
    bill.version = (bill.version or 1) + 1
    bill.updated_at = utcnow()


def _open_bills(session: Session, account_id: str) -> list[CustomerBillRow]:
    """The account's open bills, locked, oldest due first (one query)."""
    rows = session.scalars(
        select(CustomerBillRow)
        .where(
            CustomerBillRow.billing_account_id == account_id,
            CustomerBillRow.status.in_(OPEN_STATES),
            CustomerBillRow.remaining_amount > 0,
            CustomerBillRow.category != "creditNote",
        )
        .with_for_update()
    ).all()
    return sorted(
        rows,
        key=lambda b: (b.payment_due_date or date.max, b.bill_date or date.max, b.bill_no or ""),
    )


def allocate(
    session: Session,
    payment_id: str,
    account_id: str,
    amount: Decimal,
    currency: str,
    reference: str | None,
) -> tuple[list[JsonDict], Decimal]:
    """Allocate ``amount`` to the account's open bills: the bill the reference names
    first, then the oldest. Returns the payment items and what no bill took."""
    bills = _open_bills(session, account_id)
    named = [b for b in bills if names_bill(reference, b.bill_no)]
    ordered = named + [b for b in bills if b not in named]
    left = amount
    items: list[JsonDict] = []
    for bill in ordered:
        if left <= 0:
            break
        take = min(left, bill.remaining_amount)
        if take <= 0:
            continue
        session.add(PaymentAllocationRow(payment_id=payment_id, bill_id=bill.id, amount=take))
        _set_bill_open(bill, bill.remaining_amount - take, currency)
        left -= take
        items.append(
            {
                "@type": "PaymentItem",
                "item": {"id": bill.id, "@referredType": "CustomerBill", "name": bill.bill_no},
                "amount": money(take, currency),
                "totalAmount": money(take, currency),
            }
        )
    return items, left


def _account(session: Session, account_id: str) -> BillingAccountRow:
    account = session.get(BillingAccountRow, account_id)
    if account is None:
        raise NotFound(f"no billing account with id {account_id}")
    return account


def _check_payment(body: JsonDict) -> tuple[str, Decimal, str, date, str | None]:
    account = body.get("account")
    if not isinstance(account, dict) or not isinstance(account.get("id"), str):
        raise InvalidRequest("account must name the billing account that paid (account.id)")
    total = body.get("totalAmount")
    if not isinstance(total, dict) or "value" not in total:
        raise InvalidRequest("totalAmount must give the amount received (value and unit)")
    amount = _cents(total["value"], "totalAmount.value")
    if amount <= 0:
        raise InvalidRequest(f"a payment is money received: totalAmount must be > 0, not {amount}")
    currency = total.get("unit")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise InvalidRequest(f"totalAmount.unit must be an ISO 4217 currency, not {currency!r}")
    raw_date = body.get("paymentDate")
    if raw_date is None:
        paid_on = utcnow().date()
    else:
        try:
            paid_on = date.fromisoformat(str(raw_date)[:10])
        except ValueError:
            raise InvalidRequest(
                f"paymentDate must be an ISO 8601 date, not {raw_date!r}"
            ) from None
    reference = body.get("reference")
    if reference is not None and (
        not isinstance(reference, str) or not 0 < len(reference) <= MAX_REFERENCE
    ):
        raise InvalidRequest(f"reference must be a text of 1 to {MAX_REFERENCE} characters")
    return str(account["id"]), amount, currency, paid_on, reference


def refresh_account_balances(session: Session, currencies: Mapping[str, str]) -> None:
    """:func:`refresh_account_balance` for many accounts (id → currency): two queries
    and one write whatever their number."""
    if not currencies:
        return
    session.flush()
    owed = dict(
        session.execute(
            select(CustomerBillRow.billing_account_id, func.sum(CustomerBillRow.remaining_amount))
            .where(
                among(session, CustomerBillRow.billing_account_id, currencies),
                CustomerBillRow.status.in_(OPEN_STATES),
                CustomerBillRow.category != "creditNote",
            )
            .group_by(CustomerBillRow.billing_account_id)
        ).all()
    )
    credit = dict(
        session.execute(
            select(PaymentRow.billing_account_id, func.sum(PaymentRow.unallocated))
            .where(
                among(session, PaymentRow.billing_account_id, currencies),
                PaymentRow.unallocated > 0,
            )
            .group_by(PaymentRow.billing_account_id)
        ).all()
    )
    record_account_balances(
        session,
        {
            account_id: (
                (
                    Decimal(owed.get(account_id) or 0)
                    - Decimal(credit.get(account_id) or 0).quantize(CENT)
                ).quantize(CENT),
                currency,
            )
            for account_id, currency in currencies.items()
        },
    )


def refresh_account_balance(session: Session, account_id: str, currency: str) -> Decimal:
    """What the account owes now (its open bills less its credit), recorded as its
    TMF666 ``accountBalance`` (two queries)."""
    session.flush()
    owed = session.scalar(
        select(func.coalesce(func.sum(CustomerBillRow.remaining_amount), 0)).where(
            CustomerBillRow.billing_account_id == account_id,
            CustomerBillRow.status.in_(OPEN_STATES),
            CustomerBillRow.category != "creditNote",
        )
    )
    balance = (Decimal(owed or 0) - account_credit(session, account_id)).quantize(CENT)
    record_account_balance(session, account_id, balance, currency)
    return balance


@dataclass
class PaymentKind(ResourceKind):
    """TMF676 payment, posted by billing staff (a customer reads its own); creating one
    allocates it to the account's bills; a record: never changed or deleted."""

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        return _account(session, str(body["account"]["id"])).owner_customer_id

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        account_id, amount, currency, paid_on, reference = _check_payment(body)
        entry = body.get("bankEntryId")
        if entry is not None:
            if not isinstance(entry, str) or not 0 < len(entry) <= MAX_REFERENCE:
                raise InvalidRequest(
                    f"bankEntryId must be a text of 1 to {MAX_REFERENCE} characters"
                )
            if session.scalar(select(PaymentRow.id).where(PaymentRow.bank_entry_id == entry)):
                raise Conflict(f"the bank entry {entry} is already booked")
        account = _account(session, account_id)
        if account.currency != currency:
            raise InvalidRequest(
                f"the account {account_id} is billed in {account.currency}, not {currency}"
            )
        items, left = allocate(session, body["id"], account_id, amount, currency, reference)
        body["account"] = {
            "id": account_id,
            "@referredType": "BillingAccount",
            **({"name": account.name} if account.name else {}),
        }
        body["amount"] = money(amount, currency)
        body["totalAmount"] = money(amount, currency)
        body["paymentDate"] = day_time(paid_on)
        body["status"] = SUCCEEDED
        body["statusDate"] = iso(utcnow())
        body["paymentItem"] = items
        body["unallocatedAmount"] = money(left, currency)

    def row_columns(self, session: Session, body: JsonDict) -> dict[str, Any]:
        return {
            "billing_account_id": body["account"]["id"],
            "amount": Decimal(str(body["totalAmount"]["value"])).quantize(CENT),
            "unallocated": Decimal(str(body["unallocatedAmount"]["value"])).quantize(CENT),
            "payment_date": date.fromisoformat(body["paymentDate"][:10]),
            "reference": body.get("reference"),
            "bank_entry_id": body.get("bankEntryId"),
        }

    def after_save(
        self, session: Session, principal: Principal, body: JsonDict, owner: str | None
    ) -> None:
        refresh_account_balance(session, str(body["account"]["id"]), body["totalAmount"]["unit"])
        record(
            session,
            PaymentReceived(
                payment_id=str(body["id"]),
                billing_account_id=str(body["account"]["id"]),
                customer_id=owner or "",
                bill_ids=tuple(str(i["item"]["id"]) for i in body["paymentItem"]),
            ),
        )


PAYMENT_KIND = PaymentKind(
    name="payment",
    type_name="Payment",
    doc=PAYMENT,
    row=PaymentRow,
    read_roles=STAFF_ROLES,
    write_roles=PAYERS,
    customer_operations=frozenset({READ}),
    changeable=False,
    name_attribute="name",
    extensions={
        "reference": resources.TEXT,
        "bankEntryId": resources.TEXT,
        "unallocatedAmount": {"type": "object"},
        "reverses": {"type": "object"},
        "returnReason": resources.TEXT,
    },
    server_set={
        "paymentItem": "the allocation to bills is billing's",
        "unallocatedAmount": "what no bill took is billing's",
        "status": "a payment's state is billing's",
    },
)


def record_payment(
    session: Session,
    *,
    account_id: str,
    amount: Decimal,
    currency: str,
    payment_date: date,
    reference: str | None,
    bank_entry_id: str | None = None,
    means: Means,
    principal: Principal = SYSTEM,
) -> str:
    """3.8.5 Manage Customer Billing / Collections (eTOM 1.1.1.8.5): book money ``account_id``
    paid as a TMF676 payment allocated to its bills; returns the payment id.

    A statement entry (``bank_entry_id``) is booked once: booking it again is a Conflict
    (the API's ``bankEntryId`` likewise).
    """
    payload: JsonDict = {
        "account": {"id": account_id, "@referredType": "BillingAccount"},
        "paymentMethod": {"@type": MEANS_TYPE[means], "name": means},
        "totalAmount": money(_cents(amount, "amount"), currency),
        "paymentDate": payment_date.isoformat(),
    }
    if reference:
        payload["reference"] = reference[:MAX_REFERENCE]
    if bank_entry_id is not None:
        payload["bankEntryId"] = bank_entry_id
    body, _, _ = resources.create(session, PAYMENT_KIND, principal, payload)
    return str(body["id"])


def account_credit(session: Session, account_id: str) -> Decimal:
    """What the account paid that no bill has taken yet (its credit)."""
    total = session.scalar(
        select(func.coalesce(func.sum(PaymentRow.unallocated), 0)).where(
            PaymentRow.billing_account_id == account_id, PaymentRow.unallocated > 0
        )
    )
    return Decimal(total or 0).quantize(CENT)


def apply_account_credit(session: Session, account_id: str) -> Decimal:
    """3.8.5: the account's credit (overpayments) taken by its open bills, oldest payment
    first; returns the amount applied. For the bill run, after a bill is issued."""
    payments = session.scalars(
        select(PaymentRow)
        .where(PaymentRow.billing_account_id == account_id, PaymentRow.unallocated > 0)
        .order_by(PaymentRow.payment_date, PaymentRow.created_at, PaymentRow.id)
        .with_for_update()
    ).all()
    applied = ZERO
    for payment in payments:
        currency = str(payment.body.get("totalAmount", {}).get("unit", "EUR"))
        items, left = allocate(session, payment.id, account_id, payment.unallocated, currency, None)
        if not items:
            break
        applied += payment.unallocated - left
        body = dict(payment.body)
        body["paymentItem"] = [*(body.get("paymentItem") or []), *items]
        body["unallocatedAmount"] = money(left, currency)
        payment.body = body
        payment.unallocated = left
        payment.version += 1
        payment.updated_at = utcnow()
        refresh_account_balance(session, account_id, currency)
        record(
            session,
            PaymentReceived(
                payment_id=payment.id,
                billing_account_id=account_id,
                customer_id=payment.owner_customer_id or "",
                bill_ids=tuple(str(i["item"]["id"]) for i in items),
            ),
        )
    return applied


def reverse_payment(
    session: Session,
    payment_id: str,
    *,
    reason: str,
    fee: Decimal,
    bank_entry_id: str | None = None,
    return_date: date | None = None,
) -> str:
    """3.8.5 Manage Customer Billing / Collections (eTOM 1.1.1.8.5): a direct debit came
    back. Its bills are open again, the credit it left is taken back, the bank's ``fee``
    is charged on the next bill, ``PaymentReturned`` is recorded; returns the id of the
    reversal record."""
    payment = session.scalar(
        select(PaymentRow).where(PaymentRow.id == payment_id).with_for_update()
    )
    if payment is None:
        raise NotFound(f"no payment with id {payment_id}")
    if payment.status != SUCCEEDED:
        raise Conflict(f"the payment {payment_id} is {payment.status}: it cannot come back")
    fee = _cents(fee, "fee")
    if fee < 0:
        raise InvalidRequest(f"the bank's fee must be 0 or more, not {fee}")
    if not reason or len(reason) > MAX_REFERENCE:
        raise InvalidRequest(f"the reason must be a text of 1 to {MAX_REFERENCE} characters")
    if bank_entry_id is not None and session.scalar(
        select(PaymentRow.id).where(PaymentRow.bank_entry_id == bank_entry_id)
    ):
        raise Conflict(f"the bank entry {bank_entry_id} is already booked")
    account_id = payment.billing_account_id or ""
    currency = str(payment.body.get("totalAmount", {}).get("unit", "EUR"))
    when = return_date or utcnow().date()
    taken: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for bill_id, amount in session.execute(
        select(PaymentAllocationRow.bill_id, PaymentAllocationRow.amount).where(
            PaymentAllocationRow.payment_id == payment_id
        )
    ):
        taken[bill_id] += amount
    bills = {
        b.id: b
        for b in session.scalars(
            select(CustomerBillRow).where(CustomerBillRow.id.in_(list(taken))).with_for_update()
        )
    }
    reversal_id = new_id()
    items: list[JsonDict] = []
    for bill_id, amount in taken.items():
        if amount <= 0 or bill_id not in bills:
            continue
        bill = bills[bill_id]
        session.add(PaymentAllocationRow(payment_id=reversal_id, bill_id=bill_id, amount=-amount))
        _set_bill_open(bill, min(bill.amount_due, bill.remaining_amount + amount), currency)
        items.append(
            {
                "@type": "PaymentItem",
                "item": {"id": bill_id, "@referredType": "CustomerBill", "name": bill.bill_no},
                "amount": money(-amount, currency),
                "totalAmount": money(-amount, currency),
            }
        )
    original = dict(payment.body)
    original["status"] = RETURNED
    original["returnReason"] = reason
    original["unallocatedAmount"] = money(ZERO, currency)
    payment.body = original
    payment.status = RETURNED
    payment.unallocated = ZERO
    payment.version += 1
    payment.updated_at = utcnow()
    body: JsonDict = {
        "id": reversal_id,
        "@type": "Payment",
        "account": original.get("account"),
        "paymentMethod": original.get("paymentMethod"),
        "amount": money(-payment.amount, currency),
        "totalAmount": money(-payment.amount, currency),
        "paymentDate": day_time(when),
        "status": REVERSAL,
        "description": f"returned: {reason}",
        "paymentItem": items,
        "unallocatedAmount": money(ZERO, currency),
        "reverses": {"id": payment_id, "@referredType": "Payment"},
        "returnReason": reason,
        "reference": payment.reference,
    }
    if bank_entry_id is not None:
        body["bankEntryId"] = bank_entry_id
    session.add(
        PaymentRow(
            id=reversal_id,
            at_type="Payment",
            status=REVERSAL,
            owner_customer_id=payment.owner_customer_id,
            body=body,
            billing_account_id=account_id,
            amount=-payment.amount,
            unallocated=ZERO,
            payment_date=when,
            reference=payment.reference,
            bank_entry_id=bank_entry_id,
        )
    )
    resources.record_audit(session, SYSTEM, "create", PAYMENT_KIND, reversal_id, {"created": body})
    if fee > 0:
        session.add(
            AppliedRateRow(
                id=new_id(),
                source_key=f"return-fee/{payment_id}",
                billing_account_id=account_id,
                customer_id=payment.owner_customer_id or "",
                rate_type=FEE,
                name="Bank fee for a returned direct debit",
                description=f"Direct debit of {payment.amount} {currency} returned ({reason})",
                period_start=when,
                period_end=when,
                quantity=Decimal(1),
                unit_price=fee,
                # damages passed on, not a supply: no VAT (UStAE 1.3 (1))
                tax_excluded=fee,
                tax_rate=ZERO,
                tax_amount=ZERO,
                tax_included=fee,
                currency=currency,
                characteristic={"paymentId": payment_id, "returnReason": reason},
            )
        )
    refresh_account_balance(session, account_id, currency)
    record(
        session,
        PaymentReturned(
            payment_id=payment_id,
            billing_account_id=account_id,
            customer_id=payment.owner_customer_id or "",
            bill_ids=tuple(i["item"]["id"] for i in items),
            reason=reason,
        ),
    )
    return reversal_id


def open_balance(session: Session, customer_ids: Collection[str]) -> dict[str, Decimal]:
    """What each customer owes now: its issued bills' open amounts less its credit (two
    queries, whatever the number of customers)."""
    ids = list(customer_ids)
    balance = {c: ZERO for c in ids}
    if not ids:
        return balance
    for owner, total in session.execute(
        select(CustomerBillRow.owner_customer_id, func.sum(CustomerBillRow.remaining_amount))
        .where(
            CustomerBillRow.owner_customer_id.in_(ids),
            CustomerBillRow.status.in_(OPEN_STATES),
            CustomerBillRow.category != "creditNote",
        )
        .group_by(CustomerBillRow.owner_customer_id)
    ):
        balance[str(owner)] += Decimal(total or 0)
    for owner, credit in session.execute(
        select(PaymentRow.owner_customer_id, func.sum(PaymentRow.unallocated))
        .where(PaymentRow.owner_customer_id.in_(ids), PaymentRow.unallocated > 0)
        .group_by(PaymentRow.owner_customer_id)
    ):
        balance[str(owner)] -= Decimal(credit or 0)
    return {c: v.quantize(CENT) for c, v in balance.items()}


@dataclass(frozen=True)
class PaymentHistory:
    """How a customer paid its bills due in the window before ``today``."""

    customer_id: str
    bills_issued: int
    paid_on_time: int
    paid_late: int
    overdue_open: int
    returns: int
    open_balance: Decimal

    @property
    def late(self) -> int:
        """Bills paid late or still open past their due date."""
        return self.paid_late + self.overdue_open


def payment_history(
    session: Session, customer_id: str, *, today: date | None = None
) -> PaymentHistory:
    """3.8.5: the customer's bills due in the last 12 months, paid on time, late or still
    open past due, and its returned direct debits (four queries)."""
    today = today or utcnow().date()
    since = today - HISTORY_WINDOW
    bills = session.execute(
        select(
            CustomerBillRow.id,
            CustomerBillRow.status,
            CustomerBillRow.payment_due_date,
            CustomerBillRow.remaining_amount,
        ).where(
            CustomerBillRow.owner_customer_id == customer_id,
            CustomerBillRow.bill_no.is_not(None),
            CustomerBillRow.category != "creditNote",
            CustomerBillRow.payment_due_date >= since,
            CustomerBillRow.payment_due_date <= today,
        )
    ).all()
    # the day each bill got its last money that stayed (returned payments do not count)
    paid_on: dict[str, date] = {}
    if bills:
        for bill_id, day in session.execute(
            select(PaymentAllocationRow.bill_id, func.max(PaymentRow.payment_date))
            .join(PaymentRow, PaymentRow.id == PaymentAllocationRow.payment_id)
            .where(
                PaymentAllocationRow.bill_id.in_([b.id for b in bills]),
                PaymentAllocationRow.amount > 0,
                PaymentRow.status == SUCCEEDED,
            )
            .group_by(PaymentAllocationRow.bill_id)
        ):
            paid_on[bill_id] = day
    on_time = late = overdue = 0
    for bill in bills:
        due = bill.payment_due_date
        if bill.status == SETTLED:
            if bill.id in paid_on and paid_on[bill.id] > due:
                late += 1
            else:
                on_time += 1
        elif bill.status in OPEN_STATES and bill.remaining_amount > 0 and due < today:
            overdue += 1
    returns = session.scalar(
        select(func.count(PaymentRow.id)).where(
            PaymentRow.owner_customer_id == customer_id,
            PaymentRow.status == REVERSAL,
            PaymentRow.payment_date >= since,
        )
    )
    return PaymentHistory(
        customer_id=customer_id,
        bills_issued=len(bills),
        paid_on_time=on_time,
        paid_late=late,
        overdue_open=overdue,
        returns=int(returns or 0),
        open_balance=open_balance(session, [customer_id])[customer_id],
    )


def payment_record(session: Session, customer_id: str) -> PaymentRecord | None:
    """3.8.5 for 3.5.2: the customer's open balance and late or returned payments of the
    last 12 months; None when billing has never issued it a bill nor booked a payment."""
    history = payment_history(session, customer_id)
    if (history.bills_issued, history.returns, history.open_balance) == (0, 0, ZERO):
        known = session.scalar(
            select(CustomerBillRow.id)
            .where(
                CustomerBillRow.owner_customer_id == customer_id,
                CustomerBillRow.bill_no.is_not(None),
            )
            .limit(1)
        ) or session.scalar(
            select(PaymentRow.id).where(PaymentRow.owner_customer_id == customer_id).limit(1)
        )
        if known is None:
            return None
    return PaymentRecord(
        open_balance=history.open_balance,
        late_payments=history.late,
        returned_debits=history.returns,
    )


def balances_on_issue(session: Session, events: list[BillIssued]) -> None:
    """3.8.5: issued bills raise what their accounts owe (TMF666 accountBalance), in the
    transaction that issues them: a bill run's chunk refreshes its thousand accounts
    with a few statements, where a transaction a bill after the commit took longer than
    billing them."""
    refresh_account_balances(session, {e.billing_account_id: e.currency for e in events})


def settle_from_credit(event: BillSent) -> None:
    """3.8.5: a bill delivered is settled first from the account's credit (an earlier
    overpayment), so the customer is never asked for money it already paid."""
    with session_scope() as session:
        account_id = session.scalar(
            select(CustomerBillRow.billing_account_id).where(CustomerBillRow.id == event.bill_id)
        )
        if account_id is not None:
            apply_account_credit(session, account_id)
