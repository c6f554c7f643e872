"""3.9.2 Understand customers and trends, and the usage and revenue forecast: segments
computed from hand-made customers, a standout found and a flat series left alone, a
linear series forecast on its line, intervals that widen, too short a history refused."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from etomcrm.analytics import store
from etomcrm.analytics.segmentation import add_months, last_complete_month
from etomcrm.analytics.trends import linear_forecast
from etomcrm.cli import app
from etomcrm.config import get_settings
from etomcrm.db import session_scope, utcnow
from tests import analytics_helpers as given
from tests.conftest import TokenFactory

BASE = "/etomcrm/v1/analytics"
# The segments' window is the last three complete months before today (the API reads
# the clock), so the hand-made months are counted back from the last complete one.
LAST = last_complete_month(utcnow().date())
HIGH, LOW_CARE = "High value · heavy usage", "Low value · light usage · needs care"
MID_LATE, NEW = "Mid value · light usage · pays late", "New · no data yet"


def month(back: int) -> date:
    """The first day of the month ``back`` months before the last complete one."""
    return date.fromisoformat(add_months(LAST, -back) + "-01")


def mid(back: int) -> date:
    return month(back).replace(day=15)


@pytest.fixture
def rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule's thresholds as the README states them (the defaults), pinned."""
    for name, value in {
        "MONTHS": "3",
        "HIGH_VALUE_EUR": "500.00",
        "MID_VALUE_EUR": "100.00",
        "HEAVY_USAGE": "100",
        "CARE_CONTACTS": "2",
    }.items():
        monkeypatch.setenv(f"ETOMCRM_ANALYTICS_SEGMENT_{name}", value)
    monkeypatch.setenv("ETOMCRM_ANALYTICS_TREND_STANDOUT_K", "3")
    monkeypatch.setenv("ETOMCRM_ANALYTICS_FORECAST_MIN_MONTHS", "6")
    get_settings.cache_clear()


@pytest.fixture
def four_customers(db_url: str, rule: None) -> dict[str, str]:
    """Over the last three complete months:
    Big Bank bills 600.00 a month and sends 150 GB a month;
    Corner Shop bills 50.00 and sends 10 GB a month, with six calls (two a month);
    Late Payer bills 200.00 and sends 20 GB a month, and was dunned;
    Fresh Start has nothing yet (a call, but no bill, no usage)."""
    with session_scope() as session:
        ids = {
            name: given.customer(session, name)
            for name in ("Big Bank", "Corner Shop", "Late Payer", "Fresh Start")
        }
        for back in range(3):
            for name, amount, gb in (
                ("Big Bank", "600.00", "150"),
                ("Corner Shop", "50.00", "10"),
                ("Late Payer", "200.00", "20"),
            ):
                given.bill(session, ids[name], month(back), [("recurring", amount, "p")])
                given.usage(session, ids[name], mid(back), gb)
            for day in (3, 20):
                given.contact(
                    session, ids["Corner Shop"], channel="phone", reason="Slow line",
                    created=month(back).replace(day=day).isoformat() + "T09:00:00",
                )  # fmt: skip
        given.dunning_case(session, ids["Late Payer"], given.at(mid(1).isoformat() + "T08:00:00"))
        given.contact(
            session, ids["Fresh Start"], channel="phone", reason="Welcome",
            created=mid(0).isoformat() + "T09:00:00",
        )  # fmt: skip
        # Big Bank's old bill before the window does not count towards its value.
        given.bill(session, ids["Big Bank"], month(5), [("recurring", "9000.00", "p")])
        store.rebuild(session)
    return ids


def test_segments_are_computed_from_value_usage_and_behaviour(
    four_customers: dict[str, str], client: TestClient, auth: TokenFactory
) -> None:
    # given the four customers and a marketer
    headers = auth("marketing")

    # when the segments are asked for
    response = client.get(f"{BASE}/segments", headers=headers)

    # then each customer is in the segment the rule puts it in, with its figures
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["window"] == {"from": add_months(LAST, -2), "to": LAST}
    rows = {row["segment"]: row for row in body["segments"]}
    assert set(rows) == {HIGH, LOW_CARE, MID_LATE, NEW}
    assert rows[HIGH]["revenuePerMonth"] == "600.00"  # 1800 / 3; the old 9000 left out
    assert rows[HIGH]["usagePerMonth"] == "150.000"
    assert rows[LOW_CARE]["contactsPerMonth"] == "2.00"  # six calls in three months
    assert rows[MID_LATE]["dunningCases"] == 1
    assert rows[NEW]["customers"] == 1 and rows[NEW]["revenuePerMonth"] == "0.00"
    # by revenue, highest first
    assert [r["segment"] for r in body["segments"]] == [HIGH, MID_LATE, LOW_CARE, NEW]


def test_the_members_of_a_segment_are_its_customers_with_their_figures(
    four_customers: dict[str, str], client: TestClient, auth: TokenFactory
) -> None:
    # given an analyst
    headers = auth("analyst")

    # when the drill-down of the late payers is asked for, as JSON and as CSV
    response = client.get(f"{BASE}/segments/{MID_LATE}/customers", headers=headers)
    as_csv = client.get(
        f"{BASE}/segments/{MID_LATE}/customers", params={"format": "csv"}, headers=headers
    )

    # then it is Late Payer, with its figures
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 1
    [member] = body["customers"]
    assert member["id"] == four_customers["Late Payer"]
    assert member["revenuePerMonth"] == "200.00" and member["dunningCases"] == 1
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["name"] for r in rows] == ["Late Payer"]


def test_a_customer_moves_segment_when_its_facts_change(
    four_customers: dict[str, str], client: TestClient, auth: TokenFactory
) -> None:
    # given Fresh Start, new, then billed 700.00 a month for the last three months
    with session_scope() as session:
        for back in range(3):
            given.bill(
                session, four_customers["Fresh Start"], month(back), [("recurring", "700.00", "p")]
            )
        # when the store refreshes that customer's revenue (as the bill's event does)
        store.refresh_customers(session, [four_customers["Fresh Start"]])

    # then it is of high value and light usage now, and nobody is new any more
    members = client.get(
        f"{BASE}/segments/High value · light usage/customers", headers=auth("analyst")
    )
    assert members.status_code == 200, members.text
    assert [m["name"] for m in members.json()["customers"]] == ["Fresh Start"]
    gone = client.get(f"{BASE}/segments/{NEW}/customers", headers=auth("analyst"))
    assert gone.status_code == 404


@pytest.fixture
def eight_months(db_url: str, rule: None) -> str:
    """One customer over eight complete months: 200.00 billed every month (flat), and
    traffic 20, 22, 19, 21, 20, 22, 21 GB, then 60 GB in the last month."""
    with session_scope() as session:
        customer = given.customer(session, "Steady GmbH")
        for back, gb in zip(range(7, -1, -1), (20, 22, 19, 21, 20, 22, 21, 60), strict=True):
            given.bill(session, customer, month(back), [("recurring", "200.00", "p")])
            given.usage(session, customer, mid(back), str(gb))
        store.rebuild(session)
    return customer


def test_a_trend_standout_is_found_and_a_flat_series_is_not_flagged(
    eight_months: str, client: TestClient, auth: TokenFactory
) -> None:
    # given the customer's eight months (traffic 22+21+60 over the window: light usage)
    segment = "Mid value · light usage"

    # when its segment's trends are asked for
    response = client.get(
        f"{BASE}/segmentTrends", params={"segment": segment}, headers=auth("marketing")
    )

    # then the last month's traffic stands out and the flat revenue does not
    assert response.status_code == 200, response.text
    series = {s["metric"]: s for s in response.json()["series"]}
    assert set(series) == {"revenue", "usage"}  # no contacts at all
    assert [m["value"] for m in series["revenue"]["months"]] == ["200.00"] * 8
    assert series["revenue"]["standouts"] == []
    # Earlier changes 2, -3, 2, -1, 2, -1: median 0.5, MAD 1.5, robust sd 2.2239;
    # the last change 39 lies (39 - 0.5) / 2.2239 = 17.31 robust sds from the median.
    assert series["usage"]["standouts"] == [
        {"month": LAST, "value": "60.000", "change": "39.000", "score": 17.31, "direction": "up"}
    ]
    assert [m["standout"] for m in series["usage"]["months"]] == [False] * 7 + [True]


def test_the_forecast_of_a_linear_series_lies_on_its_line_and_widens() -> None:
    # given a line, 100 + 10 x, with a little noise (+1, -1, ...) over eight months
    line = [100 + 10 * x for x in range(8)]
    noisy = [y + (1 if x % 2 == 0 else -1) for x, y in enumerate(line)]

    # when both are extended three months
    exact = linear_forecast(line, 3)
    fit = linear_forecast(noisy, 3)

    # then the exact line goes on as itself, its interval without width
    assert [round(v, 6) for _, v, _, _ in exact.points] == [180, 190, 200]
    assert all(round(lo, 6) == round(v, 6) == round(hi, 6) for _, v, lo, hi in exact.points)
    # and the noisy one's forecast holds the line within its interval, which widens
    for (h, value, lower, upper), truth in zip(fit.points, (180, 190, 200), strict=True):
        assert lower < truth < upper and abs(value - truth) < 1, h
    widths = [upper - lower for _, _, lower, upper in fit.points]
    assert widths[0] < widths[1] < widths[2]


def test_the_forecast_through_the_api_and_a_short_history_refused(
    db_url: str, rule: None, client: TestClient, auth: TokenFactory
) -> None:
    # given a customer billed 100, 110, ..., 170 (eight months, 60 GB a month) and one
    # with four months of 600.00 (and 150 GB)
    with session_scope() as session:
        growing = given.customer(session, "Growing AG")
        young = given.customer(session, "Young AG")
        for n, back in enumerate(range(7, -1, -1)):
            given.bill(session, growing, month(back), [("recurring", f"{100 + 10 * n}.00", "p")])
            given.usage(session, growing, mid(back), "60")
        for back in range(4):
            given.bill(session, young, month(back), [("recurring", "600.00", "p")])
            given.usage(session, young, mid(back), "150")
        store.rebuild(session)

    # when the revenue forecast for the next three months is asked for
    response = client.get(
        f"{BASE}/segmentForecast", params={"metric": "revenue"}, headers=auth("analyst")
    )

    # then the growing segment's revenue goes on along its line: 180, 190, 200
    assert response.status_code == 200, response.text
    forecasts = {f["segment"]: f for f in response.json()["forecasts"]}
    grown = forecasts["Mid value · light usage"]
    assert grown["status"] == "forecast" and grown["slopePerMonth"] == "10.00"
    assert [(p["month"], p["value"]) for p in grown["forecast"]] == [
        (add_months(LAST, 1), "180.00"),
        (add_months(LAST, 2), "190.00"),
        (add_months(LAST, 3), "200.00"),
    ]
    assert all(p["lower"] == p["value"] == p["upper"] for p in grown["forecast"])
    # and the young segment's four months are too few, and it says so
    short = forecasts[HIGH]
    assert short["status"] == "insufficientHistory" and short["forecast"] == []
    assert short["reason"] == "4 complete month(s) of history; a forecast needs 6"


def test_bad_questions_about_segments_are_refused_with_a_tmf_error(
    four_customers: dict[str, str], client: TestClient, auth: TokenFactory
) -> None:
    # given an analyst and a support agent
    analyst, support = auth("analyst"), auth("support")

    # when they ask what cannot be answered
    answers = [
        (client.get(f"{BASE}/segments/Nobody/customers", headers=analyst), 404),
        (client.get(f"{BASE}/segments/{HIGH}/customers?limit=0", headers=analyst), 400),
        (client.get(f"{BASE}/segmentTrends?metric=mood", headers=analyst), 400),
        (client.get(f"{BASE}/segmentForecast?metric=contacts", headers=analyst), 400),
        (client.get(f"{BASE}/segmentForecast?months=0", headers=analyst), 400),
        (client.get(f"{BASE}/segmentForecast?months=x", headers=analyst), 400),
        (client.get(f"{BASE}/segments", headers=support), 403),
    ]

    # then each is refused with its status and a TMF error body, never a 500
    for response, status in answers:
        assert response.status_code == status, response.text
        assert response.json()["@type"] == "Error"


def test_the_members_list_costs_the_same_queries_whatever_its_size(
    db_url: str,
    rule: None,
    client: TestClient,
    auth: TokenFactory,
    count_queries: Callable[[], Any],
) -> None:
    # given a segment of three customers, each with a bill and traffic
    headers = auth("analyst")

    def grow(to: int, start: int) -> None:
        with session_scope() as session:
            for n in range(start, to):
                customer = given.customer(session, f"Kunde {n:03d}")
                given.bill(session, customer, month(0), [("recurring", "30.00", "p")])
                given.usage(session, customer, mid(0), "1")
            store.rebuild(session)

    path = f"{BASE}/segments/Low value · light usage/customers?limit=200"
    grow(3, 0)
    client.get(path, headers=headers)  # the token is verified and cached by now
    counts = []
    for size, start in ((3, 3), (40, 3)):
        grow(size, start)
        with count_queries() as counter:
            response = client.get(path, headers=headers)
        assert response.status_code == 200 and response.json()["total"] == size
        counts.append(counter.count)

    # then three and forty members cost the same number of queries
    assert counts[0] == counts[1] <= 12


def test_the_cli_shows_segments_trends_and_forecasts(eight_months: str, tmp_path: Path) -> None:
    # given the customer's eight months and a file to write to
    runner = CliRunner()
    trends_file, forecast_file = tmp_path / "trends.csv", tmp_path / "forecast.csv"

    # when the segments, trends and forecast are asked for from the command line
    segments = runner.invoke(app, ["analytics", "segments"])
    trends = runner.invoke(app, ["analytics", "trends", "--csv", str(trends_file)])
    forecast = runner.invoke(app, ["analytics", "forecast", "--metric", "usage"])
    forecast_csv = runner.invoke(app, ["analytics", "forecast", "--csv", str(forecast_file)])
    refused = runner.invoke(app, ["analytics", "forecast", "--months", "40"])

    # then the table, the CSV and the forecast are there, a bad horizon refused
    assert segments.exit_code == 0, segments.output
    assert "Mid value · light usage" in segments.output and "200.00" in segments.output
    assert trends.exit_code == 0, trends.output
    rows = list(csv.DictReader(io.StringIO(trends_file.read_text(encoding="utf-8"))))
    flagged = [(r["metric"], r["month"]) for r in rows if r["standout"] == "True"]
    assert flagged == [("usage", LAST)]
    assert forecast.exit_code == 0, forecast.output
    assert forecast.output.startswith("  Forecast after " + LAST)
    assert forecast_csv.exit_code == 0, forecast_csv.output
    rows = list(csv.DictReader(io.StringIO(forecast_file.read_text(encoding="utf-8"))))
    assert [(r["metric"], r["month"]) for r in rows] == [
        (metric, add_months(LAST, h)) for metric in ("revenue", "usage") for h in (1, 2, 3)
    ]
    assert all(r["value"] == "200.00" for r in rows if r["metric"] == "revenue")
    assert refused.exit_code == 2 and "from 1 to 12" in refused.output
