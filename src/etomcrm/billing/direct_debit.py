"""3.8.5 Collect bills by SEPA direct debit: one pain.008 file per collection date.

The collection date is the bill's payment due date (the bill pre-notifies the debit for that
day). :func:`collect` gathers every issued bill of a direct-debit account due that day and
not collected yet, one debit per account (its bills' numbers as remittance, the oldest
bill's number as end-to-end id), FRST for a mandate's first collection and RCUR after,
CORE or B2B per mandate, and stores the schema-valid file (``direct_debit_batch``) with its
bills (``direct_debit_item``). Collecting the same date again gives the same file back.

A collection is a *pending* payment, not a booked one: the bill stays open until the bank
credits the collection on its statement (camt.053, matched by end-to-end id in
:mod:`etomcrm.billing.bank_statements`), which books the payment; a return (camt.054 or a
reversal on the statement) then reverses that payment. Booking only what the bank
confirms keeps the bill's open amount what the customer really owes: a debit refused
before settlement never showed as paid.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from etomcrm.billing.models import CustomerBillRow, DirectDebitBatchRow, DirectDebitItemRow
from etomcrm.billing.payments import OPEN_STATES
from etomcrm.billing.sepa import DirectDebit, direct_debit_batch
from etomcrm.db import new_id
from etomcrm.selling.accounts import payer_terms
from etomcrm.selling.models import PaymentMethodRow

PENDING, BOOKED, RETURNED = "pending", "booked", "returned"
# The TMF670 paymentMethod @type of a SEPA direct debit with its mandate (3.4.4).
DIRECT_DEBIT_TYPE = "bankAccountDebit"
MAX_REMITTANCE = 140


@dataclass(frozen=True)
class Debtor:
    """What a pain.008 needs of a direct-debit payer."""

    account_id: str
    payment_method_id: str
    name: str
    iban: str
    bic: str | None
    mandate_reference: str
    mandate_signed: date
    scheme: str
    first_collection_done: bool


def direct_debit_payers(session: Session, account_ids: list[str]) -> dict[str, Debtor]:
    """The accounts among ``account_ids`` that pay by SEPA direct debit under a signed
    mandate, from their payer terms (3.4.4; a bounded number of queries)."""
    payers: dict[str, Debtor] = {}
    for account_id, terms in payer_terms(session, account_ids).items():
        if (
            terms.means != "sepaDirectDebit"
            or not terms.payment_method_id
            or not terms.iban
            or not terms.mandate_reference
            or terms.mandate_signed is None
        ):
            continue
        payers[account_id] = Debtor(
            account_id=account_id,
            payment_method_id=terms.payment_method_id,
            name=terms.legal_name or terms.name,
            iban=terms.iban,
            bic=terms.bic,
            mandate_reference=terms.mandate_reference,
            mandate_signed=terms.mandate_signed,
            scheme=terms.scheme or "CORE",
            first_collection_done=terms.first_collection_done,
        )
    return payers


def _mark_first_collections(session: Session, payment_method_ids: list[str]) -> None:
    """The mandates' first debits were sent: the next are RCUR (TMF670 extension
    ``sequenceType``, as ``selling.accounts.mark_first_collection`` writes it; one
    statement for all)."""
    if not payment_method_ids:
        return
    methods = session.scalars(
        select(PaymentMethodRow).where(PaymentMethodRow.id.in_(payment_method_ids))
    ).all()
    changes = [
        {"id": m.id, "body": {**m.body, "sequenceType": "RCUR"}, "version": m.version + 1}
        for m in methods
        if m.body.get("sequenceType") != "RCUR"
    ]
    if changes:
        session.execute(update(PaymentMethodRow), changes)


def collect(
    session: Session, collection_date: date, *, created_at: datetime | None = None
) -> DirectDebitBatchRow | None:
    """3.8.5 Manage Customer Billing / Collections (eTOM 1.1.1.8.5): the pain.008 batch
    collecting every direct-debit bill due on ``collection_date``; None when nothing is
    due. The same date collected again answers the stored batch (a bounded number of
    queries, whatever the number of bills)."""
    existing = session.scalar(
        select(DirectDebitBatchRow).where(DirectDebitBatchRow.collection_date == collection_date)
    )
    if existing is not None:
        return existing
    collected = (
        select(DirectDebitItemRow.bill_id)
        .where(DirectDebitItemRow.status.in_((PENDING, BOOKED)))
        .scalar_subquery()
    )
    bills = session.scalars(
        select(CustomerBillRow)
        .where(
            CustomerBillRow.payment_due_date == collection_date,
            CustomerBillRow.status.in_(OPEN_STATES),
            CustomerBillRow.remaining_amount > 0,
            CustomerBillRow.category != "creditNote",
            CustomerBillRow.bill_no.is_not(None),
            CustomerBillRow.id.not_in(collected),
        )
        .order_by(CustomerBillRow.billing_account_id, CustomerBillRow.bill_no)
    ).all()
    payers = direct_debit_payers(session, sorted({b.billing_account_id for b in bills}))
    by_account: dict[str, list[CustomerBillRow]] = defaultdict(list)
    for bill in bills:
        if bill.billing_account_id in payers:
            by_account[bill.billing_account_id].append(bill)
    if not by_account:
        return None
    mandates = sorted({payers[a].mandate_reference for a in by_account})
    used = set(
        session.scalars(
            select(DirectDebitItemRow.mandate_reference).where(
                DirectDebitItemRow.mandate_reference.in_(mandates),
                DirectDebitItemRow.status != RETURNED,
            )
        )
    )
    batch_id = new_id()
    debits: list[DirectDebit] = []
    items: list[dict[str, object]] = []
    firsts: list[str] = []
    for account_id, account_bills in sorted(by_account.items()):
        payer = payers[account_id]
        first = not payer.first_collection_done and payer.mandate_reference not in used
        sequence = "FRST" if first else "RCUR"
        end_to_end = str(account_bills[0].bill_no)
        remittance = " ".join(str(b.bill_no) for b in account_bills)[:MAX_REMITTANCE]
        debits.append(
            DirectDebit(
                end_to_end_id=end_to_end,
                amount=sum((b.remaining_amount for b in account_bills), Decimal(0)),
                debtor_name=payer.name[:70],
                debtor_iban=payer.iban,
                debtor_bic=payer.bic,
                mandate_reference=payer.mandate_reference,
                mandate_signed_on=payer.mandate_signed,
                scheme=payer.scheme,
                sequence=sequence,
                remittance=remittance,
            )
        )
        items.extend(
            {
                "batch_id": batch_id,
                "bill_id": b.id,
                "billing_account_id": account_id,
                "end_to_end_id": end_to_end,
                "mandate_reference": payer.mandate_reference,
                "sequence": sequence,
                "amount": b.remaining_amount,
                "status": PENDING,
            }
            for b in account_bills
        )
        if first:
            firsts.append(payer.payment_method_id)
    message_id = f"DD-{collection_date:%Y%m%d}-{batch_id.replace('-', '')[-12:]}"
    xml = direct_debit_batch(
        collection_date=collection_date,
        debits=debits,
        message_id=message_id,
        created_at=created_at,
    )
    batch = DirectDebitBatchRow(
        id=batch_id,
        collection_date=collection_date,
        message_id=message_id,
        debit_count=len(debits),
        total=sum((d.amount for d in debits), Decimal(0)),
        xml=xml.decode("utf-8"),
    )
    session.add(batch)
    session.flush()
    session.execute(insert(DirectDebitItemRow), items)
    _mark_first_collections(session, firsts)
    return batch


def batch_items(session: Session, batch_id: str) -> list[DirectDebitItemRow]:
    """The bills a batch collects, in end-to-end order."""
    return list(
        session.scalars(
            select(DirectDebitItemRow)
            .where(DirectDebitItemRow.batch_id == batch_id)
            .order_by(DirectDebitItemRow.end_to_end_id, DirectDebitItemRow.id)
        )
    )
