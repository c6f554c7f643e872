"""3.6.2 → 3.7: a service problem reported for a customer's product puts its SLA at
risk on the SLA manager's work list, until the network reports the repair."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from etomcrm.db import session_scope, utcnow
from etomcrm.problem_handling.alarms import raise_alarm
from etomcrm.problem_handling.correlation import correlate
from tests.conftest import TokenFactory
from tests.qos_helpers import monitored_product

SLAS = "/tmf-api/slaManagement/v2/sla"
PROBLEMS = "/tmf-api/serviceProblemManagement/v4/serviceProblem"


def test_a_reported_problem_puts_the_sla_at_risk_until_the_repair(
    client: TestClient, auth: TokenFactory
) -> None:
    # given BMW's Gold product under its SLA on one link, and the link's alarm correlated
    admin, sla_manager = auth("admin"), auth("sla_manager")
    _, product_id, link_id = monitored_product(client, admin)
    start = utcnow()
    with session_scope() as session:
        raise_alarm(
            session,
            alarmed_object_id=link_id,
            alarm_type="communicationsAlarm",
            perceived_severity="major",
            probable_cause="lossOfSignal",
            specific_problem="link down",
            raised_at=start,
            correlation_key=f"link:{link_id}",
        )
    # (still down after the hold-down time: a link-down problem)
    since, now = start - timedelta(minutes=1), start + timedelta(minutes=5)
    with session_scope() as session:
        (problem_id,) = correlate(session, since=since, now=now).problems

    # when SLA management looks at its work list
    at_risk = client.get(
        SLAS, params={"atRisk.serviceProblem.id": problem_id}, headers=sla_manager
    ).json()
    # then the product's SLA is at risk, naming the problem
    assert [s["product"]["id"] for s in at_risk] == [product_id]
    assert at_risk[0]["atRisk"][0]["serviceProblem"]["id"] == problem_id

    # when the network side reports the repair
    repaired = client.patch(
        f"{PROBLEMS}/{problem_id}",
        json={"status": "resolved", "statusChangeReason": "fibre spliced"},
        headers=admin,
    )
    assert repaired.status_code == 200, repaired.text
    # then the SLA is no longer at risk
    assert (
        client.get(
            SLAS, params={"atRisk.serviceProblem.id": problem_id}, headers=sla_manager
        ).json()
        == []
    )
    (sla,) = client.get(SLAS, params={"product.id": product_id}, headers=sla_manager).json()
    assert "atRisk" not in sla
