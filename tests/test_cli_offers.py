"""3.9.4 from the command line: ``etomcrm analytics profile`` and ``analytics offers``
print what the API answers for the same customers (the data of
tests/test_next_best_offer.py)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from etomcrm.cli import app
from tests.test_next_best_offer import (
    OFFERS,
    PROFILE,
    Headers,
    _busy_site,
    _catalog,
    _customer,
    _product,
    _rebuild,
    _value,
)
from tests.test_recommendations import _tickets

QUERIES = "/tmf-api/recommendation/v4/queryProductRecommendation"
SITES = "/tmf-api/geographicSiteManagement/v4/geographicSite"


def _money(value: float) -> str:
    return f"{value:.2f}"


def test_the_profile_prints_the_apis_figures_and_explanations(
    client: TestClient, admin: Headers
) -> None:
    # given a customer whose busy site on SLA Silver had 5 tickets (two offers: 100
    # Mbit/s and SLA Gold), as in the ranking test
    catalog = _catalog(client, admin)
    bmw = _customer("BMW AG")
    _busy_site(client, admin, bmw, catalog["access10"])
    where = client.get(SITES, params={"relatedParty.id": bmw}, headers=admin).json()[0]
    _product(bmw, where, "SLA Silver", catalog["silver"], slaLevel="SLA Silver")
    _tickets(client, admin, bmw, where["id"], 5)
    _rebuild()
    api = client.get(f"{PROFILE}/{bmw}", headers=admin).json()
    assert len(api["nextBestOffers"]) == 2

    # when the profile is asked for from the command line
    run = CliRunner().invoke(app, ["analytics", "profile", bmw])

    # then it names the customer and prints the API's needs, value, products, and each
    # offer's expected value, margin and explanation in the API's order
    assert run.exit_code == 0, run.output
    out = run.output
    assert out.startswith(f"BMW AG ({bmw}), ")
    assert f"segment {api['customer']['segment']}" in out
    for need in api["needs"]:
        assert need["need"] in out
    assert "5 trouble ticket(s) still open" in out
    value = api["value"]
    assert (
        f"revenue {value['revenue']}, cost to serve {value['costToServe']}, "
        f"profit {value['profit']}"
    ) in out
    ends = [p["contractEnd"] for p in api["products"] if p["contractEnd"]]
    assert ends and all(end in out for end in ends)
    positions = []
    for item in api["nextBestOffers"]:
        # the offer's row of the table carries its rank, EV, P(accept) and margin
        (row,) = [line for line in out.splitlines() if line.startswith(f"│ {item['priority']} │")]
        cells = [cell.strip() for cell in row.split("│")]
        assert cells[4:7] == [
            _money(_value(item, "expectedValue")),
            _money(_value(item, "acceptanceProbability")),
            _money(_value(item, "marginOverTerm")),
        ]
        explanation = f"{item['priority']}. why: {_value(item, 'recommendationReason')}"
        assert explanation in out
        assert f"expected value: {_value(item, 'expectedValueExplanation')}" in out
        positions.append(out.index(explanation))
    assert positions == sorted(positions)
    # the figures by hand (test_next_best_offer): 100 Mbit/s first with EV 660.00
    first = api["nextBestOffers"][0]
    assert first["product"]["name"] == "Site access 100 Mbit/s"
    assert "660.00" in out and "3300.00" in out
    assert "Risk: not assessed yet" in out


def test_the_profile_of_an_unknown_customer_is_one_line_and_exit_2(
    client: TestClient, admin: Headers
) -> None:
    # given the API says 404 for the id
    assert client.get(f"{PROFILE}/nobody", headers=admin).status_code == 404

    # when the command line is asked for it
    run = CliRunner().invoke(app, ["analytics", "profile", "nobody"])

    # then one clear line and exit code 2
    assert run.exit_code == 2
    assert run.output == "error: no customer with id nobody\n"


def test_the_offers_overview_and_its_csv_equal_the_apis(
    client: TestClient, admin: Headers, tmp_path: Path
) -> None:
    # given three customers with a busy site, two of them asked for their offer, and one
    # customer never asked
    catalog = _catalog(client, admin)
    names = ["Kunde A", "Kunde B", "Kunde C"]
    for name in names:
        cid = _customer(name)
        _busy_site(client, admin, cid, catalog["access10"])
        if name != "Kunde C":
            asked = client.post(
                QUERIES,
                json={"relatedParty": {"id": cid, "@referredType": "Customer"}},
                headers=admin,
            )
            assert asked.status_code == 201, asked.text
    _customer("Kunde D")
    exported = tmp_path / "offers.csv"
    runner = CliRunner()

    # when the overview is shown, a page of it, and exported from the command line
    table = runner.invoke(app, ["analytics", "offers"])
    page = runner.invoke(app, ["analytics", "offers", "--limit", "1"])
    csv_run = runner.invoke(app, ["analytics", "offers", "--limit", "1", "--csv", str(exported)])
    refused = runner.invoke(app, ["analytics", "offers", "--limit", "0"])

    # then the CSV is byte for byte the API's, every customer, whatever --limit says
    assert csv_run.exit_code == 0, csv_run.output
    api_csv = client.get(OFFERS, params={"format": "csv"}, headers=admin)
    assert api_csv.status_code == 200
    assert exported.read_text(encoding="utf-8") == api_csv.text
    assert "4 customer(s) written to" in csv_run.output
    # and the table shows the API's customers with their top offer and EV
    assert table.exit_code == 0, table.output
    listed = client.get(OFFERS, headers=admin).json()
    assert listed["total"] == 4
    assert "customers 1-4 of 4" in table.output
    for row in listed["customers"]:
        assert row["customer"] in table.output
    evs = {r["expectedValue"] for r in listed["customers"] if r["expectedValue"] is not None}
    assert evs == {660.0}
    assert table.output.count(_money(660.0)) == 2
    assert page.exit_code == 0 and "customers 1-1 of 4" in page.output
    # and a bad page size is refused with the service's message
    assert refused.exit_code == 2 and "limit from 1 to 200" in refused.output
