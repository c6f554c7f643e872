"""TMF642 alarms: raised by the network in one insert, acknowledged and cleared by
operators (PATCH ackState, ackAlarms, clearAlarms), never seen by customers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from etomcrm.core.errors import IllegalTransition
from etomcrm.db import session_scope
from etomcrm.problem_handling import alarms
from etomcrm.problem_handling.models import AlarmRow
from tests.conftest import TokenFactory
from tests.factories import customer

AM = "/tmf-api/alarmManagement/v4"
RAISED_AT = datetime(2026, 11, 20, 9, 10, tzinfo=UTC)


def _raise(obj: str = "link-augsburg-1", key: str | None = "pop:MUC-N") -> dict[str, Any]:
    with session_scope() as session:
        return alarms.raise_alarm(
            session,
            alarmed_object_id=obj,
            alarm_type="communicationsAlarm",
            perceived_severity="major",
            probable_cause="lossOfSignal",
            specific_problem="access link down",
            raised_at=RAISED_AT,
            correlation_key=key,
        )


def test_the_network_raises_an_alarm_with_one_insert(
    client: TestClient, auth: TokenFactory, count_queries: Callable[[], Any]
) -> None:
    with count_queries() as counter, session_scope() as session:
        alarms.raise_alarm(
            session,
            alarmed_object_id="link-1",
            alarm_type="equipmentAlarm",
            perceived_severity="critical",
            probable_cause="equipmentMalfunction",
            specific_problem="line card failed",
            raised_at=RAISED_AT,
        )
    inserts = [s for s in counter.statements if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1
    assert not [s for s in counter.statements if s.lstrip().upper().startswith("SELECT")]
    alarm = _raise()
    assert isinstance(alarm["id"], int)
    with session_scope() as session:
        row = session.get(AlarmRow, str(alarm["id"]))
        assert row is not None
        assert (row.alarmed_object_id, row.correlation_key) == ("link-augsburg-1", "pop:MUC-N")
    # staff read it as the official schema says (an integer id)
    read = client.get(f"{AM}/alarm/{alarm['id']}", headers=auth("support"))
    assert read.status_code == 200
    assert read.json()["state"] == "raised"
    assert read.json()["ackState"] == "unacknowledged"


def test_the_network_updates_and_clears_and_cleared_is_final(client: TestClient) -> None:
    alarm = _raise()
    cleared_at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    with session_scope() as session:
        updated = alarms.update_alarm(
            session, str(alarm["id"]), perceived_severity="critical", changed_at=cleared_at
        )
    assert (updated["state"], updated["perceivedSeverity"]) == ("updated", "critical")
    with session_scope() as session:
        cleared = alarms.clear_alarm(session, str(alarm["id"]), cleared_at=cleared_at)
    assert cleared["state"] == "cleared"
    assert cleared["perceivedSeverity"] == "cleared"
    assert cleared["alarmClearedTime"] == "2026-11-20T10:00:00Z"
    with session_scope() as session:  # the network repeating itself changes nothing
        assert alarms.clear_alarm(session, str(alarm["id"]), cleared_at=cleared_at) == cleared
    with pytest.raises(IllegalTransition, match="final state"), session_scope() as session:
        alarms.update_alarm(
            session, str(alarm["id"]), perceived_severity="minor", changed_at=cleared_at
        )


def test_operators_acknowledge_by_patch_and_may_not_rewrite_the_fault(
    client: TestClient, auth: TokenFactory
) -> None:
    support = auth("support")
    alarm = _raise()
    href = f"{AM}/alarm/{alarm['id']}"
    acked = client.patch(href, json={"ackState": "acknowledged"}, headers=support)
    assert acked.status_code == 200, acked.text
    assert acked.json()["ackState"] == "acknowledged"
    assert acked.json()["ackUserId"] == "apikey:test-support"
    again = client.patch(href, json={"ackState": "bogus"}, headers=support)
    assert again.status_code == 409
    assert "unacknowledged" in again.json()["message"]
    unacked = client.patch(href, json={"ackState": "unacknowledged"}, headers=support)
    assert unacked.status_code == 200
    rewrite = client.patch(href, json={"perceivedSeverity": "minor"}, headers=support)
    assert rewrite.status_code == 403
    assert "perceivedSeverity" in rewrite.json()["message"]
    # alarms come from the network, not from a POST; an open alarm is not deleted
    created = client.post(
        f"{AM}/alarm",
        json={
            "alarmType": "equipmentAlarm",
            "perceivedSeverity": "minor",
            "probableCause": "x",
            "alarmedObject": {"id": "r1"},
            "sourceSystemId": "oss",
            "state": "raised",
            "alarmRaisedTime": "2026-11-20T09:00:00Z",
        },
        headers=support,
    )
    assert created.status_code == 403
    assert client.delete(href, headers=auth("admin")).status_code == 409


def test_ack_alarms_and_clear_alarms_tasks_by_ids_and_by_object(
    client: TestClient, auth: TokenFactory
) -> None:
    support = auth("support")
    first, second = _raise("link-1"), _raise("link-1")
    other = _raise("link-2")
    # when an operator acknowledges two alarms by id
    acked = client.post(
        f"{AM}/ackAlarms",
        json={
            "ackUserId": "Sandra",
            "ackSystemId": "noc-console",
            "alarmPattern": [{"id": first["id"]}, {"id": other["id"]}],
        },
        headers=support,
    )
    assert acked.status_code == 201, acked.text
    assert sorted(a["id"] for a in acked.json()["ackedAlarm"]) == sorted([first["id"], other["id"]])
    # then a second ack of the same alarms acknowledges nothing more
    repeat = client.post(
        f"{AM}/ackAlarms",
        json={"ackUserId": "Sandra", "ackSystemId": "noc", "alarmPattern": [{"id": first["id"]}]},
        headers=support,
    )
    assert repeat.json()["ackedAlarm"] == []
    read = client.get(f"{AM}/alarm/{first['id']}", headers=support).json()
    assert (read["ackState"], read["ackUserId"]) == ("acknowledged", "Sandra")
    # when the operator clears every alarm of link-1
    cleared = client.post(
        f"{AM}/clearAlarms",
        json={
            "clearUserId": "Sandra",
            "clearSystemId": "noc-console",
            "alarmClearedTime": "2026-11-20T11:00:00Z",
            "alarmPattern": [{"alarmedObject": {"id": "link-1"}}],
        },
        headers=support,
    )
    assert cleared.status_code == 201, cleared.text
    assert sorted(a["id"] for a in cleared.json()["clearedAlarm"]) == sorted(
        [first["id"], second["id"]]
    )
    state = client.get(f"{AM}/alarm/{second['id']}", headers=support).json()
    assert (state["state"], state["clearUserId"]) == ("cleared", "Sandra")
    assert client.get(f"{AM}/alarm/{other['id']}", headers=support).json()["state"] == "raised"
    # a pattern that names neither id nor object is refused
    vague = client.post(
        f"{AM}/ackAlarms",
        json={"ackUserId": "S", "ackSystemId": "n", "alarmPattern": [{"state": "raised"}]},
        headers=support,
    )
    assert vague.status_code == 400


def test_customers_have_no_access_to_alarms(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    alarm = _raise()
    bmw = customer(client, admin)
    bmw_user = auth("customer", customer_id=bmw["id"])
    assert client.get(f"{AM}/alarm", headers=bmw_user).status_code == 403
    assert client.get(f"{AM}/alarm/{alarm['id']}", headers=bmw_user).status_code == 403
    ack = client.post(
        f"{AM}/ackAlarms",
        json={"ackUserId": "x", "ackSystemId": "y", "alarmPattern": [{"id": alarm["id"]}]},
        headers=bmw_user,
    )
    assert ack.status_code == 403
    assert client.get(f"{AM}/alarm", headers=auth("analyst")).status_code == 200
    assert (
        client.patch(
            f"{AM}/alarm/{alarm['id']}", json={"ackState": "acknowledged"}, headers=auth("sales")
        ).status_code
        == 403
    )
