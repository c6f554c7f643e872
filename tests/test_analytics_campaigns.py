"""Campaign success and planning (seed 5.3; 3.3): control groups, billed revenue
attributed, uplift with its interval, target lists from a segment and a score — the
figures computed by hand."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from etomcrm.analytics import store
from etomcrm.analytics.models import AnCustomer
from etomcrm.cli import app
from etomcrm.config import get_settings
from etomcrm.core import resources
from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope, utcnow
from etomcrm.marketing.models import CampaignTargetRow
from etomcrm.marketing.service import (
    CAMPAIGN_KIND,
    distribute_collateral,
    record_campaign_response,
)
from etomcrm.retention.campaign_plans import plan_campaign
from etomcrm.security.service import Principal, Role
from etomcrm.selling.prospects import (
    SALES_LEAD_KIND,
    advance_opportunity,
    close_opportunity,
    qualify_lead,
)
from tests import analytics_helpers as given
from tests.conftest import TokenFactory
from tests.test_pages_portal import csrf_of, sign_in, user

MARKETING = "/tmf-api/marketing/v4/campaign"
SUCCESS = "/etomcrm/v1/analytics/campaignSuccess"
PLAN = "/etomcrm/v1/analytics/campaignPlan"
MARKETER = Principal(id="u-mkt", name="mia.marketing", role=Role.MARKETING)
SELLER = Principal(id="u-sales", name="sarah.sales", role=Role.SALES)


def _first_of_month(day: date, months: int = 0) -> date:
    number = day.year * 12 + day.month - 1 + months
    return date(number // 12, number % 12 + 1, 1)


def _campaign(client: TestClient, headers: dict[str, str], name: str, ids: list[str]) -> str:
    body = {
        "name": name,
        "budget": {"unit": "EUR", "value": 3000},
        "targetSegment": {"customer": [{"id": c, "@referredType": "Customer"} for c in ids]},
    }
    response = client.post(MARKETING, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _win(session: Any, campaign_id: str, customer_id: str, *, won: bool = True) -> None:
    lead = record_campaign_response(
        session, MARKETER, campaign_id, customer_id=customer_id, name="wants the extranet"
    )
    opportunity = qualify_lead(
        session,
        SELLER,
        lead["id"],
        owner="sarah.sales",
        probability=50,
        expected_revenue=Decimal(1000),
    )
    if won:
        advance_opportunity(session, SELLER, opportunity["id"], stage="proposal")
    close_opportunity(session, SELLER, opportunity["id"], won=won, reason="price")


@dataclass(frozen=True)
class Controlled:
    campaign_id: str
    other_id: str
    treated: list[str]
    control: list[str]
    winners: list[str]


@pytest.fixture
def controlled(client: TestClient, auth: TokenFactory) -> Controlled:
    """Fifty reachable customers; a campaign (budget 3000 EUR) sets them as targets with a
    control share of 0.2 (seed 7): 40 treated, 10 control. It is distributed; then

    - 10 treated customers respond, are qualified and won, and order the day after;
    - 1 treated customer responds and its opportunity is lost; 1 responds and its lead
      is rejected (a response, not a lead);
    - 1 control customer orders the day after (without any campaign lead);
    - the first winner is billed: product p-old in the month before the win (40.00) and
      in the month of the win (40.00) — not brought by the campaign; product p-new in
      the month of the win (30.00 recurring, 100.00 one-time, a 5.00 SLA credit) and in
      the next month (30.00) — attributed: 160.00;
    - another winner is billed 25.00 for p-new2 in the month of the win: attributed.

    A second campaign with the same budget keeps no control group.
    """
    marketing = auth("marketing")
    with session_scope() as session:
        ids = [
            given.customer(session, f"Dealer {i:02d}", segment="dealer", email=f"d{i}@x.example")
            for i in range(50)
        ]
    campaign_id = _campaign(client, marketing, "Extranet for dealers", ids)
    other_id = _campaign(client, marketing, "Without control group", ids[:2])
    response = client.post(
        f"{MARKETING}/{campaign_id}/targets",
        json={"controlShare": 0.2, "seed": 7},
        headers=marketing,
    )
    assert response.status_code == 200, response.text
    assert client.post(f"{MARKETING}/{campaign_id}/distribute", headers=marketing).is_success
    with session_scope() as session:
        groups = dict(
            session.execute(
                select(CampaignTargetRow.customer_id, CampaignTargetRow.group).where(
                    CampaignTargetRow.campaign_id == campaign_id
                )
            ).all()
        )
    treated = sorted(c for c, g in groups.items() if g == "treated")
    control = sorted(c for c, g in groups.items() if g == "control")
    winners = treated[:10]
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    today = datetime.now(UTC).date()
    with session_scope() as session:
        for customer_id in winners:
            _win(session, campaign_id, customer_id)
            given.completed_order(session, customer_id, tomorrow, ["s1"])
        _win(session, campaign_id, treated[10], won=False)
        rejected = record_campaign_response(
            session, MARKETER, campaign_id, customer_id=treated[11], name="not really"
        )
        resources.patch(session, SALES_LEAD_KIND, SELLER, rejected["id"], {"status": "rejected"})
        given.completed_order(session, control[0], tomorrow, ["s9"])
        first = winners[0]
        given.bill(session, first, _first_of_month(today, -1), [("recurring", "40.00", "p-old")])
        given.bill(
            session,
            first,
            _first_of_month(today),
            [
                ("recurring", "40.00", "p-old"),
                ("recurring", "30.00", "p-new"),
                ("oneTime", "100.00", "p-new"),
                ("credit", "-5.00", "p-new"),
            ],
        )
        given.bill(session, first, _first_of_month(today, 1), [("recurring", "30.00", "p-new")])
        given.bill(session, winners[1], _first_of_month(today), [("recurring", "25.00", "p-new2")])
        # a customer who was not won is billed too: nothing of it is attributed
        given.bill(session, treated[20], _first_of_month(today), [("recurring", "99.00", "p-x")])
        store.rebuild(session)
    return Controlled(campaign_id, other_id, treated, control, winners)


def _success(client: TestClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    response = client.get(SUCCESS, headers=headers)
    assert response.status_code == 200, response.text
    return {row["campaignId"]: row for row in response.json()["campaigns"]}


def test_control_share_holds_out_the_right_customers_and_they_get_no_message(
    controlled: Controlled,
) -> None:
    # given the campaign's targets set with a share of 0.2 and seed 7, then distributed
    # then 10 of the 50 (0.2 x 50) are control, the rest treated
    assert len(controlled.control) == 10
    assert len(controlled.treated) == 40
    # and the draw is the seeded one: the same 50 ids and seed draw the same ten
    import random

    everyone = sorted(controlled.control + controlled.treated)
    assert sorted(random.Random(7).sample(everyone, 10)) == controlled.control
    # and only the treated customers were written to
    with session_scope(readonly=True) as session:
        written = set(
            session.scalars(
                select(CommunicationMessageRow.owner_customer_id).where(
                    CommunicationMessageRow.owner_customer_id.in_(everyone)
                )
            )
        )
    assert written == set(controlled.treated)


def test_campaign_success_is_what_we_computed_by_hand(
    controlled: Controlled, client: TestClient, auth: TokenFactory
) -> None:
    # given the campaign of the fixture
    # when an analyst asks for the success of every campaign
    rows = _success(client, auth("analyst"))

    # then the campaign's figures are:
    row = rows[controlled.campaign_id]
    assert row["sent"] == 40  # the treated targets only
    assert row["responses"] == 12  # 10 won, 1 lost, 1 rejected
    assert row["leads"] == 11  # the rejected lead is no lead
    assert row["opportunities"] == 11
    assert row["won"] == 10
    assert row["wonCustomers"] == 10
    assert row["budget"] == "3000.00"
    assert row["costPerLead"] == "272.73"  # 3000 / 11
    assert row["costPerWonCustomer"] == "300.00"  # 3000 / 10
    # billed revenue: p-new of the first winner 30 + 100 + 30 (the credit is no revenue,
    # p-old was billed before the win), p-new2 of the second 25.00
    assert row["billedRevenue"] == "185.00"
    # conversion: 10 of 40 treated ordered, 1 of 10 control
    assert (row["treated"], row["treatedConverted"], row["treatedConversion"]) == (40, 10, "0.2500")
    assert (row["control"], row["controlConverted"], row["controlConversion"]) == (10, 1, "0.1000")
    assert row["uplift"] == "0.1500"
    # Newcombe's hybrid score interval, by hand with z = 1.959964 (z^2 = 3.841459):
    # Wilson 10/40: centre (0.25 + 3.841459/80) = 0.298018, half-width
    #   1.959964 x sqrt(0.25 x 0.75/40 + 3.841459/6400) = 0.142523, over 1 + 3.841459/40
    #   = 1.096036: l1 = 0.141871, u1 = 0.401940
    # Wilson 1/10: centre 0.1 + 3.841459/20 = 0.292073, half-width
    #   1.959964 x sqrt(0.1 x 0.9/10 + 3.841459/400) = 0.267331, over 1.384146:
    #   l2 = 0.017876, u2 = 0.404150
    # lower = 0.15 - sqrt((0.25 - 0.141871)^2 + (0.404150 - 0.1)^2)
    #       = 0.15 - sqrt(0.011692 + 0.092507) = 0.15 - 0.322799 = -0.172799
    # upper = 0.15 + sqrt((0.401940 - 0.25)^2 + (0.1 - 0.017876)^2)
    #       = 0.15 + sqrt(0.023086 + 0.006744) = 0.15 + 0.172714 = 0.322714
    assert row["upliftLower95"] == "-0.1728"
    assert row["upliftUpper95"] == "0.3227"
    assert row["controlGroup"] == "kept"
    # and the campaign that kept none says so, with no uplift
    other = rows[controlled.other_id]
    assert other["controlGroup"] == "no control group kept"
    assert other["uplift"] is None
    assert other["costPerLead"] is None  # no leads: no cost per lead


def test_drill_down_names_the_won_customers_and_csv_carries_the_figures(
    controlled: Controlled, client: TestClient, auth: TokenFactory
) -> None:
    # given a marketing user
    marketing = auth("marketing")

    # when it asks for the customers behind "won" and "controlConverted", and the CSV
    won = client.get(
        f"{SUCCESS}/{controlled.campaign_id}/customers", params={"figure": "won"}, headers=marketing
    )
    control = client.get(
        f"{SUCCESS}/{controlled.campaign_id}/customers",
        params={"figure": "controlConverted"},
        headers=marketing,
    )
    as_csv = client.get(SUCCESS, params={"format": "csv"}, headers=marketing)

    # then they are the winners and the one control customer who ordered
    assert won.status_code == 200, won.text
    assert sorted(c["customerId"] for c in won.json()["customers"]) == controlled.winners
    assert [c["customerId"] for c in control.json()["customers"]] == [controlled.control[0]]
    # each with the segment the store computed for it (3.9.2)
    with session_scope(readonly=True) as session:
        computed = dict(
            session.execute(
                select(AnCustomer.customer_id, AnCustomer.segment).where(
                    AnCustomer.customer_id.in_(controlled.winners)
                )
            ).all()
        )
    assert {c["customerId"]: c["segment"] for c in won.json()["customers"]} == computed
    # and the CSV has one line per campaign with the same figures
    lines = {r["campaignId"]: r for r in csv.DictReader(io.StringIO(as_csv.text))}
    assert lines[controlled.campaign_id]["upliftLower95"] == "-0.1728"
    assert lines[controlled.campaign_id]["billedRevenue"] == "185.00"


def test_campaign_success_refuses_bad_questions(
    controlled: Controlled, client: TestClient, auth: TokenFactory
) -> None:
    # given an analyst, a sales user, and the distributed (now active) campaign
    analyst, marketing, sales = auth("analyst"), auth("marketing"), auth("sales")
    path = f"{SUCCESS}/{controlled.campaign_id}/customers"

    # when they ask what cannot be answered or may not be done
    answers = {
        "unknown figure": (client.get(path, params={"figure": "colour"}, headers=analyst), 400),
        "unknown campaign": (client.get(f"{SUCCESS}/nope/customers", headers=analyst), 404),
        "bad format": (client.get(SUCCESS, params={"format": "xml"}, headers=analyst), 400),
        "sales role": (client.get(SUCCESS, headers=sales), 403),
        "targets of an active campaign": (
            client.post(
                f"{MARKETING}/{controlled.campaign_id}/targets",
                json={"controlShare": 0.1},
                headers=marketing,
            ),
            409,
        ),
        "share above one half": (
            client.post(
                f"{MARKETING}/{controlled.other_id}/targets",
                json={"controlShare": 0.7},
                headers=marketing,
            ),
            400,
        ),
        "unknown target": (
            client.post(
                f"{MARKETING}/{controlled.other_id}/targets",
                json={"customer": [{"id": "nobody"}]},
                headers=marketing,
            ),
            400,
        ),
        "seed not a number": (
            client.post(
                f"{MARKETING}/{controlled.other_id}/targets",
                json={"seed": "seven"},
                headers=marketing,
            ),
            400,
        ),
    }

    # then each is a 4xx with a TMF error body
    for what, (response, status) in answers.items():
        assert response.status_code == status, (what, response.text)
        assert response.json()["@type"] == "Error", what


def test_campaign_success_costs_the_same_queries_for_one_campaign_or_many(
    controlled: Controlled,
    client: TestClient,
    auth: TokenFactory,
    count_queries: Callable[[], Any],
) -> None:
    # given the two campaigns, and an analyst whose token is checked once already
    analyst = auth("analyst")
    client.get(SUCCESS, headers=analyst)
    with count_queries() as few:
        assert client.get(SUCCESS, headers=analyst).status_code == 200

    # when eight more campaigns with their own targets and control groups are added
    marketing = auth("marketing")
    for i in range(8):
        campaign_id = _campaign(client, marketing, f"More {i}", controlled.treated[:5])
        client.post(
            f"{MARKETING}/{campaign_id}/targets", json={"controlShare": 0.4}, headers=marketing
        )
    with session_scope() as session:
        store.rebuild(session)
    with count_queries() as many:
        response = client.get(SUCCESS, headers=analyst)

    # then the list costs the same statements
    assert len(response.json()["campaigns"]) == 10
    assert many.count == few.count
    assert few.count <= 8


def test_campaigns_from_the_cli_as_table_and_csv(controlled: Controlled, tmp_path: Path) -> None:
    # given the campaigns of the fixture
    runner = CliRunner()
    out = tmp_path / "campaigns.csv"

    # when the analyst runs the CLI for the table and for the CSV
    table = runner.invoke(app, ["analytics", "campaigns"])
    written = runner.invoke(app, ["analytics", "campaigns", "--csv", str(out)])

    # then the table shows the campaigns, the CSV their figures
    assert table.exit_code == 0, table.output
    assert "Extranet" in table.output
    assert "no control group" in table.output
    assert "[-0.1728, 0.3227]" in table.output
    assert written.exit_code == 0, written.output
    rows = {r["campaignId"]: r for r in csv.DictReader(io.StringIO(out.read_text()))}
    assert rows[controlled.campaign_id]["uplift"] == "0.1500"
    assert rows[controlled.campaign_id]["costPerWonCustomer"] == "300.00"


# ----- planning ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    picked: list[str]  # at or above 70, in the planned segment
    below: list[str]
    segment: str  # as the store holds it


@pytest.fixture
def scored(db_url: str, monkeypatch: pytest.MonkeyPatch, client: TestClient) -> Scored:
    """Customers of two segments with churn assessments:

    segment A: churn 85, 80, 75, 70 (picked at threshold 70); 69 (not); one assessed 90
    long ago but 30 since (not: the latest counts); one never assessed (not);
    segment B: one with 95 (not: another segment).

    A past campaign reached 4 customers of B (1 responded) and 2 of A (both responded):
    overall 3/6 = 0.5, segment B 1/4 = 0.25; with at least 4 reached needed, A's own
    rate (2 reached) is not enough and the overall rate is used for it.
    """
    monkeypatch.setenv("ETOMCRM_ANALYTICS_PLAN_MIN_REACHED", "4")
    get_settings.cache_clear()
    old, new = given.at("2026-01-10T08:00:00"), given.at("2026-06-10T08:00:00")
    with session_scope() as session:
        a = [
            given.customer(session, f"A{i}", segment="A", email=f"a{i}@x.example") for i in range(8)
        ]
        b = [
            given.customer(session, f"B{i}", segment="B", email=f"b{i}@x.example") for i in range(4)
        ]
        # Segments are computed from facts (3.9.2): B's customers carried a little traffic
        # last month, A's have no facts yet, so the two land in different segments.
        last_month = utcnow().date().replace(day=1) - timedelta(days=1)
        for customer_id in b:
            given.usage(session, customer_id, last_month, "1")
        for customer_id, churn in zip(a[:5], (85, 80, 75, 70, 69), strict=True):
            given.risk_assessment(session, customer_id, churn, new)
        given.risk_assessment(session, a[5], 90, old)
        given.risk_assessment(session, a[5], 30, new)
        given.risk_assessment(session, b[0], 95, new)
        body = {
            "name": "Past campaign",
            "targetSegment": {"customer": [{"id": c} for c in [*b, a[6], a[7]]]},
        }
        past, _, _ = resources.create(session, CAMPAIGN_KIND, MARKETER, body)
        distribute_collateral(session, MARKETER, past["id"])
        for customer_id in (b[1], a[6], a[7]):
            record_campaign_response(
                session, MARKETER, past["id"], customer_id=customer_id, name="yes"
            )
        store.rebuild(session)
    with session_scope(readonly=True) as session:
        segment = session.scalar(select(AnCustomer.segment).where(AnCustomer.customer_id == a[0]))
    assert segment is not None
    return Scored(picked=a[:4], below=a[4:], segment=segment)


def test_planning_picks_exactly_the_customers_over_the_threshold_in_the_segment(
    scored: Scored, client: TestClient, auth: TokenFactory
) -> None:
    # given the scored customers, and a marketing user
    # when it plans on churn at 70 with a control share of 0.25 in the segment
    response = client.post(
        PLAN,
        json={
            "segment": scored.segment,
            "scoreKind": "churn",
            "threshold": 70,
            "controlShare": 0.25,
            "seed": 3,
        },
        headers=auth("marketing"),
    )

    # then exactly the four at or above 70 are targets, the highest first
    assert response.status_code == 200, response.text
    plan = response.json()
    assert [t["customerId"] for t in plan["targets"]] == scored.picked
    assert [t["score"] for t in plan["targets"]] == [85, 80, 75, 70]
    # of 8 candidates, two have no churn score (never assessed; the last has none left)
    assert (plan["candidates"], plan["unscored"]) == (8, 2)
    # one of four (0.25 x 4) set aside as control
    assert (plan["treatedCount"], plan["controlCount"]) == (3, 1)
    # and the segment's 2 reached are too few: the overall rate 3/6 = 0.5 gives 0.5 x 3
    assert (plan["responseRate"], plan["responseRateBasis"]) == (0.5, "overall")
    assert plan["expectedResponses"] == 1.5


def test_plan_becomes_a_campaigns_targets_with_the_same_control_group(
    scored: Scored, client: TestClient, auth: TokenFactory
) -> None:
    # given a planned campaign
    marketing = auth("marketing")
    campaign_id = _campaign(client, marketing, "Keep them", scored.picked[:1])

    # when the plan is made with the campaign named
    response = client.post(
        PLAN,
        json={
            "segment": scored.segment,
            "scoreKind": "churn",
            "threshold": 70,
            "controlShare": 0.5,
            "seed": 11,
            "campaignId": campaign_id,
        },
        headers=marketing,
    )

    # then the campaign's targets are the plan's list, with the plan's control group
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["campaign"]["targeting"]["controlCount"] == 2
    with session_scope(readonly=True) as session:
        groups = dict(
            session.execute(
                select(CampaignTargetRow.customer_id, CampaignTargetRow.group).where(
                    CampaignTargetRow.campaign_id == campaign_id
                )
            ).all()
        )
    assert groups == {t["customerId"]: t["group"] for t in plan["targets"]}


def test_the_cli_plans_the_same_targets_as_the_api(
    scored: Scored, client: TestClient, auth: TokenFactory, tmp_path: Path
) -> None:
    # given the scored customers and the API's plan on churn at 70, a quarter held out
    asked = {"segment": scored.segment, "scoreKind": "churn", "threshold": 70}
    api = client.post(
        PLAN, json={**asked, "controlShare": 0.25, "seed": 3}, headers=auth("marketing")
    ).json()
    # when the same plan is made from the command line, its targets written as CSV
    out = tmp_path / "targets.csv"
    result = CliRunner().invoke(
        app,
        ["analytics", "plan", "--segment", scored.segment, "--threshold", "70",
         "--control-share", "0.25", "--seed", "3", "--csv", str(out)],
    )  # fmt: skip
    # then it names the same targets, groups and expected responses
    assert result.exit_code == 0, result.output
    assert "4 target(s) of 8" in result.output and "expected responses 1.5" in result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["customerId"], r["group"]) for r in rows] == [
        (t["customerId"], t["group"]) for t in api["targets"]
    ]
    # and a segment that does not exist is one line and exit code 2
    refused = CliRunner().invoke(app, ["analytics", "plan", "--segment", "no such segment"])
    assert refused.exit_code == 2 and "no such segment" in refused.output


def test_segment_rate_is_used_where_enough_were_reached(scored: Scored) -> None:
    # given segment B, whose 4 reached customers are enough
    with session_scope() as session:
        b = session.scalar(select(AnCustomer.segment).where(AnCustomer.name == "B0"))
        assert b is not None
        # when B is planned on churn at 90
        plan = plan_campaign(
            session, None, segment=b, score_kind="churn", threshold=90, today=date(2026, 7, 1)
        )

    # then its own rate 1/4 is used for its one target
    assert [t.score for t in plan.targets] == [95]
    assert (plan.response.rate, plan.response.basis) == (0.25, "segment")
    assert plan.expected_responses == 0.25


def test_upsell_score_follows_the_billed_revenue_trend(db_url: str) -> None:
    # given three customers of one segment billed from March to August 2026: one doubles
    # (100 a month, then 200), one stays (100), one halves (100, then 50)
    with session_scope() as session:
        grows, flat, shrinks = (
            given.customer(session, name, segment="smb") for name in ("Grows", "Flat", "Shrinks")
        )
        for month in range(3, 9):
            for customer_id, later in ((grows, "200.00"), (flat, "100.00"), (shrinks, "50.00")):
                amount = "100.00" if month <= 5 else later
                given.bill(session, customer_id, date(2026, month, 1), [("recurring", amount, "p")])
        store.rebuild(session)
        segment = session.scalar(select(AnCustomer.segment).where(AnCustomer.customer_id == flat))
        assert segment is not None

        # when planned on upsell at 50 on 15 September (June-August against March-May)
        plan = plan_campaign(
            session,
            None,
            segment=segment,
            score_kind="upsell",
            threshold=50,
            today=date(2026, 9, 15),
        )

    # then 50 x 600/300 = 100 and 50 x 300/300 = 50 are picked, 50 x 150/300 = 25 not
    assert {t.customer_id: t.score for t in plan.targets} == {grows: 100, flat: 50}
    # and without past campaigns no response is expected
    assert plan.response.basis == "none"
    assert plan.expected_responses is None


def test_planning_refuses_bad_input(scored: Scored, client: TestClient, auth: TokenFactory) -> None:
    # given a marketing user and a sales user
    marketing, sales = auth("marketing"), auth("sales")
    good = {"segment": scored.segment, "scoreKind": "churn", "threshold": 70}

    # when the plan is asked for with bad input
    answers = [
        (client.post(PLAN, json={**good, "segment": "no such segment"}, headers=marketing), 400),
        (client.post(PLAN, json={**good, "scoreKind": "mood"}, headers=marketing), 400),
        (client.post(PLAN, json={**good, "threshold": 101}, headers=marketing), 400),
        (client.post(PLAN, json={**good, "threshold": "high"}, headers=marketing), 400),
        (client.post(PLAN, json={**good, "controlShare": 0.9}, headers=marketing), 400),
        (client.post(PLAN, json={"segment": scored.segment}, headers=marketing), 400),
        (client.post(PLAN, json={**good, "colour": "red"}, headers=marketing), 400),
        (client.post(PLAN, json=[1, 2], headers=marketing), 400),
        (client.post(PLAN, json={**good, "campaignId": "nope"}, headers=marketing), 404),
        (client.post(PLAN, json=good, headers=sales), 403),
    ]

    # then each is a 4xx with a TMF error body
    for response, status in answers:
        assert response.status_code == status, response.text
        assert response.json()["@type"] == "Error"


# ----- pages ------------------------------------------------------------------------

PAGE = "/ui/analytics/campaigns"


def test_campaign_page_shows_the_figures_the_interval_and_the_customers_behind_them(
    controlled: Controlled, client: TestClient
) -> None:
    # given an analyst signed in
    user("anna.analyst", role="analyst")
    assert sign_in(client, "anna.analyst").status_code == 303

    # when she opens the campaign page, follows "won" and exports the CSV
    page = client.get(PAGE)
    won = client.get(f"{PAGE}/{controlled.campaign_id}/customers", params={"figure": "won"})
    exported = client.get(PAGE + ".csv")

    # then the campaign's row carries its figures and its uplift with the interval
    assert page.status_code == 200, page.text
    row = page.text.split(f'id="campaign-{controlled.campaign_id}"')[1].split("</tr>")[0]
    assert "185.00" in row and "272.73" in row and "300.00" in row
    assert "0.1500 [-0.1728, 0.3227]" in row
    assert "no control group kept" in page.text  # the other campaign
    # and the interval is drawn: -0.1728 .. 0.3227 on -1 .. 1 over 400 units from 20
    assert '<g class="interval">' in page.text
    assert 'x1="185.4" y1="24" x2="284.5"' in page.text  # 20 + 0.8272 x 200, 20 + 1.3227 x 200
    # and the won customers are the winners, each linked to its Customer 360
    linked = set(re.findall(r'href="/ui/customers/([^"]+)"', won.text))
    assert linked == set(controlled.winners)
    # and the CSV has the campaign's figures
    lines = {r["campaignId"]: r for r in csv.DictReader(io.StringIO(exported.text))}
    assert lines[controlled.campaign_id]["uplift"] == "0.1500"


def test_planning_form_makes_the_target_list(scored: Scored, client: TestClient) -> None:
    # given a marketing user signed in on the campaign page
    user("mia.marketing", role="marketing")
    assert sign_in(client, "mia.marketing").status_code == 303
    page = client.get(PAGE)
    token = csrf_of(page.text)
    form = {"segment": scored.segment, "scoreKind": "churn", "threshold": "70", "seed": "3"}

    # when she plans with the form, without its token, and with a bad threshold
    planned = client.post(
        PAGE + "/plan", data={**form, "controlShare": "0.25", "csrf_token": token}
    )
    forged = client.post(PAGE + "/plan", data=form)
    bad = client.post(PAGE + "/plan", data={**form, "threshold": "lots", "csrf_token": token})

    # then the target list names exactly the picked customers, linked to their 360
    assert planned.status_code == 200, planned.text
    result = planned.text.split('id="plan-result"')[1]
    assert re.findall(r'href="/ui/customers/([^"]+)"', result) == scored.picked
    assert result.count('class="target control"') == 1
    # and a form without its token, or with a threshold that is no number, is refused
    assert forged.status_code == 403
    assert bad.status_code == 400


def test_campaign_page_is_for_analysts_marketing_and_admins_and_bounded_in_queries(
    controlled: Controlled, client: TestClient, count_queries: Callable[[], Any]
) -> None:
    # given a support person and an analyst
    user("sven.support", role="support")
    assert sign_in(client, "sven.support").status_code == 303
    support = client.get(PAGE)
    client.cookies.clear()
    user("anna.analyst", role="analyst")
    assert sign_in(client, "anna.analyst").status_code == 303
    client.get(PAGE)

    # when the analyst opens the page with two campaigns, then with six more
    with count_queries() as few:
        assert client.get(PAGE).status_code == 200
    with session_scope() as session:
        for i in range(6):
            body = {
                "name": f"More {i}",
                "targetSegment": {"customer": [{"id": controlled.treated[i]}]},
            }
            resources.create(session, CAMPAIGN_KIND, MARKETER, body)
        store.rebuild(session)
    with count_queries() as many:
        assert client.get(PAGE).status_code == 200

    # then support may not see it, and the page costs the same statements
    assert support.status_code == 403
    assert many.count == few.count


def test_the_bus_keeps_targets_and_leads_in_the_store_as_a_rebuild_derives_them(
    controlled: Controlled, client: TestClient, auth: TokenFactory
) -> None:
    # given the campaigns of the fixture (store rebuilt), then, through the services and
    # the API only: a new campaign whose targets are set with a control group, and a
    # response to it that is qualified and won
    marketing = auth("marketing")
    campaign_id = _campaign(client, marketing, "Second wave", controlled.treated[:8])
    response = client.post(
        f"{MARKETING}/{campaign_id}/targets",
        json={"controlShare": 0.25, "seed": 5},
        headers=marketing,
    )
    assert response.status_code == 200, response.text
    assert client.post(f"{MARKETING}/{campaign_id}/distribute", headers=marketing).is_success
    with session_scope() as session:
        _win(session, campaign_id, controlled.treated[30])

    # when the catch-up has derived what the bus marked, and the store kept so is
    # compared with one rebuilt from scratch
    store.catch_up_all()
    with session_scope(readonly=True) as session:
        kept = given.store_snapshot(session)
    with session_scope() as session:
        store.rebuild(session)
    with session_scope(readonly=True) as session:
        rebuilt = given.store_snapshot(session)

    # then they are the same, and hold the new campaign's 8 targets and its won lead
    assert kept == rebuilt
    assert sum(1 for row in kept["an_campaign_target"] if row[0] == campaign_id) == 8
    won = [row for row in kept["an_campaign_lead_fact"] if row[1] == campaign_id]
    assert [row[6] for row in won] == ["closedWon"]
