"""Import of a provider's history: all rows or none, bad rows named by line."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from etomcrm.analytics.history import HistoryRefused, import_history
from etomcrm.analytics.models import AnHistoryCustomer, AnHistoryImport
from etomcrm.cli import app
from etomcrm.config import get_settings
from etomcrm.db import session_scope
from tests import analytics_helpers as given
from tests.conftest import TokenFactory

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "history.csv"
HEADER = (
    "customer_id,name,segment,tenure_months,contract_type,payment_method,"
    "monthly_charges,total_charges,services,churned,observed_on\n"
)
GOOD = "H-1,Good GmbH,dealer,12,one-year,direct-debit,99.00,1188.00,access;router,no,2025-12-31\n"
PATH = "/etomcrm/v1/analytics/historyImport"


def _imported() -> int:
    with session_scope(readonly=True) as session:
        return int(session.scalar(select(func.count()).select_from(AnHistoryCustomer)) or 0)


def _import(text: str) -> None:
    with session_scope() as session:
        import_history(session, io.StringIO(text), file_name="t.csv", imported_by="test")


def test_the_example_file_is_imported_and_linked_to_a_live_customer(db_url: str) -> None:
    # given a live customer whose id the provider's history uses too
    with session_scope() as session:
        live = given.customer(session, "Autohaus Berger KG")
    text = EXAMPLE.read_text(encoding="utf-8").replace("H-1001", live)

    # when the example file is imported
    with session_scope() as session:
        result = import_history(
            session, io.StringIO(text), file_name="history.csv", imported_by="test"
        )

    # then every row is history, and the one with a live id is linked to it
    assert (result.rows, result.linked) == (5, 1)
    with session_scope(readonly=True) as session:
        rows = {r.external_id: r for r in session.scalars(select(AnHistoryCustomer))}
        assert session.scalar(select(AnHistoryImport.row_count)) == 5
    assert rows[live].customer_id == live
    assert rows["H-1002"].customer_id is None
    assert rows["H-1002"].churned is True
    assert rows["H-1003"].services == "access;router;sla-silver;traffic"
    assert rows["H-1003"].monthly_charges == Decimal("1250.00")
    assert rows["H-1005"].services == "" and rows["H-1005"].observed_on is None


def test_bad_rows_are_named_by_line_and_nothing_is_imported(db_url: str) -> None:
    # given a file with good rows and a bad one on lines 3, 4, 5 and 6
    text = (
        HEADER
        + GOOD
        + "H-2,,dealer,twelve,one-year,direct-debit,99.00,1188.00,access,no,\n"
        + "H-3,,dealer,3,weekly,cash,99.999,-1,access,maybe,31.12.2025\n"
        + "H-1,Again,dealer,1,one-year,direct-debit,1.00,1.00,access,no,\n"
        + ",,dealer,1,one-year,direct-debit,1.00,1.00,access,no,\n"
        + GOOD.replace("H-1", "H-7")
    )

    # when it is imported
    with pytest.raises(HistoryRefused) as refused:
        _import(text)

    # then each bad row is named by its line with what is wrong, and nothing is stored
    errors = dict(refused.value.errors)
    assert sorted(errors) == [3, 4, 5, 6]
    assert "tenure_months must be whole months" in errors[3]
    faults = (
        "contract_type",
        "payment_method",
        "monthly_charges has at most two decimals",
        "total_charges must be an amount",
        "churned must be yes or no",
        "observed_on",
    )
    assert all(fault in errors[4] for fault in faults), errors[4]
    assert "'H-1' is on line 2 too" in errors[5]
    assert "customer_id is missing" in errors[6]
    assert "line 3:" in refused.value.message
    assert _imported() == 0


def test_a_header_that_is_wrong_refuses_the_file(db_url: str) -> None:
    # given files whose header misses a column or has one unknown
    missing = HEADER.replace(",churned", "") + GOOD
    unknown = HEADER.replace("services", "servcies") + GOOD

    # when they are imported, then each is refused on line 1
    for text, words in ((missing, "columns missing: churned"), (unknown, "unknown: servcies")):
        with pytest.raises(HistoryRefused) as refused:
            _import(text)
        assert refused.value.errors[0][0] == 1
        assert words in refused.value.errors[0][1]
    assert _imported() == 0


def test_a_customer_imported_before_is_refused_not_overwritten(db_url: str) -> None:
    # given a file imported once
    _import(HEADER + GOOD)

    # when a second file names the same customer
    with pytest.raises(HistoryRefused) as refused:
        _import(HEADER + GOOD.replace("99.00", "10.00") + GOOD.replace("H-1", "H-8"))

    # then it is refused on that line, and the first import is unchanged
    assert refused.value.errors == [(2, "customer_id 'H-1' was imported before")]
    assert _imported() == 1


def test_the_cli_imports_a_file_and_names_bad_lines(db_url: str, tmp_path: Path) -> None:
    # given a good file and a bad one
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(HEADER + GOOD, encoding="utf-8")
    bad.write_text(
        HEADER + GOOD.replace("H-1", "H-9").replace(",no,", ",perhaps,"), encoding="utf-8"
    )
    runner = CliRunner()

    # when each is imported with `etomcrm analytics import`
    refused = runner.invoke(app, ["analytics", "import", str(bad)])
    imported = runner.invoke(app, ["analytics", "import", str(good)])

    # then the bad one is refused with its line and the good one is imported
    assert refused.exit_code == 2
    assert "line 2" in refused.output and "churned must be yes or no" in refused.output
    assert imported.exit_code == 0, imported.output
    assert "imported 1 row(s)" in imported.output
    assert _imported() == 1


def test_the_api_imports_csv_and_refuses_bad_rows_with_a_tmf_error(
    db_url: str, client: TestClient, auth: TokenFactory
) -> None:
    # given an analyst and a sales person
    analyst, sales = auth("analyst"), auth("sales")
    csv_type = {"Content-Type": "text/csv"}

    # when they post files
    bad = client.post(PATH, content=HEADER + "H-1,,,x,,,,,,,\n", headers={**analyst, **csv_type})
    json_body = client.post(PATH, json={"rows": []}, headers=analyst)
    not_theirs = client.post(PATH, content=HEADER + GOOD, headers={**sales, **csv_type})
    good = client.post(PATH, content=HEADER + GOOD, headers={**analyst, **csv_type})

    # then bad input gets a TMF error naming the line, and the good file is imported
    assert bad.status_code == 400 and bad.json()["@type"] == "Error"
    assert "line 2:" in bad.json()["message"]
    assert json_body.status_code == 415
    assert not_theirs.status_code == 403
    assert good.status_code == 201, good.text
    assert good.json()["rows"] == 1
    assert _imported() == 1


def test_the_api_refuses_a_file_above_its_limit(
    db_url: str, client: TestClient, auth: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an API that takes history files of at most 100 bytes
    monkeypatch.setenv("ETOMCRM_ANALYTICS_HISTORY_MAX_BYTES", "100")
    get_settings.cache_clear()

    # when a larger file is posted
    response = client.post(
        PATH, content=HEADER + GOOD, headers={**auth("analyst"), "Content-Type": "text/csv"}
    )

    # then it is refused with 413 and nothing is imported
    assert response.status_code == 413 and "the CLI" in response.json()["message"]
    assert _imported() == 0
