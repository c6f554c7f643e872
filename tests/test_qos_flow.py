"""The monthly QoS flow on DBOS: assessed (3.7.1), violation handled (3.7.2), reports
sent (3.7.3), every step on record; run twice, it records nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope
from etomcrm.flows import qos
from etomcrm.flows.sla_violation import FLOW
from etomcrm.qos_sla.models import QosAssessmentRow, SlaViolationRow
from tests.conftest import TokenFactory
from tests.polling import flow_in_state, runs_of, until
from tests.test_sla_violations import _violated_october

FLOWS = "/tmf-api/processFlowManagement/v4/processFlow"
VIOLATIONS = "/tmf-api/slaManagement/v2/slaViolation"
TICKETS = "/tmf-api/troubleTicket/v4/troubleTicket"


def test_previous_period_is_the_month_before_in_berlin() -> None:
    assert qos.previous_period(datetime(2026, 11, 2, 3, tzinfo=UTC)) == "2026-10"
    assert qos.previous_period(datetime(2027, 1, 2, 3, tzinfo=UTC)) == "2026-12"
    # 23:30 UTC on 31 October is already November in Berlin
    assert qos.previous_period(datetime(2026, 10, 31, 23, 30, tzinfo=UTC)) == "2026-10"


def test_a_month_is_assessed_its_violation_handled_and_reports_sent(
    client: TestClient, auth: TokenFactory, flows: None
) -> None:
    # given a customer whose product missed its availability target in October
    admin = auth("admin")
    bmw, _ = _violated_october(client, admin)
    # when October's QoS flow runs (twice: the schedule may fire again)
    qos.start_qos_period("2026-10")
    url = f"{FLOWS}/{qos.qos_workflow_id('2026-10')}"
    flow = until(lambda: flow_in_state(client, admin, qos.qos_workflow_id("2026-10"), "completed"))
    assert flow is not None
    # (the second start attaches to the finished run: DBOS runs a flow id once)
    qos.start_qos_period("2026-10")
    assert runs_of(qos.qos_workflow_id("2026-10")) == ["SUCCESS"]
    # then the month is assessed, one violation recorded and one report sent
    with session_scope() as session:
        assessed = session.scalar(
            select(func.count())
            .select_from(QosAssessmentRow)
            .where(QosAssessmentRow.period == "2026-10")
        )
        violations = session.scalar(select(func.count()).select_from(SlaViolationRow))
        reports = session.scalars(
            select(CommunicationMessageRow.body).where(
                CommunicationMessageRow.owner_customer_id == bmw["id"]
            )
        ).all()
    assert assessed and violations == 1
    report_messages = [m for m in reports if m["subject"] == "Your QoS report for 2026-10"]
    assert len(report_messages) == 1
    assert report_messages[0]["attachment"][0]["mimeType"] == "application/pdf"
    # and the steps are on record with their seed numbers
    seeds = {
        c["value"]
        for task in client.get(f"{url}/taskFlow", headers=admin).json()
        for c in task["characteristic"]
        if c["name"] == "seedNumber"
    }
    assert seeds == {"3.7.1", "3.7.2", "3.7.3"}
    assert flow["processFlowSpecification"] == "qos"
    # and the violation's own flow waits for its ticket; support resolves it, BMW
    # confirms, and that flow ends too
    ticket_id = client.get(VIOLATIONS, headers=admin).json()[0]["troubleTicket"]["id"]
    support = {**auth("support"), "Content-Type": "application/merge-patch+json"}
    for status in ("inProgress", "resolved"):
        changed = client.patch(f"{TICKETS}/{ticket_id}", json={"status": status}, headers=support)
        assert changed.status_code == 200, changed.text
    katrin = auth("customer", customer_id=bmw["id"])
    assert client.post(f"{TICKETS}/{ticket_id}/confirmResolution", headers=katrin).is_success
    violation_flows = [
        f for f in client.get(FLOWS, headers=admin).json() if f["processFlowSpecification"] == FLOW
    ]
    assert len(violation_flows) == 1
    assert until(lambda: flow_in_state(client, admin, violation_flows[0]["id"], "completed"))
