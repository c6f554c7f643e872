"""3.7.3: the QoS report per customer and month, as data and as a PDF."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from etomcrm.db import session_scope
from etomcrm.qos_sla import assessment, service, violations
from tests.conftest import TokenFactory
from tests.factories import customer
from tests.qos_helpers import access_offering, link, measure, product, repaired_ticket, sla_level

REPORT = "/tmf-api/slaManagement/v2/qosReport"
OCTOBER = datetime(2026, 9, 30, 22, tzinfo=UTC)  # 745 hours in Berlin


def _pdf_text(document: bytes) -> str:
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", document, re.S)
    return b"".join(zlib.decompress(s) for s in streams).decode("latin-1")


def test_the_report_gives_each_site_its_figures_as_data_and_pdf(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given BMW's Munich site down 10 of October's 745 hours (a violation recorded),
    # Augsburg always up
    bmw = customer(client, admin)
    sla_level(client, admin)
    access = access_offering(client, admin)
    munich = product(client, admin, bmw["id"], offering=access)
    augsburg = product(client, admin, bmw["id"], offering=access)
    with session_scope() as session:
        service.establish_slas(session)
    down = link(bmw["id"], munich["id"], site_id="munich")
    measure(down, OCTOBER, 735, site_id="munich")
    measure(down, OCTOBER + timedelta(hours=735), 10, availability=0.0, site_id="munich")
    measure(link(bmw["id"], augsburg["id"], site_id="augsburg"), OCTOBER, 745, latency=12.0)
    # and an Augsburg incident repaired from 12 October 16:00 to 18:00 that waited an
    # hour for BMW's answer
    repaired_ticket(
        bmw["id"],
        augsburg["id"],
        [
            ("acknowledged", OCTOBER + timedelta(days=11, hours=16)),
            ("inProgress", OCTOBER + timedelta(days=11, hours=16, minutes=10)),
            ("pending", OCTOBER + timedelta(days=11, hours=16, minutes=30)),
            ("inProgress", OCTOBER + timedelta(days=11, hours=17, minutes=30)),
            ("resolved", OCTOBER + timedelta(days=11, hours=18)),
        ],
    )
    # and a Munich incident opened on the last evening of September, repaired in October;
    # one repaired within September; and the follow-up ticket of a violation (none of
    # the last two is one of October's incidents)
    repaired_ticket(
        bmw["id"],
        munich["id"],
        [
            ("acknowledged", OCTOBER - timedelta(hours=1)),
            ("inProgress", OCTOBER - timedelta(hours=1)),
            ("resolved", OCTOBER + timedelta(hours=2)),
        ],
    )
    repaired_ticket(
        bmw["id"],
        munich["id"],
        [
            ("acknowledged", OCTOBER - timedelta(days=2)),
            ("inProgress", OCTOBER - timedelta(days=2)),
            ("resolved", OCTOBER - timedelta(days=1)),
        ],
    )
    repaired_ticket(
        bmw["id"],
        augsburg["id"],
        [
            ("acknowledged", OCTOBER + timedelta(days=3)),
            ("inProgress", OCTOBER + timedelta(days=3)),
            ("resolved", OCTOBER + timedelta(days=4)),
        ],
        ticket_type="slaViolation",
    )
    with session_scope() as session:
        violations.evaluate(
            session, assessment.assess(session, period="2026-10", now=datetime.now(UTC))
        )
    headers = auth("customer", customer_id=bmw["id"])
    # when the customer asks for October's report
    answer = client.get(
        REPORT, params={"customerId": bmw["id"], "period": "2026-10"}, headers=headers
    )
    # then each site shows its figures, the violation and its credit
    assert answer.status_code == 200, answer.text
    report = answer.json()
    sites = {s["site"]["id"]: s for s in report["sites"]}
    assert sites["munich"]["availability"] == "98.6577"
    assert sites["munich"]["violations"] == 1
    assert sites["munich"]["credit"] == {"unit": "EUR", "value": "100.00"}
    assert sites["augsburg"]["availability"] == "100.0000"
    assert sites["augsburg"]["latencyMs"] == "12.0000"
    assert sites["augsburg"]["violations"] == 0
    assert (sites["augsburg"]["incidents"], sites["augsburg"]["timeToRepairHours"]) == (1, "1.00")
    assert (sites["munich"]["incidents"], sites["munich"]["timeToRepairHours"]) == (1, "3.00")
    assert report["totals"]["incidents"] == 2
    assert report["totals"]["credit"] == {"unit": "EUR", "value": "100.00"}
    assert report["final"] is True
    # and the PDF is a one-page document carrying the same figures
    pdf = client.get(
        REPORT + ".pdf", params={"customerId": bmw["id"], "period": "2026-10"}, headers=headers
    )
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", pdf.content)) == 1
    text = _pdf_text(pdf.content)
    for figure in ("BMW AG", "2026-10", "munich", "98.6577", "100.00", "augsburg"):
        assert figure in text, figure


def test_a_customer_gets_no_report_of_another(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    bmw = customer(client, admin)
    audi = customer(client, admin, "Audi AG")
    headers = auth("customer", customer_id=audi["id"])
    params = {"customerId": bmw["id"], "period": "2026-10"}
    assert client.get(REPORT, params=params, headers=headers).status_code == 404
    assert client.get(REPORT + ".pdf", params=params, headers=headers).status_code == 404
    staff = client.get(REPORT, params=params, headers=auth("sla_manager"))
    assert staff.status_code == 200
    assert staff.json()["sites"] == []
    bad = client.get(REPORT, params={"customerId": bmw["id"], "period": "October"}, headers=admin)
    assert bad.status_code == 400
    assert "2026-11" in bad.json()["message"]
