"""3.8.5 Bank statements booked: the camt.053 sample's credits matched to bills by
reference, end-to-end id and amount, the rest to billing's work list; a returned direct
debit (camt.053 or camt.054) reverses its payment with the bank's fee; an import repeated
changes nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from typer.testing import CliRunner

from etomcrm.billing.bank_statements import import_statement
from etomcrm.billing.direct_debit import collect
from etomcrm.billing.events import PaymentReturned
from etomcrm.billing.models import AppliedRateRow, DirectDebitItemRow, PaymentRow
from etomcrm.billing.payments import record_payment
from etomcrm.cli import app as cli
from etomcrm.customer_interface.models import PartyInteractionRow
from etomcrm.db import session_scope
from tests.conftest import Handled
from tests.payment_helpers import account, bill, bill_state

DATA = Path(__file__).parent / "data" / "sepa"
STATEMENT = (DATA / "camt053_statement.xml").read_bytes()
RETURN = (DATA / "camt054_return.xml").read_bytes()
COLLECTED = date(2026, 12, 14)


def _given_the_samples_customers(*, hofer_bill: bool = False) -> dict[str, str]:
    """The payers and bills the sample statement speaks of: RE-2026-000003 collected
    from BMW last month, RE-2026-000004 and -000005 in the batch of 14 December."""
    with session_scope() as session:
        bmw = account(
            session,
            "bmw",
            name="Bayerische Motoren Werke AG",
            means="sepaDirectDebit",
            iban="DE11700700101234567890",
            mandate="BMW-0001",
        )
        ahm = account(
            session,
            "ahm",
            name="Autohaus Müller GmbH",
            means="sepaDirectDebit",
            iban="DE12500105170648489890",
            mandate="AHM-0001",
        )
        sel = account(
            session,
            "sel",
            name="Schmidt Elektro e.K.",
            means="sepaDirectDebit",
            iban="DE70760260009876543210",
            mandate="SEL-0001",
        )
        hofer = account(session, "hofer", name="Hofer Logistik KG", iban="DE77100100100123456789")
        bills = {
            "1": bill(session, bmw, "bmw", "RE-2026-000001", "119.00", date(2026, 12, 20)),
            "2": bill(session, ahm, "ahm", "RE-2026-000002", "200.00", date(2026, 12, 20)),
            "3": bill(session, bmw, "bmw", "RE-2026-000003", "119.00", date(2026, 11, 14)),
            "4": bill(session, sel, "sel", "RE-2026-000004", "59.50", COLLECTED),
            "5": bill(session, ahm, "ahm", "RE-2026-000005", "187.00", COLLECTED),
        }
        if hofer_bill:
            bills["7"] = bill(session, hofer, "hofer", "RE-2026-000077", "237.80", COLLECTED)
    with session_scope() as session:
        record_payment(
            session,
            account_id=bmw,
            amount=Decimal("119.00"),
            currency="EUR",
            payment_date=date(2026, 11, 14),
            reference="RE-2026-000003",
            means="sepaDirectDebit",
        )
        assert collect(session, COLLECTED) is not None
    return bills


def _state(bill_id: str) -> tuple[str | None, Decimal]:
    with session_scope() as session:
        return bill_state(session, bill_id)


def _counts() -> tuple[int, int, int]:
    with session_scope() as session:
        return (
            int(session.scalar(select(func.count(PaymentRow.id))) or 0),
            int(
                session.scalar(
                    select(func.count(PartyInteractionRow.id)).where(
                        PartyInteractionRow.at_type == "BillingTask"
                    )
                )
                or 0
            ),
            int(session.scalar(select(func.count(AppliedRateRow.id))) or 0),
        )


def _import(xml: bytes) -> Any:
    with session_scope() as session:
        return import_statement(session, xml)


def test_the_sample_statement_is_booked_and_matched(db_url: str, handled: Handled) -> None:
    bills = _given_the_samples_customers()
    returned = handled(PaymentReturned)
    # when the statement of 17 December is imported
    result = _import(STATEMENT)
    # then each entry is booked as the sample says
    assert [(e.entry_id, e.outcome) for e in result.entries] == [
        ("2026121600012345", "paid"),
        ("2026121600012346", "paid"),
        ("2026121600012347", "unmatched"),
        ("2026121500098765/1", "paid"),
        ("2026121500098765/2", "paid"),
        ("2026121600012348", "returned"),
        ("2026121600012349", "ignored"),
    ]
    assert _state(bills["1"]) == ("settled", Decimal("0.00"))
    assert _state(bills["2"]) == ("partiallyPaid", Decimal("100.00"))
    assert _state(bills["4"]) == ("settled", Decimal("0.00"))
    assert _state(bills["5"]) == ("settled", Decimal("0.00"))
    # the return of last month's debit opens RE-2026-000003 again, with the fee to bill
    assert _state(bills["3"]) == ("sent", Decimal("119.00"))
    with session_scope() as session:
        fee = session.scalars(select(AppliedRateRow)).one()
        assert (fee.rate_type, fee.tax_included, fee.customer_id) == (
            "fee",
            Decimal("3.00"),
            "bmw",
        )
        statuses = set(session.scalars(select(DirectDebitItemRow.status)))
        assert statuses == {"booked"}
        garbled = session.scalars(
            select(PartyInteractionRow).where(PartyInteractionRow.at_type == "BillingTask")
        ).one()
        assert "2026121600012347" in garbled.body["reason"]
        assert garbled.body["routedTo"] == "billing"
    assert [(e.customer_id, e.reason) for e in returned] == [("bmw", "AM04")]


def test_importing_the_statement_again_changes_nothing(db_url: str) -> None:
    bills = _given_the_samples_customers()
    _import(STATEMENT)
    before = _counts()
    states = {k: _state(v) for k, v in bills.items()}
    # when the same file comes again
    again = _import(STATEMENT)
    # then no payment, task or fee more, and no bill changed
    assert _counts() == before
    assert {k: _state(v) for k, v in bills.items()} == states
    assert [e.outcome for e in again.entries] == [
        "alreadyBooked",
        "alreadyBooked",
        "unmatched",
        "alreadyBooked",
        "alreadyBooked",
        "alreadyBooked",
        "ignored",
    ]


def test_a_credit_without_a_readable_reference_is_matched_by_amount_and_iban(
    db_url: str,
) -> None:
    # given Hofer's open bill of exactly the garbled entry's 237.80
    bills = _given_the_samples_customers(hofer_bill=True)
    result = _import(STATEMENT)
    assert result.entries[2].outcome == "paid"
    assert _state(bills["7"]) == ("settled", Decimal("0.00"))


def test_a_camt054_return_reverses_the_collection_it_booked(db_url: str, handled: Handled) -> None:
    # given the batch's collection of RE-2026-000004 booked from the statement
    bills = _given_the_samples_customers()
    _import(STATEMENT)
    returned = handled(PaymentReturned)
    # when the bank's camt.054 reports it returned (MD06) with a 2.50 fee
    result = _import(RETURN)
    # then the bill is open again, the fee waits for the next bill, dunning is told
    assert [(e.outcome, e.note) for e in result.entries] == [("returned", "MD06")]
    assert _state(bills["4"]) == ("sent", Decimal("59.50"))
    with session_scope() as session:
        fee = session.scalars(
            select(AppliedRateRow).where(AppliedRateRow.customer_id == "sel")
        ).one()
        assert fee.tax_included == Decimal("2.50")
        item = session.scalars(
            select(DirectDebitItemRow).where(DirectDebitItemRow.end_to_end_id == "RE-2026-000004")
        ).one()
        assert item.status == "returned"
    assert [(e.customer_id, e.bill_ids, e.reason) for e in returned] == [
        ("sel", (bills["4"],), "MD06")
    ]
    # and a second import of the notification changes nothing
    again = _import(RETURN)
    assert [e.outcome for e in again.entries] == ["alreadyBooked"]


def test_the_cli_imports_a_statement_and_says_what_matched(db_url: str, tmp_path: Path) -> None:
    _given_the_samples_customers()
    path = tmp_path / "statement.xml"
    path.write_bytes(STATEMENT)
    result = CliRunner().invoke(cli, ["billing", "import-statement", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "2026121600012347" in result.output
    assert "4 matched, 1 returned, 1 unmatched (on billing's work list), 0 booked before" in (
        result.output
    )
    again = CliRunner().invoke(cli, ["billing", "import-statement", str(path)], terminal_width=200)
    assert "0 matched, 0 returned, 1 unmatched (on billing's work list), 5 booked before" in (
        again.output
    )
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<Document/>")
    refused = CliRunner().invoke(cli, ["billing", "import-statement", str(broken)])
    assert refused.exit_code == 2
    assert "error:" in refused.output
