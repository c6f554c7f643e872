"""What each page shows, read through the same service layer as the API (one function
per page; the handlers in :mod:`etomcrm.pages.routes` only call them and render).

Every read is scoped as in the API: a customer's user asking about another customer,
or about a site that is not its customer's, gets the same 404 as for nothing at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from etomcrm.billing.api_kinds import CUSTOMER_BILL_KIND
from etomcrm.core import resources
from etomcrm.core.errors import Forbidden, NotFound
from etomcrm.core.resources import READ, ResourceKind
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import GeographicSiteRow
from etomcrm.customer_interface.service import CUSTOMER_KIND, GEOGRAPHIC_SITE_KIND
from etomcrm.network.models import NetworkLinkRow, NetworkMeasurementRow
from etomcrm.network_view import service as network_view
from etomcrm.network_view.topology import topology_of
from etomcrm.order_handling.service import PRODUCT_ORDER_KIND
from etomcrm.pages import drawing
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.problem_handling.tickets import TROUBLE_TICKET_KIND
from etomcrm.security.service import Principal
from etomcrm.selling.quotes import QUOTE_KIND


@dataclass(frozen=True)
class NetworkPage:
    """The customer network page (seed 5.1): topology drawn, sites, open problems."""

    customer_id: str
    customer_name: str
    period: str
    map: drawing.TopologyDrawing
    sites: list[JsonDict]
    open_problems: list[JsonDict]
    open_problem_count: int
    sla_standing: list[JsonDict]


def _customer_name(body: JsonDict) -> str:
    return str(body.get("name") or body.get("id") or "")


def _headquarters(session: Session, customer_id: str) -> tuple[set[str], dict[str, str]]:
    """The customer's hub sites (the ones other sites ``connectsTo``) and every site's
    code, from the site documents in one query."""
    hubs: set[str] = set()
    codes: dict[str, str] = {}
    for site_id, body in session.execute(
        select(GeographicSiteRow.id, GeographicSiteRow.body).where(
            GeographicSiteRow.owner_customer_id == customer_id
        )
    ):
        codes[site_id] = str(body.get("code") or "")
        for relation in body.get("siteRelationship", []) or []:
            if isinstance(relation, dict) and relation.get("relationshipType") == "connectsTo":
                hubs.add(str(relation.get("id")))
    return hubs, codes


# The open problems listed under the map: the oldest ones, with the count of all.
PROBLEM_LIMIT = 20


def network_page(
    session: Session, principal: Principal, customer_id: str, *, now: datetime
) -> NetworkPage:
    """The topology with the current status of each element, open problems and this
    month's SLA standing, in a bounded number of queries and rows whatever the number
    of sites and tickets: the oldest :data:`PROBLEM_LIMIT` open problems are listed with
    the count of all, and every site with one is marked on the map."""
    # The customer read through its kind is the scope check (another customer's: 404).
    customer, _ = resources.get(session, CUSTOMER_KIND, principal, customer_id)
    period = now.strftime("%Y-%m")
    hubs, codes = _headquarters(session, customer_id)
    topology = topology_of(session, customer_id)
    site_of_product = {
        link["productId"]: link["siteId"] for link in topology["links"] if link["productId"]
    }
    problems, problem_count = _open_problems(session, customer_id, site_of_product)
    problem_sites = _sites_with_problems(session, customer_id, site_of_product)
    sites = sorted(
        (
            {
                **site,
                "code": codes.get(site["id"], ""),
                "headquarters": site["id"] in hubs,
                "problem": site["id"] in problem_sites,
            }
            for site in topology["sites"]
        ),
        key=lambda s: (not s["headquarters"], str(s.get("name") or s["id"])),
    )
    return NetworkPage(
        customer_id=customer_id,
        customer_name=_customer_name(customer),
        period=period,
        map=drawing.topology(sites, topology["links"], topology["pops"]),
        sites=sites,
        open_problems=problems,
        open_problem_count=problem_count,
        sla_standing=network_view.sla_standing(session, customer_id, period),
    )


def _open(customer_id: str) -> list[Any]:
    return [
        TroubleTicketRow.owner_customer_id == customer_id,
        TroubleTicketRow.status.not_in(network_view.CLOSED_TICKETS),
    ]


def _sites_of(body: JsonDict, site_of_product: dict[str, str]) -> list[str]:
    """The sites a ticket is about: it names them, or the affected products (TMF621
    ``relatedEntity``), and each product's access link its site."""
    sites: list[str] = []
    for entity in body.get("relatedEntity") or []:
        if not isinstance(entity, dict):
            continue
        if entity.get("@referredType") == "GeographicSite":
            # A ticket opened for a site (the portal's form) names the site itself.
            site = entity.get("id")
        else:
            site = site_of_product.get(str(entity.get("id")))
        if isinstance(site, str) and site not in sites:
            sites.append(site)
    return sites


def _open_problems(
    session: Session, customer_id: str, site_of_product: dict[str, str]
) -> tuple[list[JsonDict], int]:
    """The oldest open tickets (as the customer network view lists them) with their
    sites, and how many are open: one query, the count a window count."""
    rows = session.execute(
        select(TroubleTicketRow.body, func.count().over())
        .where(*_open(customer_id))
        .order_by(TroubleTicketRow.created_at, TroubleTicketRow.id)
        .limit(PROBLEM_LIMIT)
    ).all()
    problems = [
        {
            "id": body["id"],
            "name": body.get("name", ""),
            "status": body.get("status"),
            "priority": body.get("priority"),
            "expectedResolutionDate": body.get("expectedResolutionDate"),
            "sites": _sites_of(body, site_of_product),
        }
        for body, _ in rows
    ]
    return problems, int(rows[0][1]) if rows else 0


def _sites_with_problems(
    session: Session, customer_id: str, site_of_product: dict[str, str]
) -> set[str]:
    """Every site an open ticket is about, from the distinct ``relatedEntity`` lists of
    the open tickets (one query): however many tickets are open, a customer's tickets
    name a few sites and products, so few distinct lists come back."""
    entities = TroubleTicketRow.body["relatedEntity"].as_string()
    troubled: set[str] = set()
    for (text,) in session.execute(select(entities).where(*_open(customer_id)).distinct()):
        if text:
            troubled.update(_sites_of({"relatedEntity": json.loads(text)}, site_of_product))
    return troubled


@dataclass(frozen=True)
class Availability:
    """A site's availability this month: measured so far, and the SLA's target."""

    measured_percent: Decimal | None
    target_percent: Decimal | None
    met: bool | None
    final: bool = False


@dataclass(frozen=True)
class SitePage:
    customer_id: str
    customer_name: str
    site_id: str
    site_name: str
    address: str
    period: str
    links: list[JsonDict]
    charts: dict[str, drawing.BarChart] = field(default_factory=dict)
    availability: Availability | None = None


# The three views of a site's traffic: the last day by hour, the last month by day,
# the last year by month.
TRAFFIC_WINDOWS: tuple[tuple[str, timedelta], ...] = (
    ("hour", timedelta(hours=24)),
    ("day", timedelta(days=31)),
    ("month", timedelta(days=366)),
)


def _belongs_to(body: JsonDict, customer_id: str) -> bool:
    return any(
        isinstance(party, dict) and party.get("id") == customer_id
        for party in body.get("relatedParty", []) or []
    )


def _address(body: JsonDict) -> str:
    for place in body.get("place", []) or []:
        if isinstance(place, dict):
            street = place.get("street1") or place.get("streetName") or ""
            town = " ".join(str(p) for p in (place.get("postcode"), place.get("city")) if p)
            return ", ".join(str(p) for p in (street, town) if p)
    return ""


def site_page(
    session: Session, principal: Principal, customer_id: str, site_id: str, *, now: datetime
) -> SitePage:
    """A site's traffic in and out by hour, day and month, and its availability this
    month against its SLA."""
    customer, _ = resources.get(session, CUSTOMER_KIND, principal, customer_id)
    site, _ = resources.get(session, GEOGRAPHIC_SITE_KIND, principal, site_id)
    if not _belongs_to(site, customer_id):
        # A staff user typing another customer's site under this customer: nothing here.
        raise NotFound(f"no geographicSite with id {site_id}")
    links = session.scalars(
        select(NetworkLinkRow)
        .where(NetworkLinkRow.customer_id == customer_id, NetworkLinkRow.site_id == site_id)
        .order_by(NetworkLinkRow.id)
    ).all()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    charts: dict[str, drawing.BarChart] = {}
    for granularity, span in TRAFFIC_WINDOWS:
        volume = network_view.traffic(
            session,
            principal,
            customer_id,
            granularity=granularity,
            start=end - span,
            end=end,
            site_id=site_id,
        )
        series = volume["sites"][0]["volume"] if volume["sites"] else []
        charts[granularity] = drawing.bars(
            drawing.periods(granularity, end - span, end), series, granularity
        )
    period = now.strftime("%Y-%m")
    return SitePage(
        customer_id=customer_id,
        customer_name=_customer_name(customer),
        site_id=site_id,
        site_name=str(site.get("name") or site_id),
        address=_address(site),
        period=period,
        links=[
            {
                "id": link.id,
                "bandwidthMbits": link.bandwidth_mbits,
                "status": link.status,
                "popId": link.pop_id,
            }
            for link in links
        ],
        charts=charts,
        availability=_availability(
            session,
            customer_id,
            [link.product_id for link in links if link.product_id],
            period,
            now,
        ),
    )


def _availability(
    session: Session, customer_id: str, product_ids: list[str], period: str, now: datetime
) -> Availability | None:
    """The SLA assessment of the site's products this month when there is one (3.7.1),
    else what the network measured since the month began, without a target."""
    if not product_ids:
        return None
    standing = [
        row
        for row in network_view.sla_standing(session, customer_id, period)
        if row["productId"] in product_ids and row["metric"] == "availability"
    ]
    if standing:
        worst = min(standing, key=lambda row: Decimal(row["measured"]))
        return Availability(
            measured_percent=Decimal(worst["measured"]),
            target_percent=Decimal(worst["target"]),
            met=bool(worst["met"]),
            final=bool(worst["final"]),
        )
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    weighted, seconds = session.execute(
        select(
            func.sum(NetworkMeasurementRow.availability * NetworkMeasurementRow.interval_seconds),
            func.sum(NetworkMeasurementRow.interval_seconds),
        )
        .join(NetworkLinkRow, NetworkLinkRow.id == NetworkMeasurementRow.link_id)
        .where(
            NetworkLinkRow.customer_id == customer_id,
            NetworkLinkRow.product_id.in_(product_ids),
            NetworkMeasurementRow.at >= month_start,
            NetworkMeasurementRow.at < now + timedelta(seconds=1),
        )
    ).one()
    if not seconds:
        return Availability(measured_percent=None, target_percent=None, met=None)
    measured = (Decimal(str(weighted)) / Decimal(str(seconds)) * 100).quantize(Decimal("0.01"))
    return Availability(measured_percent=measured, target_percent=None, met=None)


def staff_home(principal: Principal) -> dict[str, Any]:
    """What the staff landing page greets with (the work lists are issue 11's next part)."""
    return {"name": principal.name, "role": principal.role.value}


# What the staff search looks in, in the order the answer lists them.
SEARCHED: tuple[tuple[str, ResourceKind], ...] = (
    ("customer", CUSTOMER_KIND),
    ("site", GEOGRAPHIC_SITE_KIND),
    ("order", PRODUCT_ORDER_KIND),
    ("ticket", TROUBLE_TICKET_KIND),
    ("bill", CUSTOMER_BILL_KIND),
    ("quote", QUOTE_KIND),
)
SEARCH_LIMIT = 10
SEARCH_MIN, SEARCH_MAX = 2, 100


@dataclass(frozen=True)
class Found:
    kind: str
    id: str
    name: str
    status: str
    customer_id: str | None


@dataclass(frozen=True)
class SearchResults:
    text: str
    found: dict[str, list[Found]] = field(default_factory=dict)
    # The kinds this role may not read: not searched, and said so.
    not_searched: list[str] = field(default_factory=list)
    problem: str | None = None


def search(session: Session, principal: Principal, text: str) -> SearchResults:
    """Customers, sites, orders, tickets, bills and quotes whose id is ``text`` or whose name
    contains it, at most :data:`SEARCH_LIMIT` of each, as the principal may read them
    (a role without read access to a kind finds none of it, a customer only its own):
    one query per kind, whatever the number of rows."""
    text = text.strip()
    if not SEARCH_MIN <= len(text) <= SEARCH_MAX:
        return SearchResults(text, problem="length")
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found: dict[str, list[Found]] = {}
    not_searched: list[str] = []
    for label, kind in SEARCHED:
        try:
            kind.authorize(principal, READ)
        except Forbidden:
            not_searched.append(label)
            continue
        row = kind.row
        stmt = kind.scoped(
            principal,
            select(row.id, row.name, row.status, row.owner_customer_id)
            .where(or_(row.id == text, row.name.ilike(pattern, escape="\\")))
            .order_by(row.name, row.id)
            .limit(SEARCH_LIMIT),
        )
        found[label] = [
            Found(
                label,
                resource_id,
                name or "",
                status or "",
                resource_id if label == "customer" else owner,
            )
            for resource_id, name, status, owner in session.execute(stmt)
        ]
    return SearchResults(text, found, not_searched)
