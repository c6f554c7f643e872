"""3.6.1: an alarm storm becomes exactly the service problems and tickets it should."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from etomcrm.customer_interface.models import CommunicationMessageRow, CustomerRow
from etomcrm.db import session_scope
from etomcrm.network.models import NetworkLinkRow, NetworkPopRow
from etomcrm.order_handling.models import ProductRow
from etomcrm.problem_handling.alarms import raise_alarm
from etomcrm.problem_handling.correlation import correlate
from etomcrm.problem_handling.models import AlarmRow, ServiceProblemRow, TroubleTicketRow

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _customer_with_link(session: object, number: int, pop_id: str) -> tuple[str, str]:
    """A customer with one active product on one access link."""
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    customer_id, product_id, link_id = f"c-{number}", f"p-{number}", f"l-{number}"
    session.add(
        CustomerRow(
            id=customer_id,
            at_type="Customer",
            name=f"Customer {number}",
            status="active",
            owner_customer_id=customer_id,
            body={"id": customer_id, "@type": "Customer", "name": f"Customer {number}"},
        )
    )
    session.add(
        ProductRow(
            id=product_id,
            at_type="Product",
            name="Site access 100 Mbit/s",
            status="active",
            owner_customer_id=customer_id,
            body={"id": product_id, "@type": "Product", "status": "active"},
        )
    )
    session.add(
        NetworkLinkRow(
            id=link_id,
            customer_id=customer_id,
            site_id=f"s-{number}",
            pop_id=pop_id,
            product_id=product_id,
            bandwidth_mbits=100,
            status="up",
        )
    )
    return customer_id, link_id


def test_an_alarm_storm_opens_one_problem_per_cause_and_one_ticket_per_customer(
    db_url: str,
) -> None:
    # given a point of presence with 30 customers, 50 other customers each on a link of
    # another point of presence, and 19 more links that blip once
    with session_scope() as session:
        for pop in ("pop-by-1", "pop-he-1", "pop-nw-1"):
            session.add(NetworkPopRow(id=pop, name=pop, region=pop[4:6].upper(), status="up"))
        outage_customers = [_customer_with_link(session, n, "pop-by-1") for n in range(30)]
        flapping = [_customer_with_link(session, 100 + n, "pop-he-1") for n in range(50)]
        blips = [_customer_with_link(session, 200 + n, "pop-nw-1") for n in range(19)]

    # when 10,000 alarms arrive: the point of presence goes down (its own alarm and one
    # per link), the 50 links flap 199 times each, the 19 links blip once and recover
    with session_scope() as session:
        at = START
        raise_alarm(
            session,
            alarmed_object_id="pop-by-1",
            alarm_type="equipmentAlarm",
            perceived_severity="critical",
            probable_cause="powerProblem",
            specific_problem="PoP power failure",
            raised_at=at,
            correlation_key="pop:pop-by-1",
        )
        for _, link in outage_customers:
            raise_alarm(
                session,
                alarmed_object_id=link,
                alarm_type="communicationsAlarm",
                perceived_severity="major",
                probable_cause="lossOfSignal",
                specific_problem="link down (PoP unreachable)",
                raised_at=at,
                correlation_key="pop:pop-by-1",
            )
        for flap in range(199):
            for _, link in flapping:
                raise_alarm(
                    session,
                    alarmed_object_id=link,
                    alarm_type="communicationsAlarm",
                    perceived_severity="minor",
                    probable_cause="linkDown",
                    specific_problem="link flap",
                    raised_at=at + timedelta(seconds=15 * flap),
                    correlation_key=f"link:{link}",
                )
        for _, link in blips:
            raise_alarm(
                session,
                alarmed_object_id=link,
                alarm_type="communicationsAlarm",
                perceived_severity="minor",
                probable_cause="linkDown",
                specific_problem="short interruption",
                raised_at=at,
                correlation_key=f"link:{link}",
            )
    with session_scope() as session:
        # the flaps and blips clear (the network reports them cleared); the outage stays
        session.execute(
            update(AlarmRow)
            .where(AlarmRow.correlation_key != "pop:pop-by-1")
            .values(status="cleared")
        )
        assert session.scalar(select(func.count()).select_from(AlarmRow)) == 10_000

    # and correlation runs (twice: a rerun must add nothing)
    now = START + timedelta(hours=1)
    with session_scope() as session:
        first = correlate(session, since=START - timedelta(minutes=1), now=now)
    with session_scope() as session:
        second = correlate(session, since=START - timedelta(minutes=1), now=now)

    # then exactly one problem for the outage and one per flapping link, none for blips
    assert len(first.problems) == 1 + 50
    assert sorted(first.flapping) == sorted(f"link:{link}" for _, link in flapping)
    assert sorted(first.ignored) == sorted(f"link:{link}" for _, link in blips)
    # one ticket per affected customer, not per alarm or per flap
    outage_ids = {customer for customer, _ in outage_customers}
    flapping_ids = {customer for customer, _ in flapping}
    assert len(first.tickets) == 80 and first.customers == outage_ids | flapping_ids
    assert second.problems == [] and second.tickets == []
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(ServiceProblemRow)) == 51
        ticket_owners = [
            str(o) for o in session.scalars(select(TroubleTicketRow.owner_customer_id))
        ]
        informed = set(session.scalars(select(CommunicationMessageRow.owner_customer_id)))
    assert sorted(ticket_owners) == sorted(outage_ids | flapping_ids)
    # and exactly the affected customers are told
    assert informed == outage_ids | flapping_ids


def test_a_problem_s_own_alarms_open_nothing_more_once_it_is_resolved_or_closed(
    db_url: str,
) -> None:
    # given a point of presence outage that correlation turned into a problem
    from etomcrm.core import resources
    from etomcrm.problem_handling.service import SERVICE_PROBLEM_KIND
    from etomcrm.security.service import SYSTEM

    with session_scope() as session:
        session.add(NetworkPopRow(id="pop-he-2", name="Kassel", region="HE", status="up"))
        _, link = _customer_with_link(session, 900, "pop-he-2")
        raise_alarm(
            session,
            alarmed_object_id=link,
            alarm_type="communicationsAlarm",
            perceived_severity="major",
            probable_cause="lossOfSignal",
            specific_problem="link down",
            raised_at=START,
            correlation_key="pop:pop-he-2",
        )
    since, now = START - timedelta(minutes=1), START + timedelta(minutes=5)
    with session_scope() as session:
        (problem_id,) = correlate(session, since=since, now=now).problems
    # when it is repaired, resolved and finally closed, correlation runs again each time
    for status in ("inProgress", "resolved", "closed"):
        with session_scope() as session:
            resources.patch(session, SERVICE_PROBLEM_KIND, SYSTEM, problem_id, {"status": status})
        with session_scope() as session:
            again = correlate(session, since=since, now=now)
        # then its alarms open no second problem and no second ticket
        assert again.problems == [] and again.tickets == []
