"""A real network side feeds etomcrm through the API: TMF642 alarms and performance
data posted by a principal with the ``network`` role correlate and count exactly as
the simulated network's do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from etomcrm.cli import app as cli
from etomcrm.config import get_settings
from etomcrm.db import session_scope, utcnow
from etomcrm.flows import assurance
from etomcrm.network.models import NetworkLinkRow, NetworkMeasurementRow, NetworkPopRow
from etomcrm.network.scenario import LinkFailure, Scenario
from etomcrm.network.telemetry import generate_measurements
from etomcrm.problem_handling.correlation import correlate
from etomcrm.problem_handling.models import AlarmRow, ServiceProblemRow
from etomcrm.qos_sla.feed import feed_measurements, feed_simulated
from etomcrm.qos_sla.models import SlaViolationRow
from etomcrm.security.service import SYSTEM
from tests.conftest import TokenFactory
from tests.factories import link_down_alarm
from tests.polling import until
from tests.qos_helpers import TICKETS, last_day_in_one_month, monitored_product

ALARMS = "/tmf-api/alarmManagement/v4/alarm"
PROBLEMS = "/tmf-api/serviceProblemManagement/v4/serviceProblem"
CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
SERVICE_ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"
BATCH = "/etomcrm/v1/performance/measurementBatch"
NOVEMBER = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # 2026-11-01 00:00 in Berlin


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
    response = client.post(ALARMS, json=link_down_alarm(link_id, raised), headers=network)

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


def test_a_pop_outage_from_the_oss_is_one_problem_with_its_link_alarms_part_of_it(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a customer's product on an access link of point of presence pop-1
    admin, network = auth("admin"), auth("network")
    bmw, _, link_id = monitored_product(client, admin)
    with session_scope() as session:
        session.add(NetworkPopRow(id="pop-1", name="Munich 1", region="BY", status="up"))
    raised = utcnow().replace(microsecond=0)

    # when the OSS reports the PoP without power, then the loss of signal on the link,
    # and a router alarm that names the PoP's alarm as its parent
    pop_alarm = {
        **link_down_alarm("pop-1", raised),
        "alarmType": "environmentalAlarm",
        "perceivedSeverity": "critical",
        "probableCause": "powerProblem",
        "alarmedObjectType": "PointOfPresence",
    }
    pop = client.post(ALARMS, json=pop_alarm, headers=network)
    assert pop.status_code == 201, pop.text
    link = client.post(ALARMS, json=link_down_alarm(link_id, raised), headers=network)
    router = {
        **link_down_alarm("core-router-7", raised),
        "alarmedObjectType": "Router",
        "parentAlarm": [{"id": str(pop.json()["id"])}],
    }
    child = client.post(ALARMS, json=router, headers=network)

    # then all three are the PoP's outage
    with session_scope() as session:
        keys = {
            session.get(AlarmRow, str(r.json()["id"])).correlation_key  # type: ignore[union-attr]
            for r in (pop, link, child)
        }
    assert keys == {"pop:pop-1"}
    # and correlation opens one problem, with one ticket for the customer
    (problem_id,) = _correlate_after_hold_down()
    tickets = client.get(TICKETS, params={"relatedParty.id": bmw["id"]}, headers=admin).json()
    assert len(tickets) == 1 and problem_id in str(tickets[0]["relatedEntity"])


def test_a_pop_and_a_site_correlate_by_their_ids_and_bad_alarms_are_refused(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a product on an access link at site-1 of pop-1
    admin, network = auth("admin"), auth("network")
    _, _, link_id = monitored_product(client, admin)
    raised = utcnow().replace(microsecond=0)
    alarm = link_down_alarm(link_id, raised)

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


def test_the_cli_creates_a_network_key_and_no_network_user(client: TestClient) -> None:
    # when an API key with the network role is created with the CLI
    result = CliRunner().invoke(cli, ["apikey", "create", "acme-oss", "--role", "network"])
    # then its token reads alarms, and nothing of the customers
    assert result.exit_code == 0, result.output
    token = {"Authorization": f"Bearer {result.output.strip().splitlines()[-1]}"}
    assert client.get(ALARMS, headers=token).status_code == 200
    assert client.get(CUSTOMERS, headers=token).status_code == 403
    # and the network role is no user who signs in with a password
    refused = CliRunner().invoke(
        cli, ["user", "create", "oss", "--role", "network"], input="a-long-password\n" * 2
    )
    assert refused.exit_code != 0 and "API key" in refused.output


def test_only_the_network_role_reports_alarms_and_it_reads_nothing_else(
    client: TestClient, auth: TokenFactory
) -> None:
    admin, network = auth("admin"), auth("network")
    bmw, _, link_id = monitored_product(client, admin)
    alarm = link_down_alarm(link_id, utcnow())
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
    assert client.get(SERVICE_ORDERS, headers=network).status_code == 200
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


def test_a_clear_through_the_api_wakes_the_problem_flow(
    client: TestClient, auth: TokenFactory, flows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the event handlers wired, a one-second silence period, and a problem flow
    # working a link's outage that the OSS reported (the flow looks again by the clock
    # only every 15 minutes)
    monkeypatch.setenv("ETOMCRM_TICKET_SILENCE_SECONDS", "1")
    get_settings.cache_clear()
    admin, network = auth("admin"), auth("network")
    bmw, _, link_id = monitored_product(client, admin)
    alarm = client.post(ALARMS, json=link_down_alarm(link_id, utcnow()), headers=network).json()
    now = utcnow()
    assert len(assurance.detect(now - timedelta(minutes=5), now + timedelta(minutes=3))) == 1

    def tickets(status: str) -> list[dict[str, Any]]:
        listed = client.get(TICKETS, params={"relatedParty.id": bmw["id"]}, headers=admin)
        return [t for t in listed.json() if t["status"] == status]

    assert until(lambda: tickets("inProgress"))

    # when the OSS clears the alarm through the API
    cleared = client.patch(f"{ALARMS}/{alarm['id']}", json={"state": "cleared"}, headers=network)
    assert cleared.status_code == 200, cleared.text

    # then the flow, woken, resolves the customer's ticket now, and closes it after the
    # silence period
    assert until(lambda: tickets("resolved") or tickets("closed"))
    assert until(lambda: tickets("closed"))


# ----- performance data -----------------------------------------------------------------


def _measured(
    link_id: str, end: datetime, count: int, *, availability: float = 0.0, prefix: str = "oss"
) -> list[dict[str, Any]]:
    """``count`` five-minute measurements of a link ending at ``end``, as an OSS posts
    them."""
    first = end - timedelta(minutes=5 * count)
    return [
        {
            "id": f"{prefix}-{link_id}-{n}",
            "linkId": link_id,
            "intervalStart": (first + timedelta(minutes=5 * n)).isoformat(),
            "intervalSeconds": 300,
            "availability": availability,
            "latencyMs": 0.0 if availability == 0 else 12.5,
            "lossPercent": 100.0 if availability == 0 else 0.02,
            "bytesIn": 0 if availability == 0 else 1_250_000,
            "bytesOut": 0 if availability == 0 else 400_000,
        }
        for n in range(count)
    ]


def _five_minutes_ago() -> datetime:
    now = utcnow()
    return now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0) - timedelta(
        minutes=5
    )


def _stored() -> tuple[int, int]:
    """(measurements, SLA violations) in the database."""
    with session_scope() as session:
        return (
            int(session.scalar(select(func.count()).select_from(NetworkMeasurementRow)) or 0),
            int(session.scalar(select(func.count()).select_from(SlaViolationRow)) or 0),
        )


def test_a_batch_that_breaks_the_sla_records_a_violation_and_is_stored_once(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a product under a 99.5 % round-the-clock SLA (at most 223 minutes down in
    # any month), on one access link
    admin, network = auth("admin"), auth("network")
    _, _, link_id = monitored_product(client, admin)

    # when the OSS posts the last 24 hours of the link: down all the time (at least
    # twelve hours of them fall in one month)
    batch = {"measurement": _measured(link_id, last_day_in_one_month(), 288)}
    first = client.post(BATCH, json=batch, headers=network)

    # then every measurement is stored and the SLA violation is recorded at once
    assert first.status_code == 201, first.text
    answer = first.json()
    assert (answer["received"], answer["accepted"], answer["duplicates"]) == (288, 288, 0)
    assert answer["violationsRecorded"] == 1
    assert _stored() == (288, 1)
    violations = client.get("/tmf-api/slaManagement/v2/slaViolation", headers=admin).json()
    assert [str(v["id"]) for v in violations] == [answer["slaViolation"][0]["id"]]

    # when the OSS posts the same batch again (a retry after a lost answer)
    again = client.post(BATCH, json=batch, headers=network)

    # then nothing new is stored, and the answer says so
    assert again.status_code == 201, again.text
    repeated = again.json()
    assert (repeated["received"], repeated["accepted"], repeated["duplicates"]) == (288, 0, 288)
    assert repeated["violationsRecorded"] == 0
    assert _stored() == (288, 1)

    # when one of those ids comes again with other values
    changed = _measured(link_id, _five_minutes_ago(), 288, availability=1.0)[:3]
    conflict = client.post(BATCH, json={"measurement": changed}, headers=network)
    # then the batch is refused naming the ids, and nothing is stored
    assert conflict.status_code == 409, conflict.text
    assert f"oss-{link_id}-0" in conflict.json()["message"]
    assert _stored() == (288, 1)


def test_a_retried_post_with_an_idempotency_key_gets_the_first_answer(
    client: TestClient, auth: TokenFactory
) -> None:
    admin, network = auth("admin"), auth("network")
    _, _, link_id = monitored_product(client, admin)
    batch = {"measurement": _measured(link_id, _five_minutes_ago(), 12, availability=1.0)}
    key = {**network, "Idempotency-Key": "oss-batch-0815"}

    first = client.post(BATCH, json=batch, headers=key)
    replay = client.post(BATCH, json=batch, headers=key)

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and first.json()["accepted"] == 12
    assert replay.headers["Idempotent-Replayed"] == "true"
    other = {"measurement": batch["measurement"][:1]}
    assert client.post(BATCH, json=other, headers=key).status_code == 409
    assert _stored() == (12, 0)


def test_a_bad_batch_is_refused_whole_naming_its_rows(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a monitored link, and a batch whose rows 1 to 3 are wrong
    admin, network = auth("admin"), auth("network")
    _, _, link_id = monitored_product(client, admin)
    rows = _measured(link_id, _five_minutes_ago(), 5, availability=1.0)
    rows[1]["linkId"] = "no-such-link"
    rows[2]["lossPercent"] = -0.5
    rows[2]["bytesOut"] = 2**64 - 1
    rows[3]["intervalStart"] = (utcnow() + timedelta(hours=1)).isoformat()

    # when it is posted
    response = client.post(BATCH, json={"measurement": rows}, headers=network)

    # then it is refused, each wrong row named with what is wrong, and nothing stored
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert "measurement[1]: linkId 'no-such-link' is no access link etomcrm knows" in message
    assert "measurement[2]: lossPercent runs from 0 to 100, not -0.5" in message
    assert f"measurement[2]: bytesOut runs from 0 to {2**63 - 1}, not " in message
    assert "measurement[3]: the interval ends at" in message and "after now" in message
    assert "measurement[0]" not in message and "measurement[4]" not in message
    assert _stored() == (0, 0)

    # and an unknown link alone is an unknown reference (422)
    alone = client.post(BATCH, json={"measurement": rows[1:2]}, headers=network)
    assert alone.status_code == 422 and "measurement[0]" in alone.json()["message"]
    # and a missing value, a wrong shape, or too many rows are refused before any lookup
    no_bytes = {k: v for k, v in rows[0].items() if k != "bytesOut"}
    both = {**rows[0], "upSeconds": 300}
    for body, words in (
        ({"measurement": [no_bytes]}, "measurement[0]: missing bytesOut"),
        ({"measurement": [both]}, "availability or upSeconds"),
        ({"rows": rows}, '{"measurement": ['),
        ({"measurement": rows * 401}, "at most 2000 measurements, this one 2005"),
    ):
        refused = client.post(BATCH, json=body, headers=network)
        assert refused.status_code == 400 and words in refused.json()["message"], refused.text
    assert _stored() == (0, 0)


def test_only_the_network_and_admin_post_measurements(
    client: TestClient, auth: TokenFactory
) -> None:
    admin, network = auth("admin"), auth("network")
    bmw, _, link_id = monitored_product(client, admin)
    batch = {"measurement": _measured(link_id, _five_minutes_ago(), 1, availability=1.0)}
    for role in ("sales", "support", "sla_manager", "analyst"):
        refused = client.post(BATCH, json=batch, headers=auth(role))
        assert refused.status_code == 403 and "network" in refused.json()["message"]
    portal = auth("customer", customer_id=bmw["id"])
    assert client.post(BATCH, json=batch, headers=portal).status_code == 403
    assert client.post(BATCH, json=batch, headers=admin).status_code == 201
    # and the network's key opens no other API
    assert client.get("/tmf-api/productInventory/v4/product", headers=network).status_code == 403
    assert client.get(BATCH, headers=network).status_code == 405


def test_downtime_trending_below_the_target_warns_the_customer_once(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a monitored product, and two hours down in the first 217 hours of November
    # (99.08 % so far against 99.5 %, but not yet a certain miss)
    admin = auth("admin")
    _, product_id, link_id = monitored_product(client, admin)
    now = NOVEMBER + timedelta(hours=217)
    down = [
        {
            "measurement_id": f"oss-{n}",
            "link_id": link_id,
            "at": NOVEMBER + timedelta(hours=5, minutes=5 * n),
            "interval_seconds": 300,
            "availability": 0.0,
            "latency_ms": 0.0,
            "loss_percent": 100.0,
            "bytes_in": 0,
            "bytes_out": 0,
        }
        for n in range(24)
    ]
    # when the network delivers it, in two batches, as of that moment
    with session_scope() as session:
        first = feed_measurements(session, SYSTEM, down[:12], now=now)
    with session_scope() as session:
        second = feed_measurements(session, SYSTEM, down[12:], now=now)
    # then the first batch is not yet a trend, the second warns, once; nothing violated
    assert (first.warnings, second.warnings) == ([], [product_id])
    assert first.violations == second.violations == []
    with session_scope() as session:
        again = feed_measurements(session, SYSTEM, down, now=now)
    assert (again.accepted, again.duplicates, again.warnings) == (0, 24, [])


def test_the_simulated_network_delivers_through_the_same_entry(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a monitored link that the simulated network takes down for five hours
    admin = auth("admin")
    _, _, link_id = monitored_product(client, admin)
    start = NOVEMBER + timedelta(days=2)
    scenario = Scenario(failures=[LinkFailure(link_id, start, start + timedelta(hours=5))])
    # when the simulator measures that day twice
    written = []
    for _ in range(2):
        with session_scope() as session:
            link = session.get(NetworkLinkRow, link_id)
            assert link is not None
            written.append(
                generate_measurements(
                    session,
                    links=[link],
                    start=start - timedelta(hours=1),
                    end=start + timedelta(hours=23),
                    seed=7,
                    scenario=scenario,
                    feed=feed_simulated,
                )
            )
    # then the day is stored once, and its downtime broke the SLA as it arrived
    assert written == [288, 0]
    assert _stored() == (288, 1)
