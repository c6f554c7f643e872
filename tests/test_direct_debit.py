"""3.8.5 SEPA direct debit: one schema-valid pain.008 per collection date with every
direct-debit bill due that day, FRST then RCUR per mandate, CORE and B2B, kept with its
bills; the collection is booked when the bank credits it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sepaxml
from lxml import etree
from sepaxml.validation import try_valid_xml
from typer.testing import CliRunner

from etomcrm.billing.direct_debit import batch_items, collect
from etomcrm.cli import app as cli
from etomcrm.db import session_scope
from tests.payment_helpers import account, bill

PAIN = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"}
DUE = date(2026, 12, 15)
CREATED = datetime(2026, 12, 10, 7, 30, tzinfo=UTC)


def _schema() -> Any:
    path = Path(sepaxml.__file__).parent / "schemas" / "pain.008.001.02.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


def _blocks(xml: bytes) -> list[tuple[str, str, list[str], list[str]]]:
    root = etree.fromstring(xml)
    return [
        (
            block.findtext("p:PmtTpInf/p:LclInstrm/p:Cd", namespaces=PAIN),
            block.findtext("p:PmtTpInf/p:SeqTp", namespaces=PAIN),
            block.xpath("p:DrctDbtTxInf/p:PmtId/p:EndToEndId/text()", namespaces=PAIN),
            block.xpath("p:DrctDbtTxInf/p:InstdAmt/text()", namespaces=PAIN),
        )
        for block in root.iterfind("p:CstmrDrctDbtInitn/p:PmtInf", PAIN)
    ]


def _given_payers() -> dict[str, str]:
    with session_scope() as session:
        core = account(
            session,
            "c-1",
            name="Schmidt Elektro e.K.",
            means="sepaDirectDebit",
            iban="DE70760260009876543210",
            mandate="SEL-0001",
        )
        b2b = account(
            session,
            "c-2",
            name="Bayerische Motoren Werke AG",
            means="sepaDirectDebit",
            iban="DE11700700101234567890",
            mandate="BMW-0001",
            scheme="B2B",
        )
        transfer = account(session, "c-3", name="Hofer Logistik KG")
        bill(session, core, "c-1", "RE-2026-000004", "59.50", DUE)
        bill(session, core, "c-1", "RE-2026-000006", "10.00", DUE, status="validated")
        bill(
            session,
            b2b,
            "c-2",
            "RE-2026-000005",
            "187.00",
            DUE,
            remaining="87.00",
            status="partiallyPaid",
        )
        bill(session, b2b, "c-2", "RE-2026-000008", "5.00", date(2026, 12, 16))
        bill(session, b2b, "c-2", "RE-2026-000009", "5.00", DUE, status="settled", remaining="0")
        bill(session, transfer, "c-3", "RE-2026-000007", "237.80", DUE)
    return {"core": core, "b2b": b2b, "transfer": transfer}


def test_a_batch_per_collection_date_validates_and_keeps_its_bills(db_url: str) -> None:
    # given direct-debit bills due on the 15th (and a transfer bill, a later one, a paid one)
    _given_payers()
    # when the 15th is collected
    with session_scope() as session:
        batch = collect(session, DUE, created_at=CREATED)
        assert batch is not None
        xml = batch.xml.encode()
        items = [
            (i.end_to_end_id, i.sequence, i.amount, i.status)
            for i in batch_items(session, batch.id)
        ]
        total, count = batch.total, batch.debit_count
    # then one file, schema-valid, one debit per account, what is open of each bill
    assert _schema().validate(etree.fromstring(xml))
    try_valid_xml(xml, "pain.008.001.02")
    assert _blocks(xml) == [
        ("CORE", "FRST", ["RE-2026-000004"], ["69.50"]),
        ("B2B", "FRST", ["RE-2026-000005"], ["87.00"]),
    ]
    assert (total, count) == (Decimal("156.50"), 2)
    assert items == [
        ("RE-2026-000004", "FRST", Decimal("59.50"), "pending"),
        ("RE-2026-000004", "FRST", Decimal("10.00"), "pending"),
        ("RE-2026-000005", "FRST", Decimal("87.00"), "pending"),
    ]
    assert b"RE-2026-000004 RE-2026-000006" in xml


def test_collecting_a_date_again_answers_the_same_file_and_the_next_is_rcur(
    db_url: str,
) -> None:
    accounts = _given_payers()
    with session_scope() as session:
        first = collect(session, DUE, created_at=CREATED)
        assert first is not None
        first_id, first_xml = first.id, first.xml
    with session_scope() as session:
        again = collect(session, DUE)
        assert again is not None
        assert (again.id, again.xml) == (first_id, first_xml)
    # the next month's bill of the same mandate is a recurring collection
    with session_scope() as session:
        bill(session, accounts["core"], "c-1", "RE-2027-000001", "59.50", date(2027, 1, 15))
    with session_scope() as session:
        nxt = collect(session, date(2027, 1, 15))
        assert nxt is not None
        assert _blocks(nxt.xml.encode()) == [("CORE", "RCUR", ["RE-2027-000001"], ["59.50"])]


def test_nothing_due_writes_no_file(db_url: str) -> None:
    _given_payers()
    with session_scope() as session:
        assert collect(session, date(2026, 12, 1)) is None


def test_collecting_takes_a_bounded_number_of_queries(
    db_url: str, count_queries: Callable[[], Any]
) -> None:
    def collected(day: date, accounts: int) -> int:
        with session_scope() as session:
            for n in range(accounts):
                account_id = account(
                    session, f"q-{day}-{n}", means="sepaDirectDebit", mandate=f"Q{day:%m%d}-{n}"
                )
                bill(session, account_id, f"q-{day}-{n}", f"Q-{day:%m%d}-{n}", "10.00", day)
        with count_queries() as counter, session_scope() as session:
            assert collect(session, day) is not None
        return int(counter.count)

    few = collected(date(2026, 12, 1), 1)
    assert collected(date(2026, 12, 2), 6) == few


def test_the_cli_writes_the_file_of_a_collection_date(db_url: str, tmp_path: Path) -> None:
    _given_payers()
    out = tmp_path / "pain.xml"
    result = CliRunner().invoke(
        cli, ["billing", "collect", "--date", "2026-12-15", "--out", str(out)], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "2 debit(s), 156.50 EUR" in result.output
    assert _schema().validate(etree.fromstring(out.read_bytes()))
    none = CliRunner().invoke(
        cli, ["billing", "collect", "--date", "2026-12-01", "--out", str(tmp_path / "x.xml")]
    )
    assert "nothing due" in none.output
    assert not (tmp_path / "x.xml").exists()
    bad = CliRunner().invoke(cli, ["billing", "collect", "--date", "15.12.2026", "--out", "x"])
    assert bad.exit_code == 2
