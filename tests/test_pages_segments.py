"""The segment pages (3.9.2) over plain HTTP: the segments table, the trend charts with
the standout month marked and the forecast's band, the drill-down to the customers of a
segment linked to their 360, the CSV exports, the roles that may read them, and a
bounded number of queries for the customers list whatever its size."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient

from etomcrm.analytics import store
from etomcrm.db import session_scope
from tests import analytics_helpers as given
from tests.test_analytics_segments import LAST, eight_months, mid, month, rule
from tests.test_pages_portal import sign_in, user

__all__ = ["eight_months", "rule"]  # fixtures of the API's tests, used here too
SEGMENTS = "/ui/analytics/segments"
STEADY = "Mid value · light usage"


def _as(client: TestClient, role: str) -> None:
    user(f"{role}-person", role=role)
    client.cookies.clear()
    assert sign_in(client, f"{role}-person").status_code == 303


def test_the_segments_page_draws_trends_standouts_and_the_forecast_band(
    eight_months: str, client: TestClient
) -> None:
    # given a marketer signed in, and a customer whose traffic jumped last month
    _as(client, "marketing")

    # when the segments page is opened
    page = client.get(SEGMENTS)

    # then the segment is listed with its figures, linked to its customers
    assert page.status_code == 200, page.text
    html = page.text
    assert f'href="{SEGMENTS}/{quote(STEADY)}"' in html
    assert "200.00 EUR" in html
    # its charts are inline SVG: three lines (revenue, traffic, and no contacts: two),
    # the standout month marked and listed with its figure, the forecasts' bands drawn
    assert html.count("<svg") == 2
    assert html.count('<circle class="standout"') == 1
    assert f"<strong>{LAST}</strong>: 60.000 GB (+39.000, 17.31" in html
    assert html.count('<polygon class="interval"') == 2
    assert "Forecast with its interval (95 %)" in html


def test_the_drill_down_lists_the_segments_customers_and_exports_them(
    eight_months: str, client: TestClient
) -> None:
    # given an analyst signed in
    _as(client, "analyst")

    # when the segment's customers are opened, and exported
    page = client.get(f"{SEGMENTS}/{quote(STEADY)}")
    export = client.get(f"{SEGMENTS}/{quote(STEADY)}/customers.csv")
    trends = client.get(f"{SEGMENTS}.csv", params={"report": "trends"})

    # then the customer is listed, linked to its 360, and in both CSV files
    assert page.status_code == 200, page.text
    assert f'href="/ui/customers/{eight_months}"' in page.text and "Steady GmbH" in page.text
    assert export.headers["content-type"].startswith("text/csv")
    assert [r["name"] for r in csv.DictReader(io.StringIO(export.text))] == ["Steady GmbH"]
    rows = list(csv.DictReader(io.StringIO(trends.text)))
    assert [(r["metric"], r["month"]) for r in rows if r["standout"] == "True"] == [("usage", LAST)]


def test_only_analysts_marketers_and_admins_see_the_segments(
    eight_months: str, client: TestClient
) -> None:
    # given a support agent signed in
    _as(client, "support")

    # when it opens the segments, and an analyst asks for an unknown export or segment
    refused = client.get(SEGMENTS)
    _as(client, "analyst")
    bad_export = client.get(f"{SEGMENTS}.csv", params={"report": "mood"})
    unknown = client.get(f"{SEGMENTS}/Nobody")

    # then each is refused with its status
    assert refused.status_code == 403
    assert bad_export.status_code == 400
    assert unknown.status_code == 404


def test_the_customers_of_a_segment_cost_the_same_queries_for_forty_as_for_three(
    db_url: str, rule: None, client: TestClient, count_queries: Callable[[], Any]
) -> None:
    # given an analyst signed in and a segment of three customers, then of forty
    _as(client, "analyst")
    path = f"{SEGMENTS}/{quote('Low value · light usage')}"

    def grow(start: int, to: int) -> int:
        with session_scope() as session:
            for n in range(start, to):
                customer = given.customer(session, f"Kunde {n:03d}")
                given.bill(session, customer, month(0), [("recurring", "30.00", "p")])
                given.usage(session, customer, mid(0), "1")
            store.rebuild(session)
        client.get(path)  # the session's principal is cached by now
        with count_queries() as counter:
            page = client.get(path)
        assert page.status_code == 200 and page.text.count('class="customer"') == to
        return int(counter.count)

    # when the page is read for each
    small, large = grow(0, 3), grow(3, 40)

    # then both cost the same number of queries
    assert small == large
