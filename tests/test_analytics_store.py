"""The analytical store kept by the bus's events equals the store rebuilt from scratch."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from typer.testing import CliRunner

from etomcrm.analytics import store
from etomcrm.analytics.models import (
    AnContactFact,
    AnCustomer,
    AnPending,
    AnSegment,
    AnUsageFact,
)
from etomcrm.billing.events import BillIssued
from etomcrm.billing.usage import Usage, ingest_usage
from etomcrm.cli import app
from etomcrm.core.bus import record
from etomcrm.db import session_scope
from etomcrm.problem_handling.events import TicketEnded
from tests import analytics_helpers as given
from tests import factories
from tests.analytics_helpers import at, store_snapshot

INTERACTION = f"{factories.INTERACTION}/partyInteraction"


def _contact(
    client: TestClient, headers: dict[str, str], customer_id: str, **extra: Any
) -> dict[str, Any]:
    return factories.post(
        client,
        INTERACTION,
        {
            "reason": extra.pop("reason", "Billing question"),
            "direction": "inbound",
            "channel": [{"id": "phone", "name": "phone"}],
            "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
            **extra,
        },
        headers,
    )


def _usage(customer_id: str, site_id: str, key: str, hour: str, volume: str) -> Usage:
    start = at(hour)
    return Usage(key, customer_id, None, site_id, "traffic", start, start + timedelta(hours=1),
                 Decimal(volume))  # fmt: skip


def test_the_store_kept_by_events_equals_a_rebuild(
    db_url: str, client: TestClient, admin: dict[str, str]
) -> None:
    # given customers, sites and contacts made through the API (each change on the bus)
    bmw = factories.customer(client, admin, "BMW AG")
    dealer = factories.customer(client, admin, "Autohaus Schmidt")
    factories.customer(client, admin, "Neukunde GmbH")
    munich = factories.site(client, admin, bmw["id"], "München")
    cologne = factories.site(client, admin, dealer["id"], "Köln")
    first = _contact(
        client, admin, bmw["id"],
        interactionDate={"startDateTime": "2026-01-05T09:00:00Z",
                         "endDateTime": "2026-01-05T09:12:00Z"},
    )  # fmt: skip
    _contact(client, admin, bmw["id"], reason="Outage")
    _contact(client, admin, dealer["id"], reason="Offer")
    # a contact closed later
    patched = client.patch(
        f"{INTERACTION}/{first['id']}", json={"status": "completed"}, headers=admin
    )
    assert patched.status_code == 200, patched.text
    # usage ingested, then a correction of one hour and a new day
    with session_scope() as session:
        ingest_usage(session, [
            _usage(bmw["id"], munich["id"], "u1", "2026-01-05T10:00:00", "1.5"),
            _usage(bmw["id"], munich["id"], "u2", "2026-01-05T11:00:00", "2.5"),
            _usage(dealer["id"], cologne["id"], "u3", "2026-01-05T10:00:00", "4"),
        ])  # fmt: skip
    with session_scope() as session:
        ingest_usage(session, [
            _usage(bmw["id"], munich["id"], "u2", "2026-01-05T11:00:00", "3.5"),
            _usage(bmw["id"], munich["id"], "u4", "2026-01-06T00:30:00", "1"),
        ])  # fmt: skip
    # billing issues a bill and problem handling ends a ticket, each stating it
    with session_scope() as session:
        bill_id = given.bill(session, bmw["id"], date(2026, 1, 1), [("recurring", "300.00", "p1")])
        record(session, BillIssued(bill_id, "acc", bmw["id"], "RE-1", "357.00", "EUR",
                                   "2026-02-14", "bankTransfer"))  # fmt: skip
    with session_scope() as session:
        ticket_id = given.ticket(
            session, dealer["id"], at("2026-01-07T08:00:00"), at("2026-01-07T10:00:00")
        )
        record(session, TicketEnded(ticket_id, (), (), "closed", dealer["id"]))

    # (the requests and events only marked what changed; nothing was derived in them)
    with session_scope(readonly=True) as session:
        assert store_snapshot(session)["an_contact_fact"] == []
        assert store.pending(session) > 0

    # when the catch-up derives what was marked, and the store kept so far is compared
    # with one rebuilt from scratch
    assert store.catch_up_all(batch=2) > 0
    with session_scope(readonly=True) as session:
        assert store.pending(session) == 0
        kept = store_snapshot(session)
        usage = {
            (str(row.day), str(row.volume.normalize()))
            for row in session.scalars(
                select(AnUsageFact).where(AnUsageFact.customer_id == bmw["id"])
            )
        }
        segments = set(session.scalars(select(AnSegment.segment)))
        closed = session.scalar(
            select(AnContactFact.handling_seconds).where(
                AnContactFact.interaction_id == first["id"]
            )
        )
    with session_scope() as session:
        store.rebuild(session)
    with session_scope(readonly=True) as session:
        rebuilt = store_snapshot(session)

    # then the events kept every fact and dimension as the rebuild derives it
    assert kept == rebuilt
    assert len(kept["an_customer"]) == 3 and len(kept["an_site"]) == 2
    # three contacts, and the survey retention sent after the closed ticket (outbound)
    assert sorted(c[4] for c in kept["an_contact_fact"]) == ["inbound"] * 3 + ["outbound"]
    assert len(kept["an_revenue_fact"]) == 1 and len(kept["an_ticket_fact"]) == 1
    assert usage == {("2026-01-05", "5"), ("2026-01-06", "1")}  # 1.5 + 3.5 (corrected)
    # the segments computed from the facts: usage and a bill, but none in the last three
    # months (January's); the customer without any is new
    assert segments == {"Low value · light usage", "New · no data yet"}
    assert closed == 12 * 60
    assert len(kept["an_day"]) >= 3  # 5 January to today's contacts, every day between


def test_rebuild_from_the_cli_after_the_store_was_emptied(
    db_url: str, client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer with a contact, and a store emptied behind the bus's back
    customer = factories.customer(client, admin, "BMW AG")
    _contact(client, admin, customer["id"])
    with session_scope() as session:
        session.execute(delete(AnCustomer))
        session.execute(delete(AnContactFact))

    # when `etomcrm analytics rebuild` runs
    result = CliRunner().invoke(app, ["analytics", "rebuild"])

    # then the store holds the customer and its contact again
    assert result.exit_code == 0, result.output
    assert "an_contact_fact 1" in result.output
    with session_scope(readonly=True) as session:
        assert session.scalar(select(AnCustomer.name)) == "BMW AG"


def test_marks_of_one_customer_meet_and_are_derived_once(db_url: str) -> None:
    # given a customer marked for its contacts, then for its tickets, and one for all
    with session_scope() as session:
        store.mark_customers(session, {"c1": [AnContactFact]})
    with session_scope() as session:
        store.mark_customers(session, {"c1": [AnUsageFact]})
        store.mark_customers(session, {"c2": None})
    with session_scope() as session:
        store.mark_customers(session, {"c2": [AnContactFact]})

    # then one mark per customer holds the tables of both; "all" absorbs a narrower one
    with session_scope(readonly=True) as session:
        marks = {
            key: mask for key, mask in session.execute(select(AnPending.key, AnPending.tables))
        }
    assert marks == {
        "c1": store.TABLE_BITS[AnContactFact] | store.TABLE_BITS[AnUsageFact],
        "c2": 0,
    }

    # when the catch-up runs twice, the second finds nothing left
    assert store.catch_up_all() == 2
    assert store.catch_up_all() == 0


def test_a_catch_up_skips_the_marks_another_catch_up_holds(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: a second catch-up waits for the first")
    # given two customers marked
    with session_scope() as session:
        store.mark_customers(session, {"c1": None, "c2": None})

    # when one catch-up has claimed the oldest mark and not yet committed
    with session_scope() as first:
        assert store.catch_up(first, limit=1) == 1
        # then a second catch-up at the same time takes only the other one
        with session_scope() as second:
            assert store.catch_up(second) == 1
    with session_scope(readonly=True) as session:
        assert store.pending(session) == 0
