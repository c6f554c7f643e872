"""An Assurance problem flow survives SIGKILL: killed while it waits for the repair,
restarted, it resolves and closes the tickets; no ticket, message or step twice."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope, utcnow
from etomcrm.flows import assurance
from etomcrm.flows.models import TaskFlowRow
from etomcrm.network.models import NetworkPopRow
from etomcrm.problem_handling.alarms import clear_alarm, raise_alarm
from etomcrm.problem_handling.models import ServiceProblemRow, TroubleTicketRow
from tests.test_alarm_correlation import _customer_with_link
from tests.test_flow_recovery import _start, _until
from tests.test_serve import _free_port


def _statuses() -> list[str]:
    with session_scope() as session:
        return sorted(str(s) for s in session.scalars(select(TroubleTicketRow.status)))


def test_a_problem_flow_completes_after_the_server_is_killed_while_it_waits(
    db_url: str, tmp_path: Path
) -> None:
    # given the embedded service and a PoP outage hitting two customers
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "ETOMCRM_DATABASE_URL": db_url,
        "ETOMCRM_MESSAGE_DIR": str(tmp_path / "messages"),
        "ETOMCRM_TICKET_SILENCE_SECONDS": "1",
    }
    port = _free_port()
    server = _start(env, port, log)
    try:
        _until(lambda: httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200, 60, log)
        with session_scope() as session:
            session.add(NetworkPopRow(id="pop-sn-1", name="Leipzig", region="SN", status="up"))
            links = [_customer_with_link(session, 800 + n, "pop-sn-1")[1] for n in range(2)]
        start = utcnow()
        with session_scope() as session:
            alarms = [
                str(
                    raise_alarm(
                        session,
                        alarmed_object_id=link,
                        alarm_type="communicationsAlarm",
                        perceived_severity="major",
                        probable_cause="lossOfSignal",
                        specific_problem="link down (PoP unreachable)",
                        raised_at=start,
                        correlation_key="pop:pop-sn-1",
                    )["id"]
                )
                for link in links
            ]
        # when detection starts the problem flow (in the server) and it waits for repair
        (problem_id,) = assurance.detect(start - timedelta(minutes=1), utcnow())
        _until(lambda: _statuses() == ["inProgress", "inProgress"], 60, log)
        # the process is killed
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        # then, restarted, the flow resumes: the network repairs, the tickets resolve and
        # close after the silence period, the problem closes
        server = _start(env, port, log)
        _until(lambda: httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200, 60, log)
        with session_scope() as session:
            for alarm_id in alarms:
                clear_alarm(session, alarm_id, cleared_at=utcnow())

        def problem_closed() -> bool:
            with session_scope() as session:
                row = session.get(ServiceProblemRow, problem_id)
                return row is not None and row.status == "closed"

        # the flow also looks again by itself (every quarter hour): the clear's wake-up is
        # sent from this process through the DBOS client
        _until(problem_closed, 120, log)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert _statuses() == ["closed", "closed"]
    with session_scope() as session:
        steps = list(
            session.scalars(
                select(TaskFlowRow.name).where(
                    TaskFlowRow.process_flow_id == assurance.problem_workflow_id(problem_id)
                )
            )
        )
        tickets = session.scalar(select(func.count()).select_from(TroubleTicketRow))
        messages = session.execute(
            select(
                CommunicationMessageRow.owner_customer_id,
                CommunicationMessageRow.body["subject"].as_string(),
            )
        ).all()
    assert tickets == 2
    assert steps.count("3.6.1 Isolate the problem and start resolution") == 1
    # each customer heard each change of its ticket once (acknowledged, inProgress,
    # resolved, closed) and got one survey: 5 messages each, none twice
    pairs = [(owner, subject) for owner, subject in messages]
    assert len(pairs) == 10 and len(set(pairs)) == 10, pairs
