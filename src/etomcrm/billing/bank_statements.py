"""3.8.5 Book the bank's statements: camt.053 (and camt.052/camt.054) entries as payments.

Each entry is booked once (its bank reference is the payment's ``bank_entry_id``), so a
statement imported again changes nothing. A credit is matched, in this order:

1. a direct-debit collection we sent (its end-to-end id): books that collection;
2. a bill number in the remittance information (issued bills, any account);
3. the amount: exactly one open bill of that amount whose payer's IBAN is the sender's.

A matched credit becomes a payment of the bill's account, allocated by
:func:`etomcrm.billing.payments.record_payment` (the bill it names first, the rest to the
oldest open bills, an overpayment kept as credit). A returned direct debit (a reversal with
its reason code) reverses the payment that collection booked, charging the bank's fee on
the next bill. What cannot be matched goes to billing's work list, once per entry. Debits
that are not returns (the bank's own fees) are not the customers' business and are left
alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.billing.direct_debit import BOOKED, PENDING, RETURNED
from etomcrm.billing.models import (
    CustomerBillRow,
    DirectDebitItemRow,
    PaymentAllocationRow,
    PaymentRow,
)
from etomcrm.billing.payments import OPEN_STATES, SUCCEEDED, record_payment, reverse_payment
from etomcrm.billing.sepa import BankEntry, read_statement
from etomcrm.billing.work_list import hand_over
from etomcrm.core.errors import Conflict, InvalidRequest
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.selling.models import PaymentMethodRow

# Words of a remittance text that could be a bill number.
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/_.]*[A-Za-z0-9]|[A-Za-z0-9]")


@dataclass(frozen=True)
class Booked:
    """One entry and what became of it."""

    entry_id: str
    amount: Decimal
    outcome: str  # paid, returned, unmatched, alreadyBooked, ignored
    payment_id: str | None = None
    bills: tuple[str, ...] = ()
    note: str = ""


@dataclass
class ImportResult:
    """What an import did, entry by entry."""

    entries: list[Booked] = field(default_factory=list)

    def of(self, outcome: str) -> list[Booked]:
        return [e for e in self.entries if e.outcome == outcome]


def _bills_named(session: Session, texts: list[str | None]) -> dict[str, CustomerBillRow]:
    """The issued bills whose numbers appear as words in the texts (one query)."""
    tokens = sorted({t.upper() for text in texts if text for t in _TOKEN.findall(text)})
    if not tokens:
        return {}
    rows = session.scalars(
        select(CustomerBillRow).where(
            CustomerBillRow.bill_no.in_(tokens), CustomerBillRow.category != "creditNote"
        )
    ).all()
    return {str(r.bill_no).upper(): r for r in rows}


def _named_in(text: str | None, bills: dict[str, CustomerBillRow]) -> list[CustomerBillRow]:
    if not text:
        return []
    seen: list[CustomerBillRow] = []
    for token in _TOKEN.findall(text):
        bill = bills.get(token.upper())
        if bill is not None and bill not in seen:
            seen.append(bill)
    return seen


def _by_amount(session: Session, entry: BankEntry) -> CustomerBillRow | None:
    """The one open bill of exactly this amount whose payer pays from the sender's IBAN."""
    if not entry.counterparty_iban:
        return None
    bills = session.scalars(
        select(CustomerBillRow).where(
            CustomerBillRow.status.in_(OPEN_STATES),
            CustomerBillRow.remaining_amount == entry.amount,
            CustomerBillRow.category != "creditNote",
        )
    ).all()
    if not bills:
        return None
    iban = entry.counterparty_iban.replace(" ", "").upper()
    payers = {
        str(account_id)
        for account_id, body in session.execute(
            select(PaymentMethodRow.billing_account_id, PaymentMethodRow.body).where(
                PaymentMethodRow.billing_account_id.in_({b.billing_account_id for b in bills})
            )
        )
        if str(body.get("accountNumber", "")).replace(" ", "").upper() == iban
    }
    matching = [b for b in bills if b.billing_account_id in payers]
    return matching[0] if len(matching) == 1 else None


def _to_work_list(session: Session, entry: BankEntry, why: str) -> Booked:
    items: list[JsonDict] = [{"id": entry.entry_id, "@referredType": "BankEntry", "role": why}]
    hand_over(
        session,
        key=f"bank-entry/{entry.entry_id}",
        reason=f"Bank entry {entry.entry_id} of {entry.amount} {entry.currency}: {why}",
        description=(
            f"Booked {entry.booking_date.isoformat()}, from {entry.counterparty_name or '?'} "
            f"({entry.counterparty_iban or 'no IBAN'}), remittance "
            f"{entry.remittance or 'none'!r}: {why}. Book it by hand or return it."
        ),
        items=items,
    )
    return Booked(entry.entry_id, entry.amount, "unmatched", note=why)


def _book_credit(
    session: Session,
    entry: BankEntry,
    items: list[DirectDebitItemRow],
    named: list[CustomerBillRow],
) -> Booked:
    pending = [i for i in items if i.status == PENDING]
    if pending:
        account_id = pending[0].billing_account_id
        bill_nos = " ".join(
            str(b.bill_no) for b in named if b.billing_account_id == account_id
        ) or str(pending[0].end_to_end_id)
        payment_id = record_payment(
            session,
            account_id=account_id,
            amount=entry.amount,
            currency=entry.currency,
            payment_date=entry.booking_date,
            reference=bill_nos,
            bank_entry_id=entry.entry_id,
            means="sepaDirectDebit",
        )
        for item in pending:
            item.status = BOOKED
            item.payment_id = payment_id
        return Booked(
            entry.entry_id, entry.amount, "paid", payment_id, tuple(i.bill_id for i in pending)
        )
    if named:
        accounts = {b.billing_account_id for b in named}
        if len(accounts) > 1:
            return _to_work_list(session, entry, "the remittance names bills of several accounts")
        bill = named[0]
        reference = entry.remittance
    else:
        found = _by_amount(session, entry)
        if found is None:
            return _to_work_list(session, entry, "no bill number or matching amount")
        bill = found
        reference = str(found.bill_no)
    payment_id = record_payment(
        session,
        account_id=bill.billing_account_id,
        amount=entry.amount,
        currency=entry.currency,
        payment_date=entry.booking_date,
        reference=reference,
        bank_entry_id=entry.entry_id,
        means="bankTransfer",
    )
    return Booked(entry.entry_id, entry.amount, "paid", payment_id, tuple(b.id for b in named))


def _returned_payment(
    session: Session,
    entry: BankEntry,
    items: list[DirectDebitItemRow],
    named: list[CustomerBillRow],
) -> str | None:
    """The payment a returned debit took back: the booked collection of its end-to-end
    id, or else the latest payment of that amount to the bill the remittance names."""
    for item in items:
        if item.status == BOOKED and item.payment_id:
            return item.payment_id
    if not named:
        return None
    return session.scalar(
        select(PaymentRow.id)
        .join(PaymentAllocationRow, PaymentAllocationRow.payment_id == PaymentRow.id)
        .where(
            PaymentAllocationRow.bill_id.in_([b.id for b in named]),
            PaymentRow.status == SUCCEEDED,
            PaymentRow.amount == -entry.amount,
        )
        .order_by(PaymentRow.payment_date.desc(), PaymentRow.created_at.desc())
        .limit(1)
    )


def _book_return(
    session: Session,
    entry: BankEntry,
    items: list[DirectDebitItemRow],
    named: list[CustomerBillRow],
) -> Booked:
    payment_id = _returned_payment(session, entry, items, named)
    if payment_id is None:
        for item in items:
            item.status = RETURNED
        return _to_work_list(
            session, entry, f"a returned debit ({entry.return_reason}) of no booked payment"
        )
    reversal = reverse_payment(
        session,
        payment_id,
        reason=str(entry.return_reason),
        fee=entry.fee or Decimal(0),
        bank_entry_id=entry.entry_id,
        return_date=entry.booking_date,
    )
    for item in items:
        if item.payment_id == payment_id:
            item.status = RETURNED
    return Booked(entry.entry_id, entry.amount, "returned", reversal, note=str(entry.return_reason))


def _book(
    session: Session,
    entry: BankEntry,
    items: list[DirectDebitItemRow],
    named: list[CustomerBillRow],
) -> Booked:
    if entry.amount > 0:
        booked = _book_credit(session, entry, items, named)
    elif entry.return_reason is not None:
        booked = _book_return(session, entry, items, named)
    else:
        booked = Booked(entry.entry_id, entry.amount, "ignored", note="a debit, not a return")
    session.flush()
    return booked


def import_statement(session: Session, xml: bytes) -> ImportResult:
    """3.8.5 Manage Customer Billing / Collections (eTOM 1.1.1.8.5): book a camt.053
    statement (or camt.052/054): credits as payments matched to bills, returned debits as
    reversals with the bank's fee, the rest to billing's work list; entries already
    booked are left as they are."""
    entries = read_statement(xml)
    result = ImportResult()
    ids = [e.entry_id for e in entries]
    done = set(
        session.scalars(select(PaymentRow.bank_entry_id).where(PaymentRow.bank_entry_id.in_(ids)))
    )
    e2e = sorted({e.end_to_end_id for e in entries if e.end_to_end_id})
    items_of: dict[str, list[DirectDebitItemRow]] = {}
    if e2e:
        for item in session.scalars(
            select(DirectDebitItemRow)
            .where(DirectDebitItemRow.end_to_end_id.in_(e2e))
            .order_by(DirectDebitItemRow.id)
        ):
            items_of.setdefault(item.end_to_end_id, []).append(item)
    bills = _bills_named(session, [e.remittance for e in entries])
    for entry in entries:
        if entry.entry_id in done:
            result.entries.append(Booked(entry.entry_id, entry.amount, "alreadyBooked"))
            continue
        items = items_of.get(entry.end_to_end_id or "", [])
        named = _named_in(entry.remittance, bills)
        try:
            # an entry billing cannot book (another currency, a payment already returned)
            # is a person's work, not a reason to leave the rest of the statement unbooked
            with session.begin_nested():
                result.entries.append(_book(session, entry, items, named))
        except (InvalidRequest, Conflict) as refused:
            result.entries.append(_to_work_list(session, entry, refused.message))
    return result
