"""The churn model (seed 5.3, predict) on generated histories with a known signal and on
noise, through the API, the CLI, the page, TMF696 and the refit schedule."""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from etomcrm.analytics import churn, store
from etomcrm.analytics.models import AnChurnModel
from etomcrm.cli import app
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.db import new_id, session_scope, utcnow
from tests import analytics_helpers as given
from tests.conftest import TokenFactory
from tests.test_pages_portal import sign_in, user

HEADER = (
    "customer_id,name,segment,tenure_months,contract_type,payment_method,"
    "monthly_charges,total_charges,services,churned,observed_on"
)
MODEL = "/etomcrm/v1/analytics/churnModel"
SCORES = "/etomcrm/v1/analytics/churnScores"
IMPORT = "/etomcrm/v1/analytics/historyImport"
CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENTS = ("direct-debit", "bank-transfer", "credit-card", "other")


def history_csv(rows: int, *, signal: bool, seed: int = 7, prefix: str = "H") -> str:
    """A provider's history. With ``signal``: a month-to-month contract raises the odds
    of churning about 12-fold and every year of tenure lowers them; without, every
    outcome is a coin weighted 30 % regardless of the features."""
    rng = random.Random(seed)
    lines = [HEADER]
    for n in range(rows):
        contract, payment = rng.choice(CONTRACTS), rng.choice(PAYMENTS)
        tenure = rng.randint(1, 72)
        monthly = round(rng.uniform(30, 300), 2)
        services = ";".join(
            rng.sample(["access", "router", "sla-gold", "traffic"], rng.randint(1, 4))
        )
        if signal:
            logit = -1.2 + 2.5 * (contract == "month-to-month") - 0.03 * tenure
            p = 1 / (1 + pow(2.718281828, -logit))
        else:
            p = 0.3
        churned = "yes" if rng.random() < p else "no"
        lines.append(
            f"{prefix}-{n},Kunde {n},dealer,{tenure},{contract},{payment},{monthly:.2f},"
            f"{monthly * tenure:.2f},{services},{churned},2026-06-30"
        )
    return "\n".join(lines) + "\n"


def _import(client: TestClient, headers: dict[str, str], text: str) -> None:
    answer = client.post(IMPORT, content=text, headers={**headers, "content-type": "text/csv"})
    assert answer.status_code == 201, answer.text


def lived_customers(count: int, *, seed: int = 11) -> dict[str, int]:
    """Live customers of two years with 0-6 trouble tickets each; the more tickets, the
    likelier the customer was terminated. Returns each customer's ticket count."""
    rng = random.Random(seed)
    created = utcnow() - timedelta(days=730)
    tickets: dict[str, int] = {}
    with session_scope() as session:
        for n in range(count):
            k = rng.randint(0, 6)
            terminated = rng.random() < 1 / (1 + 2.718281828 ** -(-2.5 + 0.9 * k))
            status = "terminated" if terminated else "active"
            cid = new_id()
            session.add(
                CustomerRow(
                    id=cid,
                    at_type="Customer",
                    name=f"Live {n}",
                    status=status,
                    owner_customer_id=cid,
                    body={
                        "id": cid,
                        "name": f"Live {n}",
                        "status": status,
                        "creationDate": created.isoformat(),
                    },
                )
            )
            session.flush()
            for t in range(k):
                opened = created + timedelta(days=30 * t + 5)
                given.ticket(session, cid, opened, opened + timedelta(hours=4))
            tickets[cid] = k
        store.rebuild(session)
    return tickets


def young_customer(tickets: int) -> str:
    """An active customer of three months with ``tickets`` trouble tickets."""
    created = utcnow() - timedelta(days=95)
    with session_scope() as session:
        cid = new_id()
        session.add(
            CustomerRow(
                id=cid,
                at_type="Customer",
                name="Autohaus Jung",
                status="active",
                owner_customer_id=cid,
                body={
                    "id": cid,
                    "name": "Autohaus Jung",
                    "status": "active",
                    "creationDate": created.isoformat(),
                },
            )
        )
        session.flush()
        for t in range(tickets):
            given.ticket(session, cid, created + timedelta(days=t + 1), None)
        store.rebuild(session)
    return cid


def _assess(client: TestClient, headers: dict[str, str], customer_id: str) -> dict[str, Any]:
    answer = client.post(
        "/tmf-api/riskManagement/v4/partyRoleRiskAssessment",
        json={"partyRole": {"id": customer_id, "@referredType": "Customer"}},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _churn_score(body: dict[str, Any]) -> int:
    scores = body["riskAssessmentResult"]["score"]
    return int(next(s["score"] for s in scores if s["risk"] == "churn"))


def test_the_model_finds_the_known_signal_and_scores_with_it(
    client: TestClient, auth: TokenFactory
) -> None:
    # given 600 imported customers where month-to-month contracts churn, and 300 lived
    # customers where many trouble tickets came before the termination
    analyst = auth("analyst")
    _import(client, analyst, history_csv(600, signal=True))
    lived_customers(300)
    # when the analyst fits the model through the API
    fitted = client.post(MODEL, json={"folds": 5}, headers=analyst)
    # then it finds the signal out of fold, calibrated, and is used
    assert fitted.status_code == 201, fitted.text
    model = fitted.json()
    ev = model["evaluation"]
    assert model["customers"] == 900 and ev["fromHistory"] == 600
    assert ev["auc"] > 0.75, ev
    assert ev["topDecileLift"] > 1.5
    assert ev["ece"] < 0.1 and ev["brier"] < ev["baseRate"] * (1 - ev["baseRate"])
    assert ev["verdict"].startswith("predictive")
    assert model["usable"] is True
    coefficients = {f["name"]: f["coefficient"] for f in model["features"]}
    strongest = sorted(coefficients, key=lambda n: -abs(coefficients[n]))[:3]
    assert "contract:month-to-month" in strongest and "tickets" in strongest
    assert coefficients["contract:month-to-month"] > 0 and coefficients["tickets"] > 0
    assert coefficients["tenure_months"] < 0
    # and the same model is what GET answers
    shown = client.get(MODEL, headers=auth("marketing"))
    assert shown.status_code == 200 and shown.json()["version"] == model["version"]
    # when a young customer with six open tickets is assessed (TMF696)
    risky = young_customer(6)
    body = _assess(client, auth("sales"), risky)
    # then the churn score is the model's calibrated probability, with its reasons
    reason = body["reason"][0]
    assert reason.startswith(f"churn {_churn_score(body)}: churn model v{model['version']}")
    assert "pushed up by trouble tickets 6" in reason
    inputs = {c["name"]: c["value"] for c in body["characteristic"]}
    assert inputs["churnScoredBy"] == f"model v{model['version']}"
    assert inputs["model:tickets"] == 6
    quiet = _assess(client, auth("sales"), young_customer(0))
    assert _churn_score(body) > _churn_score(quiet)
    # and the ranking puts the customers with many tickets first, naming the tickets
    ranked = client.get(SCORES, params={"limit": 10}, headers=analyst)
    assert ranked.status_code == 200, ranked.text
    top = ranked.json()["scores"]
    assert top[0]["pushedUp"][0]["feature"] == "tickets"
    assert [r["score"] for r in top] == sorted((r["score"] for r in top), reverse=True)
    # and the same ranking comes as CSV
    exported = client.get(SCORES, params={"limit": 10, "format": "csv"}, headers=analyst)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["customerId"] for r in lines] == [r["customerId"] for r in top]


def test_on_noise_the_model_reports_chance_level_and_the_rule_stays(
    client: TestClient, auth: TokenFactory, db_url: str
) -> None:
    # given 500 imported customers whose outcome has nothing to do with their features
    analyst = auth("analyst")
    _import(client, analyst, history_csv(500, signal=False))
    # when the model is fitted with the CLI
    result = CliRunner().invoke(app, ["analytics", "churn", "fit"])
    # then it reports chance level and is not used
    assert result.exit_code == 0, result.output
    assert "chance level" in result.output and "not used for 3.9.3" in result.output
    ev = client.get(MODEL, headers=analyst).json()["evaluation"]
    assert 0.40 <= ev["auc"] <= 0.60, ev
    assert ev["verdict"].startswith("chance level")
    # and TMF696 keeps the rule, saying why
    body = _assess(client, auth("sales"), young_customer(1))
    assert _churn_score(body) == 15  # the rule: 10 + 5 for the open ticket
    assert body["reason"][-2].startswith("churn rule used: the churn model v1 is at chance level")


def test_too_little_history_keeps_the_rule_and_refuses_the_fit(
    client: TestClient, auth: TokenFactory
) -> None:
    # given 150 imported customers (fewer than the 200 the model needs)
    analyst = auth("analyst")
    _import(client, analyst, history_csv(150, signal=True))
    # when the analyst asks for a fit
    refused = client.post(MODEL, headers=analyst)
    # then it is refused, naming the figures, and nothing is stored
    assert refused.status_code == 400, refused.text
    assert "too little history (150 labelled customers" in refused.json()["message"]
    assert client.get(MODEL, headers=analyst).status_code == 404
    # and a risk assessment uses the rule and says so
    body = _assess(client, auth("sales"), young_customer(0))
    assert _churn_score(body) == 10
    assert body["reason"][-2].startswith("churn rule used: too little history (150 labelled")
    inputs = {c["name"]: c["value"] for c in body["characteristic"]}
    assert inputs["churnScoredBy"] == "rule"


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"folds": 1}, "folds must be a whole number from 2 to 10"),
        ({"folds": "five"}, "folds must be a whole number"),
        ({"seed": -1}, "seed must be a whole number"),
        ({"depth": 3}, "a fit takes folds and seed, not depth"),
        ([5], "send the fit's options as a JSON object"),
    ],
)
def test_bad_input_to_the_fit_is_refused(
    client: TestClient, auth: TokenFactory, payload: Any, why: str
) -> None:
    # given enough history
    analyst = auth("analyst")
    _import(client, analyst, history_csv(250, signal=True))
    # when the fit is asked with bad options
    answer = client.post(MODEL, json=payload, headers=analyst)
    # then 400 saying what is wrong
    assert answer.status_code == 400, answer.text
    assert why in answer.json()["message"]


def test_only_analysts_and_admins_fit_and_support_sees_no_scores(
    client: TestClient, auth: TokenFactory
) -> None:
    # when marketing asks for a fit and support for the scores
    fit = client.post(MODEL, headers=auth("marketing"))
    scores = client.get(SCORES, headers=auth("support"))
    # then both are refused
    assert fit.status_code == 403 and scores.status_code == 403
    # and without a model the scores are not found
    assert client.get(SCORES, headers=auth("analyst")).status_code == 404
    # and a bad page is refused
    assert client.get(SCORES, params={"limit": 0}, headers=auth("analyst")).status_code == 400


def test_the_schedule_refits_only_when_the_model_is_older_than_the_setting(
    client: TestClient, auth: TokenFactory, flows: None
) -> None:
    from dbos import DBOS

    from etomcrm.flows.churn import churn_tick

    # given enough history and a model fitted on 1 December
    _import(client, auth("analyst"), history_csv(300, signal=True))
    fitted_at = datetime(2026, 12, 1, 2, 45, tzinfo=UTC)
    with session_scope() as session:
        churn.fit(session, fitted_at, trained_by="test")

    def versions() -> list[tuple[int, datetime]]:
        with session_scope() as session:
            return list(
                session.execute(
                    select(AnChurnModel.version, AnChurnModel.trained_at).order_by(
                        AnChurnModel.version
                    )
                ).all()
            )

    # when the schedule ticks six days later
    DBOS.start_workflow(churn_tick, fitted_at + timedelta(days=6), None).get_result()
    # then nothing is refitted (the setting is 7 days)
    assert [v for v, _ in versions()] == [1]
    # when it ticks seven days later
    DBOS.start_workflow(churn_tick, fitted_at + timedelta(days=7), None).get_result()
    # then the model is fitted again, at the tick's moment
    assert versions() == [(1, fitted_at), (2, fitted_at + timedelta(days=7))]


def test_the_schedule_fits_nothing_without_enough_history(db_url: str) -> None:
    # given no history at all, when the refit is due
    with session_scope() as session:
        outcome = churn.refit_if_due(session, utcnow())
        stored = session.scalar(select(func.count()).select_from(AnChurnModel))
    # then it says why and stores nothing
    assert outcome.startswith("not fitted: too little history (0 labelled customers")
    assert stored == 0


def test_the_cli_shows_the_model_and_writes_the_scores(
    client: TestClient, auth: TokenFactory, tmp_path: Any
) -> None:
    # given a fitted model
    _import(client, auth("analyst"), history_csv(400, signal=True))
    lived_customers(60)
    runner = CliRunner()
    assert runner.invoke(app, ["analytics", "churn", "fit", "--folds", "4"]).exit_code == 0
    # when the analyst shows it and writes the scores
    shown = runner.invoke(app, ["analytics", "churn", "show"])
    out = tmp_path / "scores.csv"
    written = runner.invoke(
        app, ["analytics", "churn", "scores", "--limit", "5", "--csv", str(out)]
    )
    # then the figures and the ranking are there
    assert shown.exit_code == 0 and "4 folds out of fold: AUC" in shown.output
    assert "contract:month-to-month" in shown.output
    assert written.exit_code == 0, written.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 5 and rows[0]["reason"].startswith("pushed up by")
    assert int(rows[0]["score"]) >= int(rows[-1]["score"])
    # and the same ranking shows as a table in the terminal
    total = re.search(r"5 customer\(s\) of (\d+) written", written.output)
    assert total is not None, written.output
    table = runner.invoke(app, ["analytics", "churn", "scores", "--limit", "5"])
    assert table.exit_code == 0, table.output
    assert f"Churn scores ({total.group(1)} customers)" in table.output
    assert table.output.count("│") >= 5 * 5  # five rows of four columns, folded or not
    # and a bad fold count is refused
    refused = runner.invoke(app, ["analytics", "churn", "fit", "--folds", "11"])
    assert refused.exit_code == 2 and "folds must be" in refused.output


def test_the_analyst_page_shows_the_evaluation_the_ranking_and_exports_it(
    client: TestClient, auth: TokenFactory, count_queries: Callable[[], Any]
) -> None:
    # given a fitted model and 300 lived customers
    _import(client, auth("analyst"), history_csv(400, signal=True))
    tickets = lived_customers(300)
    assert client.post(MODEL, headers=auth("analyst")).status_code == 201
    user("anna.lyse", role="analyst")
    assert sign_in(client, "anna.lyse").status_code == 303
    # when the analyst opens the churn page
    page = client.get("/ui/analytics/churn")
    # then it shows the figures, the reliability chart and the ranking with drill-down
    assert page.status_code == 200, page.text
    text = page.text
    assert "AUC" in text and "Top-decile lift" in text and "<svg" in text
    assert text.count('class="bin"') >= 3
    first = text.index('href="/ui/customers/')
    top_id = text[first + len('href="/ui/customers/') :].split('"')[0]
    assert tickets[top_id] >= 5
    assert "trouble tickets" in text
    # and the export has every customer not terminated, highest score first
    export = client.get("/ui/analytics/churn.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == sum(1 for _ in rows) > 50
    assert rows[0]["customerId"] == top_id
    # and the page takes as many queries on its second page as on its first
    with count_queries() as first_page:
        client.get("/ui/analytics/churn")
    with count_queries() as second_page:
        client.get("/ui/analytics/churn?offset=50")
    assert first_page.count == second_page.count <= 15


def test_support_may_not_open_the_churn_page(client: TestClient, db_url: str) -> None:
    # given a support agent signed in
    user("sam.support", role="support")
    assert sign_in(client, "sam.support").status_code == 303
    # when it opens the churn page, then it is refused
    assert client.get("/ui/analytics/churn").status_code == 403


def test_the_scores_take_as_many_queries_for_many_customers_as_for_few(
    client: TestClient, auth: TokenFactory, count_queries: Callable[[], Any]
) -> None:
    # given a fitted model and 20 lived customers
    analyst = auth("analyst")
    _import(client, analyst, history_csv(300, signal=True))
    lived_customers(20, seed=1)
    assert client.post(MODEL, headers=analyst).status_code == 201
    with count_queries() as few:
        assert client.get(SCORES, headers=analyst).status_code == 200
    # when 200 more customers are there
    lived_customers(200, seed=2)
    with count_queries() as many:
        answer = client.get(SCORES, params={"limit": 100}, headers=analyst)
    # then the ranking takes the same number of queries
    assert answer.status_code == 200 and len(answer.json()["scores"]) == 100
    assert few.count == many.count <= 12
