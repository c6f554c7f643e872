"""Failed flows: refused before they can fail, on record and on the work list when they
do, and retried once the cause is fixed."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from etomcrm.cli import app as cli
from etomcrm.db import session_scope
from etomcrm.flows import engine
from etomcrm.flows.fulfillment import ordering_workflow_id
from etomcrm.flows.models import ProcessFlowRow
from etomcrm.network.models import NetworkServiceOrderRow
from tests import factories
from tests.conftest import TokenFactory
from tests.polling import PROCESS_FLOWS, until
from tests.quote_helpers import QUOTES, action, draft, educate, load_bmw
from tests.test_fulfillment_flow import (
    ORDERING,
    access_offering,
    contractable_customer,
    order_body,
    wait_for_state,
)


def test_a_quote_is_not_accepted_while_the_contract_data_is_incomplete(
    client: TestClient, auth: TokenFactory
) -> None:
    # given BMW, whose VAT id, billing contact and billing address are not on record, and
    # an approved quote it was educated on
    bmw = load_bmw()
    sales = auth("sales")
    quote = draft(bmw, sites=1)
    assert action(client, quote["id"], "submit", sales).json()["state"] == "approved"
    educate(client, quote["id"], sales)
    # when BMW accepts it
    bmw_user = auth("customer", customer_id=bmw.customer_id)
    response = action(client, quote["id"], "accept", bmw_user)
    # then the acceptance is refused, listing what is missing
    assert response.status_code == 409, response.text
    error = response.json()
    assert error["reason"] == "Customer data incomplete"
    for missing in ("VAT id", "billing contact", "billing address"):
        assert missing in error["message"], error["message"]
    # and the quote stays open, with nothing ordered
    assert client.get(f"{QUOTES}/{quote['id']}", headers=sales).json()["state"] == "approved"
    assert client.get(f"{ORDERING}/productOrder", headers=auth("admin")).json() == []


def _refused_order(
    client: TestClient, auth: TokenFactory, network: dict[str, Any]
) -> tuple[dict[str, str], dict[str, Any], str, str]:
    """An order whose second site the network refuses: its ordering flow fails."""
    admin = auth("admin")
    customer = contractable_customer(client, admin)
    sites = [factories.site(client, admin, customer["id"], c) for c in ("Ulm", "Hof")]
    network[sites[1]["id"]] = "refuse"
    order = factories.post(
        client,
        f"{ORDERING}/productOrder",
        order_body(customer["id"], access_offering(client, admin), [s["id"] for s in sites]),
        admin,
    )
    return admin, order, ordering_workflow_id(order["id"]), sites[1]["id"]


def _failed(client: TestClient, headers: dict[str, str], flow_id: str) -> dict[str, Any] | None:
    body = client.get(f"{PROCESS_FLOWS}/{flow_id}", headers=headers).json()
    return body if body.get("failed") else None


def test_a_failed_flow_is_on_record_and_on_the_work_list_and_completes_when_retried(
    client: TestClient, auth: TokenFactory, flows: None, network: dict[str, Any]
) -> None:
    # given an order for two sites, one of which the network refuses to take orders for
    admin, order, flow_id, refused_site = _refused_order(client, auth, network)

    # when its ordering flow sends the service orders, then it fails with the reason
    failed = until(lambda: _failed(client, admin, flow_id), seconds=120)
    assert failed is not None, client.get(f"{PROCESS_FLOWS}/{flow_id}", headers=admin).json()
    assert failed["state"] == "hold"  # TMF701's state for a flow stopped until someone acts
    assert f"for site {refused_site}" in failed["failureReason"]
    assert "not in the network inventory" in failed["failureReason"]
    assert failed["failedStep"] == "issue"
    tasks = client.get(f"{PROCESS_FLOWS}/{flow_id}/taskFlow", headers=admin).json()
    failure = tasks[-1]
    assert failure["taskFlowSpecification"] == "3.5.3 Flow failed"
    assert refused_site in str(failure["characteristic"])
    # and no service order went out (the step's work was rolled back with it)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(NetworkServiceOrderRow)) == 0
    assert engine.workflow_state(flow_id) == "ERROR"
    # and the case's trace shows the flow failed, with the reason
    trace = CliRunner().invoke(cli, ["trace", order["id"]], terminal_width=200)
    assert trace.exit_code == 0, trace.output
    assert f"{flow_id} (failed)" in trace.output and "Flow failed" in trace.output

    # and it is on the order manager's work list of failed flows, alone
    manager = auth("order_manager")
    listed = client.get(PROCESS_FLOWS, params={"failed": "true"}, headers=manager)
    assert listed.status_code == 200, listed.text
    assert [f["id"] for f in listed.json()] == [flow_id]

    # when the order manager retries before the cause is fixed, it fails again
    retried = client.post(f"{PROCESS_FLOWS}/{flow_id}/retry", headers=manager)
    assert retried.status_code == 200, retried.text
    assert retried.json()["state"] == "active" and retried.json()["retries"] == 1
    again = until(lambda: _failed(client, admin, flow_id), seconds=120)
    assert again is not None and "not in the network inventory" in again["failureReason"]

    # when network operations register the site and the order manager retries
    del network[refused_site]
    retried = client.post(f"{PROCESS_FLOWS}/{flow_id}/retry", headers=manager)
    assert retried.status_code == 200, retried.text
    assert retried.json()["state"] == "active" and "failureReason" not in retried.json()

    # then the order completes, one service order per site, and the flow with it
    done = wait_for_state(client, manager, order["id"], {"completed", "partial", "failed"})
    assert done["state"] == "completed", done
    factories.accept_delivery(client, manager, order["id"])
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(NetworkServiceOrderRow)) == 2
    flow = until(
        lambda: (
            client.get(f"{PROCESS_FLOWS}/{flow_id}", headers=manager).json()["state"] == "completed"
        ),
        seconds=60,
    )
    assert flow
    assert client.get(PROCESS_FLOWS, params={"failed": "true"}, headers=manager).json() == []
    steps = [
        t["taskFlowSpecification"]
        for t in client.get(f"{PROCESS_FLOWS}/{flow_id}/taskFlow", headers=manager).json()
    ]
    assert steps.count("3.5.3 Flow failed") == 2 and steps.count("3.5.3 Flow retried") == 2
    assert steps[-1].startswith("3.5.4")  # tracked to the end after the retry
    # and a flow that has not failed is not retried
    response = client.post(f"{PROCESS_FLOWS}/{flow_id}/retry", headers=manager)
    assert response.status_code == 409 and "not failed" in response.json()["message"]


def test_staff_retry_a_failed_flow_from_the_command_line_and_a_customer_cannot(
    client: TestClient, auth: TokenFactory, flows: None, network: dict[str, Any]
) -> None:
    # given an ordering flow that failed on a refused service order
    admin, order, flow_id, refused_site = _refused_order(client, auth, network)
    assert until(lambda: _failed(client, admin, flow_id), seconds=120)
    customer_id = order["relatedParty"][0]["id"]

    # then the customer cannot retry it, and an unknown flow is not found
    customer = auth("customer", customer_id=customer_id)
    response = client.post(f"{PROCESS_FLOWS}/{flow_id}/retry", headers=customer)
    assert response.status_code == 403
    response = client.post(f"{PROCESS_FLOWS}/ordering-nothing/retry", headers=admin)
    assert response.status_code == 404

    # when staff list the failed flows on the command line, it is there with its reason
    listed = CliRunner().invoke(cli, ["flow", "failed"], terminal_width=300)
    assert listed.exit_code == 0, listed.output
    assert flow_id in listed.output and "not in the network inventory" in listed.output

    # when the cause is fixed and staff retry it on the command line
    del network[refused_site]
    retried = CliRunner().invoke(cli, ["flow", "retry", flow_id, "--actor", "ops-olga"])
    assert retried.exit_code == 0, retried.output

    # then the order completes, and the retry is on record with who did it
    done = wait_for_state(client, admin, order["id"], {"completed", "partial", "failed"})
    assert done["state"] == "completed", done
    factories.accept_delivery(client, admin, order["id"])
    tasks = client.get(f"{PROCESS_FLOWS}/{flow_id}/taskFlow", headers=admin).json()
    retry = next(t for t in tasks if t["taskFlowSpecification"].endswith("Flow retried"))
    assert {"name": "actor", "value": "ops-olga"} in retry["characteristic"]
    # and retrying it again is refused, saying why
    again = CliRunner().invoke(cli, ["flow", "retry", flow_id])
    assert again.exit_code == 2 and "not failed" in again.output
    assert until(
        lambda: (
            client.get(f"{PROCESS_FLOWS}/{flow_id}", headers=admin).json()["state"] == "completed"
        ),
        seconds=60,
    )


def test_a_flow_found_failed_at_start_is_marked_failed(
    client: TestClient, auth: TokenFactory, db_url: str, flows: None, network: dict[str, Any]
) -> None:
    # given an ordering flow that failed, whose failure was never recorded (the process
    # died between the flow's error and its record: its processFlow still says active)
    admin, order, flow_id, refused_site = _refused_order(client, auth, network)
    assert until(lambda: _failed(client, admin, flow_id), seconds=120)
    with session_scope() as session:
        row = session.get(ProcessFlowRow, flow_id)
        assert row is not None
        row.status = "active"
        row.body = {
            k: v
            for k, v in row.body.items()
            if k not in ("failed", "failureReason", "failedStep", "failedAt")
        } | {"state": "active"}
    assert _failed(client, admin, flow_id) is None
    # when the flows start again
    engine.shutdown()
    engine.launch(db_url, schedules=False)
    # then it is marked failed with the error its run ended with
    failed = _failed(client, admin, flow_id)
    assert failed is not None and failed["state"] == "hold"
    assert "not in the network inventory" in failed["failureReason"]
    # and it completes once fixed and retried
    del network[refused_site]
    assert client.post(f"{PROCESS_FLOWS}/{flow_id}/retry", headers=admin).status_code == 200
    done = wait_for_state(client, admin, order["id"], {"completed", "partial", "failed"})
    assert done["state"] == "completed", done
    factories.accept_delivery(client, admin, order["id"])
    assert until(
        lambda: (
            client.get(f"{PROCESS_FLOWS}/{flow_id}", headers=admin).json()["state"] == "completed"
        ),
        seconds=60,
    )
