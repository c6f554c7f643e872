"""The demonstration scenario (DESIGN.md section 5) loads BMW's extranet through the services."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import func, select
from typer.testing import CliRunner

from etomcrm.catalog.models import ProductStockRow
from etomcrm.catalog.service import (
    PRODUCT_OFFERING_KIND,
    PRODUCT_OFFERING_PRICE_KIND,
    material_availability,
    sla_level,
    sla_levels,
)
from etomcrm.cli import app
from etomcrm.config import get_settings
from etomcrm.core.models import AuditRecord, OutboxEvent
from etomcrm.core.resources import ResourceKind, get, list_resources
from etomcrm.customer_interface.models import CommunicationMessageRow, CustomerRow
from etomcrm.customer_interface.service import (
    CUSTOMER_KIND,
    GEOGRAPHIC_SITE_KIND,
    INDIVIDUAL_KIND,
    ORGANIZATION_KIND,
    PARTY_INTERACTION_KIND,
)
from etomcrm.db import session_scope
from etomcrm.demo import story
from etomcrm.demo.scenario import OFFERINGS, DemoSummary, run_demo
from etomcrm.flows import engine
from etomcrm.flows.models import ProcessFlowRow, TaskFlowRow
from etomcrm.network.models import NetworkServiceOrderRow
from etomcrm.order_handling.models import ProductOrderRow, ProductRow
from etomcrm.qos_sla.models import SlaRow
from etomcrm.retention.recommendations import recommendation_items
from etomcrm.security.service import SYSTEM, Principal, Role

JsonDict = dict[str, Any]


def _run_demo() -> tuple[DemoSummary, str]:
    out = io.StringIO()
    summary = run_demo(Console(file=out, width=120))
    return summary, out.getvalue()


def _all(kind: ResourceKind, principal: Principal = SYSTEM) -> list[JsonDict]:
    with session_scope() as session:
        items, total = list_resources(session, kind, principal, {}, 0, 1000)
    assert len(items) == total
    return items


def _as_bmw(customer_id: str) -> Principal:
    return Principal(id="bmw-portal", name="bmw", role=Role.CUSTOMER, customer_id=customer_id)


def _count(row: type) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(row)) or 0


def test_demo_loads_bmw_headquarters_and_at_least_50_sites(db_url: str) -> None:
    # given an empty database
    # when the demo runs
    summary, _ = _run_demo()
    # then BMW itself sees its headquarters and at least 50 dealer and supplier sites
    sites = _all(GEOGRAPHIC_SITE_KIND, _as_bmw(summary.customer_id))
    assert len(sites) >= 51
    assert summary.count("GeographicSite").created == len(sites)
    for site in sites:
        (place,) = site["place"]
        assert re.fullmatch(r"\d{5}", place["postcode"]), site
        assert place["city"] and place["street1"] and place["stateOrProvince"], site
        assert place["country"] == "DE"
        (owner,) = site["relatedParty"]
        assert (owner["id"], owner["@referredType"]) == (summary.customer_id, "Customer")
    (hq,) = [s for s in sites if "siteRelationship" not in s]
    assert hq["place"][0]["street1"] == "Petuelring 130"
    assert (hq["place"][0]["postcode"], hq["place"][0]["city"]) == ("80809", "München")
    # and every other site connects to the headquarters
    assert all(s["siteRelationship"][0]["id"] == hq["id"] for s in sites if s is not hq)
    names = " ".join(s["name"] for s in sites)
    assert "Autohaus" in names and "GmbH" in names  # dealers and suppliers
    assert len({s["place"][0]["stateOrProvince"] for s in sites}) == 16


def test_demo_customer_is_a_prospect_and_engages_bmw_ag(db_url: str) -> None:
    # given the scenario has been loaded
    summary, _ = _run_demo()
    # when the customer and its engaged party are read
    with session_scope() as session:
        customer, _ = get(session, CUSTOMER_KIND, SYSTEM, summary.customer_id)
        party, _ = get(session, ORGANIZATION_KIND, SYSTEM, customer["engagedParty"]["id"])
    # then BMW AG is a prospect (its first completed order makes it active, 3.9.1), a
    # legal entity with its register and VAT ids
    assert customer["status"] == "prospect"
    assert customer["engagedParty"]["@referredType"] == "Organization"
    assert party["tradingName"] == "BMW AG"
    assert party["isLegalEntity"] is True
    ids = {i["identificationId"] for i in party["organizationIdentification"]}
    assert {"HRB 42243", "DE129273398"} <= ids
    # and its contacts are named with a role and can be reached by e-mail and phone
    contacts = [p for p in customer["relatedParty"] if p["@referredType"] == "Individual"]
    assert len(contacts) >= 4
    assert all(p.get("role") for p in contacts)
    people = {p["id"]: p for p in _all(INDIVIDUAL_KIND, _as_bmw(summary.customer_id))}
    for contact in contacts:
        media = {
            m["mediumType"]: m["characteristic"] for m in people[contact["id"]]["contactMedium"]
        }
        assert "@" in media["email"]["emailAddress"]
        assert media["phone"]["phoneNumber"].startswith("+49 ")


def test_demo_records_a_contact_history_of_recent_weeks(db_url: str) -> None:
    # given the demo has run
    summary, _ = _run_demo()
    # when BMW's contact history is read
    interactions = _all(PARTY_INTERACTION_KIND, _as_bmw(summary.customer_id))
    # then it holds at least six contacts, in and out, over several channels, each
    # naming the customer and the person spoken to, all in the past weeks
    assert len(interactions) >= 6
    assert {i["direction"] for i in interactions} == {"inbound", "outbound"}
    assert {c["id"] for i in interactions for c in i["channel"]} >= {"phone", "email", "meeting"}
    now = datetime.now(UTC)
    for interaction in interactions:
        referred = {p["@referredType"]: p["id"] for p in interaction["relatedParty"]}
        assert referred["Customer"] == summary.customer_id
        assert "Individual" in referred
        start = datetime.fromisoformat(interaction["interactionDate"]["startDateTime"])
        assert now - timedelta(weeks=8) < start < now


def test_demo_sla_levels_gold_and_silver(db_url: str) -> None:
    # given the demo has run
    _run_demo()
    # when the SLA levels are read as later processes read them
    with session_scope() as session:
        levels = {level.name: level for level in sla_levels(session)}
        gold = sla_level(session, levels["SLA Gold"].specification_id)
    # then Gold and Silver carry their contracted figures
    assert set(levels) == {"SLA Gold", "SLA Silver"}
    assert (gold.availability_target, gold.time_to_repair_hours) == (Decimal("99.9"), Decimal(4))
    assert gold.latency_bound_ms == 30
    assert gold.penalty_rule == "10% of MRC per violated metric, max 30%"
    silver = levels["SLA Silver"]
    assert (silver.availability_target, silver.time_to_repair_hours) == (
        Decimal("99.5"),
        Decimal(8),
    )
    assert silver.latency_bound_ms == 50


def test_demo_offerings_have_specification_category_and_eur_prices(db_url: str) -> None:
    # given the demo has run
    _run_demo()
    # when the offerings and their prices are read
    offerings = {o["name"]: o for o in _all(PRODUCT_OFFERING_KIND)}
    prices = {p["id"]: p for p in _all(PRODUCT_OFFERING_PRICE_KIND)}
    # then every offering of the scenario is there, linked, and priced in EUR
    assert set(offerings) == {o.name for o in OFFERINGS}
    assert "Site access 100 Mbit/s" in offerings
    for offering in offerings.values():
        assert offering["productSpecification"]["id"]
        assert offering["category"][0]["id"]
        for ref in offering["productOfferingPrice"]:
            price = prices[ref["id"]]
            assert price["price"]["unit"] == "EUR" and price["price"]["value"] > 0
    price_types = {
        name: {prices[r["id"]]["priceType"] for r in o["productOfferingPrice"]}
        for name, o in offerings.items()
    }
    assert price_types["Site access 1000 Mbit/s"] == {"recurring"}
    assert price_types["SLA Gold"] == {"recurring"}
    assert price_types["Installation"] == {"oneTime"}
    assert price_types["Traffic volume beyond included volume"] == {"usage"}
    monthly = prices[offerings["SLA Silver"]["productOfferingPrice"][0]["id"]]
    assert monthly["recurringChargePeriodType"] == "month"


def test_demo_router_stock_and_lead_time(db_url: str) -> None:
    # given the demo has run
    summary, _ = _run_demo()
    # when the managed router's availability is asked for
    with session_scope() as session:
        router = material_availability(session, summary.router_specification_id)
    # then 40 are in stock and more come within 21 days
    assert router.available == 40
    assert router.lead_time_days == 21
    today = date(2026, 11, 2)
    assert router.ready_by(Decimal(40), today) == today
    assert router.ready_by(Decimal(41), today) == today + timedelta(days=21)


def test_second_run_creates_and_changes_nothing(db_url: str) -> None:
    # given the demo has run once
    first, _ = _run_demo()
    audits, events = _count(AuditRecord), _count(OutboxEvent)
    # when it runs again
    second, printed = _run_demo()
    # then it finds every record, creates and changes none, and says so
    assert first.created >= 51 + 6 + 8
    assert (second.created, second.updated) == (0, 0)
    assert second.present == first.created
    assert second.customer_id == first.customer_id
    assert (_count(AuditRecord), _count(OutboxEvent)) == (audits, events)
    assert "Nothing to do" in printed


def test_demo_records_read_back_through_the_api_conform_to_the_schema(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given the demo has run
    summary, _ = _run_demo()
    # when every kind it loaded is listed through the TMF API (responses are checked
    # against the official schema by the test client)
    for type_name, count in summary.counts.items():
        kind = ResourceKind.by_type[type_name]
        response = client.get(kind.path, params={"limit": 1000}, headers=admin)
        # then each answers 200 with all the records
        assert response.status_code == 200, response.text
        assert len(response.json()) == count.created


SEEDS = [
    "3.2.2",
    "3.3.1",
    "3.4.1",
    "3.4.2",
    "3.4.3",
    "3.4.4",
    "3.5.1",
    "3.5.2",
    "3.5.3",
    "3.5.4",
    "3.5.5",
    "3.9.1",
    "3.9.5",
]


def _counts() -> tuple[int, ...]:
    rows = (AuditRecord, OutboxEvent, ProcessFlowRow, TaskFlowRow, ProductOrderRow, ProductRow)
    return tuple(_count(row) for row in (*rows, CommunicationMessageRow, NetworkServiceOrderRow))


def test_cli_demo_tells_the_story_end_to_end_and_a_second_run_changes_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an empty database, customer messages and the QoS report under tmp_path
    monkeypatch.setenv("ETOMCRM_MESSAGE_DIR", str(tmp_path / "messages"))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    runner = CliRunner()
    # when `etomcrm demo` runs
    first = runner.invoke(app, ["demo"], terminal_width=200)
    # then it loads the scenario, runs the flows in the process and leaves none running
    assert first.exit_code == 0, first.output
    assert not engine.is_running()
    assert "GeographicSite" in first.output
    loaded = re.search(r"Loaded (\d+) new records", first.output)
    assert loaded is not None and int(loaded.group(1)) > 51
    # and the trace names every process of the story by its seed number
    for seed in SEEDS:
        assert f" {seed} " in first.output, seed
    for flow in ("presale", "ordering", "post-ordering"):
        assert f"{flow} {flow}-" in first.output, flow
    assert "the story in figures" in first.output
    # and what it prints reads as a new user expects (issue 12): every trace in time
    # order, risks and messages in words, nothing of the schedules racing the story
    for times in _trace_times(first.output):
        assert times == sorted(times), times
    assert "churn risk " in first.output and "None " not in first.output
    assert "Traceback" not in first.output and "database is locked" not in first.output
    # and the customers' messages are sent at the end, none left waiting unsaid
    sent = re.search(r"Messages to customers: (\d+) sent now as \.eml files", first.output)
    assert sent is not None and int(sent.group(1)) > 20, first.output[-600:]
    assert len(list((tmp_path / "messages").glob("**/*.eml"))) == int(sent.group(1))
    with session_scope() as session:
        waiting = session.scalar(
            select(func.count())
            .select_from(CommunicationMessageRow)
            .where(CommunicationMessageRow.status == "initial")
        )
    assert not waiting or f"{waiting} wait for their scheduled time" in first.output

    # and the figures the summary reports are those of the story
    case = story.tell()
    assert case.told_before
    summary, traces, _ = story.summarize(case)
    assert summary.sites_ordered >= 50
    assert summary.sites_requested == summary.sites_ordered + 1
    (unserved,) = summary.unserviceable
    assert unserved[0] == "Oberpfälzer Interieur GmbH" and "no access network" in unserved[1]
    assert len(summary.special_build) == 3
    assert (summary.quote_version, summary.quote_state) == ("2", "accepted")
    assert summary.discount_percent == Decimal(15) and summary.approved_by == "Bernd Huber"
    assert summary.order_state == "completed"
    assert summary.sites_active == summary.sites_ordered
    assert summary.products_active == 4 * summary.sites_ordered  # access, router, install, SLA
    # one SLA per site's access (none for routers, installations or the SLA items), and
    # every router installed came out of the stock, none below zero, none still promised
    with session_scope() as session:
        # BMW's (the billing part adds a dealer of its own with its SLA)
        sla_names = list(
            session.scalars(select(SlaRow.name).where(SlaRow.owner_customer_id == case.customer_id))
        )
        stocks = list(session.scalars(select(ProductStockRow.body)))
    assert len(sla_names) == summary.sites_active
    assert all(" for Site access " in str(name) for name in sla_names), sla_names
    assert [s for s in stocks if s["productStockStatusType"] == "reserved"] == []
    assert all(s["productStockLevel"]["amount"] >= 0 for s in stocks)
    assert len(summary.late) == 3 and summary.jeopardy_notes == 3
    assert summary.retried == ["BMW Autohaus Feldhaus Köln"] and summary.given_up == []
    assert len(summary.lead_times) == summary.sites_ordered
    for site in summary.lead_times:
        if site.late:
            assert site.actual_days > site.planned_days, site
        if site.special_build:
            assert site.planned_days >= 14 + 10, site  # the access plus the special build
    assert [(f.flow, f.state) for f in summary.flows] == [
        ("presale", "completed"),
        ("ordering", "completed"),
        ("post-ordering", "completed"),
    ]
    presale, ordering, post_ordering = summary.flows
    assert 0 < presale.automated < presale.steps  # people negotiated, the flow did the rest
    assert ordering.automated == ordering.steps and post_ordering.automated == post_ordering.steps
    assert summary.customer_status == "active"
    assert summary.campaign_leads == 1 and summary.marketing_messages == 1
    assert summary.messages_to_customer >= 6  # collateral, confirmation, delays, done, survey
    assert (summary.survey_answer["csat"], summary.survey_answer["answeredBy"]) == (
        4,
        "Katrin Weber",
    )
    seeds = {line.seed for trace in traces for line in trace.lines}
    assert set(SEEDS) <= seeds
    # and the order shows the jeopardy on the late sites' items
    with session_scope() as session:
        order = get(session, ResourceKind.by_type["ProductOrder"], SYSTEM, case.order_id)[0]
    assert sum(1 for i in order["productOrderItem"] if i.get("jeopardy")) == 3 * 4

    # when it runs again
    before = _counts()
    second = runner.invoke(app, ["demo"], terminal_width=200)
    # then it changes nothing and shows the same story again
    assert second.exit_code == 0, second.output
    assert not engine.is_running()
    assert _counts() == before
    assert "Nothing to do" in second.output
    assert "told on this database before" in second.output
    for seed in SEEDS:
        assert f" {seed} " in second.output, seed
    # and each part counts the messages it sent the same way on every run
    assert _message_rows(second.output) == _message_rows(first.output)
    assert len(_message_rows(first.output)) == 2
    assert "Messages to customers: 0 sent now" in second.output


def _trace_times(output: str) -> list[list[str]]:
    """The times of each printed table's rows, table by table."""
    tables: list[list[str]] = []
    for line in output.splitlines():
        if line.startswith("┏"):
            tables.append([])
        found = re.match(r"│ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) │", line)
        if found and tables:
            tables[-1].append(found.group(1))
    return [t for t in tables if t]


def _message_rows(output: str) -> list[str]:
    return [" ".join(line.split()) for line in output.splitlines() if "Messages to BMW" in line]


ASSURANCE_SEEDS = ["3.6.1", "3.6.2", "3.6.3", "3.6.4", "3.7.1", "3.7.2", "3.8.2", "3.9.3", "3.9.5"]


def _assurance_counts() -> tuple[int, ...]:
    from etomcrm.network.models import MaintenanceWindowRow, NetworkMeasurementRow
    from etomcrm.problem_handling.models import AlarmRow, ServiceProblemRow, TroubleTicketRow
    from etomcrm.qos_sla.models import QosAssessmentRow, SlaRow, SlaViolationRow

    rows = (
        NetworkMeasurementRow,
        MaintenanceWindowRow,
        SlaRow,
        QosAssessmentRow,
        SlaViolationRow,
        AlarmRow,
        ServiceProblemRow,
        TroubleTicketRow,
    )
    return (*_counts(), *(_count(row) for row in rows))


def test_cli_demo_continues_with_assurance_and_a_second_run_changes_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etomcrm.problem_handling.correlation import ticket_name
    from etomcrm.problem_handling.models import ServiceProblemRow, TroubleTicketRow
    from etomcrm.qos_sla.models import SlaViolationRow

    # given an empty database, the QoS report and messages written under tmp_path
    monkeypatch.setenv("ETOMCRM_MESSAGE_DIR", str(tmp_path / "messages"))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    runner = CliRunner()
    # when `etomcrm demo` runs
    first = runner.invoke(app, ["demo"], terminal_width=200)
    # then after the Fulfillment story it tells the assurance one, naming its processes
    assert first.exit_code == 0, first.output
    assert not engine.is_running()
    assert "assurance in figures" in first.output
    for seed in ASSURANCE_SEEDS:
        assert seed in first.output, seed
    assert first.output.count("assurance problem-") == 2
    # and the month has exactly one violation, with a credit, and its report as a PDF
    with session_scope() as session:
        violations = list(session.scalars(select(SlaViolationRow.body)))
        rows = list(session.scalars(select(ServiceProblemRow)))
        # the network's two incidents, and the problem raised for the violation's cause
        (raised,) = [row for row in rows if row.body["category"] == "qos"]
        assert raised.status == "closed"
        problems = {
            str(row.correlation_key).split(":", 1)[0]: row for row in rows if row is not raised
        }
        assert set(problems) == {"link", "pop"}
        tickets = {
            kind: list(
                session.scalars(
                    select(TroubleTicketRow).where(TroubleTicketRow.name == ticket_name(problem.id))
                )
            )
            for kind, problem in problems.items()
        }
    (violation,) = violations
    assert violation["metric"] == "availability"
    assert Decimal(violation["violation"]["actualValue"]) < Decimal("99.9")
    assert Decimal(violation["credit"]["value"]) > 0
    assert f"{violation['credit']['value']} EUR" in first.output
    # and its problem was resolved and confirmed: it is closed, its credit with billing
    assert violation["status"] == "closed" and "confirmed" in violation["resolution"]
    assert violation["credit"]["status"] == "handedToBilling"
    (pdf,) = tmp_path.glob("qos-report-BMW-*.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    # and the link failure closed once Katrin confirmed its one ticket
    assert problems["link"].status == "closed"
    (link_ticket,) = tickets["link"]
    assert link_ticket.status == "closed"
    closing = [c for c in link_ticket.body["statusChange"] if c["status"] == "closed"]
    assert "confirmed" in closing[-1]["changeReason"]
    # and the PoP outage is one problem with one ticket for BMW, closed after silence
    assert problems["pop"].status == "closed"
    (pop_ticket,) = tickets["pop"]
    assert pop_ticket.status == "closed"
    assert pop_ticket.owner_customer_id == link_ticket.owner_customer_id
    assert problems["pop"].body["affectedNumberOfServices"] >= 2 * 4  # several sites, 4 each
    # and BMW, with its tickets and its measured traffic, gets recommendations from those
    # facts (3.4.5): its sites carry more than their included volume, the busiest first
    with session_scope() as session:
        items = recommendation_items(session, str(link_ticket.owner_customer_id))
    assert items
    busiest = items[0]["product"]
    assert busiest["name"] == "Site access 1000 Mbit/s", busiest
    assert "GB included volume last month" in busiest["description"]
    # and the silence period of the demo is not left behind
    assert get_settings().ticket_silence_seconds == 3 * 24 * 3600.0

    # and every attribute stored is TMF's own or one etomcrm declares, so staff can filter
    # lists by any of them
    standard = {"id", "href", "@type", "@baseType", "@schemaLocation"}
    with session_scope() as session:
        for kind in {id(k): k for k in ResourceKind.registry.values()}.values():
            known = standard | set(kind.properties) | set(kind.extensions)
            stored = select(kind.row.body).where(kind.row.at_type == kind.type_name)
            for body in session.scalars(stored):
                assert set(body) <= known, (kind.name, set(body) - known)

    # when it runs again
    before = _assurance_counts()
    second = runner.invoke(app, ["demo"], terminal_width=200)
    # then it changes nothing and shows the same figures
    assert second.exit_code == 0, second.output
    assert _assurance_counts() == before, second.output
    assert "assurance story had been told on this database before" in second.output
    assert second.output.count("assurance problem-") == 2
    assert f"{violation['credit']['value']} EUR" in second.output


def _billing_counts() -> tuple[int, ...]:
    from etomcrm.billing.dunning_models import BillingEnquiryRow, DunningCaseRow
    from etomcrm.billing.models import (
        AppliedRateRow,
        CustomerBillRow,
        DirectDebitBatchRow,
        PaymentRow,
        UsageRecordRow,
    )

    rows = (
        AppliedRateRow,
        CustomerBillRow,
        DirectDebitBatchRow,
        PaymentRow,
        UsageRecordRow,
        DunningCaseRow,
        BillingEnquiryRow,
    )
    return (*_counts(), *(_count(row) for row in rows))


def test_cli_demo_continues_with_billing_and_a_second_run_changes_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facturx

    from etomcrm.billing.dunning_models import DunningCaseRow
    from etomcrm.billing.models import AppliedRateRow, CustomerBillRow
    from etomcrm.core.clock import FLOW_CLOCK
    from etomcrm.demo.billing_story import SCHMIDT

    # given an empty database, the bills' PDFs and the messages written under tmp_path
    monkeypatch.setenv("ETOMCRM_MESSAGE_DIR", str(tmp_path / "messages"))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    runner = CliRunner()
    ahead = FLOW_CLOCK.now() - datetime.now(UTC)
    # when `etomcrm demo` runs
    first = runner.invoke(app, ["demo"], terminal_width=200)
    # then after assurance it tells billing: the bill runs traced, the bills printed
    assert first.exit_code == 0, first.output
    assert not engine.is_running()
    assert "Billing: the bills of the story" in first.output
    assert first.output.count("bill-run bill-run-") == 2
    for seed in ("3.8.1", "3.8.2", "3.8.3", "3.8.4", "3.8.5"):
        assert seed in first.output, seed
    # and the flows' clock, moved over the months of the story, is put back
    assert abs((FLOW_CLOCK.now() - datetime.now(UTC)) - ahead) < timedelta(seconds=5)
    with session_scope() as session:
        customers = {
            str(c.name): str(c.id)
            for c in session.scalars(
                select(CustomerRow).where(CustomerRow.name.in_(["BMW AG", SCHMIDT]))
            )
        }
        bills = list(
            session.scalars(
                select(CustomerBillRow)
                .where(CustomerBillRow.bill_no.is_not(None))
                .order_by(CustomerBillRow.bill_no)
            )
        )
        rates = list(session.scalars(select(AppliedRateRow)))
        cases = list(session.scalars(select(DunningCaseRow)))
        products = {
            str(p.name): str(p.status)
            for p in session.scalars(
                select(ProductRow).where(ProductRow.owner_customer_id == customers[SCHMIDT])
            )
        }
        suspends = [
            o.body
            for o in session.scalars(
                select(ProductOrderRow).where(
                    ProductOrderRow.owner_customer_id == customers[SCHMIDT]
                )
            )
            if any(i["action"] == "modify" for i in o.body["productOrderItem"])
        ]
    bmw, schmidt = customers["BMW AG"], customers[SCHMIDT]
    # and the bills of each series are numbered without a gap
    series: dict[str, list[int]] = {}
    for bill in bills:
        prefix, _, number = str(bill.bill_no).rpartition("-")
        series.setdefault(prefix, []).append(int(number))
    assert series and all(n == list(range(1, len(n) + 1)) for n in series.values()), series
    normal = [b for b in bills if b.category == "normal"]
    bmw_bills = [b for b in normal if b.owner_customer_id == bmw]
    late_bills = [b for b in normal if b.owner_customer_id == schmidt]
    assert len(bmw_bills) == 2 and len(late_bills) == 2
    # and BMW's first bill charges from each site's activation, installation and router
    # once, the quote's discount as its own lines, and the SLA credit
    first_lines = [r for r in rates if r.bill_id == bmw_bills[0].id]
    kinds = {r.rate_type for r in first_lines}
    assert {"recurring", "oneTime", "discount", "credit"} <= kinds, kinds
    berlin = ZoneInfo("Europe/Berlin")
    with session_scope() as session:
        activated = {
            str(p.id): datetime.fromisoformat(str(p.body["startDate"]).replace("Z", "+00:00"))
            .astimezone(berlin)
            .date()
            for p in session.scalars(select(ProductRow).where(ProductRow.owner_customer_id == bmw))
        }
    recurring = [r for r in first_lines if r.rate_type == "recurring"]
    for line in recurring:
        assert line.product_id is not None
        assert line.period_start == activated[line.product_id], line.characteristic
        days = (line.period_end - line.period_start).days + 1  # type: ignore[operator]
        assert line.characteristic["days"] == days <= line.characteristic["daysOfMonth"]
    # access and SLA recur, router and installation are charged once, per site
    assert sum(1 for r in first_lines if r.rate_type == "oneTime") == len(recurring)
    assert all(r.tax_excluded < 0 for r in first_lines if r.rate_type == "discount")
    # and traffic beyond the included volume is rated on the dealer's first bill
    (usage,) = [r for r in rates if r.rate_type == "usage"]
    assert usage.bill_id == late_bills[0].id and usage.tax_excluded > 0
    # and the SLA credit of the assurance story is on exactly one bill
    (credit,) = [r for r in rates if str(r.source_key).startswith("sla-credit/")]
    assert credit.bill_id in {b.id for b in bmw_bills}
    assert f"{-credit.tax_excluded} EUR" in first.output
    # and BMW's bills were collected by direct debit and are settled
    assert [b.status for b in bmw_bills] == ["settled", "settled"]
    # and the dealer paid late: reminder, notice with fee, final notice, suspension by a
    # suspend order, then paid and resumed
    (case,) = [c for c in cases if c.bill_id == late_bills[0].id]
    assert case.status == "closed"
    steps = [h.get("name") or h.get("event") for h in case.body["history"]]
    assert steps == ["reminder", "notice", "finalNotice", "suspended", "closed"], steps
    assert case.body["history"][-1]["outcome"] == "paid; services resumed"
    assert late_bills[0].status == "settled"
    assert suspends and {
        i["product"]["status"] for o in suspends for i in o["productOrderItem"]
    } >= {"suspended", "active"}
    assert set(products.values()) == {"active"}, products
    # and BMW's disputed line was settled by a credit note referencing its bill
    (note,) = [b for b in bills if b.category == "creditNote"]
    assert str(note.bill_no).startswith("GS-")
    assert note.body["referencedBill"] == bmw_bills[1].id
    assert note.amount_due < 0
    # and every bill is a PDF a person can open, with its Factur-X XML inside
    for bill in bills:
        pdf = tmp_path / f"{bill.bill_no}.pdf"
        assert pdf.read_bytes().startswith(b"%PDF"), pdf
        _, xml = facturx.get_xml_from_pdf(pdf.read_bytes(), check_xsd=False)
        assert xml and str(bill.bill_no).encode() in xml, bill.bill_no
        assert str(bill.bill_no) in first.output

    # when it runs again
    before = _billing_counts()
    second = runner.invoke(app, ["demo"], terminal_width=200)
    # then it changes nothing and shows the same bills
    assert second.exit_code == 0, second.output
    assert _billing_counts() == before
    assert "billing story had been told on this database before" in second.output
    for bill in bills:
        assert str(bill.bill_no) in second.output
    # and the analytical figures at its end are the same on the second run
    assert _analytics_lines(second.output) == _analytics_lines(first.output)
    _check_analytics(first.output, bmw)


def _analytics_lines(output: str) -> list[str]:
    """The lines of the demo's analytics part (from its first heading on)."""
    lines = output.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("Analytics (seed 5.3)"))
    return [line for line in lines[start:] if line.startswith(("Analytics", "  "))][:40]


def _check_analytics(output: str, bmw: str) -> None:
    """The demo printed the contact statistics and BMW's months with the API's figures."""
    from etomcrm.bootstrap import create_app
    from etomcrm.demo.analytics_story import contact_line, profit_line
    from etomcrm.security.service import create_api_key
    from tests.schema_check import ConformingClient

    with session_scope() as session:
        _, token = create_api_key(session, "demo-analyst", "analyst", None)
    headers = {"Authorization": f"Bearer {token}"}
    with ConformingClient(create_app(deliver_events=False, run_flows=False)) as client:
        contacts = client.get(
            "/etomcrm/v1/analytics/contactStatistics",
            params={"groupBy": "channel"},
            headers=headers,
        ).json()
        months = client.get(
            "/etomcrm/v1/analytics/customerProfitability",
            params={"groupBy": "month", "customerId": bmw},
            headers=headers,
        ).json()
        segments = client.get("/etomcrm/v1/analytics/segments", headers=headers).json()
        campaigns = client.get("/etomcrm/v1/analytics/campaignSuccess", headers=headers).json()
        profile = client.get(f"/etomcrm/v1/retention/customerProfile/{bmw}", headers=headers).json()
    # the story's contacts (its interactions, the enquiries and the tickets' messages)
    assert contacts["total"]["contacts"] > 0
    for row in [*contacts["groups"], contacts["total"]]:
        assert contact_line(row) in output, row
    # BMW's two billed months: revenue, each cost to serve, profit, as the API has them
    assert len(months["groups"]) >= 2 and any(g["revenue"] != "0.00" for g in months["groups"]), (
        months
    )
    for row in [*months["groups"], months["total"]]:
        assert profit_line(row, months["currency"]) in output, row
    assert "BMW AG's profitability per month (EUR, net):" in output
    # and the computed segments, the campaign's success and BMW's profile as the API has
    # them; the story's few customers are too little history for a churn model, said so
    assert segments["segments"]
    for segment in segments["segments"]:
        assert f"  segment {segment['segment']}: {segment['customers']} customer(s)" in output
    assert campaigns["campaigns"]
    for campaign in campaigns["campaigns"]:
        assert f"  campaign {campaign['name']}: {campaign['sent']} sent" in output
    assert "  churn: the churn rule gives the scores: " in output
    assert f"  BMW AG (3.9.4): segment {profile['customer']['segment']}; " in output
