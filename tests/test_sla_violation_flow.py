"""The SLA violation flows on DBOS: a violation forwarded as a problem (3.7.2, 3.6.2),
then resolved: its ticket closes (3.6.4) → the violation closes → its credit goes to
billing once (3.8.2) → the customer's risk is assessed again (3.9.3) → the survey is
followed (3.9.5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope
from etomcrm.flows import qos
from etomcrm.flows.sla_violation import sweep_unstarted_violation_flows, violation_workflow_id
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.qos_sla import assessment, ingest, violations
from tests.conftest import TokenFactory
from tests.polling import flow_in_state, runs_of, until
from tests.qos_helpers import measure, monitored_product, ticket_about
from tests.test_sla_ingest import _rows
from tests.test_sla_violations import AFTER_OCTOBER, _violated_october

FLOWS = "/tmf-api/processFlowManagement/v4/processFlow"
VIOLATIONS = "/tmf-api/slaManagement/v2/slaViolation"
TICKETS = "/tmf-api/troubleTicket/v4/troubleTicket"
PROBLEMS = "/tmf-api/serviceProblemManagement/v4/serviceProblem"
RISK = "/tmf-api/riskManagement/v4/partyRoleRiskAssessment"
INTERACTIONS = "/tmf-api/partyInteraction/v4/partyInteraction"


def billing_work_list(client: TestClient, billing: dict[str, str]) -> list[dict[str, Any]]:
    """What billing staff see handed to them (3.8)."""
    response = client.get(INTERACTIONS, params={"routedTo": "billing"}, headers=billing)
    assert response.status_code == 200, response.text
    return [i for i in response.json() if i["@type"] == "BillingTask"]


def _seeds(client: TestClient, headers: dict[str, str], workflow_id: str) -> list[str]:
    response = client.get(f"{FLOWS}/{workflow_id}/taskFlow", headers=headers)
    if response.status_code != 200:  # the flow has not begun
        return []
    return [
        c["value"]
        for task in response.json()
        for c in task["characteristic"]
        if c["name"] == "seedNumber"
    ]


def _patch(client: TestClient, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    response = client.patch(
        path, json=body, headers={**headers, "Content-Type": "application/merge-patch+json"}
    )
    assert response.status_code == 200, response.text


def test_a_violation_is_forwarded_then_resolved_and_its_credit_goes_to_billing_once(
    client: TestClient, auth: TokenFactory, flows: None
) -> None:
    # given October's availability missed for BMW, and October's QoS flow run
    admin = auth("admin")
    bmw, product_id = _violated_october(client, admin)
    qos.start_qos_period("2026-10")
    violations = until(lambda: client.get(VIOLATIONS, headers=admin).json())
    assert violations
    violation = violations[0]
    workflow_id = violation_workflow_id(str(violation["id"]))
    # then the violation's flow forwarded it as a problem and waits for the ticket
    assert until(lambda: len(_seeds(client, admin, workflow_id)) >= 3)
    assert _seeds(client, admin, workflow_id) == ["3.7.2", "3.6.2", "3.6.4"]
    ticket_id = violation["troubleTicket"]["id"]
    problem_id = violation["troubleTicket"]["serviceProblem"]["id"]
    ticket = client.get(f"{TICKETS}/{ticket_id}", headers=admin).json()
    referred = {e["@referredType"]: e["id"] for e in ticket["relatedEntity"]}
    assert referred == {
        "Product": product_id,
        "SlaViolation": str(violation["id"]),
        "ServiceProblem": problem_id,
    }
    problem = client.get(f"{PROBLEMS}/{problem_id}", headers=admin).json()
    assert problem["category"] == "qos" and problem["affectedService"][0]["id"] == product_id
    assert violation["status"] == "open" and violation["credit"]["status"] == "owed"

    # when the network side finds the cause, support resolves the ticket and BMW confirms
    support = auth("support")
    for status in ("inProgress", "resolved"):
        _patch(client, f"{PROBLEMS}/{problem_id}", {"status": status}, support)
        _patch(client, f"{TICKETS}/{ticket_id}", {"status": status}, support)
    katrin = auth("customer", customer_id=bmw["id"])
    confirmed = client.post(f"{TICKETS}/{ticket_id}/confirmResolution", headers=katrin)
    assert confirmed.status_code == 200, confirmed.text

    # then the violation closes, its credit goes to billing, the risk is assessed again
    assert until(lambda: flow_in_state(client, admin, workflow_id, "completed"))
    assert _seeds(client, admin, workflow_id) == [
        "3.7.2", "3.6.2", "3.6.4", "3.6.4", "3.7.2", "3.8.2", "3.9.3", "3.9.5"
    ]  # fmt: skip
    tasks = client.get(f"{FLOWS}/{workflow_id}/taskFlow", headers=admin).json()
    outcomes = {
        next(c["value"] for c in t["characteristic"] if c["name"] == "seedNumber"): next(
            c["value"] for c in t["characteristic"] if c["name"] == "outcome"
        )
        for t in tasks
    }
    assert f"sent when ticket {ticket_id} closed" in outcomes["3.9.5"], outcomes["3.9.5"]
    # the risk in words, each score named (the churn score has no riskName in TMF696)
    assert "churn risk " in outcomes["3.9.3"] and "bad-debt risk " in outcomes["3.9.3"]
    assert "None" not in outcomes["3.9.3"], outcomes["3.9.3"]
    closed = client.get(f"{VIOLATIONS}/{violation['id']}", headers=katrin).json()
    assert closed["status"] == "closed"
    assert "confirmed" in closed["resolution"]
    assert closed["credit"]["status"] == "handedToBilling"
    assert closed["credit"]["value"] == "100.00"
    problem = client.get(f"{PROBLEMS}/{problem_id}", headers=admin).json()
    assert problem["status"] == "closed"
    assessments = client.get(RISK, params={"partyRole.id": bmw["id"]}, headers=admin).json()
    assert [a["status"] for a in assessments] == ["succeeded"]
    # and the credit is on billing's work list, once, naming the violation
    credits = billing_work_list(client, auth("billing"))
    assert [c["reason"] for c in credits] == ["SLA credit 100.00 EUR for 2026-10"]
    assert credits[0]["interactionItem"][0]["item"]["id"] == str(violation["id"])
    with session_scope() as session:
        told = session.scalars(
            select(CommunicationMessageRow.body).where(
                CommunicationMessageRow.owner_customer_id == bmw["id"]
            )
        ).all()
    assert len([m for m in told if "credit 100.00 EUR" in m["subject"]]) == 1

    # and running October's QoS again changes nothing
    qos.start_qos_period("2026-10")
    assert until(lambda: flow_in_state(client, admin, qos.qos_workflow_id("2026-10"), "completed"))
    assert runs_of(qos.qos_workflow_id("2026-10")) == ["SUCCESS"]
    assert len(billing_work_list(client, auth("billing"))) == 1
    assert len(client.get(VIOLATIONS, headers=admin).json()) == 1


def test_a_violation_found_on_ingest_joins_the_open_ticket_and_closes_with_it(
    client: TestClient, auth: TokenFactory, flows: None
) -> None:
    # given BMW's product with an open ticket about it, and a first half of November
    admin = auth("admin")
    bmw, product_id, link_id = monitored_product(client, admin)
    november = datetime(2026, 10, 31, 23, tzinfo=UTC)
    measure(link_id, november, 24)
    ticket = ticket_about(
        client,
        admin,
        bmw["id"],
        product_id,
        name="Dealer offline",
        description="München is offline.",
    )
    # when measurements arrive that make November's target unreachable (down 10 hours)
    rows = _rows(link_id, november + timedelta(hours=24), 10, 0.0)
    with session_scope() as session:
        found = ingest.ingest_measurements(session, rows)
    # then the violation is recorded on the spot, attached to the open ticket
    assert len(found.violations) == 1
    violation_id = found.violations[0]
    workflow_id = violation_workflow_id(violation_id)
    assert until(lambda: len(_seeds(client, admin, workflow_id)) >= 3)
    violation = client.get(f"{VIOLATIONS}/{violation_id}", headers=admin).json()
    assert violation["troubleTicket"] == {"id": ticket["id"], "linked": True}
    entities = client.get(f"{TICKETS}/{ticket['id']}", headers=admin).json()["relatedEntity"]
    assert {"id": violation_id, "@referredType": "SlaViolation", "role": "slaViolation"} in (
        entities
    )
    # when support cancels the ticket (the customer withdrew it)
    _patch(client, f"{TICKETS}/{ticket['id']}", {"status": "cancelled"}, auth("support"))
    # then the violation closes all the same and its credit goes to billing
    assert until(lambda: flow_in_state(client, admin, workflow_id, "completed"))
    closed = client.get(f"{VIOLATIONS}/{violation_id}", headers=admin).json()
    assert closed["status"] == "closed" and "cancelled" in closed["resolution"]
    assert closed["credit"]["status"] == "handedToBilling"


def test_a_violation_whose_flow_never_started_is_taken_up_by_the_worker_sweep(
    client: TestClient, auth: TokenFactory, flows: None
) -> None:
    # given October's violation recorded by a process that died between the commit and
    # the start of the violation's flow
    admin = auth("admin")
    _violated_october(client, admin)
    with session_scope() as session:
        results = assessment.assess(session, period="2026-10", now=AFTER_OCTOBER)
        [recorded] = violations.evaluate(session, results)
        session.info.pop("after_commit", None)
    workflow_id = violation_workflow_id(str(recorded["id"]))
    assert runs_of(workflow_id) == []
    assert client.get(f"{FLOWS}/{workflow_id}", headers=admin).status_code == 404

    # when a worker starts and sweeps, twice
    assert sweep_unstarted_violation_flows() == 1
    assert until(lambda: len(_seeds(client, admin, workflow_id)) >= 3)
    assert sweep_unstarted_violation_flows() == 0

    # then the violation was forwarded as a problem once, and its flow ends with its ticket
    assert _seeds(client, admin, workflow_id) == ["3.7.2", "3.6.2", "3.6.4"]
    violation = client.get(f"{VIOLATIONS}/{recorded['id']}", headers=admin).json()
    ticket_id = violation["troubleTicket"]["id"]
    _patch(client, f"{TICKETS}/{ticket_id}", {"status": "cancelled"}, auth("support"))
    assert until(lambda: flow_in_state(client, admin, workflow_id, "completed"))
    with session_scope() as session:
        tickets = session.scalar(select(func.count()).select_from(TroubleTicketRow))
    assert tickets == 1
