"""Customer profitability (seed 5.3): billed revenue minus cost to serve, by hand."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient

from etomcrm.analytics import segmentation, store
from etomcrm.analytics.profitability import customer_profitability
from etomcrm.config import get_settings
from etomcrm.db import session_scope
from tests import analytics_helpers as given
from tests.analytics_helpers import at
from tests.conftest import TokenFactory

RATES = {
    "INSTALLATION": "350.00",
    "ROUTER": "180.00",
    "TICKET": "25.00",
    "REPAIR_HOUR": "60.00",
    "DUNNING_CASE": "12.00",
}
PATH = "/etomcrm/v1/analytics/customerProfitability"


@pytest.fixture
def three_months(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A dealer over January to March 2026, with another customer beside it.

    January: bill with 100.00 recurring, 530.00 one-time (installation and router
    charged), 15.00 discount; its order completed on 10 January with two sites.
    February: 100.00 recurring and a 20.00 SLA credit; a ticket repaired in 4.5 hours.
    March: 100.00 recurring and 12.50 usage; an unrepaired ticket, a dunning case; a
    bill not yet issued (999.00) that does not count.
    """
    for name, value in RATES.items():
        monkeypatch.setenv(f"ETOMCRM_ANALYTICS_COST_{name}_EUR", value)
    get_settings.cache_clear()
    with session_scope() as session:
        dealer = given.customer(session, "Autohaus Schmidt")
        other = given.customer(session, "Other GmbH")
        given.bill(
            session,
            dealer,
            date(2026, 1, 1),
            [
                ("recurring", "100.00", "p1"),
                ("oneTime", "530.00", "p1"),
                ("discount", "-15.00", "p1"),
            ],
        )
        given.bill(
            session,
            dealer,
            date(2026, 2, 1),
            [("recurring", "100.00", "p1"), ("credit", "-20.00", "p1")],
        )
        given.bill(
            session,
            dealer,
            date(2026, 3, 1),
            [("recurring", "100.00", "p1"), ("usage", "12.50", "p1")],
        )
        given.bill(session, dealer, date(2026, 3, 1), [("recurring", "999.00", "p1")], issued=False)
        given.completed_order(session, dealer, at("2026-01-10T09:00:00"), ["s1", "s2"])
        given.ticket(session, dealer, at("2026-02-03T10:00:00"), at("2026-02-03T14:30:00"))
        given.ticket(session, dealer, at("2026-03-05T08:00:00"), None)
        given.dunning_case(session, dealer, at("2026-03-20T06:00:00"))
        given.bill(session, other, date(2026, 2, 1), [("recurring", "500.00", "p9")])
        # The segments (3.9.2) computed in April: over January to March.
        with segmentation.CLOCK.at(datetime(2026, 4, 2, tzinfo=UTC)):
            store.rebuild(session)
    return dealer


def test_one_customers_profit_over_three_months_is_what_we_computed_by_hand(
    three_months: str,
) -> None:
    # given the dealer's three months (see the fixture)
    # when its profitability is computed per month
    with session_scope(readonly=True) as session:
        report = customer_profitability(session, by="month", customer_id=three_months)

    # then revenue, cost to serve and profit are, per month:
    rows = {p.key: p.as_row() for p in report.groups}
    assert rows["2026-01"]["revenue"] == "615.00"  # 100 + 530 - 15
    assert rows["2026-01"]["sitesInstalled"] == 2
    assert rows["2026-01"]["installationCost"] == "700.00"  # 2 x 350
    assert rows["2026-01"]["routerCost"] == "360.00"  # 2 x 180
    assert rows["2026-01"]["costToServe"] == "1060.00"
    assert rows["2026-01"]["profit"] == "-445.00"
    assert rows["2026-02"]["revenue"] == "100.00"
    assert rows["2026-02"]["slaCredits"] == "20.00"
    assert rows["2026-02"]["repairHours"] == "4.50"
    assert rows["2026-02"]["ticketCost"] == "295.00"  # 25 + 4.5 x 60
    assert rows["2026-02"]["profit"] == "-215.00"  # 100 - 20 - 295
    assert rows["2026-03"]["revenue"] == "112.50"  # the unissued bill does not count
    assert rows["2026-03"]["ticketCost"] == "25.00"  # open ticket: no repair hours yet
    assert rows["2026-03"]["dunningCost"] == "12.00"
    assert rows["2026-03"]["profit"] == "75.50"  # 112.50 - 25 - 12
    assert report.total.as_row()["profit"] == "-584.50"
    assert report.total.as_row()["revenue"] == "827.50"


def test_profit_per_segment_and_period_limits(three_months: str) -> None:
    # given the dealer and another customer
    with session_scope(readonly=True) as session:
        # when grouped by segment, and when limited to February and March
        by_segment = customer_profitability(session, by="segment")
        spring = customer_profitability(
            session, by="customer", start=date(2026, 2, 1), end=date(2026, 3, 1)
        )

    # then each computed segment carries its customers' figures: the dealer billed
    # 827.50 over three months (275.83 a month, mid value) and was dunned in March; the
    # other 500.00 (166.67 a month); neither has traffic
    segments = {p.key: p.as_row() for p in by_segment.groups}
    assert segments["Mid value · light usage · pays late"]["profit"] == "-584.50"
    assert segments["Mid value · light usage"]["profit"] == "500.00"
    # and January's figures are left out of the period
    customers = {p.key: p.as_row() for p in spring.groups}
    assert customers[three_months]["profit"] == "-139.50"  # -215 + 75.50


def test_profitability_through_the_api_as_csv(
    three_months: str, client: TestClient, auth: TokenFactory
) -> None:
    # given an analyst
    headers = auth("analyst")

    # when it asks for the dealer's months as CSV
    response = client.get(
        PATH,
        params={"groupBy": "month", "customerId": three_months, "format": "csv"},
        headers=headers,
    )

    # then the CSV has a row per month and the total
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["key"] for r in rows] == ["2026-01", "2026-02", "2026-03", "(all)"]
    assert [r["profit"] for r in rows] == ["-445.00", "-215.00", "75.50", "-584.50"]


def test_profitability_refuses_bad_questions_with_a_tmf_error(
    db_url: str, client: TestClient, auth: TokenFactory
) -> None:
    # given an analyst and a customer's portal user
    with session_scope() as session:
        customer_id = given.customer(session, "Portal GmbH")
    analyst, portal = auth("analyst"), auth("customer", customer_id=customer_id)

    # when they ask what cannot be answered
    by_colour = client.get(PATH, params={"groupBy": "colour"}, headers=analyst)
    bad_month = client.get(PATH, params={"from": "2026-13"}, headers=analyst)
    backwards = client.get(PATH, params={"from": "2026-03", "to": "2026-01"}, headers=analyst)
    customer = client.get(PATH, headers=portal)

    # then each is a 4xx with a TMF error body
    for response, status in ((by_colour, 400), (bad_month, 400), (backwards, 400), (customer, 403)):
        assert response.status_code == status, response.text
        assert response.json()["@type"] == "Error"
