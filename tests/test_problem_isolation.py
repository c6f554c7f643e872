"""3.6.1 and 3.6.2 from a customer's ticket: isolated against the open service problems
and the network when it is opened; the network's repair report resolves the problem and
wakes its flow."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.db import session_scope
from etomcrm.flows import assurance
from etomcrm.network.models import NetworkLinkRow, NetworkPopRow, NetworkServiceOrderRow
from etomcrm.network.simulator import REPAIR_TYPE
from etomcrm.problem_handling.models import ServiceProblemRow, TroubleTicketRow
from tests.conftest import TokenFactory
from tests.factories import customer, site
from tests.polling import flow_in_state, until

TT = "/tmf-api/troubleTicket/v4/troubleTicket"
SP = "/tmf-api/serviceProblemManagement/v4/serviceProblem"


def _network(site_id: str, customer_id: str, *, link: str = "up", pop: str = "up") -> str:
    """The simulated network's state: the site's access link to a point of presence."""
    link_id = f"link-{site_id}"
    with session_scope() as session:
        if session.get(NetworkPopRow, "pop-by-1") is None:
            session.add(NetworkPopRow(id="pop-by-1", name="PoP München", region="BY", status=pop))
        session.add(
            NetworkLinkRow(
                id=link_id,
                customer_id=customer_id,
                site_id=site_id,
                pop_id="pop-by-1",
                product_id=None,
                bandwidth_mbits=100,
                status=link,
            )
        )
    return link_id


def _ticket_about(site_id: str, name: str = "Dealer München offline") -> dict[str, Any]:
    """What a customer's portal or API client sends (the README's example)."""
    return {
        "name": name,
        "description": "Since 09:10 the dealer reaches neither the extranet nor the DMS.",
        "severity": "Major",
        "priority": "High",
        "ticketType": "network",
        "relatedEntity": [
            {"id": site_id, "@referredType": "GeographicSite", "role": "affectedSite"}
        ],
    }


def _customer_with_site(
    client: TestClient, admin: dict[str, str], auth: TokenFactory, **state: str
) -> tuple[str, str, str, dict[str, str]]:
    bmw = customer(client, admin)
    munich = site(client, admin, bmw["id"])
    link_id = _network(munich["id"], bmw["id"], **state)
    return bmw["id"], munich["id"], link_id, auth("customer", customer_id=bmw["id"])


def _problems() -> list[ServiceProblemRow]:
    with session_scope() as session:
        return list(session.scalars(select(ServiceProblemRow)))


def test_a_ticket_on_a_site_with_an_open_problem_is_linked_to_it(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given BMW's site whose point of presence has an open service problem, reported
    # to the network side (which gave its estimate)
    _, site_id, _, portal = _customer_with_site(client, admin, auth, pop="down")
    support = auth("support")
    created = client.post(
        SP,
        json={
            "category": "network",
            "priority": 1,
            "description": "Point of presence pop-by-1 is down",
            "reason": "power failure reported by the field team",
            "originatorParty": {"id": "noc", "name": "NOC", "@referredType": "Organization"},
            "affectedResource": [{"id": "pop-by-1", "@referredType": "PointOfPresence"}],
            "correlationKey": "pop:pop-by-1",
            "expectedResolutionDate": "2026-12-01T15:00:00Z",
        },
        headers=support,
    )
    assert created.status_code == 201, created.text
    problem = created.json()
    # when the customer opens a ticket about the site
    response = client.post(TT, json=_ticket_about(site_id), headers=portal)
    # then it is linked to the problem, with the cause known, and takes over its estimate
    assert response.status_code == 201, response.text
    ticket = response.json()
    causes = [e for e in ticket["relatedEntity"] if e["@referredType"] == "ServiceProblem"]
    assert [(c["id"], c["role"]) for c in causes] == [(problem["id"], "cause")]
    assert any(
        f"Linked to service problem {problem['id']}: cause known" in n["text"]
        for n in ticket["note"]
    )
    assert ticket["diagnosis"]["serviceProblem"]["id"] == problem["id"]
    assert ticket["expectedResolutionDate"] == "2026-12-01T15:00:00Z"
    assert ticket["resolutionDueDate"] != ticket["expectedResolutionDate"]
    # and the problem lists the ticket; no second problem was opened
    again = client.get(f"{SP}/{problem['id']}", headers=support).json()
    assert [t["id"] for t in again["troubleTicket"]] == [ticket["id"]]
    assert len(_problems()) == 1


def test_a_ticket_on_a_site_whose_link_is_down_is_diagnosed_and_gets_a_problem(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given BMW's site whose access link is down in the network, and nothing known yet
    _, site_id, link_id, portal = _customer_with_site(client, admin, auth, link="down")
    # when the customer opens a ticket about the site
    response = client.post(TT, json=_ticket_about(site_id), headers=portal)
    # then the network's diagnosis is on the ticket
    assert response.status_code == 201, response.text
    ticket = response.json()
    diagnosis = ticket["diagnosis"]
    assert diagnosis["linkStatus"] == "down"
    assert diagnosis["accessLink"]["id"] == link_id and diagnosis["checkedAt"]
    assert any(f"access link {link_id} is down" in n["text"] for n in ticket["note"])
    # and a service problem was opened for the link, reported to the network side
    (problem,) = _problems()
    assert problem.correlation_key == f"link:{link_id}"
    assert problem.body["affectedResource"] == [{"id": link_id, "@referredType": "AccessLink"}]
    (repair,) = [e for e in problem.body["relatedEntity"] if e["role"] == "repairOrder"]
    with session_scope() as session:
        order = session.get(NetworkServiceOrderRow, repair["id"])
        assert order is not None and order.at_type == REPAIR_TYPE
        assert order.status == "inProgress"
    # and the ticket is linked to it and takes over the network's estimate
    assert diagnosis["serviceProblem"]["id"] == problem.id
    assert ticket["expectedResolutionDate"] == problem.body["expectedResolutionDate"]
    assert [t["id"] for t in problem.body["troubleTicket"]] == [ticket["id"]]
    # and a second customer ticket on the same site joins the same problem
    second = client.post(TT, json=_ticket_about(site_id, "Still down"), headers=portal).json()
    assert second["diagnosis"]["serviceProblem"]["id"] == problem.id
    assert len(_problems()) == 1


def test_a_ticket_on_a_healthy_site_records_the_healthy_diagnosis(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given BMW's site whose link is up
    _, site_id, link_id, portal = _customer_with_site(client, admin, auth)
    # when the customer opens a ticket about it
    ticket = client.post(TT, json=_ticket_about(site_id), headers=portal).json()
    # then the diagnosis says the link is up, and no problem is opened
    assert ticket["diagnosis"]["linkStatus"] == "up"
    assert "serviceProblem" not in ticket["diagnosis"]
    assert any(f"access link {link_id} is up" in n["text"] for n in ticket["note"])
    assert not [e for e in ticket["relatedEntity"] if e["@referredType"] == "ServiceProblem"]
    assert _problems() == []
    # and staff can list the tickets by diagnosis
    listed = client.get(TT, params={"diagnosis.linkStatus": "up"}, headers=admin).json()
    assert [t["id"] for t in listed] == [ticket["id"]]


def test_a_ticket_about_another_customers_site_is_refused(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given BMW's site and MINI's portal user
    _, site_id, _, _ = _customer_with_site(client, admin, auth, link="down")
    mini = customer(client, admin, "MINI")
    mini_portal = auth("customer", customer_id=mini["id"])
    # when MINI opens a ticket naming BMW's site
    refused = client.post(TT, json=_ticket_about(site_id), headers=mini_portal)
    # then it is refused with a message, and nothing is diagnosed or opened
    assert refused.status_code == 400, refused.text
    assert "not sites of customer" in refused.json()["message"]
    assert _problems() == []


def test_the_network_reports_the_repair_and_the_problem_flow_resolves_the_ticket(
    client: TestClient, admin: dict[str, str], auth: TokenFactory, flows: None
) -> None:
    # given the event handlers wired, and a customer's ticket on a site whose link is down
    _, site_id, link_id, portal = _customer_with_site(client, admin, auth, link="down")
    ticket = client.post(TT, json=_ticket_about(site_id), headers=portal).json()
    problem_id = ticket["diagnosis"]["serviceProblem"]["id"]
    workflow_id = assurance.problem_workflow_id(problem_id)
    # then the problem's flow starts, takes the ticket into work and waits for the repair
    assert until(lambda: _status(client, admin, ticket["id"]) == "inProgress")
    assert flow_in_state(client, admin, workflow_id, "active")
    # when the network side reports the repair through TMF656 (as a real OSS would)
    network = auth("support")
    repaired = client.patch(
        f"{SP}/{problem_id}",
        json={
            "status": "resolved",
            "statusChangeReason": "fibre cut by street works; spliced",
            "rootCauseResource": [{"id": link_id, "@referredType": "AccessLink"}],
        },
        headers=network,
    )
    assert repaired.status_code == 200, repaired.text
    # then the flow wakes (well before its quarter-hour recheck) and resolves the ticket
    assert until(lambda: _status(client, admin, ticket["id"]) == "resolved", seconds=60)
    resolved = client.get(f"{TT}/{ticket['id']}", headers=portal).json()
    assert resolved["statusChange"][-1]["changeReason"] == "the network side repaired the fault"
    outcomes = [
        c["value"]
        for t in client.get(
            f"/tmf-api/processFlowManagement/v4/processFlow/{workflow_id}/taskFlow",
            headers=admin,
        ).json()
        for c in t["characteristic"]
        if c["name"] == "outcome"
    ]
    assert any("repaired by the network side (fibre cut" in o for o in outcomes), outcomes
    # and when the customer confirms, the problem and its flow close
    confirmed = client.post(f"{TT}/{ticket['id']}/confirmResolution", headers=portal)
    assert confirmed.status_code == 200, confirmed.text
    assert until(lambda: flow_in_state(client, admin, workflow_id, "completed"))
    assert client.get(f"{SP}/{problem_id}", headers=admin).json()["status"] == "closed"


def _status(client: TestClient, headers: dict[str, str], ticket_id: str) -> str:
    return str(client.get(f"{TT}/{ticket_id}", headers=headers).json()["status"])


def test_the_simulated_network_repairs_and_reports_through_the_same_entry(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given a ticket whose site's link is down: its problem's repair is requested
    _, site_id, link_id, portal = _customer_with_site(client, admin, auth, link="down")
    ticket = client.post(TT, json=_ticket_about(site_id), headers=portal).json()
    problem_id = ticket["diagnosis"]["serviceProblem"]["id"]
    # when the network side's schedule runs (the simulator repairs at once in tests)
    with session_scope() as session:
        result, _ = assurance.network_repairs_step(session, "tick", "2026-11-30T12:00:00+00:00")
    # then the problem is resolved with the root cause, and the link is up again
    assert result == {"repaired": [problem_id]}
    problem = client.get(f"{SP}/{problem_id}", headers=admin).json()
    assert problem["status"] == "resolved"
    assert problem["rootCauseResource"] == [{"id": link_id, "@referredType": "AccessLink"}]
    assert problem["statusChangeReason"].startswith("repaired: ")
    assert problem["trackingRecord"][-1]["user"] == "network side"
    with session_scope() as session:
        link = session.get(NetworkLinkRow, link_id)
        assert link is not None and link.status == "up"
        row = session.get(TroubleTicketRow, ticket["id"])
        assert row is not None
    # and the network reports each repair once
    with session_scope() as session:
        again, _ = assurance.network_repairs_step(session, "tick", "2026-11-30T12:00:30+00:00")
    assert again == {"repaired": []}
