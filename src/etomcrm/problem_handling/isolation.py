"""3.6.1 Isolate the problem behind a customer's trouble ticket, in the transaction that
opens it.

A ticket names what it is about in ``relatedEntity``: a site (``@referredType``
``GeographicSite``) or a product (``Product``; its site is the product's
``place``). Both must be the ticket's customer's own. Tickets about a bill
(``ticketType`` billing) and tickets that already name their service problem or SLA
violation (opened by correlation or by SLA management) are left as they are.

1. An open service problem covers the site (its key is the site's access link, the
   link's point of presence, or one of the site's products): the ticket is linked to
   it (``relatedEntity`` role ``cause``, a note "linked to service problem X: cause
   known") and takes over its ``expectedResolutionDate`` (the network's estimate);
   the problem lists the ticket in its ``troubleTicket``.
2. Otherwise the network is asked for the state of the site's access links
   (:meth:`etomcrm.network.port.NetworkPort.link_status`); the worst answer is written
   on the ticket as ``diagnosis`` (``linkStatus`` up / degraded / down / unknown,
   ``checkedAt``, ``detail``, ``accessLink``, ``site``) and as a note. A link down or
   degraded opens a service problem for its fault (the link, or the point of presence
   when that is down), reported to the network side at once (3.6.2), and the ticket
   is linked to it as in 1.; the problem's flow is started by the
   :class:`~etomcrm.problem_handling.events.ServiceProblemRaisedForTicket` event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.core import resources
from etomcrm.core.bus import record
from etomcrm.core.clock import iso
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import GeographicSiteRow
from etomcrm.network.models import NetworkLinkRow
from etomcrm.network.port import LinkStatus, get_network
from etomcrm.order_handling.models import ProductRow
from etomcrm.problem_handling.events import ServiceProblemRaisedForTicket
from etomcrm.problem_handling.models import ServiceProblemRow
from etomcrm.problem_handling.service import (
    OPEN_PROBLEM_STATES,
    SERVICE_PROBLEM_KIND,
    report_problem,
)
from etomcrm.security.service import SYSTEM

NOT_ISOLATED_TYPES = frozenset({"billing", "slaViolation"})
KNOWN_CAUSE_TYPES = frozenset({"ServiceProblem", "SlaViolation"})
SEVERITY = {"unknown": 0, "up": 1, "degraded": 2, "down": 3}


def _named(ticket: JsonDict, referred_type: str) -> list[str]:
    return [
        str(e["id"])
        for e in ticket.get("relatedEntity") or []
        if isinstance(e, dict) and e.get("@referredType") == referred_type and e.get("id")
    ]


def _note(text: str, now: datetime) -> JsonDict:
    return {"author": "etomcrm", "date": iso(now), "text": text}


def _sites_of(
    session: Session, customer_id: str, site_ids: Sequence[str], product_ids: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The sites the ticket is about (named, or where its products are) and the products
    at them; refuses what is not the customer's."""
    sites = set(site_ids)
    if site_ids:
        own = set(
            session.scalars(
                select(GeographicSiteRow.id).where(
                    GeographicSiteRow.id.in_(site_ids),
                    GeographicSiteRow.owner_customer_id == customer_id,
                )
            )
        )
        if missing := sorted(set(site_ids) - own):
            raise InvalidRequest(
                f"relatedEntity names site(s) {', '.join(missing)}, which are not sites of "
                f"customer {customer_id}; name the customer's own sites (GET geographicSite)"
            )
    if product_ids:
        found = {
            row.id: row
            for row in session.scalars(select(ProductRow).where(ProductRow.id.in_(product_ids)))
        }
        missing = sorted(
            p
            for p in set(product_ids)
            if p not in found
            or not _belongs(found[p].owner_customer_id, found[p].body, customer_id)
        )
        if missing:
            raise InvalidRequest(
                f"relatedEntity names product(s) {', '.join(missing)}, which are not products "
                f"of customer {customer_id}; name the customer's own products (GET product)"
            )
        for row in found.values():
            sites.update(
                str(place["id"])
                for place in row.body.get("place") or []
                if isinstance(place, dict) and place.get("id")
            )
    return sorted(sites), list(product_ids)


def _belongs(owner: str | None, body: JsonDict, customer_id: str) -> bool:
    if owner == customer_id:
        return True
    return any(
        isinstance(p, dict) and p.get("id") == customer_id for p in body.get("relatedParty") or []
    )


def isolate_problem(session: Session, ticket: JsonDict, customer_id: str, now: datetime) -> None:
    """3.6.1 Isolate Customer Problem (eTOM 1.1.1.6.1): link a customer's new ticket to
    the open service problem that covers its site, or diagnose the site's access against
    the network and open a service problem when it is down or degraded (see the module
    docstring). Writes on ``ticket`` before it is stored; same transaction."""
    if ticket.get("ticketType") in NOT_ISOLATED_TYPES or any(
        _named(ticket, kind) for kind in KNOWN_CAUSE_TYPES
    ):
        return
    named_sites, named_products = _named(ticket, "GeographicSite"), _named(ticket, "Product")
    if not named_sites and not named_products:
        return
    sites, products = _sites_of(session, customer_id, named_sites, named_products)
    links = list(
        session.scalars(
            select(NetworkLinkRow)
            .where(NetworkLinkRow.customer_id == customer_id, NetworkLinkRow.site_id.in_(sites))
            .order_by(NetworkLinkRow.id)
        )
    )
    keys = {f"link:{link.id}" for link in links} | {f"pop:{link.pop_id}" for link in links}
    keys |= {f"service:{p}" for p in [*products, *(link.product_id for link in links)] if p}
    covering = session.scalar(
        select(ServiceProblemRow.body)
        .where(
            ServiceProblemRow.correlation_key.in_(keys),
            ServiceProblemRow.status.in_(OPEN_PROBLEM_STATES),
        )
        .order_by(ServiceProblemRow.created_at, ServiceProblemRow.id)
        .limit(1)
    )
    if covering is not None:
        _link(
            ticket,
            covering,
            now,
            f"Linked to service problem {covering['id']}: cause known "
            f"({covering.get('description')}).",
        )
        return
    network = get_network()
    answers = [answer for site in sites for answer in network.link_status(session, site_id=site)]
    if not answers:
        ticket["diagnosis"] = {
            "linkStatus": "unknown",
            "checkedAt": iso(now),
            "detail": f"the network knows no access link at site(s) {', '.join(sites)}",
        }
        _add_note(ticket, f"Network diagnosis: {ticket['diagnosis']['detail']}.", now)
        return
    worst = max(answers, key=lambda a: SEVERITY[a.state])
    ticket["diagnosis"] = worst.as_tmf()
    _add_note(ticket, f"Network diagnosis at {iso(worst.checked_at)}: {worst.detail}.", now)
    if worst.state not in ("down", "degraded") or worst.fault is None:
        return
    problem = _open_problem(session, worst, customer_id, ticket)
    affected = sorted({link.product_id for link in links if link.product_id} | set(products))
    problem = report_problem(session, problem, affected, iso(now))
    record(session, ServiceProblemRaisedForTicket(str(problem["id"]), str(ticket["id"])))
    _link(
        ticket,
        problem,
        now,
        f"Linked to service problem {problem['id']}, raised for this ticket: {worst.detail}.",
    )


def _open_problem(
    session: Session, status: LinkStatus, customer_id: str, ticket: JsonDict
) -> JsonDict:
    assert status.fault is not None
    fault = status.fault
    pop = fault["@referredType"] == "PointOfPresence"
    key = f"{'pop' if pop else 'link'}:{fault['id']}"
    payload: JsonDict = {
        "category": "network",
        "priority": 1 if pop else 3,
        "impactImportanceFactor": "critical" if pop else "medium",
        "description": status.detail[0].upper() + status.detail[1:],
        "reason": f"trouble ticket {ticket['id']} of customer {customer_id}: network "
        f"diagnosis {status.state}",
        "originatorParty": {
            "id": "support",
            "name": "customer problem handling",
            "role": "originator",
            "@referredType": "Organization",
        },
        "affectedNumberOfServices": 1,
        "affectedResource": [dict(fault)],
        "affectedLocation": [{"id": status.site_id, "@referredType": "GeographicSite"}],
        "correlationKey": key,
    }
    body, _, _ = resources.create(session, SERVICE_PROBLEM_KIND, SYSTEM, payload)
    return body


def _add_note(ticket: JsonDict, text: str, now: datetime) -> None:
    ticket["note"] = [*(ticket.get("note") or []), _note(text, now)]


def _link(ticket: JsonDict, problem: JsonDict, now: datetime, text: str) -> None:
    ticket["relatedEntity"] = [
        *(ticket.get("relatedEntity") or []),
        {
            "id": str(problem["id"]),
            "@referredType": "ServiceProblem",
            "role": "cause",
            "name": str(problem.get("description") or problem["id"])[:200],
        },
    ]
    diagnosis = dict(ticket.get("diagnosis") or {"checkedAt": iso(now)})
    diagnosis["serviceProblem"] = {"id": str(problem["id"]), "@referredType": "ServiceProblem"}
    if problem.get("expectedResolutionDate"):
        diagnosis["expectedResolutionDate"] = problem["expectedResolutionDate"]
        text += f" Expected resolution: {problem['expectedResolutionDate']}."
    ticket["diagnosis"] = diagnosis
    _add_note(ticket, text, now)


def attach_ticket(session: Session, ticket: JsonDict) -> None:
    """The service problem a new ticket was linked to lists it in ``troubleTicket``
    (TMF656), so its flow finds the ticket; once the ticket is stored."""
    problem_id = (ticket.get("diagnosis") or {}).get("serviceProblem", {}).get("id")
    if not problem_id:
        return
    row = session.get(ServiceProblemRow, problem_id)
    if row is None:
        return
    listed = [t for t in row.body.get("troubleTicket") or [] if isinstance(t, dict)]
    if any(t.get("id") == ticket["id"] for t in listed):
        return
    resources.patch(
        session,
        SERVICE_PROBLEM_KIND,
        SYSTEM,
        problem_id,
        {"troubleTicket": [*listed, {"id": ticket["id"], "@referredType": "TroubleTicket"}]},
    )
