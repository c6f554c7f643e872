"""3.2.3 Report and analyse customer contacts: figures computed by hand."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from etomcrm.analytics import store
from etomcrm.analytics.contacts import contact_statistics
from etomcrm.cli import app
from etomcrm.config import get_settings
from etomcrm.db import session_scope
from tests import analytics_helpers as given
from tests.conftest import TokenFactory

PATH = "/etomcrm/v1/analytics/contactStatistics"
JAN_1, JAN_31 = date(2026, 1, 1), date(2026, 1, 31)


@pytest.fixture
def contacts(db_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Customer A: a billing question by phone (answered at once, 10 min) repeated three
    days later (5 min to answer, 15 min), an outage by e-mail (answered after 240 min,
    40 min), an offer sent (outbound). Customer B: an outage through the portal taken up
    after 300 min and still open, and another in February."""
    monkeypatch.setenv("ETOMCRM_ANALYTICS_RESPONSE_TARGET_MINUTES", "240")
    monkeypatch.setenv("ETOMCRM_ANALYTICS_HANDLING_TARGET_MINUTES", "30")
    monkeypatch.setenv("ETOMCRM_ANALYTICS_FCR_WINDOW_DAYS", "7")
    get_settings.cache_clear()
    with session_scope() as session:
        a = given.customer(session, "A")
        b = given.customer(session, "B")
        c = given.contact
        c(
            session, a, channel="phone", reason="Billing question",
            created="2026-01-05T09:00", start="2026-01-05T09:00", end="2026-01-05T09:10",
        )  # fmt: skip
        c(
            session, a, channel="email", reason="Outage",
            created="2026-01-06T08:00", start="2026-01-06T12:00", end="2026-01-06T12:40",
        )  # fmt: skip
        c(
            session, a, channel="phone", reason="billing question",
            created="2026-01-08T10:00", start="2026-01-08T10:05", end="2026-01-08T10:20",
        )  # fmt: skip
        c(session, a, channel="email", reason="Offer", created="2026-01-09T10:00",
          direction="outbound")  # fmt: skip
        c(
            session, b, channel="portal", reason="Outage", created="2026-01-10T08:00",
            start="2026-01-10T13:00", status="inProgress",
        )  # fmt: skip
        c(
            session, b, channel="phone", reason="Outage", created="2026-02-01T08:00",
            start="2026-02-01T08:00", end="2026-02-01T08:20",
        )  # fmt: skip
        store.rebuild(session)
    return {"a": a, "b": b}


def test_contact_statistics_per_channel_are_what_we_computed_by_hand(
    contacts: dict[str, str],
) -> None:
    # given January's contacts (see the fixture)
    # when they are reported per channel
    with session_scope(readonly=True) as session:
        report = contact_statistics(session, by="channel", start=JAN_1, end=JAN_31)

    # then volumes, times against the targets and first-contact resolution are:
    groups = {g.key: g for g in report.groups}
    assert [g.key for g in report.groups] == ["email", "phone", "portal"]
    phone = groups["phone"]
    assert (phone.contacts, phone.inbound, phone.outbound) == (2, 2, 0)
    assert phone.mean_response_minutes == Decimal("2.5")  # (0 + 5) / 2
    assert phone.mean_handling_minutes == Decimal("12.5")  # (10 + 15) / 2
    # the first billing question came back within 7 days: only the second one counts
    assert (phone.inbound_ended, phone.first_contact_resolved) == (2, 1)
    assert phone.first_contact_resolution == Decimal("0.500")
    email = groups["email"]
    assert (email.contacts, email.inbound, email.outbound) == (2, 1, 1)
    assert email.mean_response_minutes == Decimal("240.0")
    assert email.response_within_target == Decimal("1.000")  # 240 is within 240
    assert email.handling_within_target == Decimal("0.000")  # 40 is over 30
    assert email.first_contact_resolution == Decimal("1.000")
    portal = groups["portal"]
    assert portal.response_within_target == Decimal("0.000")  # 300 minutes
    assert portal.handled == 0 and portal.mean_handling_minutes is None
    assert portal.first_contact_resolution is None  # nothing ended yet
    total = report.total
    assert (total.contacts, total.inbound, total.outbound) == (5, 4, 1)
    assert total.mean_response_minutes == Decimal("136.3")  # (0 + 240 + 5 + 300) / 4
    assert total.response_within_target == Decimal("0.750")
    assert total.mean_handling_minutes == Decimal("21.7")  # (10 + 40 + 15) / 3
    assert total.handling_within_target == Decimal("0.667")
    assert total.first_contact_resolution == Decimal("0.667")  # 2 of 3


def test_contact_volumes_per_reason_and_customer(contacts: dict[str, str]) -> None:
    # given the contacts of both months
    with session_scope(readonly=True) as session:
        # when reported per reason in January, and per customer over all time
        by_reason = contact_statistics(session, by="reason", start=JAN_1, end=JAN_31)
        by_customer = contact_statistics(session, by="customer")

    # then reasons keep their spelling and customers count all their contacts
    assert {g.key: g.contacts for g in by_reason.groups} == {
        "Outage": 2,
        "Billing question": 1,
        "billing question": 1,
        "Offer": 1,
    }
    assert {g.key: g.contacts for g in by_customer.groups} == {contacts["a"]: 4, contacts["b"]: 2}


def test_contact_statistics_through_the_api_in_json_and_csv(
    contacts: dict[str, str], client: TestClient, auth: TokenFactory
) -> None:
    # given a support agent
    headers = auth("support")
    params = {"groupBy": "channel", "from": "2026-01-01", "to": "2026-01-31"}

    # when it reads the report as JSON and as CSV
    as_json = client.get(PATH, params=params, headers=headers)
    as_csv = client.get(PATH, params={**params, "format": "csv"}, headers=headers)

    # then both carry the same figures
    assert as_json.status_code == 200, as_json.text
    body = as_json.json()
    assert body["total"]["firstContactResolution"] == "0.667"
    assert body["responseTargetMinutes"] == 240
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["key"] for r in rows] == ["email", "phone", "portal", "(all)"]
    assert rows[-1]["meanResponseMinutes"] == "136.3"


def test_contact_statistics_refuse_bad_questions(
    db_url: str, client: TestClient, auth: TokenFactory
) -> None:
    # given an analyst
    headers = auth("analyst")

    # when the grouping, a date or the format is wrong
    answers = [
        client.get(PATH, params={"groupBy": "mood"}, headers=headers),
        client.get(PATH, params={"from": "yesterday"}, headers=headers),
        client.get(PATH, params={"format": "xlsx"}, headers=headers),
        client.get(PATH),
    ]

    # then each is refused with a TMF error body, never a 500
    assert [a.status_code for a in answers] == [400, 400, 400, 401]
    assert all(a.json()["@type"] == "Error" for a in answers)


def test_the_cli_reports_contacts_and_profitability_as_csv(
    contacts: dict[str, str], tmp_path: Path
) -> None:
    # given January's contacts, and files to write to
    by_channel, profit = tmp_path / "contacts.csv", tmp_path / "profit.csv"
    runner = CliRunner()

    # when the reports are asked for from the command line
    contacts_run = runner.invoke(
        app,
        ["analytics", "contacts", "--by", "channel", "--from", "2026-01-01",
         "--to", "2026-01-31", "--csv", str(by_channel)],
    )  # fmt: skip
    profit_run = runner.invoke(
        app, ["analytics", "profitability", "--by", "segment", "--csv", str(profit)]
    )
    table_run = runner.invoke(app, ["analytics", "contacts", "--by", "reason"])
    refused = runner.invoke(app, ["analytics", "contacts", "--from", "1.1.2026"])

    # then the CSV files carry the figures, the table is shown, a bad date is refused
    assert contacts_run.exit_code == 0, contacts_run.output
    rows = list(csv.DictReader(io.StringIO(by_channel.read_text(encoding="utf-8"))))
    assert rows[-1]["key"] == "(all)" and rows[-1]["firstContactResolution"] == "0.667"
    assert profit_run.exit_code == 0, profit_run.output
    assert profit.read_text(encoding="utf-8").startswith("key,customers,revenue")
    assert table_run.exit_code == 0 and "Outage" in table_run.output
    assert refused.exit_code == 2 and "--from must look like 2026-01-31" in refused.output
