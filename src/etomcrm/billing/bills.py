"""3.8.3 Create & send the bill, 3.8.4 Manage customer bills (TMF678 ``customerBill``).

A bill takes its account's unbilled rated charges (``AppliedRateRow`` with no bill),
totals them (net per VAT rate, the tax of each rate rounded half up to the cent, gross
= net + tax), and is stored ``new``. Issuing gives it the next number of its series
(the series row locked, so numbers are unique and gapless), fixes its due date and
stores the SHA-256 of its content (the canonical JSON of its :class:`Invoice`), which
shows a sent bill unchanged. A sent bill is never edited: a correction is a credit
note that references it.

The run key (``account/period``) makes a bill run bill an account once per period
whatever the reruns; the number is taken in the same transaction as the state change,
so a crash before the commit leaves neither a number nor a gap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
import types
import typing
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

import orjson
from sqlalchemy import (
    ARRAY,
    String,
    Table,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from etomcrm.billing import rating
from etomcrm.billing.bill_models import BillDocumentRow
from etomcrm.billing.enquiries import CreditLine
from etomcrm.billing.events import BillIssued, BillSent
from etomcrm.billing.invoice import invoice_xml, render_invoice_pdf
from etomcrm.billing.invoice_data import (
    Invoice,
    InvoiceLine,
    InvoiceParty,
    PaymentInstructions,
    TaxCategory,
    TaxSubtotal,
)
from etomcrm.billing.models import AppliedRateRow, BillNumberSeries, CustomerBillRow
from etomcrm.config import get_settings
from etomcrm.core.bus import record
from etomcrm.core.errors import Conflict, IllegalTransition, InvalidRequest, NotFound
from etomcrm.core.states import check_transition
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.core.totals import forget_totals
from etomcrm.customer_interface.communication import write_message
from etomcrm.customer_interface.events import CustomerTerminated
from etomcrm.db import after_commit, among, new_id, session_scope, utcnow
from etomcrm.order_handling.events import ProductsEnded
from etomcrm.order_handling.models import ProductRow
from etomcrm.security.service import SYSTEM
from etomcrm.selling.accounts import PayerTerms, payer_terms
from etomcrm.selling.models import BillingAccountRow

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
BILL_PATH = "/tmf-api/customerBillManagement/v4/customerBill"
BILL_KIND_NAME = "customerBill"

# TMF678 customerBill states and the moves between them. ``new`` → ``validated`` is the
# issue (a number is taken), ``validated`` → ``sent`` the delivery; payments move a sent
# bill to partiallyPaid / settled, a returned debit back to sent.
BILL_TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"onHold", "validated"}),
    "onHold": frozenset({"new", "validated"}),
    "validated": frozenset({"onHold", "sent"}),
    "sent": frozenset({"partiallyPaid", "settled"}),
    "partiallyPaid": frozenset({"settled", "sent"}),
    "settled": frozenset({"partiallyPaid", "sent"}),
}
# The moves staff make by hand (PATCH): holding a bill back and releasing it, to where
# it was (an unnumbered bill to new, an issued one to validated).
STAFF_MOVES = frozenset(
    {("new", "onHold"), ("onHold", "new"), ("validated", "onHold"), ("onHold", "validated")}
)

# UN/ECE rec. 20 units of the rate types (a line shows one month, one piece, gigabytes).
UNITS = {"recurring": "MON", "usage": "E34"}


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _money(value: Decimal, currency: str) -> JsonDict:
    return {"unit": currency, "value": float(value)}


def _instant(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _category(rate: Decimal) -> TaxCategory:
    # A charge without tax to a business is reverse charge (§13b UStG): the only
    # zero-rated supply etomcrm makes.
    return "S" if rate != 0 else "AE"


# ----- totals ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Totals:
    taxes: tuple[TaxSubtotal, ...]
    net: Decimal
    tax: Decimal
    gross: Decimal


def totals(lines: Sequence[tuple[Decimal, Decimal]]) -> Totals:
    """(net, tax rate in percent) lines → net per rate, tax per rate rounded half up,
    gross = net + tax. The net total is the sum of the lines' nets exactly."""
    basis: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    for net, rate in lines:
        basis[Decimal(rate).normalize()] += money(net)
    subtotals = []
    for rate in sorted(basis):
        tax = money(basis[rate] * rate / 100)
        subtotals.append(
            TaxSubtotal(
                category=_category(rate),
                rate=rate,
                basis=basis[rate],
                tax=tax,
                exemption_reason=(
                    "Steuerschuldnerschaft des Leistungsempfängers (§13b UStG) / reverse charge"
                    if rate == 0
                    else None
                ),
            )
        )
    net = sum((s.basis for s in subtotals), ZERO)
    tax = sum((s.tax for s in subtotals), ZERO)
    return Totals(tuple(subtotals), net, tax, net + tax)


# ----- billing an account ----------------------------------------------------------


def _amounts(total: Totals, currency: str) -> JsonDict:
    """A new bill's TMF678 amounts: due (all of it open), net, gross and tax per rate."""
    return {
        "amountDue": _money(total.gross, currency),
        "remainingAmount": _money(total.gross, currency),
        "taxExcludedAmount": _money(total.net, currency),
        "taxIncludedAmount": _money(total.gross, currency),
        "taxItem": [
            {
                "taxCategory": "VAT" if t.category == "S" else "VAT reverse charge",
                "taxRate": float(t.rate / 100),
                "taxAmount": _money(t.tax, currency),
            }
            for t in total.taxes
        ],
    }


def run_key_for(account_id: str, period_start: date, period_end: date) -> str:
    return f"{account_id}/{period_start.isoformat()}/{period_end.isoformat()}"


def _locked(session: Session, stmt: Any, of: Any = None) -> Any:
    # PostgreSQL locks the rows (of ``of`` when rows are joined); SQLite serialises
    # writers anyway.
    return stmt.with_for_update(of=of) if _postgres(session) else stmt


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _unnest(*arrays: Sequence[str]) -> Any:
    """On PostgreSQL, ids to join with as the rows of arrays (columns ``c0``, ``c1``…):
    the planner estimates their number from the arrays and looks each up in an index,
    where ``= ANY`` of a long array, with the statistics of a table that grew since it
    was last analyzed (a bill run gives thousands of charges their bill), is a scan of
    the whole table comparing each row with every element."""
    names = [f"c{n}" for n in range(len(arrays))]
    return (
        func.unnest(*(literal(list(a), ARRAY(String)) for a in arrays))
        .table_valued(*names)
        .render_derived(with_types=False)
    )


def bill_account(
    session: Session,
    account_id: str,
    period_start: date,
    period_end: date,
    *,
    today: date,
    run_key: str | None = None,
    category: str = "normal",
) -> str | None:
    """3.8.3 Create and send the bill (the bill made): the account's unbilled rated charges up
    to ``period_end`` become one ``new`` bill. Returns its id; the bill made earlier under the
    same ``run_key`` (default: account and period), so an account is billed once per period
    whatever the reruns; None when there is nothing to bill, or when the credits exceed the
    charges (no negative invoice: everything stays for the next bill)."""
    keys = {account_id: run_key} if run_key else None
    made = bill_accounts(
        session,
        [account_id],
        period_start,
        period_end,
        today=today,
        run_keys=keys,
        category=category,
    )
    return made[account_id]


def bill_accounts(
    session: Session,
    account_ids: Sequence[str],
    period_start: date,
    period_end: date,
    *,
    today: date,
    run_keys: Mapping[str, str] | None = None,
    category: str = "normal",
    issue: bool = False,
    planned: Mapping[str, str] | None = None,
) -> dict[str, str | None]:
    """3.8.3 Create and send the bill (the bills made), for many accounts at once: what
    :func:`bill_account` does for each, in a bounded number of queries whatever the number
    of accounts (the run keys made before, the accounts, their unbilled charges, the bills
    inserted, the charges given their bill). Returns each account's bill id (the one made
    before under its run key), None where there is nothing to bill. Callers chunk: the ids
    go into ``IN`` lists (the bill run passes a few hundred).

    With ``issue`` the bills made now are inserted issued, as :func:`issue_bills` would
    leave them (numbers, content and hash, ``BillIssued``), their invoices made from the
    charges just read: the bill run writes each bill once instead of inserting it and
    updating it. Bills made before under their run keys are returned as they are.

    ``planned``: the bill ids rating wrote the accounts' new charges on
    (:func:`rating.rate_accounts`' ``bills``); an account's bill gets that id, and where
    no bill is made the charges are taken off it again."""
    planned = dict(planned or {})
    made = _bill_accounts(
        session, account_ids, period_start, period_end, today, run_keys, category, issue, planned
    )
    if planned:
        # Charges on a planned bill that was not made (nothing to bill, a credit, billed
        # before) are unbilled again, as rating would have left them.
        session.execute(
            update(AppliedRateRow)
            .where(among(session, AppliedRateRow.bill_id, planned.values()))
            .values(bill_id=None)
            .execution_options(synchronize_session=False)
        )
    return made


def _bill_accounts(
    session: Session,
    account_ids: Sequence[str],
    period_start: date,
    period_end: date,
    today: date,
    run_keys: Mapping[str, str] | None,
    category: str,
    issue: bool,
    planned: dict[str, str],
) -> dict[str, str | None]:
    """:func:`bill_accounts`; the ids of ``planned`` that become bills are removed from it."""
    ids = list(dict.fromkeys(account_ids))
    keys = {a: (run_keys or {}).get(a) or run_key_for(a, period_start, period_end) for a in ids}
    made: dict[str, str | None] = dict.fromkeys(ids)
    if not ids:
        return made
    existing = {
        str(key): str(bill_id)
        for key, bill_id in session.execute(
            select(CustomerBillRow.run_key, CustomerBillRow.id).where(
                among(session, CustomerBillRow.run_key, keys.values())
            )
        )
    }
    todo = []
    for account_id in ids:
        if keys[account_id] in existing:
            made[account_id] = existing[keys[account_id]]
        else:
            todo.append(account_id)
    if not todo:
        return made
    accounts = {
        str(row.id): row
        for row in session.execute(
            select(
                BillingAccountRow.id,
                BillingAccountRow.name,
                BillingAccountRow.owner_customer_id,
                BillingAccountRow.currency,
            ).where(among(session, BillingAccountRow.id, todo))
        )
    }
    for account_id in todo:
        if account_id not in accounts:
            raise NotFound(f"no billing account with id {account_id}")
    charges: dict[str, list[Any]] = defaultdict(list)
    unbilled = select(
        AppliedRateRow.id,
        AppliedRateRow.billing_account_id,
        AppliedRateRow.tax_excluded,
        AppliedRateRow.tax_rate,
        AppliedRateRow.customer_id,
        AppliedRateRow.currency,
        AppliedRateRow.bill_id,
        *(_LINE_COLUMNS if issue else ()),
    )
    if _postgres(session):
        # Each account with the bill planned for it: its unbilled charges and those on
        # that bill are found through the (account, bill) index, account by account.
        wanted = _unnest(todo, [planned.get(a, "") for a in todo])
        unbilled = unbilled.join_from(
            wanted,
            AppliedRateRow,
            (AppliedRateRow.billing_account_id == wanted.c.c0)
            & or_(AppliedRateRow.bill_id.is_(None), AppliedRateRow.bill_id == wanted.c.c1),
        )
        of_accounts: Any = true()
    else:
        of_accounts = AppliedRateRow.billing_account_id.in_(todo) & or_(
            AppliedRateRow.bill_id.is_(None),
            AppliedRateRow.bill_id.in_(list(planned.values())),
        )
    for charge in session.execute(
        _locked(
            session,
            unbilled.where(
                of_accounts,
                or_(
                    AppliedRateRow.period_start.is_(None),
                    AppliedRateRow.period_start <= period_end,
                ),
            ).order_by(
                AppliedRateRow.billing_account_id,
                AppliedRateRow.period_start,
                AppliedRateRow.rated_at,
                AppliedRateRow.id,
            ),
            of=AppliedRateRow,
        )
    ):
        charges[str(charge.billing_account_id)].append(charge)
    new_bills: list[dict[str, Any]] = []
    billed: dict[str, str] = {}
    rate_ids: list[tuple[str, str]] = []
    now = utcnow()
    for account_id in todo:
        rates = charges.get(account_id)
        if not rates:
            continue
        total = totals([(r.tax_excluded, r.tax_rate) for r in rates])
        if total.gross < 0:
            continue
        account = accounts[account_id]
        bill_id = planned.get(account_id) or new_id()
        customer_id = account.owner_customer_id or rates[0].customer_id
        currency = account.currency or rates[0].currency
        body: JsonDict = {
            "id": bill_id,
            "@type": "CustomerBill",
            "category": category,
            "state": "new",
            "runType": "onCycle" if category == "normal" else "offCycle",
            "billingPeriod": {
                "startDateTime": _instant(period_start),
                "endDateTime": _instant(period_end),
            },
            **_amounts(total, currency),
            "billingAccount": {
                "id": account_id,
                "name": account.name,
                "@referredType": "BillingAccount",
            },
            "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
            "lastUpdate": _instant(today),
        }
        new_bills.append(
            {
                "id": bill_id,
                "at_type": "CustomerBill",
                "name": None,
                "status": "new",
                "owner_customer_id": customer_id,
                "body": body,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "billing_account_id": account_id,
                "run_key": keys[account_id],
                "bill_no": None,
                "category": category,
                "period_start": period_start,
                "period_end": period_end,
                "amount_due": total.gross,
                "remaining_amount": total.gross,
            }
        )
        billed[account_id] = bill_id
        # (the charges on the planned bill have it already)
        rate_ids.extend((str(r.id), account_id) for r in rates if r.bill_id is None)
    if not new_bills:
        return made
    documents: list[dict[str, Any]] = []
    events: list[BillIssued] = []
    try:
        with session.begin_nested():
            if issue:
                documents, events = _issued_on_insert(
                    session, new_bills, {a: charges[a] for a in billed}, today
                )
            _insert_bills(session, new_bills)
    except IntegrityError:
        # A concurrent run billed one of the accounts for this period first (its run key
        # is taken): one account at a time, each finds its bill or makes it.
        if len(todo) == 1:
            found = session.scalar(
                select(CustomerBillRow.id).where(CustomerBillRow.run_key == keys[todo[0]])
            )
            if found is None:
                raise
            made[todo[0]] = str(found)
            return made
        # (the charges are taken off the planned bills first: each account anew)
        if planned:
            session.execute(
                update(AppliedRateRow)
                .where(among(session, AppliedRateRow.bill_id, list(planned.values())))
                .values(bill_id=None)
                .execution_options(synchronize_session=False)
            )
            planned.clear()
        for account_id in todo:
            made.update(
                bill_accounts(
                    session,
                    [account_id],
                    period_start,
                    period_end,
                    today=today,
                    run_keys={account_id: keys[account_id]},
                    category=category,
                    issue=issue,
                )
            )
        return made
    for event in events:
        record(session, event)
    for account_id in billed:
        planned.pop(account_id, None)
    if rate_ids:
        _give_bills(session, rate_ids, billed)
    if documents:
        _insert_documents(session, documents)
    made.update(billed)
    _counted_anew(session)
    return made


def rate_bill_and_issue(
    session: Session,
    account_ids: Sequence[str],
    period_start: date,
    period_end: date,
    *,
    today: date,
) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """3.8.2 and 3.8.3 for a bill run's chunk of accounts, in the caller's transaction:
    the accounts rated, billed and their bills issued, each charge and each bill written
    once (the charges on the bill planned for their account, the bills inserted
    numbered). Returns each account's bill id (None: nothing to bill) and, of the bills
    an earlier run made for the period, the number each had before (None: it is
    numbered now)."""
    keys = {a: run_key_for(a, period_start, period_end) for a in account_ids}
    earlier: dict[str, str | None] = {}
    billed_before = set()
    for bill_id, bill_no, run_key in session.execute(
        select(CustomerBillRow.id, CustomerBillRow.bill_no, CustomerBillRow.run_key).where(
            among(session, CustomerBillRow.run_key, keys.values())
        )
    ):
        earlier[str(bill_id)] = bill_no
        billed_before.add(run_key)
    planned = {a: new_id() for a in account_ids if keys[a] not in billed_before}
    rating.rate_accounts(session, account_ids, period_start, period_end, today=today, bills=planned)
    made = bill_accounts(
        session, account_ids, period_start, period_end, today=today, issue=True, planned=planned
    )
    # A bill an earlier run made and did not number is numbered now.
    issue_bills(session, [b for b, number in earlier.items() if number is None], today=today)
    return made, earlier


def _insert_bills(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert new bills (their attributes' values, the same for each): on PostgreSQL one
    statement that unpacks them from one JSON array (an executemany sends and binds each
    row apart: most of what inserting a chunk's bills spent)."""
    if not _postgres(session):
        session.execute(insert(CustomerBillRow), rows)
        return
    # (str: a column's name is a subclass of it, which orjson does not take as a key)
    names = {a.key: str(a.columns[0].name) for a in CustomerBillRow.__mapper__.column_attrs}
    columns = ", ".join(names[key] for key in rows[0])
    plain = [{names[key]: value for key, value in row.items()} for row in rows]
    session.execute(
        text(
            f"INSERT INTO customer_bill ({columns}) SELECT {columns}"
            " FROM json_populate_recordset(NULL::customer_bill, CAST(:rows AS json))"
        ),
        {"rows": orjson.dumps(plain, default=_decimal_text).decode()},
    )


def _insert_documents(session: Session, documents: list[dict[str, Any]]) -> None:
    """Store issued bills' canonical content (their PDF and XML come when rendered): on
    PostgreSQL by COPY in the unit of work's transaction (the content as it is, no
    per-row statement, no JSON to unpack), in binary (no bytes escaped as text)."""
    if not _postgres(session):
        session.execute(insert(BillDocumentRow), documents)
        return
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with (
        driver.cursor() as cursor,
        cursor.copy("COPY bill_document (bill_id, content) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(["varchar", "bytea"])
        for document in documents:
            copy.write_row((document["bill_id"], document["content"]))


def _decimal_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _issued_on_insert(
    session: Session,
    new_bills: list[dict[str, Any]],
    charges: Mapping[str, Sequence[Any]],
    today: date,
) -> tuple[list[dict[str, Any]], list[BillIssued]]:
    """The new bills' columns as issuing sets them (numbered, validated, content hash),
    written into ``new_bills``; their invoices made from ``charges`` (per account, in
    the order a bill's lines are numbered). Returns the documents and events."""
    lines = {
        bill["id"]: tuple(
            _invoice_line(number, r)
            for number, r in enumerate(charges[bill["billing_account_id"]], start=1)
        )
        for bill in new_bills
    }
    terms = payer_terms(session, {bill["billing_account_id"] for bill in new_bills})
    fresh = [types.SimpleNamespace(**bill) for bill in new_bills]
    changes, documents, events = _numbered(session, fresh, (lines, terms, {}), today)
    for bill, change in zip(new_bills, changes, strict=True):
        bill.update({name: change[name] for name in _ISSUED_COLUMNS})
    return documents, events


def _give_bills(session: Session, rate_ids: list[tuple[str, str]], billed: dict[str, str]) -> None:
    """One statement gives every charge (its id and account) its account's bill."""
    if not _postgres(session):
        # "fetch" keeps the charges this session holds in step with the database.
        session.execute(
            update(AppliedRateRow)
            .where(
                AppliedRateRow.id.in_([r for r, _ in rate_ids]), AppliedRateRow.bill_id.is_(None)
            )
            .values(bill_id=case(billed, value=AppliedRateRow.billing_account_id))
            .execution_options(synchronize_session="fetch")
        )
        return
    # A CASE of hundreds of accounts is evaluated for each charge: the pairs are joined
    # instead, each charge found by its key.
    pairs = _unnest([r for r, _ in rate_ids], [billed[a] for _, a in rate_ids])
    session.execute(
        update(AppliedRateRow)
        .where(AppliedRateRow.id == pairs.c.c0, AppliedRateRow.bill_id.is_(None))
        .values(bill_id=pairs.c.c1)
        .execution_options(synchronize_session=False)
    )
    # The charges this session holds (rating's carried credits) read their bill again.
    for row in list(session.identity_map.values()):
        if isinstance(row, AppliedRateRow):
            session.expire(row, ["bill_id"])


def _counted_anew(session: Session) -> None:
    # A list's cached total of bills (X-Total-Count) is stale once this commits.
    after_commit(session, lambda: forget_totals(BILL_KIND_NAME))


# ----- states -----------------------------------------------------------------------


def _bill(session: Session, bill_id: str, *, lock: bool = False) -> CustomerBillRow:
    stmt = select(CustomerBillRow).where(CustomerBillRow.id == bill_id)
    row: CustomerBillRow | None = session.scalar(_locked(session, stmt) if lock else stmt)
    if row is None:
        raise NotFound(f"no customer bill with id {bill_id}")
    return row


def _set_state(row: CustomerBillRow, state: str, today: date) -> None:
    check_transition("a customer bill", BILL_TRANSITIONS, str(row.status), state)
    row.status = state
    row.body = {**row.body, "state": state, "lastUpdate": _instant(today)}
    row.version += 1
    row.updated_at = utcnow()


def check_staff_move(before: str, after: str, *, numbered: bool) -> None:
    """The state moves a person makes by PATCH; the others are the service's."""
    if before == after:
        return
    if (before, after) == ("onHold", "validated" if not numbered else "new"):
        raise IllegalTransition(
            "a held bill is released to where it was: "
            + ("validated (it has its number)" if numbered else "new (it is not issued yet)")
        )
    check_transition("a customer bill", BILL_TRANSITIONS, before, after)
    if (before, after) not in STAFF_MOVES:
        raise IllegalTransition(
            f"a customer bill moves from {before!r} to {after!r} by being issued, sent or "
            "paid, not by a request; by hand it is only held (onHold) and released"
        )


def _next_numbers(session: Session, series: str, count: int) -> int:
    """The first of ``count`` consecutive numbers of the series, its row locked until the
    commit (gapless: a rollback gives the numbers back)."""
    stmt = select(BillNumberSeries).where(BillNumberSeries.series == series)
    row: BillNumberSeries | None = session.scalar(_locked(session, stmt))
    if row is None:
        try:
            with session.begin_nested():
                session.add(BillNumberSeries(series=series, next_number=1))
        except IntegrityError:
            pass
        row = session.scalar(_locked(session, stmt))
        assert row is not None
    first = row.next_number
    row.next_number = first + count
    session.flush()
    return first


def _next_number(session: Session, series: str) -> int:
    """The series' next number (see :func:`_next_numbers`)."""
    return _next_numbers(session, series, 1)


def issue(session: Session, bill_id: str, *, today: date) -> str:
    """3.8.3 Create and send the bill (issued): the next number of its series, the bill date and
    due date, the content hash; ``BillIssued``. Returns the bill number (the same one when the
    bill was issued before). The PDF is rendered apart (:func:`render_document`)."""
    return issue_bills(session, [bill_id], today=today)[bill_id]


def issue_bills(session: Session, bill_ids: Sequence[str], *, today: date) -> dict[str, str]:
    """3.8.3 Create and send the bill (issued), for many bills at once: each series locked once
    and a block of consecutive numbers taken from it, in the order of ``bill_ids``; the bill
    date and due date; the invoice of each (its charges, payers and referenced bills read
    in a bounded number of queries), stored as canonical JSON with its SHA-256 on the bill;
    ``BillIssued`` per bill. Returns each bill's number (the one it had when issued before).

    The PDF and XML are not rendered here (they are what takes time): the stored canonical
    content determines them, :func:`render_document` renders them before the bill is sent.
    """
    ids = list(dict.fromkeys(bill_ids))
    if not ids:
        return {}
    # Plain rows, not ORM objects, and one UPDATE statement for all (executed with many
    # parameter sets): loading, changing and flushing an object a bill was most of what
    # issuing spent outside the invoices themselves.
    table = cast(Table, CustomerBillRow.__table__)
    rows = {
        str(row.id): row
        for row in session.execute(
            _locked(
                session,
                select(
                    table.c.id,
                    table.c.status,
                    table.c.bill_no,
                    table.c.category,
                    table.c.body,
                    table.c.version,
                    table.c.billing_account_id,
                    table.c.owner_customer_id,
                    table.c.period_start,
                    table.c.period_end,
                    table.c.amount_due,
                ).where(table.c.id.in_(ids)),
            )
        )
    }
    numbers: dict[str, str] = {}
    fresh: list[Any] = []
    for bill_id in ids:
        found = rows.get(bill_id)
        if found is None:
            raise NotFound(f"no customer bill with id {bill_id}")
        if found.bill_no is not None:
            numbers[bill_id] = found.bill_no
        elif found.status != "new":
            raise IllegalTransition(f"a customer bill in state {found.status!r} cannot be issued")
        else:
            check_transition("a customer bill", BILL_TRANSITIONS, str(found.status), "validated")
            fresh.append(found)
    if not fresh:
        return numbers
    # What the invoices are made of is read before the series are locked: parallel lanes
    # of a bill run wait for a series' row only while numbers are given and written.
    with session.no_autoflush:
        sources = _invoice_sources(
            session,
            [str(found.id) for found in fresh],
            {str(found.billing_account_id) for found in fresh},
            {r for r in (_referenced(found.body) for found in fresh) if r},
        )
    changes, documents, events = _numbered(session, fresh, sources, today)
    for event in events:
        record(session, event)
    numbers.update({change["b_id"]: change["bill_no"] for change in changes})
    session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values({name: bindparam(name) for name in _ISSUED_COLUMNS}),
        changes,
    )
    _insert_documents(session, documents)
    # Bills this session holds as objects (a credit note just made) read their row again.
    issued = {change["b_id"] for change in changes}
    for held in list(session.identity_map.values()):
        if isinstance(held, CustomerBillRow) and held.id in issued:
            session.expire(held)
    return numbers


_ISSUED_COLUMNS = (
    "bill_no",
    "bill_date",
    "payment_due_date",
    "status",
    "body",
    "version",
    "updated_at",
    "content_hash",
)


def _numbered(
    session: Session, fresh: Sequence[Any], sources: _Sources, today: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[BillIssued]]:
    """Issue ``fresh`` bills (rows with a bill's columns, in the order their numbers are
    given): each series locked once and a block of consecutive numbers taken, the bill
    and due dates, the invoice of each from ``sources``, its canonical content and hash.
    Returns the columns each bill gets (``b_id`` its id), the documents to store and the
    ``BillIssued`` events to record once the bills are written."""
    settings = get_settings()
    due = today + timedelta(days=settings.payment_terms_days)
    by_series: dict[str, list[Any]] = defaultdict(list)
    for found in fresh:
        credit = found.category == "creditNote"
        prefix = settings.credit_note_prefix if credit else settings.invoice_prefix
        by_series[f"{prefix}-{today.year}"].append(found)
    issued: dict[str, _BillFacts] = {}
    stamp = _instant(today)
    for series, members in by_series.items():
        first = _next_numbers(session, series, len(members))
        for offset, found in enumerate(members):
            bill_no = f"{series}-{first + offset:06d}"
            credit = found.category == "creditNote"
            body = {**found.body, "billNo": bill_no, "billDate": stamp}
            if not credit:
                body["paymentDueDate"] = _instant(due)
            # What _set_state does to a bill moved to validated.
            body["state"] = "validated"
            body["lastUpdate"] = stamp
            issued[found.id] = _BillFacts(
                id=str(found.id),
                bill_no=bill_no,
                bill_date=today,
                payment_due_date=None if credit else due,
                period_start=found.period_start,
                period_end=found.period_end,
                category=str(found.category),
                body=body,
                billing_account_id=str(found.billing_account_id),
                owner_customer_id=found.owner_customer_id,
            )
    facts = [issued[str(found.id)] for found in fresh]
    invoices = _build_invoices(session, facts, sources)
    documents = []
    changes = []
    events = []
    now = utcnow()
    for found, bill in zip(fresh, facts, strict=True):
        invoice = invoices[bill.id]
        content = canonical_json(invoice)
        documents.append(
            {"bill_id": bill.id, "content": content, "pdf": None, "xml": None, "sha256": None}
        )
        body = bill.body
        body["billDocument"] = [
            {
                "id": bill.id,
                "name": f"{bill.bill_no}.pdf",
                "mimeType": "application/pdf",
                "url": f"{BILL_PATH}/{bill.id}/document",
                "attachmentType": "creditNote" if bill.category == "creditNote" else "invoice",
            }
        ]
        changes.append(
            {
                "b_id": bill.id,
                "bill_no": bill.bill_no,
                "bill_date": bill.bill_date,
                "payment_due_date": bill.payment_due_date,
                "status": "validated",
                "body": body,
                "version": found.version + 1,
                "updated_at": now,
                "content_hash": hashlib.sha256(content).hexdigest(),
            }
        )
        events.append(
            BillIssued(
                bill_id=bill.id,
                billing_account_id=bill.billing_account_id,
                customer_id=str(bill.owner_customer_id),
                bill_no=str(bill.bill_no),
                amount_due=str(found.amount_due),
                currency=invoice.currency,
                payment_due_date=(bill.payment_due_date or today).isoformat(),
                means=invoice.payment.means,
            )
        )
    return changes, documents, events


def hold(session: Session, bill_id: str, *, today: date, held: bool = True) -> None:
    """3.8.4 Manage customer bills: hold a bill back from processing (an open question), or
    release it."""
    row = _bill(session, bill_id, lock=True)
    if held:
        check_staff_move(str(row.status), "onHold", numbered=row.bill_no is not None)
        _set_state(row, "onHold", today)
    else:
        _set_state(row, "validated" if row.bill_no else "new", today)


# ----- content and its hash ---------------------------------------------------------


def canonical_json(invoice: Invoice) -> bytes:
    """The invoice as canonical JSON (sorted keys, decimals as written): what the
    content hash is taken of."""
    # The bytes json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # gives of the invoice as plain dicts (decimals as their text, dates in ISO). orjson
    # writes them from dicts made by one converter per dataclass, found once: asking
    # orjson's ``default`` for every dataclass and decimal was a tenth of issuing's time.
    return orjson.dumps(_plain(Invoice)(invoice), option=orjson.OPT_SORT_KEYS)


_PLAIN: dict[type, Callable[[Any], dict[str, Any]]] = {}


def _plain(kind: type) -> Callable[[Any], dict[str, Any]]:
    """The converter of an invoice's dataclass to a dict orjson writes by itself: its
    decimals as their text, its dataclasses and tuples of them converted in turn, the
    rest (strings, numbers, dates, tuples of strings) as they are."""
    known = _PLAIN.get(kind)
    if known is not None:
        return known
    hints = typing.get_type_hints(kind)
    plain: list[str] = []
    decimals: list[str] = []
    optional: list[str] = []
    nested: list[tuple[str, type]] = []
    many: list[tuple[str, type]] = []
    for f in dataclasses.fields(kind):
        hint = hints[f.name]
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        union = typing.get_origin(hint) in (types.UnionType, typing.Union)
        base = inner[0] if union else hint
        item = typing.get_args(base)[0] if typing.get_origin(base) is tuple else None
        if base is Decimal:
            (optional if union else decimals).append(f.name)
        elif isinstance(base, type) and dataclasses.is_dataclass(base):
            nested.append((f.name, base))
        elif isinstance(item, type) and dataclasses.is_dataclass(item):
            many.append((f.name, item))
        else:
            plain.append(f.name)
    # (attrgetter of one name gives the value, not a tuple of it)
    read = operator.attrgetter(*plain, *plain) if len(plain) == 1 else operator.attrgetter(*plain)

    def convert(value: Any) -> dict[str, Any]:
        out = dict(zip(plain, read(value), strict=True))
        for name in decimals:
            out[name] = str(getattr(value, name))
        for name in optional:
            found = getattr(value, name)
            out[name] = None if found is None else str(found)
        for name, part in nested:
            out[name] = _plain(part)(getattr(value, name))
        for name, part in many:
            out[name] = [_plain(part)(v) for v in getattr(value, name)]
        return out

    _PLAIN[kind] = convert
    return convert


def content_hash(invoice: Invoice) -> str:
    return hashlib.sha256(canonical_json(invoice)).hexdigest()


def _typed(kind: Any, value: Any) -> Any:
    """A value of the canonical JSON back as ``kind`` (the Invoice's field types)."""
    if value is None:
        return None
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(
            **{f.name: _typed(hints[f.name], value.get(f.name)) for f in dataclasses.fields(kind)}
        )
    origin = typing.get_origin(kind)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        return tuple(_typed(item, v) for v in value)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return _typed(inner[0], value)
    if kind is Decimal:
        return Decimal(value)
    if kind is date:
        return date.fromisoformat(value)
    return value


def invoice_from_json(content: bytes) -> Invoice:
    invoice: Invoice = _typed(Invoice, json.loads(content))
    return invoice


def unchanged(session: Session, bill_id: str) -> bool:
    """True when the bill is what it was when it was issued: its stored content has the
    hash the bill keeps, and its charges are still the lines it shows."""
    row = _bill(session, bill_id)
    stored = session.get(BillDocumentRow, bill_id)
    if row.content_hash is None or stored is None:
        return False
    if hashlib.sha256(stored.content).hexdigest() != row.content_hash:
        return False
    issued = invoice_from_json(stored.content)
    return list(_invoice_lines(session, bill_id)) == list(issued.lines)


# ----- the invoice ------------------------------------------------------------------


def _render(invoice: Invoice) -> tuple[bytes, bytes]:
    """The PDF (Factur-X XML embedded) and the XML of an invoice."""
    return render_invoice_pdf(invoice), invoice_xml(invoice)


def render_document(session: Session, bill_id: str) -> bytes:
    """3.8.3 Create and send the bill (rendered): the issued bill's PDF (the Factur-X XML
    embedded) and XML rendered from the canonical content stored at issue, and stored, so
    the customer downloads the same bytes every time. Rendering is deterministic (the
    content fixes every byte, the PDF's date is the bill date), so rendering later changes
    nothing the content hash vouches for. Returns the PDF; the stored one when it exists."""
    row = _bill(session, bill_id)
    if row.bill_no is None:
        raise Conflict("a bill has a document once it is issued")
    stored = session.get(BillDocumentRow, bill_id)
    if stored is None:
        raise Conflict("the bill was issued without its content: it cannot be shown")
    if stored.pdf is not None:
        return stored.pdf
    pdf, xml = _render(invoice_from_json(stored.content))
    stored.pdf, stored.xml = pdf, xml
    stored.sha256 = hashlib.sha256(pdf).hexdigest()
    session.flush()
    return pdf


def bill_document(session: Session, bill_id: str) -> bytes:
    """The bill's PDF as issued (rendered once, on the first call when it was not yet)."""
    return render_document(session, bill_id)


def _seller() -> InvoiceParty:
    s = get_settings()
    return InvoiceParty(
        name=s.provider_name,
        street=s.provider_street,
        post_code=s.provider_post_code,
        city=s.provider_city,
        country=s.provider_country,
        vat_id=s.provider_vat_id,
        tax_number=s.provider_tax_number,
        email=s.provider_email,
        register=s.provider_register,
    )


@dataclasses.dataclass(frozen=True)
class Payer:
    party: InvoiceParty
    reverse_charge: bool
    means: str
    iban: str | None
    mandate_reference: str | None
    # How the bill is delivered: by e-mail to the billing contact, in the portal.
    delivery: tuple[str, ...] = ("email", "portal")


def _payer_of(terms: PayerTerms) -> Payer:
    return Payer(
        InvoiceParty(
            name=terms.legal_name or terms.name,
            street=terms.street,
            post_code=terms.post_code,
            city=terms.city,
            country=terms.country,
            vat_id=terms.vat_id,
            email=terms.email,
        ),
        terms.reverse_charge,
        terms.means or "bankTransfer",
        terms.iban,
        terms.mandate_reference,
        # An account that names no delivery gets its bills both ways.
        terms.delivery or ("email", "portal"),
    )


def payer(session: Session, account_id: str) -> Payer:
    """Who the bill is addressed to and how it is paid (the account's payer terms,
    3.4.4)."""
    terms = payer_terms(session, [account_id]).get(account_id)
    if terms is None:
        raise NotFound(f"no billing account with id {account_id}")
    return _payer_of(terms)


def _masked(iban: str | None) -> str | None:
    if not iban:
        return None
    compact = iban.replace(" ", "")
    return compact[:4] + "*" * (len(compact) - 8) + compact[-4:]


def invoice_of(session: Session, bill_id: str) -> Invoice:
    """3.8.3 Create and send the bill: what the issued bill says, the one value its PDF, XML and
    API read: as it was issued (a later change of the customer's address does not rewrite
    it)."""
    row = _bill(session, bill_id)
    if row.bill_no is None or row.bill_date is None:
        raise Conflict("a bill is an invoice once it is issued (it has no number yet)")
    stored = session.get(BillDocumentRow, bill_id)
    if stored is not None:
        return invoice_from_json(stored.content)
    return build_invoice(session, row)


def _lines_of(session: Session, bill_ids: Sequence[str]) -> dict[str, tuple[InvoiceLine, ...]]:
    """The invoice lines of each bill (its charges, in the order they were rated): one
    query for all the bills."""
    found: dict[str, list[Any]] = defaultdict(list)
    lines = select(
        AppliedRateRow.bill_id, AppliedRateRow.tax_excluded, AppliedRateRow.tax_rate, *_LINE_COLUMNS
    )
    if _postgres(session):
        wanted = _unnest(bill_ids)
        lines = lines.join_from(wanted, AppliedRateRow, AppliedRateRow.bill_id == wanted.c.c0)
    else:
        lines = lines.where(AppliedRateRow.bill_id.in_(list(bill_ids)))
    for r in session.execute(
        lines.order_by(
            AppliedRateRow.bill_id,
            AppliedRateRow.period_start,
            AppliedRateRow.rated_at,
            AppliedRateRow.id,
        )
    ):
        found[str(r.bill_id)].append(r)
    return {
        bill_id: tuple(
            _invoice_line(number, r) for number, r in enumerate(found.get(bill_id, ()), start=1)
        )
        for bill_id in bill_ids
    }


# A charge's columns an invoice line shows (beside its net and tax rate).
_LINE_COLUMNS = (
    AppliedRateRow.name,
    AppliedRateRow.rate_type,
    AppliedRateRow.quantity,
    AppliedRateRow.unit_price,
    AppliedRateRow.period_start,
    AppliedRateRow.period_end,
    AppliedRateRow.description,
    AppliedRateRow.product_id,
)


# A tax rate as a line shows it and its category, per rate as stored (a handful).
_RATES: dict[Any, tuple[Decimal, TaxCategory]] = {}


def _line_rate(stored: Any) -> tuple[Decimal, TaxCategory]:
    found = _RATES.get(stored)
    if found is None:
        rate = Decimal(stored)
        found = _RATES[stored] = (rate.normalize(), _category(rate))
    return found


def _invoice_line(number: int, r: Any) -> InvoiceLine:
    """The invoice line of a charge (a row with its line columns)."""
    tax_rate, category = _line_rate(r.tax_rate)
    return InvoiceLine(
        number=number,
        name=r.name,
        rate_type=r.rate_type,
        quantity=r.quantity,
        unit=UNITS.get(r.rate_type, "C62"),
        unit_price=r.unit_price,
        net=money(r.tax_excluded),
        tax_rate=tax_rate,
        tax_category=category,
        period_start=r.period_start,
        period_end=r.period_end,
        description=r.description,
        product_id=r.product_id,
    )


def _invoice_lines(session: Session, bill_id: str) -> tuple[InvoiceLine, ...]:
    return _lines_of(session, [bill_id])[bill_id]


@dataclasses.dataclass(frozen=True)
class _BillFacts:
    """What a numbered bill's invoice is made of (its row's columns)."""

    id: str
    bill_no: str | None
    bill_date: date | None
    payment_due_date: date | None
    period_start: date | None
    period_end: date | None
    category: str
    body: JsonDict
    billing_account_id: str
    owner_customer_id: str | None

    @classmethod
    def of(cls, row: CustomerBillRow) -> _BillFacts:
        return cls(
            id=row.id,
            bill_no=row.bill_no,
            bill_date=row.bill_date,
            payment_due_date=row.payment_due_date,
            period_start=row.period_start,
            period_end=row.period_end,
            category=row.category,
            body=row.body,
            billing_account_id=row.billing_account_id,
            owner_customer_id=row.owner_customer_id,
        )


def build_invoice(session: Session, row: CustomerBillRow) -> Invoice:
    """The invoice of a numbered bill from its charges, account and the provider."""
    return _build_invoices(session, [_BillFacts.of(row)])[row.id]


_Sources = tuple[
    dict[str, tuple[InvoiceLine, ...]],
    dict[str, PayerTerms],
    dict[str, tuple[str | None, date | None]],
]


def _invoice_sources(
    session: Session, bill_ids: list[str], account_ids: set[str], referenced_ids: set[str]
) -> _Sources:
    """What the invoices of these bills are made of beside the bills themselves: their
    lines (one query), their accounts' payer terms (a few), the bills credit notes
    reference (one)."""
    lines = _lines_of(session, bill_ids)
    terms = payer_terms(session, account_ids)
    referenced: dict[str, tuple[str | None, date | None]] = {}
    if referenced_ids:
        referenced = {
            str(bill_id): (bill_no, bill_date)
            for bill_id, bill_no, bill_date in session.execute(
                select(
                    CustomerBillRow.id, CustomerBillRow.bill_no, CustomerBillRow.bill_date
                ).where(CustomerBillRow.id.in_(referenced_ids))
            )
        }
    return lines, terms, referenced


def _referenced(body: JsonDict) -> str | None:
    return str(body["referencedBill"]) if body.get("referencedBill") else None


def _build_invoices(
    session: Session, rows: Sequence[_BillFacts], sources: _Sources | None = None
) -> dict[str, Invoice]:
    """The invoices of numbered bills from their charges, accounts and the provider: one
    query for the lines, the payer terms' few, one for the bills credit notes reference
    (unless read before: ``sources``)."""
    if sources is None:
        sources = _invoice_sources(
            session,
            [row.id for row in rows],
            {row.billing_account_id for row in rows},
            {r for r in (_referenced(row.body) for row in rows) if r},
        )
    lines, terms, referenced = sources
    invoices = {}
    for row in rows:
        account_terms = terms.get(row.billing_account_id)
        if account_terms is None:
            raise NotFound(f"no billing account with id {row.billing_account_id}")
        invoices[row.id] = _invoice(
            row,
            lines[row.id],
            _payer_of(account_terms),
            referenced.get(str(row.body.get("referencedBill") or "")),
        )
    return invoices


def _invoice(
    row: _BillFacts,
    lines: tuple[InvoiceLine, ...],
    who: Payer,
    referenced: tuple[str | None, date | None] | None,
) -> Invoice:
    """The invoice of a numbered bill, its lines, payer and the bill it corrects given."""
    assert row.bill_no is not None and row.bill_date is not None
    bill_id = row.id
    settings = get_settings()
    total = totals([(line.net, line.tax_rate) for line in lines])
    credit = row.category == "creditNote"
    debit = who.means == "sepaDirectDebit" and not credit
    notes: list[str] = []
    if any(t.category == "AE" for t in total.taxes) or who.reverse_charge:
        notes.append(
            "Steuerschuldnerschaft des Leistungsempfängers (§13b UStG). "
            "Reverse charge: VAT is due by the recipient."
        )
    if credit and row.body.get("description"):
        notes.append(str(row.body["description"]))
    return Invoice(
        kind="creditNote" if credit else "invoice",
        number=row.bill_no,
        issue_date=row.bill_date,
        due_date=row.payment_due_date,
        period_start=row.period_start,
        period_end=row.period_end,
        currency=str(row.body.get("amountDue", {}).get("unit") or "EUR"),
        seller=_seller(),
        buyer=who.party,
        lines=lines,
        taxes=total.taxes,
        net_total=total.net,
        tax_total=total.tax,
        gross_total=total.gross,
        prepaid=ZERO,
        amount_due=total.gross,
        payment=PaymentInstructions(
            means="sepaDirectDebit" if debit else "bankTransfer",
            creditor_iban=settings.provider_iban,
            creditor_bic=settings.provider_bic,
            creditor_bank=settings.provider_bank,
            creditor_id=settings.provider_creditor_id if debit else None,
            mandate_reference=who.mandate_reference if debit else None,
            debtor_iban=_masked(who.iban) if debit else None,
            # The pre-notification: the debit is collected on the due date.
            collection_date=row.payment_due_date if debit else None,
            reference=row.bill_no,
        ),
        bill_id=bill_id,
        billing_account_id=row.billing_account_id,
        customer_id=str(row.owner_customer_id),
        buyer_reference=str(row.owner_customer_id),
        referenced_invoice=referenced[0] if referenced is not None else None,
        referenced_invoice_date=referenced[1] if referenced is not None else None,
        notes=tuple(notes),
    )


# ----- credit notes -----------------------------------------------------------------


def credit_note(
    session: Session,
    bill_id: str,
    lines: list[tuple[str | None, Decimal, str]],
    reason: str,
    *,
    today: date,
) -> str:
    """3.8.4 Manage customer bills: correct an issued bill by a credit note that references it.
    ``lines`` are (the bill's rate id or None, net amount to credit, what for); each becomes a
    negative line at the rate's VAT rate (the standard rate when no rate is named). The credit
    note is issued at once from the credit note series. Returns its id."""
    bill = _bill(session, bill_id, lock=True)
    if bill.bill_no is None or bill.category == "creditNote":
        raise Conflict("a credit note corrects an issued invoice")
    if not lines or not reason.strip():
        raise InvalidRequest("a credit note needs at least one line and a reason")
    rates = {
        r.id: r
        for r in session.scalars(select(AppliedRateRow).where(AppliedRateRow.bill_id == bill_id))
    }
    credited = session.scalars(
        select(CustomerBillRow.amount_due).where(
            CustomerBillRow.category == "creditNote",
            CustomerBillRow.run_key.like(f"credit/{bill_id}/%"),
        )
    ).all()
    default_rate = Decimal(get_settings().vat_rate_percent)
    payer_terms = payer(session, bill.billing_account_id)
    if payer_terms.reverse_charge:
        default_rate = Decimal(0)
    note_id = new_id()
    new_rates = []
    for number, (rate_id, amount, line_text) in enumerate(lines, start=1):
        if amount <= 0:
            raise InvalidRequest("a credit note line credits a positive amount")
        source = rates.get(rate_id) if rate_id else None
        if rate_id and source is None:
            raise InvalidRequest(f"the bill has no line {rate_id}")
        net = -money(amount)
        rate = Decimal(source.tax_rate) if source else default_rate
        tax = money(net * rate / 100)
        new_rates.append(
            AppliedRateRow(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"credit/{note_id}/{number}")),
                source_key=f"credit/{note_id}/{number}",
                billing_account_id=bill.billing_account_id,
                customer_id=str(bill.owner_customer_id),
                bill_id=note_id,
                product_id=source.product_id if source else None,
                rate_type="adjustment",
                name=line_text,
                description=reason,
                period_start=source.period_start if source else bill.period_start,
                period_end=source.period_end if source else bill.period_end,
                quantity=Decimal(1),
                unit_price=net,
                tax_excluded=net,
                tax_rate=rate,
                tax_amount=tax,
                tax_included=net + tax,
                currency=source.currency if source else "EUR",
                characteristic={"creditedBill": bill_id, "creditedRate": rate_id},
            )
        )
    total = totals([(r.tax_excluded, r.tax_rate) for r in new_rates])
    if -total.gross > bill.amount_due + sum((-Decimal(c) for c in credited), ZERO):
        raise Conflict("the credit notes would credit more than the bill's amount")
    currency = str(bill.body.get("amountDue", {}).get("unit") or "EUR")
    body: JsonDict = {
        "id": note_id,
        "@type": "CustomerBill",
        "category": "creditNote",
        "state": "new",
        "runType": "offCycle",
        "description": reason,
        "referencedBill": bill_id,
        "billingPeriod": bill.body.get("billingPeriod"),
        **_amounts(total, currency),
        "billingAccount": bill.body.get("billingAccount"),
        "relatedParty": bill.body.get("relatedParty"),
        "lastUpdate": _instant(today),
    }
    session.add(
        CustomerBillRow(
            id=note_id,
            at_type="CustomerBill",
            status="new",
            owner_customer_id=bill.owner_customer_id,
            body=body,
            version=1,
            billing_account_id=bill.billing_account_id,
            run_key=f"credit/{bill_id}/{note_id}",
            category="creditNote",
            period_start=bill.period_start,
            period_end=bill.period_end,
            amount_due=total.gross,
            remaining_amount=total.gross,
        )
    )
    session.add_all(new_rates)
    session.flush()
    _counted_anew(session)
    issue(session, note_id, today=today)
    # No delivery step renders a credit note (it is made one at a time, not by the bill
    # run): its document is rendered now, so that reading it later writes nothing (a
    # reader looping over the documents would otherwise hold SQLite's write lock).
    render_document(session, note_id)
    _set_off(bill, _bill(session, note_id, lock=True), today)
    return note_id


def _set_off(bill: CustomerBillRow, note: CustomerBillRow, today: date) -> None:
    """A credit note first settles what is still open on the bill it corrects; what the
    bill no longer owes (it was paid) stays open on the note, the account's credit."""
    settled = min(bill.remaining_amount, -note.remaining_amount)
    if settled <= 0:
        return
    currency = str(bill.body.get("amountDue", {}).get("unit") or "EUR")
    for row, remaining in (
        (bill, bill.remaining_amount - settled),
        (note, note.remaining_amount + settled),
    ):
        row.remaining_amount = remaining
        row.body = {**row.body, "remainingAmount": _money(remaining, currency)}
    if bill.remaining_amount == 0 and bill.status in ("sent", "partiallyPaid"):
        _set_state(bill, "settled", today)


def credit_note_for_enquiry(
    session: Session,
    bill_id: str,
    lines: Sequence[CreditLine],
    reason: str,
    *,
    today: date,
) -> CustomerBillRow:
    """3.8.1 → 3.8.4: a billing enquiry's adjustment as a credit note. The enquiry speaks
    of amounts the customer paid (tax included); the credit note of net amounts."""
    net_lines = [
        (
            line.applied_rate_id,
            money(line.amount * 100 / (100 + line.tax_rate)),
            line.description,
        )
        for line in lines
    ]
    return _bill(session, credit_note(session, bill_id, net_lines, reason, today=today))


# ----- sending ----------------------------------------------------------------------


def send_bill(session: Session, bill_id: str, *, today: date | None = None) -> str:
    """3.8.3 Create and send the bill (sent): deliver an issued bill: a message (TMF681) to the
    billing contact with the PDF attached (to the customer's contacts where the account names
    none); in the portal it is the bill itself (the API). ``BillSent``. Returns the message id
    (the same one on a second call; empty for an account delivered in the portal only)."""
    row = _bill(session, bill_id, lock=True)
    if row.bill_no is None:
        raise IllegalTransition("a bill is sent once it is issued")
    # The message attaches the PDF (and the portal shows it): it exists before the bill
    # counts as sent.
    render_document(session, bill_id)
    day = today or utcnow().date()
    customer_id = str(row.owner_customer_id)
    invoice_name = "Gutschrift / credit note" if row.category == "creditNote" else "Rechnung / bill"
    base = get_settings().public_base_url.rstrip("/")
    url = f"{base}{BILL_PATH}/{bill_id}/document"
    amount = f"{row.amount_due} {row.body.get('amountDue', {}).get('unit', 'EUR')}"
    due = (
        f" Fällig am / due on {row.payment_due_date.isoformat()}."
        if row.payment_due_date is not None
        else ""
    )
    who = payer(session, row.billing_account_id)
    if "email" not in who.delivery:
        # Delivered in the portal only: the bill is there, in the API, once sent.
        if row.status == "validated":
            _set_state(row, "sent", day)
            record(session, BillSent(bill_id=bill_id, customer_id=customer_id, message_id=""))
        return ""
    message = write_message(
        session,
        SYSTEM,
        customer_id=customer_id,
        to=[who.party.email] if who.party.email else None,
        subject=f"Ihre {invoice_name.split(' / ')[0]} {row.bill_no} / your {invoice_name} "
        f"{row.bill_no}",
        content=(
            f"{invoice_name} {row.bill_no}: {amount}.{due}\n\n"
            f"The document: {url}\n(also in the portal, under your bills)"
        ),
        key=f"bill/{bill_id}/sent",
        category="information",
        related_entity=[{"id": bill_id, "role": "customerBill", "@referredType": "CustomerBill"}],
        attachment=[
            {
                "name": f"{row.bill_no}.pdf",
                "url": url,
                "mimeType": "application/pdf",
                "attachmentType": row.category,
            }
        ],
    )
    assert message is not None  # information messages are always written
    message_id = str(message["id"])
    if row.status == "validated":
        _set_state(row, "sent", day)
        record(session, BillSent(bill_id=bill_id, customer_id=customer_id, message_id=message_id))
    return message_id


# ----- on demand --------------------------------------------------------------------


def bill_now(
    session: Session,
    account_id: str,
    *,
    today: date,
    final: bool = False,
    key: str | None = None,
) -> str | None:
    """3.8.3 Create and send the bill, off cycle: what the account owes until ``today`` (a bill
    now on request, or the final bill at termination), issued and sent. Returns the bill id,
    None when nothing is unbilled."""
    account = session.get(BillingAccountRow, account_id)
    if account is None:
        raise NotFound(f"no billing account with id {account_id}")
    first_open = session.scalar(
        select(AppliedRateRow.period_start)
        .where(
            AppliedRateRow.billing_account_id == account_id,
            AppliedRateRow.bill_id.is_(None),
            AppliedRateRow.period_start.is_not(None),
        )
        .order_by(AppliedRateRow.period_start)
        .limit(1)
    )
    start = first_open or today.replace(day=1)
    bill_id = bill_account(
        session,
        account_id,
        min(start, today),
        today,
        today=today,
        run_key=key or f"{'final' if final else 'onDemand'}/{account_id}/{today.isoformat()}",
        category="final" if final else "onDemand",
    )
    if bill_id is None:
        return None
    issue(session, bill_id, today=today)
    send_bill(session, bill_id, today=today)
    return bill_id


def accounts_of_customer(session: Session, customer_id: str) -> list[str]:
    return list(
        session.scalars(
            select(BillingAccountRow.id)
            .where(BillingAccountRow.owner_customer_id == customer_id)
            .order_by(BillingAccountRow.id)
        )
    )


# ----- rating and the final bill ----------------------------------------------------


def rate(
    session: Session, account_id: str, period_start: date, period_end: date, *, today: date
) -> int:
    """3.8.2 before 3.8.3: the account's charges rated up to ``period_end``; the number
    of unbilled rated charges."""
    return len(rating.rate_account(session, account_id, period_start, period_end, today=today))


def final_bills(session: Session, customer_id: str, *, today: date) -> list[str]:
    """3.8.3 Create and send the bill at termination: each of the customer's accounts billed off
    cycle for what it still owes, the final bill, issued and sent. Once per account and day."""
    made = []
    for account_id in accounts_of_customer(session, customer_id):
        start = today.replace(day=1)
        rate(session, account_id, start, today, today=today)
        bill_id = bill_now(session, account_id, today=today, final=True, key=f"final/{account_id}")
        if bill_id is not None:
            made.append(bill_id)
    return made


def _has_products_in_service(session: Session, customer_id: str) -> bool:
    return (
        session.scalar(
            select(ProductRow.id)
            .where(
                ProductRow.owner_customer_id == customer_id,
                ProductRow.status.not_in(("terminated", "cancelled")),
            )
            .limit(1)
        )
        is not None
    )


def final_bill_when_last_product_ends(event: ProductsEnded) -> None:
    """Handler of ``ProductsEnded``: the customer's last product left service, so its
    accounts get their final bill."""
    with session_scope() as session:
        if not _has_products_in_service(session, event.customer_id):
            final_bills(session, event.customer_id, today=event.ended_at.date())


def final_bill_on_termination(event: CustomerTerminated) -> None:
    """Handler of ``CustomerTerminated``: the final bill of each of its accounts, unless
    products are still in service (their disconnection's ``ProductsEnded`` bills then)."""
    with session_scope() as session:
        if not _has_products_in_service(session, event.customer_id):
            final_bills(session, event.customer_id, today=utcnow().date())
