"""The Assurance flow for the alarm case, on DBOS: alarm → service problem → tickets
→ repair → closed after confirmation or silence, every step on record."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from etomcrm.cli import app as cli
from etomcrm.config import get_settings
from etomcrm.core.clock import FLOW_CLOCK
from etomcrm.customer_interface.models import PartyInteractionRow
from etomcrm.db import session_scope, utcnow
from etomcrm.flows import assurance, engine
from etomcrm.network.models import NetworkPopRow
from etomcrm.problem_handling.alarms import clear_alarm, raise_alarm
from etomcrm.problem_handling.models import AlarmRow, ServiceProblemRow, TroubleTicketRow
from tests.conftest import TokenFactory
from tests.polling import until
from tests.test_alarm_correlation import _customer_with_link

FLOWS = "/tmf-api/processFlowManagement/v4/processFlow"
TICKETS = "/tmf-api/troubleTicket/v4/troubleTicket"


def test_a_pop_outage_runs_from_alarm_to_closed_tickets(
    client: TestClient, auth: TokenFactory, flows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given three customers on one point of presence, and a silence period of an hour
    monkeypatch.setenv("ETOMCRM_TICKET_SILENCE_SECONDS", "3600")
    get_settings.cache_clear()
    with session_scope() as session:
        session.add(NetworkPopRow(id="pop-by-7", name="Regensburg", region="BY", status="up"))
        customers = [_customer_with_link(session, 700 + n, "pop-by-7") for n in range(3)]
    # when the point of presence goes down and detection runs
    start = utcnow()
    with session_scope() as session:
        alarm_ids = [
            str(
                raise_alarm(
                    session,
                    alarmed_object_id=link,
                    alarm_type="communicationsAlarm",
                    perceived_severity="major",
                    probable_cause="lossOfSignal",
                    specific_problem="link down (PoP unreachable)",
                    raised_at=start,
                    correlation_key="pop:pop-by-7",
                )["id"]
            )
            for _, link in customers
        ]
    (problem_id,) = assurance.detect(start - timedelta(minutes=1), utcnow())
    admin = auth("admin")
    flow_url = f"{FLOWS}/{assurance.problem_workflow_id(problem_id)}"

    # then the problem flow takes the customers' tickets into work
    def tickets(status: str) -> list[dict[str, Any]]:
        listed = client.get(TICKETS, headers=admin).json()
        return [t for t in listed if t["status"] == status]

    assert len(until(lambda: tickets("inProgress") if len(tickets("inProgress")) == 3 else [])) == 3

    # when the network clears the alarms, the flow resolves the tickets
    with session_scope() as session:
        for alarm_id in alarm_ids:
            clear_alarm(session, alarm_id, cleared_at=utcnow())
    resolved = until(lambda: tickets("resolved") if len(tickets("resolved")) == 3 else None)
    assert resolved and len(resolved) == 3

    # and when one customer confirms and the others stay silent, all close
    first_customer = resolved[0]["relatedParty"][0]["id"]
    confirmed = client.post(
        f"{TICKETS}/{resolved[0]['id']}/confirmResolution",
        headers=auth("customer", customer_id=first_customer),
    )
    assert confirmed.status_code == 200, confirmed.text
    # and the others stay silent for the hour (the flows' clock moves on; nobody waits)
    FLOW_CLOCK.advance(timedelta(hours=1, minutes=1))
    engine.send(assurance.problem_workflow_id(problem_id), "look again", "ticket")
    flow = until(
        lambda: (f := client.get(flow_url, headers=admin).json())["state"] == "completed" and f
    )
    assert flow, client.get(f"{flow_url}/taskFlow", headers=admin).json()
    with session_scope() as session:
        statuses = list(session.scalars(select(TroubleTicketRow.status)))
        problem = session.get(ServiceProblemRow, problem_id)
        assert problem is not None and problem.status == "closed"
        surveys = session.scalar(
            select(func.count())
            .select_from(PartyInteractionRow)
            .where(PartyInteractionRow.at_type == "SatisfactionSurvey")
        )
        assert session.scalar(select(func.count()).where(AlarmRow.status != "cleared")) == 0
    assert statuses == ["closed"] * 3 and surveys == 3

    # and the case's steps are on record, by ticket as well as by problem
    trace = CliRunner().invoke(cli, ["trace", problem_id], terminal_width=200)
    assert trace.exit_code == 0, trace.output
    for seed in ("3.6.1", "3.6.2", "3.6.3", "3.6.4"):
        assert seed in trace.output
    by_ticket = CliRunner().invoke(cli, ["trace", resolved[0]["id"]], terminal_width=200)
    assert by_ticket.output == trace.output
    # and by the flow id the trace itself prints
    workflow_id = assurance.problem_workflow_id(problem_id)
    assert workflow_id in trace.output
    by_flow = CliRunner().invoke(cli, ["trace", workflow_id], terminal_width=200)
    assert by_flow.output == trace.output
    outcomes = [
        c["value"]
        for t in client.get(f"{flow_url}/taskFlow", headers=admin).json()
        for c in t["characteristic"]
        if c["name"] == "outcome"
    ]
    assert any("1 confirmed by the customer" in o for o in outcomes), outcomes
