"""A real network side feeds etomcrm through the API: TMF642 alarms and performance
data posted by a principal with the ``network`` role correlate and count exactly as
the simulated network's do."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from etomcrm.db import session_scope, utcnow
from etomcrm.problem_handling.correlation import correlate
from etomcrm.problem_handling.models import AlarmRow, ServiceProblemRow
from tests.conftest import TokenFactory
from tests.qos_helpers import TICKETS, monitored_product

ALARMS = "/tmf-api/alarmManagement/v4/alarm"
PROBLEMS = "/tmf-api/serviceProblemManagement/v4/serviceProblem"
CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
BATCH = "/etomcrm/v1/performance/measurementBatch"


def _link_down(link_id: str, raised: datetime) -> dict[str, Any]:
    """The alarm a real OSS sends when an access link goes down (TMF642 Alarm_Create)."""
    return {
        "externalAlarmId": "oss-77812",
        "alarmType": "communicationsAlarm",
        "perceivedSeverity": "major",
        "probableCause": "linkDown",
        "specificProblem": "LOS on the access port towards the customer site",
        "alarmedObjectType": "AccessLink",
        "alarmedObject": {"id": link_id},
        "sourceSystemId": "acme-oss",
        "state": "raised",
        "alarmRaisedTime": raised.isoformat().replace("+00:00", "Z"),
    }


def _correlate_after_hold_down() -> list[str]:
    """The correlation tick, run as the schedule runs it, three minutes on (a link
    alarm still raised after the two-minute hold-down is a link down)."""
    now = utcnow()
    with session_scope() as session:
        found = correlate(session, since=now - timedelta(minutes=5), now=now + timedelta(minutes=3))
        return found.problems


def test_an_alarm_from_the_oss_opens_a_problem_and_a_ticket_and_is_updated_and_cleared(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a customer's product on an access link, and the OSS's network API key
    admin, network = auth("admin"), auth("network")
    bmw, _, link_id = monitored_product(client, admin)

    # when the OSS reports the link down
    raised = utcnow().replace(microsecond=0)
    response = client.post(ALARMS, json=_link_down(link_id, raised), headers=network)

    # then the alarm is stored as raised and unacknowledged, with a TMF642 integer id
    assert response.status_code == 201, response.text
    alarm = response.json()
    assert isinstance(alarm["id"], int)
    assert (alarm["state"], alarm["ackState"]) == ("raised", "unacknowledged")
    assert alarm["sourceSystemId"] == "acme-oss" and alarm["serviceAffecting"] is True
    with session_scope() as session:
        row = session.get(AlarmRow, str(alarm["id"]))
        assert row is not None and row.correlation_key == f"link:{link_id}"

    # when correlation runs after the hold-down time
    (problem_id,) = _correlate_after_hold_down()

    # then a service problem names the link, and the customer has a ticket about it
    problem = client.get(f"{PROBLEMS}/{problem_id}", headers=network).json()
    assert problem["affectedResource"][0]["id"] == link_id
    tickets = client.get(TICKETS, params={"relatedParty.id": bmw["id"]}, headers=admin).json()
    assert len(tickets) == 1
    assert {"id": problem_id, "@referredType": "ServiceProblem", "role": "cause"} in tickets[0][
        "relatedEntity"
    ]

    # when the OSS raises the severity
    url = f"{ALARMS}/{alarm['id']}"
    updated = client.patch(url, json={"perceivedSeverity": "critical"}, headers=network)
    # then the alarm is updated
    assert updated.status_code == 200, updated.text
    assert (updated.json()["state"], updated.json()["perceivedSeverity"]) == (
        "updated",
        "critical",
    )

    # when it clears the alarm
    cleared_at = utcnow().replace(microsecond=0).isoformat().replace("+00:00", "Z")
    cleared = client.patch(
        url, json={"state": "cleared", "alarmClearedTime": cleared_at}, headers=network
    )
    # then the alarm is cleared by the OSS, and a second clear changes nothing
    assert cleared.status_code == 200, cleared.text
    body = cleared.json()
    assert (body["state"], body["perceivedSeverity"]) == ("cleared", "cleared")
    assert (body["alarmClearedTime"], body["clearSystemId"]) == (cleared_at, "acme-oss")
    again = client.patch(
        url, json={"state": "cleared", "alarmClearedTime": cleared_at}, headers=network
    )
    assert again.status_code == 200 and again.json() == body
    # and what identifies the alarm, or a cleared alarm, does not change
    changed = client.patch(url, json={"perceivedSeverity": "minor"}, headers=network)
    assert changed.status_code == 409
    # and correlating again opens nothing new
    assert _correlate_after_hold_down() == []
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(ServiceProblemRow)) == 1


def test_a_pop_and_a_site_correlate_by_their_ids_and_bad_alarms_are_refused(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a product on an access link at site-1 of pop-1
    admin, network = auth("admin"), auth("network")
    _, _, link_id = monitored_product(client, admin)
    raised = utcnow().replace(microsecond=0)
    alarm = _link_down(link_id, raised)

    # when the OSS names the site instead of the link
    by_site = {**alarm, "alarmedObjectType": "GeographicSite", "alarmedObject": {"id": "site-1"}}
    response = client.post(ALARMS, json=by_site, headers=network)
    # then the alarm correlates as the site's access link
    assert response.status_code == 201, response.text
    with session_scope() as session:
        row = session.get(AlarmRow, str(response.json()["id"]))
        assert row is not None and row.correlation_key == f"link:{link_id}"

    # and an object etomcrm does not model is kept, uncorrelated
    router = {**alarm, "alarmedObjectType": "Router", "alarmedObject": {"id": "core-7"}}
    kept = client.post(ALARMS, json=router, headers=network)
    assert kept.status_code == 201, kept.text
    with session_scope() as session:
        row = session.get(AlarmRow, str(kept.json()["id"]))
        assert row is not None and row.correlation_key is None

    # but an unknown link, a missing mandatory attribute, a wrong state or a raise time
    # in the future are refused, saying what is wrong
    unknown = {**alarm, "alarmedObject": {"id": "no-such-link"}}
    incomplete = {k: v for k, v in alarm.items() if k != "probableCause"}
    cleared = {**alarm, "state": "cleared"}
    future = {**alarm, "alarmRaisedTime": (raised + timedelta(hours=1)).isoformat()}
    for bad, words in (
        (unknown, "no-such-link"),
        (incomplete, "probableCause"),
        (cleared, "raised"),
        (future, "in the future"),
    ):
        refused = client.post(ALARMS, json=bad, headers=network)
        assert refused.status_code == 400, refused.text
        assert words in refused.json()["message"]


def test_only_the_network_role_reports_alarms_and_it_reads_nothing_else(
    client: TestClient, auth: TokenFactory
) -> None:
    admin, network = auth("admin"), auth("network")
    bmw, _, link_id = monitored_product(client, admin)
    alarm = _link_down(link_id, utcnow())
    # a customer, sales, support and admin may not report alarms
    for headers in (
        auth("customer", customer_id=bmw["id"]),
        auth("sales"),
        auth("support"),
        admin,
    ):
        assert client.post(ALARMS, json=alarm, headers=headers).status_code == 403
    # the network reads alarms and service problems, not customers or tickets
    assert client.get(ALARMS, headers=network).status_code == 200
    assert client.get(PROBLEMS, headers=network).status_code == 200
    assert client.get(CUSTOMERS, headers=network).status_code == 403
    assert client.get(TICKETS, headers=network).status_code == 403
    # operators still acknowledge what the network raised
    created = client.post(ALARMS, json=alarm, headers=network).json()
    acked = client.patch(
        f"{ALARMS}/{created['id']}", json={"ackState": "acknowledged"}, headers=auth("support")
    )
    assert acked.status_code == 200 and acked.json()["ackState"] == "acknowledged"
    # and the network may not acknowledge or delete
    assert (
        client.patch(
            f"{ALARMS}/{created['id']}", json={"ackState": "unacknowledged"}, headers=network
        ).status_code
        == 403
    )
    assert client.delete(f"{ALARMS}/{created['id']}", headers=network).status_code == 403
