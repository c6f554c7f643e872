"""The BMW Extranet story of issue 3, told through the service layer.

From a marketing campaign to BMW's dealer network, through BMW's portal request for
extranet access at its sites, feasibility, education and a quote negotiated over two
versions, to the order the flows fulfil by themselves, the inventory and the survey.
People act under their own names; each action is one transaction, as an API request
would be. The flows run embedded (DBOS) against a simulated network whose overrides
make some sites need a special build, one unservable, some late and one fail once.

Every step looks for its own effect first (natural keys: the campaign's name, the
request's subject, the quote's description), so a second run changes nothing: it finds
the story told and only reads it back.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.bootstrap import bootstrap
from etomcrm.catalog.models import ProductOfferingRow, ProductStockRow
from etomcrm.catalog.stock import receive_stock
from etomcrm.core import resources
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import (
    CommunicationMessageRow,
    CustomerRow,
    GeographicSiteRow,
    PartyInteractionRow,
)
from etomcrm.customer_interface.requests import handle_customer_request
from etomcrm.db import session_scope
from etomcrm.demo.scenario import (
    BILLING_ACCOUNT_NAME,
    CUSTOMER_NAME,
    MANDATE_REFERENCE,
    MANDATE_SIGNED,
    PAYER_BIC,
    PAYER_IBAN,
    STOCKS,
)
from etomcrm.flows import engine
from etomcrm.flows.models import ProcessFlowRow
from etomcrm.flows.recorder import FlowTrace, flows_of_case
from etomcrm.marketing.models import CampaignRow, DocumentRow
from etomcrm.marketing.service import (
    CAMPAIGN_KIND,
    DOCUMENT_KIND,
    campaign_results,
    distribute_collateral,
    record_campaign_response,
)
from etomcrm.network.models import NetworkServiceOrderRow
from etomcrm.network.port import use_network
from etomcrm.network.simulator import Override, SimulatedNetwork
from etomcrm.order_handling.models import ProductOrderRow, ProductRow
from etomcrm.order_handling.service import accept_delivery, site_of
from etomcrm.retention.satisfaction import SURVEY_TYPE, answer_survey
from etomcrm.security.service import Principal, Role
from etomcrm.selling.accounts import has_billing_account_with_payment_method, open_billing_account
from etomcrm.selling.customer_data import complete_customer_data, missing_contract_data
from etomcrm.selling.education import record_education
from etomcrm.selling.feasibility import qualify_sites
from etomcrm.selling.models import ProductOfferingQualificationRow, QuoteRow
from etomcrm.selling.prospects import leads_of_campaign
from etomcrm.selling.quotes import (
    QuoteLine,
    accept_quote,
    approve_quote,
    draft_quote,
    education_reason,
    revise_quote,
    submit_quote,
)

# One simulated network day in real seconds: the longest site (special build and a
# delay, about 65 days) takes under two seconds, while every lead time keeps its shape.
DAY_SECONDS = 0.02
# How long the story waits for a flow before it says which one is stuck.
FLOW_TIMEOUT_SECONDS = 180.0

ANNA = Principal(id="staff-anna-schmidt", name="Anna Schmidt", role=Role.SALES)
BERND = Principal(id="staff-bernd-huber", name="Bernd Huber", role=Role.SALES)
OLAF = Principal(id="staff-olaf-berger", name="Olaf Berger", role=Role.ORDER_MANAGER)
MIA = Principal(id="staff-mia-wagner", name="Mia Wagner", role=Role.MARKETING)

ROUTER_STOCK_NAME = next(s.name for s in STOCKS if s.specification == "router")
BROCHURE_NAME = "Dealer extranet brochure 2026"
CAMPAIGN_NAME = "One extranet for the BMW dealer network"
REQUEST_SUBJECT = "Extranet access at all our dealer and supplier sites"
QUOTE_DESCRIPTION = "BMW dealer and supplier extranet: site access, managed router, installation"
ACCESS = "Site access 100 Mbit/s"
ALONGSIDE = ("Managed router", "Installation")
SLA = "SLA Gold"
FIRST_DISCOUNT = Decimal(5)
AGREED_DISCOUNT = Decimal(15)  # above the approval threshold: Bernd approves it

# What the simulated network does at particular sites (by site code); every other site
# is served on time without a special build, so the figures are the same on every run.
SITE_OVERRIDES: dict[str, Override] = {
    "BMW-SUP-WAC": "unserviceable",
    "BMW-DLR-ROK": "special_build",
    "BMW-SUP-COT": "special_build",
    "BMW-DLR-TRI": "special_build",
    "BMW-DLR-KIE": "late",
    "BMW-DLR-PAS": "late",
    "BMW-SUP-SAA": "late",
    "BMW-DLR-KOE": "fail",
}


class StoryStalled(RuntimeError):
    """A flow did not get where the story needs it within the time allowed."""


def katrin(customer_id: str) -> Principal:
    """Katrin Weber, Head of Dealer Network IT at BMW, in the customer portal."""
    return Principal(
        id="bmw-katrin-weber", name="Katrin Weber", role=Role.CUSTOMER, customer_id=customer_id
    )


@dataclass
class Case:
    """The ids the story produced (found again on a later run)."""

    customer_id: str
    campaign_id: str = ""
    request_id: str = ""
    quote_id: str = ""
    order_id: str = ""
    told_before: bool = False  # the story had run to its end before this run


# ----- looking things up by their natural keys ---------------------------------------


def _customer_id(session: Session) -> str:
    found = session.scalar(select(CustomerRow.id).where(CustomerRow.name == CUSTOMER_NAME))
    if found is None:
        raise LookupError(f"{CUSTOMER_NAME} is not loaded; load the scenario first")
    return found


def _sites(session: Session, customer_id: str) -> dict[str, str]:
    """Site code -> site id, in code order (the headquarters among them)."""
    rows = session.execute(
        select(GeographicSiteRow.id, GeographicSiteRow.body).where(
            GeographicSiteRow.owner_customer_id == customer_id
        )
    ).all()
    return dict(sorted((str(body["code"]), site_id) for site_id, body in rows))


def _offerings(session: Session) -> dict[str, str]:
    rows = session.execute(select(ProductOfferingRow.name, ProductOfferingRow.id)).all()
    return {str(name): site_id for name, site_id in rows}


def _by_name(session: Session, row: Any, name: str) -> str | None:
    found: str | None = session.scalar(select(row.id).where(row.name == name).limit(1))
    return found


def _request_id(session: Session, customer_id: str) -> str | None:
    rows = session.execute(
        select(PartyInteractionRow.id, PartyInteractionRow.body).where(
            PartyInteractionRow.owner_customer_id == customer_id,
            PartyInteractionRow.at_type == "CustomerRequest",
        )
    ).all()
    return next((rid for rid, body in rows if body.get("reason") == REQUEST_SUBJECT), None)


def _quote(session: Session, customer_id: str) -> JsonDict | None:
    bodies = session.scalars(select(QuoteRow.body).where(QuoteRow.owner_customer_id == customer_id))
    return next(
        (
            dict(b)
            for b in bodies
            if b.get("description") == QUOTE_DESCRIPTION and not b.get("supersededBy")
        ),
        None,
    )


def _order(session: Session, customer_id: str, quote_id: str) -> JsonDict | None:
    bodies = session.scalars(
        select(ProductOrderRow.body).where(ProductOrderRow.owner_customer_id == customer_id)
    )
    return next(
        (dict(b) for b in bodies if any(q.get("id") == quote_id for q in b.get("quote") or [])),
        None,
    )


def _feasibility(session: Session, customer_id: str) -> JsonDict | None:
    """The newest feasibility check of the customer's sites."""
    body: JsonDict | None = session.scalar(
        select(ProductOfferingQualificationRow.body)
        .where(ProductOfferingQualificationRow.owner_customer_id == customer_id)
        .order_by(ProductOfferingQualificationRow.created_at.desc())
        .limit(1)
    )
    return body


def _survey(session: Session, customer_id: str, order_id: str) -> JsonDict | None:
    rows = session.scalars(
        select(PartyInteractionRow.body).where(
            PartyInteractionRow.owner_customer_id == customer_id,
            PartyInteractionRow.at_type == SURVEY_TYPE,
        )
    )
    for body in rows:
        if any((i.get("item") or {}).get("id") == order_id for i in body["interactionItem"]):
            return dict(body)
    return None


def _flow_state(session: Session, flow: str, case_id: str) -> str | None:
    state: str | None = session.scalar(
        select(ProcessFlowRow.status).where(
            ProcessFlowRow.flow == flow, ProcessFlowRow.case_id == case_id
        )
    )
    return state


T = TypeVar("T")


def _wait(what: str, check: Callable[[Session], T | None], timeout: float) -> T:
    """Poll the database until ``check`` finds something; the flows do the work."""
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(readonly=True) as session:
            found = check(session)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise StoryStalled(
                f"gave up after {timeout:.0f} s waiting for {what}; see the process_flow "
                "table (etomcrm trace) for where the flow stands"
            )
        time.sleep(0.1)


# ----- the network the story runs against -------------------------------------------


def network(customer_id: str) -> SimulatedNetwork:
    """The simulated network with the story's site overrides; nothing else is random."""
    with session_scope(readonly=True) as session:
        sites = _sites(session, customer_id)
    return SimulatedNetwork(
        day_seconds=DAY_SECONDS,
        late_rate=0,
        failure_rate=0,
        unserviceable_rate=0,
        special_build_rate=0,
        overrides={sites[code]: override for code, override in SITE_OVERRIDES.items()},
    )


# ----- the story ---------------------------------------------------------------------


def _campaign(case: Case) -> None:
    """3.3.1 and 3.3.2: Mia's campaign to the dealer network and the response it brings."""
    with session_scope() as session:
        document_id = _by_name(session, DocumentRow, BROCHURE_NAME)
        if document_id is None:
            document, _, _ = resources.create(
                session,
                DOCUMENT_KIND,
                MIA,
                {
                    "name": BROCHURE_NAME,
                    "documentType": "brochure",
                    "lifecycleState": "published",
                    "description": "Site access, managed routers and SLA Gold for car dealers",
                    "binaryAttachment": [
                        {
                            "@type": "Attachment",
                            "url": "https://extranet-services.example/dealer-extranet-2026.pdf",
                            "mimeType": "application/pdf",
                        }
                    ],
                },
            )
            document_id = document["id"]
        campaign_id = _by_name(session, CampaignRow, CAMPAIGN_NAME)
        if campaign_id is None:
            campaign, _, _ = resources.create(
                session,
                CAMPAIGN_KIND,
                MIA,
                {
                    "name": CAMPAIGN_NAME,
                    "description": "Every dealer and supplier on one extranet: one contract, "
                    "one router, one service level.",
                    "budget": {"unit": "EUR", "value": 4500},
                    # The car makers among our customers: BMW and its dealer network.
                    "targetSegment": {
                        "characteristic": [{"name": "industry", "value": "automotive"}]
                    },
                    "collateral": [{"id": document_id, "@referredType": "Document"}],
                },
            )
            campaign_id = campaign["id"]
        case.campaign_id = campaign_id
    with session_scope() as session:
        campaign, _ = resources.get(session, CAMPAIGN_KIND, MIA, case.campaign_id)
        if campaign.get("status") == "planned":
            distribute_collateral(session, MIA, case.campaign_id)
    with session_scope() as session:
        if not leads_of_campaign(session, case.campaign_id):
            record_campaign_response(
                session,
                MIA,
                case.campaign_id,
                customer_id=case.customer_id,
                name="Thomas Lechner (BMW Autohaus Brenner Augsburg) asks for the dealer extranet",
                description="Replied to the campaign mail: wants the extranet at his dealership "
                "and asks whether BMW plans it for all dealers.",
                channel="email",
            )


def _request(case: Case, timeout: float) -> None:
    """3.2.2: Katrin asks in the portal; the pre-sale flow takes the request up."""
    with session_scope() as session:
        request_id = _request_id(session, case.customer_id)
        if request_id is None:
            request = handle_customer_request(
                session,
                katrin(case.customer_id),
                customer_id=case.customer_id,
                channel="portal",
                subject=REQUEST_SUBJECT,
                description="We want one extranet for our German dealers and main suppliers: "
                "please send an offer for access at every site, with managed router, "
                "installation and a service level for the workshops.",
            )
            request_id = request["id"]
        case.request_id = request_id
    # People's work is recorded on the flow from its start: wait until it has started.
    _wait(
        "the pre-sale flow of the request",
        lambda s: _flow_state(s, "presale", case.request_id),
        timeout,
    )


def _negotiate(case: Case) -> None:
    """3.5.1, 3.4.3, 3.4.4, 3.4.2: feasibility, two quote versions, approval, contract
    data and education, then BMW accepts."""
    with session_scope() as session:
        sites = _sites(session, case.customer_id)
        offerings = _offerings(session)
        quote = _quote(session, case.customer_id)
        feasibility = _feasibility(session, case.customer_id)
    if quote is None and feasibility is None:
        with session_scope() as session:
            feasibility = qualify_sites(
                session,
                ANNA,
                customer_id=case.customer_id,
                site_ids=list(sites.values()),
                offering_id=offerings[ACCESS],
            )
    served = sorted(
        item["product"]["place"][0]["id"]
        for item in (feasibility or {}).get("productOfferingQualificationItem", [])
        if item.get("qualificationItemResult") == "qualified"
    )
    site_ids = list(sites.values())
    served_in_order = [s for s in site_ids if s in served]
    dealers = [sites[c] for c in sites if not c.startswith("BMW-SUP-") and sites[c] in served]

    def lines(chosen: list[str]) -> list[QuoteLine]:
        names = (ACCESS, *ALONGSIDE)
        return [QuoteLine(site, offerings[name]) for site in chosen for name in names]

    if quote is None:
        # Version 1: the headquarters and the dealers, a small discount.
        with session_scope() as session:
            quote = draft_quote(
                session,
                ANNA,
                customer_id=case.customer_id,
                items=lines(dealers),
                sla_offering_id=offerings[SLA],
                discount_percent=FIRST_DISCOUNT,
                description=QUOTE_DESCRIPTION,
            )
    case.quote_id = quote["id"]
    if quote.get("version") == "1":
        # BMW adds its suppliers and asks for more; version 2 needs Bernd's approval.
        with session_scope() as session:
            quote = revise_quote(
                session,
                ANNA,
                case.quote_id,
                items=lines(served_in_order),
                discount_percent=AGREED_DISCOUNT,
            )
    if quote.get("state") == "inProgress":
        with session_scope() as session:
            quote = submit_quote(session, ANNA, case.quote_id)
    if quote.get("state") == "pending":
        with session_scope() as session:
            quote = approve_quote(session, BERND, case.quote_id)
    with session_scope() as session:
        if missing_contract_data(session, case.customer_id):
            complete_customer_data(
                session,
                katrin(case.customer_id),
                case.customer_id,
                legal_name="Bayerische Motoren Werke Aktiengesellschaft",
                vat_id="DE129273398",
                billing_contact={
                    "emailAddress": "sabine.huber@bmw.example",
                    "name": "Sabine Huber",
                    "phoneNumber": "+49 89 99998 103",
                },
                billing_address={
                    "street1": "Petuelring 130",
                    "postCode": "80809",
                    "city": "München",
                    "country": "DE",
                },
            )
            if not has_billing_account_with_payment_method(session, case.customer_id):
                # Headquarters pays for all dealer sites: one account, one B2B mandate.
                open_billing_account(
                    session,
                    ANNA,
                    case.customer_id,
                    name=BILLING_ACCOUNT_NAME,
                    owner="Bayerische Motoren Werke Aktiengesellschaft",
                    iban=PAYER_IBAN,
                    bic=PAYER_BIC,
                    mandate_reference=MANDATE_REFERENCE,
                    mandate_signed=date.fromisoformat(MANDATE_SIGNED),
                    scheme="B2B",
                )
    with session_scope() as session:
        reason = education_reason(case.quote_id, str(quote.get("version")))
        educated = any(
            body.get("reason") == reason
            for body in session.scalars(
                select(PartyInteractionRow.body).where(
                    PartyInteractionRow.owner_customer_id == case.customer_id,
                    PartyInteractionRow.at_type == "CustomerEducation",
                )
            )
        )
        if not educated and quote.get("state") == "approved":
            record_education(
                session,
                ANNA,
                case.quote_id,
                presented_to="Katrin Weber",
                channel="meeting",
                note="Walked through the special builds, the unservable site and the router "
                "replenishment for the sites beyond the stock.",
            )
    if quote.get("state") == "approved":
        with session_scope() as session:
            _routers_delivered(session, quote)
            accept_quote(session, katrin(case.customer_id), case.quote_id)


def _routers_delivered(session: Session, quote: JsonDict) -> None:
    """Olaf saw the quote's sites waiting for routers and had a reorder delivered before
    BMW signed: it is booked into the warehouse stock, so every site gets its router."""
    waiting = sum(
        1
        for item in quote.get("quoteItem", []) or []
        for c in (item.get("product") or {}).get("productCharacteristic", []) or []
        if c.get("name") == "materialAvailability" and c.get("value") == "replenishment"
    )
    if not waiting:
        return
    warehouse = session.scalar(
        select(ProductStockRow)
        .where(ProductStockRow.status == "available", ProductStockRow.name == ROUTER_STOCK_NAME)
        .limit(1)
    )
    if warehouse is None:
        return
    per_delivery = int((warehouse.body.get("reorderQuantity") or {}).get("amount") or waiting)
    deliveries = -(-waiting // per_delivery)  # whole reorder quantities, rounded up
    receive_stock(session, OLAF, warehouse.id, Decimal(deliveries * per_delivery))


def _fulfilment(case: Case, timeout: float) -> None:
    """The flows do the rest; the story waits for them, then Katrin answers the survey."""
    case.order_id = _wait(
        "the order the pre-sale flow places from the accepted quote",
        lambda s: (_order(s, case.customer_id, case.quote_id) or {}).get("id"),
        timeout,
    )

    def completed(session: Session) -> bool | None:
        order = _order(session, case.customer_id, case.quote_id) or {}
        if order.get("state") in ("rejected", "cancelled"):
            notes = "; ".join(str(n.get("text")) for n in order.get("note", []) or [])
            raise StoryStalled(f"order {case.order_id} was {order['state']}: {notes}")
        return _flow_state(session, "post-ordering", case.order_id) == "completed" or None

    def delivered(session: Session) -> JsonDict | None:
        completed(session)  # stops the story, saying why, if the order was rejected
        order = _order(session, case.customer_id, case.quote_id) or {}
        return order if order.get("customerAcceptance") or order.get("state") == "failed" else None

    order = _wait(f"order {case.order_id} to be delivered", delivered, timeout)
    if (order.get("customerAcceptance") or {}).get("state") == "awaiting":
        with session_scope() as session:
            accept_delivery(
                session,
                katrin(case.customer_id),
                case.order_id,
                note="All dealers are online; we accept the delivery.",
            )
    _wait(f"the post-ordering flow of order {case.order_id} to complete", completed, timeout)
    with session_scope() as session:
        survey = _survey(session, case.customer_id, case.order_id)
        if survey is None:
            raise StoryStalled(f"the post-ordering flow sent no survey for {case.order_id}")
        if survey.get("status") == "open":
            answer_survey(
                session,
                katrin(case.customer_id),
                survey["id"],
                csat=4,
                nps=9,
                comment="All dealers are online; the late sites were announced in time.",
            )


def _told_before(customer_id: str) -> Case | None:
    """The case of an earlier run that went to its end (order done, survey answered)."""
    with session_scope(readonly=True) as session:
        quote = _quote(session, customer_id)
        order = _order(session, customer_id, quote["id"]) if quote else None
        if quote is None or order is None:
            return None
        survey = _survey(session, customer_id, order["id"])
        if survey is None or survey.get("status") == "open":
            return None
        return Case(
            customer_id=customer_id,
            campaign_id=_by_name(session, CampaignRow, CAMPAIGN_NAME) or "",
            request_id=_request_id(session, customer_id) or "",
            quote_id=quote["id"],
            order_id=order["id"],
            told_before=True,
        )


def tell(timeout: float = FLOW_TIMEOUT_SECONDS) -> Case:
    """Run the story on the loaded scenario with the flows embedded in this process.

    The flow engine is launched here when it is not running yet, and shut down again
    at the end; the simulated network of the story is installed for the run.
    """

    with session_scope(readonly=True) as session:
        customer_id = _customer_id(session)
    told = _told_before(customer_id)
    if told is not None:
        return told
    case = Case(customer_id=customer_id)
    bootstrap()  # the customer's acceptance wakes the post-ordering flow through the bus
    launched_here = not engine.is_running()
    use_network(network(customer_id))
    try:
        # The story drives detection and the QoS month itself; the schedules (alarm
        # correlation every 30 s ...) would only race it for the database (SQLite:
        # "database is locked") and make a run depend on the wall clock.
        engine.launch(schedules=False)
        _campaign(case)
        _request(case, timeout)
        _negotiate(case)
        _fulfilment(case, timeout)
    finally:
        if launched_here:
            engine.shutdown()
        use_network(None)
    return case


# ----- what the story shows ------------------------------------------------------------


@dataclass(frozen=True)
class SiteLeadTime:
    site: str
    planned_days: int
    actual_days: int
    late: bool
    special_build: bool
    attempts: int


@dataclass(frozen=True)
class FlowSteps:
    flow: str
    state: str
    steps: int
    automated: int


@dataclass
class Summary:
    """The figures the demonstration reports."""

    sites_requested: int = 0
    sites_qualified: int = 0
    special_build: list[str] = field(default_factory=list)
    unserviceable: list[tuple[str, str]] = field(default_factory=list)  # site, reason
    quote_version: str = ""
    quote_state: str = ""
    discount_percent: Decimal = Decimal(0)
    approved_by: str = ""
    order_state: str = ""
    sites_ordered: int = 0
    sites_active: int = 0
    late: list[str] = field(default_factory=list)
    jeopardy_notes: int = 0
    retried: list[str] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)
    products_active: int = 0
    lead_times: list[SiteLeadTime] = field(default_factory=list)
    flows: list[FlowSteps] = field(default_factory=list)
    messages_to_customer: int = 0
    marketing_messages: int = 0
    campaign_leads: int = 0
    customer_status: str = ""
    survey_answer: JsonDict = field(default_factory=dict)


def _characteristic(item: JsonDict, name: str) -> Any:
    for entry in (item.get("product") or {}).get("productCharacteristic", []) or []:
        if entry.get("name") == name:
            return entry.get("value")
    return None


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _lead_times(
    session: Session, order_id: str, names: dict[str, str], late: set[str], special: set[str]
) -> list[SiteLeadTime]:
    """Planned days (the network's lead time at the first service order) against actual
    days: the simulated days the network spent on each attempt (a failed one until it
    failed, the last one until the activation). Not the wall clock from the first
    submission: the moments a flow looked again and resubmitted would count, at 50
    simulated days a real second, and differ from run to run."""
    per_site: dict[str, list[tuple[JsonDict, datetime | None]]] = {}
    for row in session.scalars(
        select(NetworkServiceOrderRow).where(NetworkServiceOrderRow.name.like(f"{order_id}/%"))
    ):
        per_site.setdefault(str(row.body["simulation"]["siteId"]), []).append(
            (row.body, row.ready_at)
        )
    out = []
    for site_id, attempts in per_site.items():
        attempts.sort(key=lambda a: str(a[0]["externalId"]).rsplit("/", 1)[-1].zfill(4))
        orders = [body for body, _ in attempts]
        first, last = orders[0], orders[-1]
        if last.get("state") != "completed" or not last.get("completionDate"):
            continue
        seconds = sum(
            (
                (
                    _moment(body["completionDate"])
                    if body is last
                    else ready_at or _moment(body["simulation"]["submittedAt"])
                )
                - _moment(body["simulation"]["submittedAt"])
            ).total_seconds()
            for body, ready_at in attempts
        )
        out.append(
            SiteLeadTime(
                site=names.get(site_id, site_id),
                planned_days=int(first["simulation"]["leadTimeDays"]),
                actual_days=round(seconds / DAY_SECONDS),
                late=site_id in late,
                special_build=site_id in special,
                attempts=len(orders),
            )
        )
    return sorted(out, key=lambda t: t.site)


def summarize(case: Case) -> tuple[Summary, list[FlowTrace], list[FlowTrace]]:
    """The summary figures, the traces of the request's case and of the campaign."""
    summary = Summary()
    with session_scope(readonly=True) as session:
        names = {
            site_id: str(name)
            for site_id, name in session.execute(
                select(GeographicSiteRow.id, GeographicSiteRow.name).where(
                    GeographicSiteRow.owner_customer_id == case.customer_id
                )
            )
        }
        summary.sites_requested = len(names)
        feasibility = _feasibility(session, case.customer_id) or {}
        special: set[str] = set()
        for item in feasibility.get("productOfferingQualificationItem", []):
            site_id = item["product"]["place"][0]["id"]
            if item.get("qualificationItemResult") == "qualified":
                summary.sites_qualified += 1
                if _characteristic(item, "specialBuild"):
                    special.add(site_id)
            else:
                reason = (item.get("eligibilityUnavailabilityReason") or [{}])[0].get("label", "")
                summary.unserviceable.append((names.get(site_id, site_id), str(reason)))
        summary.special_build = sorted(names.get(s, s) for s in special)
        quote = _quote(session, case.customer_id) or {}
        summary.quote_version = str(quote.get("version", ""))
        summary.quote_state = str(quote.get("state", ""))
        summary.discount_percent = Decimal(str(quote.get("discountPercent", 0)))
        for authorization in quote.get("authorization", []) or []:
            summary.approved_by = ", ".join(a["name"] for a in authorization.get("approver", []))
        order = _order(session, case.customer_id, case.quote_id) or {}
        summary.order_state = str(order.get("state", ""))
        by_site: dict[str, list[JsonDict]] = {}
        for item in order.get("productOrderItem", []):
            site = site_of(item)
            if site is not None:
                by_site.setdefault(site, []).append(item)
        summary.sites_ordered = len(by_site)
        late: set[str] = set()
        for site, items in by_site.items():
            if all(i.get("state") == "completed" for i in items):
                summary.sites_active += 1
            if any(i.get("jeopardy") for i in items):
                late.add(site)
            if any(int((i.get("serviceOrder") or {}).get("attempt", 1)) > 1 for i in items):
                summary.retried.append(names.get(site, site))
            if any(i.get("state") == "failed" for i in items):
                summary.given_up.append(names.get(site, site))
        summary.late = sorted(names.get(s, s) for s in late)
        summary.retried.sort()
        summary.jeopardy_notes = sum(
            1 for n in order.get("note", []) or [] if str(n.get("text", "")).startswith("Jeopardy")
        )
        summary.products_active = len(
            session.scalars(
                select(ProductRow.id).where(
                    ProductRow.owner_customer_id == case.customer_id, ProductRow.status == "active"
                )
            ).all()
        )
        if order:
            summary.lead_times = _lead_times(session, order["id"], names, late, special)
        cases = {i for i in (case.request_id, case.quote_id, case.order_id, case.campaign_id) if i}
        messages = messages_about(
            session, case.customer_id, cases | surveys_of(session, case.customer_id, cases)
        )
        summary.messages_to_customer = len(messages)
        summary.marketing_messages = sum(1 for m in messages if _is_marketing(m))
        if case.campaign_id:
            results = campaign_results(session, MIA, case.campaign_id)
            summary.campaign_leads = int(results["leads"])
        summary.customer_status = str(
            session.scalar(select(CustomerRow.status).where(CustomerRow.id == case.customer_id))
        )
        survey = _survey(session, case.customer_id, case.order_id) if case.order_id else None
        summary.survey_answer = dict((survey or {}).get("surveyAnswer") or {})
        request_traces = flows_of_case(session, case.request_id) if case.request_id else []
        campaign_traces = flows_of_case(session, case.campaign_id) if case.campaign_id else []
    summary.flows = [
        FlowSteps(t.flow, t.state, len(t.lines), sum(1 for line in t.lines if line.automated))
        for t in request_traces + campaign_traces
    ]
    return summary, request_traces, campaign_traces


def messages_about(session: Session, customer_id: str, ids: set[str]) -> list[JsonDict]:
    """The customer's messages that name one of ``ids`` (a case, a ticket, a survey):
    what one part of the story told the customer, the same on every run, whatever the
    other parts sent before or since."""
    return [
        body
        for body in session.scalars(
            select(CommunicationMessageRow.body).where(
                CommunicationMessageRow.owner_customer_id == customer_id
            )
        )
        if any(e.get("id") in ids for e in body.get("relatedEntity", []) or [])
    ]


def surveys_of(session: Session, customer_id: str, ids: set[str]) -> set[str]:
    """The ids of the customer's satisfaction surveys about one of ``ids``."""
    return {
        row.id
        for row in session.scalars(
            select(PartyInteractionRow).where(
                PartyInteractionRow.owner_customer_id == customer_id,
                PartyInteractionRow.at_type == SURVEY_TYPE,
            )
        )
        if any((i.get("item") or {}).get("id") in ids for i in row.body["interactionItem"])
    }


def _is_marketing(message: JsonDict) -> bool:
    return any(
        c.get("name") == "category" and c.get("value") == "marketing"
        for c in message.get("characteristic", []) or []
    )


def print_summary(console: Console, summary: Summary, case: Case) -> None:
    table = Table(title="BMW Extranet: the story in figures", title_justify="left")
    table.add_column("What")
    table.add_column("Figure", justify="right")
    table.add_column("Detail")
    table.add_row(
        "Sites requested", str(summary.sites_requested), "headquarters, dealers, suppliers"
    )
    table.add_row(
        "Feasible (3.5.1)",
        str(summary.sites_qualified),
        f"{len(summary.special_build)} need a special build: " + ", ".join(summary.special_build),
    )
    for site, reason in summary.unserviceable:
        table.add_row("Cannot be served", "1", f"{site}: {reason} (left out of the quote)")
    table.add_row(
        "Quote (3.4.3)",
        f"v{summary.quote_version}",
        f"{summary.quote_state}, {summary.discount_percent} % discount approved by "
        f"{summary.approved_by or 'nobody'}",
    )
    table.add_row(
        "Sites ordered (3.5.3)", str(summary.sites_ordered), f"order {summary.order_state}"
    )
    table.add_row(
        "Sites active (3.5.5)",
        str(summary.sites_active),
        f"{summary.products_active} products active in the inventory",
    )
    table.add_row(
        "Late, jeopardy announced (3.5.4)",
        str(len(summary.late)),
        ", ".join(summary.late) + f" ({summary.jeopardy_notes} jeopardy notes on the order)",
    )
    table.add_row(
        "Failed and retried",
        str(len(summary.retried)),
        ", ".join(summary.retried)
        + (f"; given up: {', '.join(summary.given_up)}" if summary.given_up else ""),
    )
    actual = [t.actual_days for t in summary.lead_times]
    planned = [t.planned_days for t in summary.lead_times]
    if actual:
        table.add_row(
            "Lead time planned, days",
            f"{statistics.median(planned):g}",
            f"min {min(planned)}, median {statistics.median(planned):g}, max {max(planned)}",
        )
        table.add_row(
            "Lead time actual, days",
            f"{statistics.median(actual):g}",
            f"min {min(actual)}, median {statistics.median(actual):g}, max {max(actual)}",
        )
    for lead in summary.lead_times:
        if lead.late or lead.attempts > 1:
            why = "late" if lead.late else f"failed, {lead.attempts} attempts"
            table.add_row(f"  {lead.site}", f"{lead.planned_days} → {lead.actual_days}", why)
    for flow in summary.flows:
        table.add_row(
            f"Flow {flow.flow}",
            f"{flow.steps} steps",
            f"{flow.automated} without a person, {flow.steps - flow.automated} by people; "
            f"{flow.state}",
        )
    table.add_row(
        "Messages to BMW",
        str(summary.messages_to_customer),
        f"{summary.marketing_messages} marketing, the rest about the request and the order",
    )
    table.add_row("Campaign leads (3.3.2)", str(summary.campaign_leads), CAMPAIGN_NAME)
    table.add_row(
        "BMW AG (3.9.1)", summary.customer_status, "prospect until the first completed order"
    )
    answer = summary.survey_answer
    table.add_row(
        "Survey (3.9.5)",
        f"CSAT {answer.get('csat', '-')}, NPS {answer.get('nps', '-')}",
        f"{answer.get('answeredBy', 'not answered')}: {answer.get('comment', '')}",
    )
    console.print(table)
    if case.told_before:
        console.print("The story had been told on this database before; nothing was changed.")
