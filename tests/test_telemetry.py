"""Performance data, scenario events and alarms of the simulated network."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from etomcrm.db import session_scope
from etomcrm.network.models import NetworkLinkRow, NetworkMeasurementRow, NetworkPopRow
from etomcrm.network.scenario import (
    Flapping,
    LinkFailure,
    Maintenance,
    PopOutage,
    Scenario,
    alarm_storm,
    alarms_for,
)
from etomcrm.network.telemetry import generate_measurements, outages_for
from etomcrm.problem_handling.alarms import emit_alarms
from etomcrm.problem_handling.models import AlarmRow
from etomcrm.qos_sla.feed import feed_simulated

MONDAY = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday
FIVE = timedelta(minutes=5)


def make_links(pops: dict[str, list[tuple[str, str]]]) -> None:
    """``{pop: [(link, customer), ...]}`` as network rows."""
    with session_scope() as session:
        for pop_id, links in pops.items():
            session.add(NetworkPopRow(id=pop_id, name=f"PoP {pop_id}", region="BY"))
            for link_id, customer_id in links:
                session.add(
                    NetworkLinkRow(
                        id=link_id,
                        customer_id=customer_id,
                        site_id=f"site-{link_id}",
                        pop_id=pop_id,
                        product_id=f"product-{link_id}",
                        bandwidth_mbits=100,
                    )
                )


def links(*ids: str) -> list[NetworkLinkRow]:
    with session_scope() as session:
        rows = session.scalars(select(NetworkLinkRow).where(NetworkLinkRow.id.in_(ids))).all()
        session.expunge_all()
        return sorted(rows, key=lambda r: r.id)


def measurements(link_id: str) -> list[tuple[datetime, float, float, float, int, int]]:
    with session_scope() as session:
        return [
            tuple(r)  # type: ignore[misc]
            for r in session.execute(
                select(
                    NetworkMeasurementRow.at,
                    NetworkMeasurementRow.availability,
                    NetworkMeasurementRow.latency_ms,
                    NetworkMeasurementRow.loss_percent,
                    NetworkMeasurementRow.bytes_in,
                    NetworkMeasurementRow.bytes_out,
                )
                .where(NetworkMeasurementRow.link_id == link_id)
                .order_by(NetworkMeasurementRow.at)
            )
        ]


def test_a_day_of_measurements_has_one_row_per_interval_in_range_and_is_repeatable(
    db_url: str,
) -> None:
    # given two links
    make_links({"pop-a": [("l1", "c1"), ("l2", "c2")]})
    # when a day is generated twice with the same seed (the second time into a clean table)
    with session_scope() as session:
        count = generate_measurements(
            session,
            feed=feed_simulated,
            links=links("l1", "l2"),
            start=MONDAY,
            end=MONDAY + timedelta(days=1),
            seed=5,
        )
    first = measurements("l1")
    both = links("l1", "l2")
    with session_scope() as session:
        session.query(NetworkMeasurementRow).delete()
        generate_measurements(
            session,
            feed=feed_simulated,
            links=both,
            start=MONDAY,
            end=MONDAY + timedelta(days=1),
            seed=5,
        )
    again = measurements("l1")
    with session_scope() as session:
        generate_measurements(
            session,
            feed=feed_simulated,
            links=links("l1"),
            start=MONDAY,
            end=MONDAY + timedelta(hours=1),
            seed=6,
        )
    other_seed = measurements("l1")[1:13]
    # then 288 rows per link, the same values each time, different with another seed
    assert count == 2 * 288
    assert len(first) == 288 and first[0][0] == MONDAY
    assert again == first
    assert [r[2] for r in other_seed] != [r[2] for r in first[:12]]
    # and every value is in range; no outage, so the link is up all day
    for _, availability, latency, loss, bytes_in, bytes_out in first:
        assert availability == 1.0
        assert 3.0 < latency < 30.0
        assert 0.0 <= loss <= 0.05
        assert 0 < bytes_out < bytes_in <= 100_000_000 / 8 * 300
    # and business hours are busier than the night (Berlin 10:00 is 08:00 UTC)
    by_hour = {r[0].hour: r[4] for r in first if r[0].minute == 0}
    assert by_hour[8] > 3 * by_hour[1]


def test_a_window_generated_alone_matches_the_same_window_of_a_whole_day(db_url: str) -> None:
    make_links({"pop-a": [("l1", "c1")]})
    with session_scope() as session:
        generate_measurements(
            session,
            feed=feed_simulated,
            links=links("l1"),
            start=MONDAY,
            end=MONDAY + timedelta(days=1),
            seed=5,
        )
    day = measurements("l1")
    one = links("l1")
    with session_scope() as session:
        session.query(NetworkMeasurementRow).delete()
        generate_measurements(
            session,
            feed=feed_simulated,
            links=one,
            start=MONDAY + timedelta(hours=10),
            end=MONDAY + timedelta(hours=11),
            seed=5,
        )
    assert measurements("l1") == day[120:132]


def test_a_failure_shows_as_downtime_after_rising_latency_and_reads_back_exactly(
    db_url: str,
) -> None:
    # given a link that fails from 10:02 to 10:33, degrading from 09:32
    make_links({"pop-a": [("l1", "c1")]})
    failure = LinkFailure(
        "l1", MONDAY + timedelta(hours=10, minutes=2), MONDAY + timedelta(hours=10, minutes=33)
    )
    scenario = Scenario(failures=[failure])
    # when the morning is measured
    with session_scope() as session:
        generate_measurements(
            session,
            feed=feed_simulated,
            links=links("l1"),
            start=MONDAY + timedelta(hours=9),
            end=MONDAY + timedelta(hours=11),
            seed=1,
            scenario=scenario,
        )
        outages = outages_for(session, ["l1"], MONDAY, MONDAY + timedelta(days=1))
    rows = {r[0]: r for r in measurements("l1")}

    def at(h: int, m: int) -> tuple[datetime, float, float, float, int, int]:
        return rows[MONDAY + timedelta(hours=h, minutes=m)]

    # then the interval at 10:00 was up 2 of 5 minutes, 10:05 to 10:25 down, 10:30 down 3
    assert at(10, 0)[1] == pytest.approx(0.4)
    assert [at(10, m)[1] for m in (5, 10, 15, 20, 25)] == [0.0] * 5
    assert at(10, 30)[1] == pytest.approx(0.4)
    assert at(10, 35)[1] == 1.0 and at(9, 55)[1] == 1.0
    # and latency and loss rose before the failure
    assert at(9, 55)[2] > 2.5 * at(9, 0)[2] and at(9, 55)[3] > 2.0
    assert at(9, 0)[3] <= 0.05
    # and the SLA side reads the failure back to the second
    assert outages == {"l1": [(failure.start, failure.end)]}


def test_a_pop_outage_hits_every_link_of_the_pop_and_nothing_else(db_url: str) -> None:
    # given a PoP with three links of two customers, and a link on another PoP
    make_links({"pop-a": [("a1", "c1"), ("a2", "c1"), ("a3", "c2")], "pop-b": [("b1", "c1")]})
    outage = PopOutage("pop-a", MONDAY + timedelta(hours=2), MONDAY + timedelta(hours=3))
    rows = links("a1", "a2", "a3", "b1")
    with session_scope() as session:
        scenario = Scenario(pop_outages=[outage]).with_links(session)
        generate_measurements(
            session,
            feed=feed_simulated,
            links=rows,
            start=MONDAY,
            end=MONDAY + timedelta(hours=6),
            seed=1,
            scenario=scenario,
        )
        outages = outages_for(session, ["a1", "a2", "a3", "b1"], MONDAY, MONDAY + timedelta(days=1))
    # then every link of the PoP was down for the hour, the other one never
    window = [(outage.start, outage.end)]
    assert outages == {"a1": window, "a2": window, "a3": window, "b1": []}
    assert sum(1 for r in measurements("a3") if r[1] == 0.0) == 12
    # and its alarms: the PoP's power problem and every link's loss of signal, one key
    events = alarms_for(scenario)
    raised = [e for e in events if e.action == "raise"]
    assert [(e.alarmed_object_id, e.probable_cause) for e in raised] == [
        ("pop-a", "powerProblem"),
        ("a1", "lossOfSignal"),
        ("a2", "lossOfSignal"),
        ("a3", "lossOfSignal"),
    ]
    assert {e.correlation_key for e in events} == {"pop:pop-a"}
    assert Counter(e.action for e in events) == {"raise": 4, "clear": 4}


def test_flapping_and_maintenance_are_downtime_but_only_flaps_raise_alarms(db_url: str) -> None:
    make_links({"pop-a": [("l1", "c1"), ("l2", "c1")]})
    flap = Flapping("l1", MONDAY, flaps=12)  # down 2, up 3 minutes, for an hour
    work = Maintenance(
        MONDAY + timedelta(hours=1),
        MONDAY + timedelta(hours=2),
        announced_at=MONDAY - timedelta(days=3),
        description="upgrade",
        pop_id="pop-a",
    )
    rows = links("l1", "l2")
    with session_scope() as session:
        scenario = Scenario(flapping=[flap], maintenance=[work]).with_links(session)
        generate_measurements(
            session,
            feed=feed_simulated,
            links=rows,
            start=MONDAY,
            end=MONDAY + timedelta(hours=3),
            seed=1,
            scenario=scenario,
        )
        outages = outages_for(session, ["l1", "l2"], MONDAY, MONDAY + timedelta(hours=3))
    flapping_hour = [r[1] for r in measurements("l1")[:12]]
    assert flapping_hour == [pytest.approx(0.6)] * 12
    flaps = outages["l1"][:-1]
    assert sum((end - start for start, end in flaps), timedelta()) == timedelta(minutes=24)
    assert outages["l1"][-1] == (work.start, work.end)
    assert outages["l2"] == [(work.start, work.end)]
    events = alarms_for(scenario)
    assert Counter((e.action, e.alarmed_object_id) for e in events) == {
        ("raise", "l1"): 12,
        ("clear", "l1"): 12,
    }
    assert {e.correlation_key for e in events} == {"link:l1"}


def test_emitted_alarms_are_raised_escalated_and_cleared_and_set_the_link_status(
    db_url: str,
) -> None:
    # given a link failure of an hour, degrading for half an hour before
    make_links({"pop-a": [("l1", "c1")]})
    failure = LinkFailure("l1", MONDAY + timedelta(hours=1), MONDAY + timedelta(hours=2))
    events = alarms_for(Scenario(failures=[failure]))
    # when the network reports up to the middle of the failure
    with session_scope() as session:
        first = emit_alarms(session, events, until=MONDAY + timedelta(hours=1, minutes=30))
    with session_scope() as session:
        link = session.get(NetworkLinkRow, "l1")
        assert link is not None and link.status == "down"
        alarms = {r.body["probableCause"]: r.body for r in session.scalars(select(AlarmRow))}
    # then the quality warning and the link-down alarm are open, the latter escalated
    assert first == 3
    assert alarms["thresholdCrossed"]["perceivedSeverity"] == "minor"
    assert alarms["linkDown"]["state"] == "updated"
    assert alarms["linkDown"]["perceivedSeverity"] == "critical"
    assert alarms["linkDown"]["alarmedObject"]["id"] == "l1"
    # and when the rest is reported later, both are cleared and the link is up
    rest = [e for e in events if e.at > MONDAY + timedelta(hours=1, minutes=30)]
    with session_scope() as session:
        assert emit_alarms(session, rest) == 2
    with session_scope() as session:
        link = session.get(NetworkLinkRow, "l1")
        assert link is not None and link.status == "up"
        rows = session.scalars(select(AlarmRow)).all()
    assert [r.status for r in rows] == ["cleared", "cleared"]
    assert {r.correlation_key for r in rows} == {"link:l1"}


def test_an_alarm_storm_is_exactly_what_it_says_it_is(db_url: str) -> None:
    # given 50 links of 10 customers on one PoP and 30 links of 30 customers on another
    make_links(
        {
            "pop-flap": [(f"f{n:02}", f"cust-{n % 10}") for n in range(50)],
            "pop-down": [(f"d{n:02}", f"victim-{n}") for n in range(30)],
        }
    )
    flapping = [f"f{n:02}" for n in range(50)]
    # when a storm of 10,000 alarms is planned and reported
    with session_scope() as session:
        storm = alarm_storm(
            session, flapping_links=flapping, pop_id="pop-down", start=MONDAY, total_alarms=10_000
        )
    started = time.perf_counter()
    with session_scope() as session:
        reported = emit_alarms(session, storm.events)
    seconds = time.perf_counter() - started
    # then its composition adds up: 31 for the PoP, the other 9,969 over 50 links
    assert storm.total_alarms == 10_000
    assert storm.pop_alarms == 31 and len(storm.pop_links) == 30
    assert sum(storm.alarms_per_link.values()) == 10_000 - 31
    assert set(storm.alarms_per_link.values()) == {199, 200}
    assert storm.pop_customers == [f"victim-{n}" for n in sorted(range(30), key=str)]
    assert set(storm.flapping_customers.values()) == {f"cust-{n}" for n in range(10)}
    assert len(storm.customers) == 40
    # and what was written is exactly that: 10,000 alarms, all cleared at the end
    assert reported == 20_000
    with session_scope() as session:
        by_key = dict(
            session.execute(
                select(AlarmRow.correlation_key, func.count()).group_by(AlarmRow.correlation_key)
            ).all()
        )
        open_alarms = session.scalar(
            select(func.count()).select_from(AlarmRow).where(AlarmRow.status != "cleared")
        )
    assert sum(by_key.values()) == 10_000
    assert by_key["pop:pop-down"] == 31
    assert {by_key[f"link:{link}"] for link in flapping} == {199, 200}
    assert open_alarms == 0
    print(f"\nalarm storm: 20,000 events reported in {seconds:.1f} s ({db_url.split(':')[0]})")
