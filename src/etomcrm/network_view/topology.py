"""The simulated network's shape: points of presence and customers' access links.

- The provider's core has points of presence (PoPs) per German state: one, or two in
  the large states (:data:`POP_CITIES`). A PoP's id comes from its region and number
  (``pop-by-1``), so every installation and every run names the same PoP the same.
- A customer's site is reached over one access link per active TMF637 product with a
  site (``product.place[0].id``). The site's region is its address's
  ``stateOrProvince`` (a name or a code), or else its postcode's area
  (:func:`region_of`); in a state with two PoPs, the seeded hash of the site (as the
  network knows it: code, name, address; not its id, new on every run) picks one, so
  the same seed always hangs a site on the same PoP.
- A link's id comes from its product (``link-<product id>``) and its bandwidth from
  the product's offering (``prodSpecCharValueUse`` ``bandwidth``), else the product's
  own ``bandwidthMbit`` characteristic, else :data:`DEFAULT_BANDWIDTH_MBITS`.
- :func:`build_topology` creates what is missing and nothing else, so it may run after
  every completed order. :func:`topology_of` is the customer network view's graph.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.catalog.models import ProductOfferingRow
from etomcrm.config import get_settings
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import GeographicSiteRow
from etomcrm.network.identity import site_identity
from etomcrm.network.models import NetworkLinkRow, NetworkPopRow
from etomcrm.order_handling.models import ProductRow

DEFAULT_BANDWIDTH_MBITS = 10
UP, DOWN, DEGRADED = "up", "down", "degraded"

# Where the PoPs of each German state stand; the large states have two.
POP_CITIES: dict[str, tuple[str, ...]] = {
    "BW": ("Stuttgart", "Karlsruhe"),
    "BY": ("München", "Nürnberg"),
    "BE": ("Berlin",),
    "BB": ("Potsdam",),
    "HB": ("Bremen",),
    "HH": ("Hamburg",),
    "HE": ("Frankfurt am Main",),
    "MV": ("Rostock",),
    "NI": ("Hannover",),
    "NW": ("Düsseldorf", "Köln"),
    "RP": ("Mainz",),
    "SL": ("Saarbrücken",),
    "SN": ("Leipzig",),
    "ST": ("Magdeburg",),
    "SH": ("Kiel",),
    "TH": ("Erfurt",),
}

_STATE_NAMES: dict[str, str] = {
    "baden-württemberg": "BW",
    "baden-wuerttemberg": "BW",
    "bayern": "BY",
    "bavaria": "BY",
    "berlin": "BE",
    "brandenburg": "BB",
    "bremen": "HB",
    "hamburg": "HH",
    "hessen": "HE",
    "hesse": "HE",
    "mecklenburg-vorpommern": "MV",
    "niedersachsen": "NI",
    "lower saxony": "NI",
    "nordrhein-westfalen": "NW",
    "north rhine-westphalia": "NW",
    "rheinland-pfalz": "RP",
    "rhineland-palatinate": "RP",
    "saarland": "SL",
    "sachsen": "SN",
    "saxony": "SN",
    "sachsen-anhalt": "ST",
    "saxony-anhalt": "ST",
    "schleswig-holstein": "SH",
    "thüringen": "TH",
    "thueringen": "TH",
    "thuringia": "TH",
}

# The state most of a two-digit postcode area lies in. Postcode areas cross state
# borders here and there; this is only the fallback for an address without its state.
_POSTCODE_AREAS: tuple[tuple[int, int, str], ...] = (
    (1, 2, "SN"),
    (3, 3, "BB"),
    (4, 4, "SN"),
    (6, 6, "ST"),
    (7, 7, "TH"),
    (8, 9, "SN"),
    (10, 13, "BE"),
    (14, 16, "BB"),
    (17, 19, "MV"),
    (20, 22, "HH"),
    (23, 25, "SH"),
    (26, 27, "NI"),
    (28, 28, "HB"),
    (29, 31, "NI"),
    (32, 33, "NW"),
    (34, 36, "HE"),
    (37, 38, "NI"),
    (39, 39, "ST"),
    (40, 48, "NW"),
    (49, 49, "NI"),
    (50, 53, "NW"),
    (54, 56, "RP"),
    (57, 59, "NW"),
    (60, 65, "HE"),
    (66, 66, "SL"),
    (67, 67, "RP"),
    (68, 79, "BW"),
    (80, 87, "BY"),
    (88, 89, "BW"),
    (90, 97, "BY"),
    (98, 99, "TH"),
)


def region_of(place: JsonDict) -> str:
    """The German state code (``BY``) of an address: its ``stateOrProvince`` as a code or
    a name, else its postcode's area; ``BY`` is not guessed, an unknown place is ``DE``."""
    state = str(place.get("stateOrProvince") or "").strip()
    code = state.upper().removeprefix("DE-")
    if code in POP_CITIES:
        return code
    if state.casefold() in _STATE_NAMES:
        return _STATE_NAMES[state.casefold()]
    postcode = str(place.get("postcode") or "").strip()
    if len(postcode) >= 2 and postcode[:2].isdigit():
        area = int(postcode[:2])
        for low, high, region in _POSTCODE_AREAS:
            if low <= area <= high:
                return region
    return "DE"


def pop_id_for(region: str, number: int) -> str:
    return f"pop-{region.lower()}-{number}"


def link_id_for(product_id: str) -> str:
    return f"link-{product_id}"[:64]


def _draw(seed: int, purpose: str, identity: str) -> int:
    digest = hashlib.sha256(f"{seed}|{purpose}|{identity}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _pops_of(region: str) -> list[tuple[str, str]]:
    """(id, name) of the region's PoPs; a place outside any known state hangs on a
    national PoP in Frankfurt, where the German exchanges are."""
    cities = POP_CITIES.get(region, ("Frankfurt am Main (national)",))
    return [(pop_id_for(region, n), f"PoP {city}") for n, city in enumerate(cities, start=1)]


def _first_place(body: JsonDict) -> JsonDict:
    for place in body.get("place", []) or []:
        if isinstance(place, dict):
            return place
    return {}


def offering_bandwidth(session: Session, offering_id: str | None) -> int | None:
    """The offering's ``bandwidth`` in Mbit/s, as the catalog describes it."""
    row = session.get(ProductOfferingRow, offering_id) if offering_id else None
    if row is None:
        return None
    for use in row.body.get("prodSpecCharValueUse", []) or []:
        if isinstance(use, dict) and use.get("name") == "bandwidth":
            for value in use.get("productSpecCharacteristicValue", []) or []:
                if isinstance(value, dict) and isinstance(value.get("value"), int | float):
                    return int(value["value"])
    return None


def _product_bandwidth(session: Session, product: JsonDict) -> int:
    offering = product.get("productOffering") or {}
    from_offering = offering_bandwidth(session, offering.get("id"))
    if from_offering:
        return from_offering
    for characteristic in product.get("productCharacteristic", []) or []:
        if (
            isinstance(characteristic, dict)
            and characteristic.get("name") in ("bandwidthMbit", "bandwidth")
            and isinstance(characteristic.get("value"), int | float)
        ):
            return int(characteristic["value"])
    return DEFAULT_BANDWIDTH_MBITS


@dataclass
class Topology:
    """A customer's part of the network after :func:`build_topology`."""

    customer_id: str
    pops: list[NetworkPopRow] = field(default_factory=list)
    links: list[NetworkLinkRow] = field(default_factory=list)
    created_pops: int = 0
    created_links: int = 0


def build_topology(session: Session, customer_id: str, *, seed: int | None = None) -> Topology:
    """The customer's access links and the PoPs they end at, created where missing.

    Only active products with a site get a link, one per site (the product with the
    most bandwidth there); a product without a site has nothing to connect. Running it
    again creates nothing.
    """
    seed = get_settings().network_seed if seed is None else seed
    products = session.scalars(
        select(ProductRow)
        .where(ProductRow.owner_customer_id == customer_id, ProductRow.status == "active")
        .order_by(ProductRow.id)
    ).all()
    # One access link per site: of the products at a site (access, router,
    # installation, SLA ...) the one with the most bandwidth is what the link carries.
    at_site: dict[str, tuple[int, ProductRow]] = {}
    for product in products:
        site_id = _first_place(product.body).get("id")
        if not site_id:
            continue
        bandwidth = _product_bandwidth(session, product.body)
        best = at_site.get(str(site_id))
        if best is None or bandwidth > best[0]:
            at_site[str(site_id)] = (bandwidth, product)
    wanted: list[tuple[ProductRow, str]] = [(p, s) for s, (_, p) in sorted(at_site.items())]
    sites = {
        row.id: row
        for row in session.scalars(
            select(GeographicSiteRow).where(GeographicSiteRow.id.in_({s for _, s in wanted}))
        )
    }
    topology = Topology(customer_id)
    existing_links = {
        row.id: row
        for row in session.scalars(
            select(NetworkLinkRow).where(NetworkLinkRow.customer_id == customer_id)
        )
    }
    pops: dict[str, NetworkPopRow] = {}
    for product, site_id in wanted:
        link_id = link_id_for(product.id)
        link = existing_links.get(link_id)
        if link is None:
            site = sites.get(site_id)
            region = region_of(_first_place(site.body) if site is not None else {})
            candidates = _pops_of(region)
            # By the site as the network knows it: its id is new on every run.
            known_as = site_identity(site.body) if site is not None else site_id
            pop_id, pop_name = candidates[_draw(seed, "pop", known_as) % len(candidates)]
            if pop_id not in pops:
                pop = session.get(NetworkPopRow, pop_id)
                if pop is None:
                    pop = NetworkPopRow(id=pop_id, name=pop_name, region=region, status=UP)
                    session.add(pop)
                    topology.created_pops += 1
                pops[pop_id] = pop
            link = NetworkLinkRow(
                id=link_id,
                customer_id=customer_id,
                site_id=site_id,
                pop_id=pop_id,
                product_id=product.id,
                bandwidth_mbits=_product_bandwidth(session, product.body),
                status=UP,
            )
            session.add(link)
            existing_links[link_id] = link
            topology.created_links += 1
        topology.links.append(link)
    missing = {link.pop_id for link in topology.links} - set(pops)
    if missing:
        for pop in session.scalars(select(NetworkPopRow).where(NetworkPopRow.id.in_(missing))):
            pops[pop.id] = pop
    topology.pops = sorted(pops.values(), key=lambda p: p.id)
    session.flush()
    return topology


def link_status(link: NetworkLinkRow, pop: NetworkPopRow | None) -> str:
    """A link is down while its PoP is, whatever the link itself reports."""
    if pop is not None and pop.status == DOWN:
        return DOWN
    return link.status


def _site_status(statuses: list[str]) -> str:
    if all(s == UP for s in statuses):
        return UP
    if all(s == DOWN for s in statuses):
        return DOWN
    return DEGRADED


def topology_of(session: Session, customer_id: str) -> JsonDict:
    """The customer network view: its sites, links and PoPs as a graph (nodes and
    edges) with each one's current status; only this customer's links and sites, and
    of the PoPs only the ones its links end at."""
    links = session.scalars(
        select(NetworkLinkRow)
        .where(NetworkLinkRow.customer_id == customer_id)
        .order_by(NetworkLinkRow.site_id, NetworkLinkRow.id)
    ).all()
    pops = {
        row.id: row
        for row in session.scalars(
            select(NetworkPopRow).where(NetworkPopRow.id.in_({link.pop_id for link in links}))
        )
    }
    sites = {
        row.id: row
        for row in session.scalars(
            select(GeographicSiteRow).where(
                GeographicSiteRow.id.in_({link.site_id for link in links})
            )
        )
    }
    link_views: list[JsonDict] = []
    by_site: dict[str, list[str]] = {}
    for link in links:
        status = link_status(link, pops.get(link.pop_id))
        by_site.setdefault(link.site_id, []).append(status)
        link_views.append(
            {
                "id": link.id,
                "siteId": link.site_id,
                "popId": link.pop_id,
                "productId": link.product_id,
                "bandwidthMbits": link.bandwidth_mbits,
                "status": status,
            }
        )
    site_views: list[JsonDict] = []
    for site_id, statuses in by_site.items():
        site = sites.get(site_id)
        body: dict[str, Any] = site.body if site is not None else {}
        site_views.append(
            {
                "id": site_id,
                "name": body.get("name"),
                "region": region_of(_first_place(body)),
                "status": _site_status(statuses),
            }
        )
    pop_views = [
        {"id": pop.id, "name": pop.name, "region": pop.region, "status": pop.status}
        for pop in sorted(pops.values(), key=lambda p: p.id)
    ]
    nodes = [{"id": s["id"], "kind": "site", "status": s["status"]} for s in site_views] + [
        {"id": p["id"], "kind": "pop", "status": p["status"]} for p in pop_views
    ]
    edges = [
        {"id": v["id"], "from": v["siteId"], "to": v["popId"], "status": v["status"]}
        for v in link_views
    ]
    return {
        "customerId": customer_id,
        "sites": site_views,
        "links": link_views,
        "pops": pop_views,
        "nodes": nodes,
        "edges": edges,
    }
