"""3.6.1 Isolate the problem and 3.6.2 report it: from the network's alarms to service
problems, the customers they hit, and one trouble ticket per affected customer.

Alarms carry a correlation key (``pop:<id>`` for a point of presence, ``link:<id>`` for
one access link). Correlation reads them grouped by key, in one query however many
there are, and decides per key:

- a point of presence with alarms is an outage: one service problem, and one ticket for
  every customer with a link to it (not one per alarm, not one per link);
- a link raised at least ``FLAP_THRESHOLD`` times in the window is flapping: one
  service problem and one ticket for its customer, however often it flaps;
- a link whose alarm stays raised longer than ``HOLD_DOWN`` is down: the same;
- a single short blip, cleared within the hold-down time, is nobody's problem.

A key with an open service problem opens nothing new: running correlation again (a
rerun, a restart, the next batch of the same storm) adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, select, text
from sqlalchemy.orm import Session

from etomcrm.core import resources
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.network.models import NetworkLinkRow
from etomcrm.problem_handling.models import AlarmRow, ServiceProblemRow, TroubleTicketRow
from etomcrm.problem_handling.service import (
    OPEN_PROBLEM_STATES,
    SERVICE_PROBLEM_KIND,
    report_problem,
)
from etomcrm.problem_handling.tickets import open_ticket
from etomcrm.security.service import SYSTEM

FLAP_THRESHOLD = 3
CORRELATION_LOCK = 3_6_1_0  # advisory lock id of 3.6.1 correlation
HOLD_DOWN = timedelta(minutes=2)
CLOSED_TICKET_STATES = ("closed", "cancelled", "rejected")


@dataclass(frozen=True)
class AlarmGroup:
    key: str
    raised: int
    still_raised: int
    first_raised: datetime


@dataclass
class Correlation:
    """What one run of correlation did."""

    problems: list[str] = field(default_factory=list)
    tickets: list[str] = field(default_factory=list)
    customers: set[str] = field(default_factory=set)
    flapping: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def alarm_groups(session: Session, since: datetime) -> list[AlarmGroup]:
    """Alarms raised since ``since``, counted per correlation key (one query). Alarms a
    service problem of the same key was already opened for (raised before it) are
    left out, so a problem's own alarms never open a second one, even after it closed.
    """
    latest = (
        select(
            ServiceProblemRow.correlation_key.label("key"),
            func.max(ServiceProblemRow.created_at).label("opened"),
        )
        .where(ServiceProblemRow.correlation_key.is_not(None))
        .group_by(ServiceProblemRow.correlation_key)
        .subquery()
    )
    rows = session.execute(
        select(
            AlarmRow.correlation_key,
            func.count(),
            func.sum(case((AlarmRow.status != "cleared", 1), else_=0)),
            func.min(AlarmRow.created_at),
        )
        .outerjoin(latest, latest.c.key == AlarmRow.correlation_key)
        .where(
            AlarmRow.created_at >= since,
            AlarmRow.correlation_key.is_not(None),
            or_(latest.c.opened.is_(None), AlarmRow.created_at > latest.c.opened),
        )
        .group_by(AlarmRow.correlation_key)
    ).all()
    return [
        AlarmGroup(str(key), int(count), int(open_count or 0), first)
        for key, count, open_count, first in rows
    ]


def _decide(group: AlarmGroup, now: datetime) -> str | None:
    kind = group.key.split(":", 1)[0]
    if kind == "pop":
        return "outage"
    if group.raised >= FLAP_THRESHOLD:
        return "flapping"
    if group.still_raised and now - group.first_raised >= HOLD_DOWN:
        return "down"
    return None


def correlate(session: Session, *, since: datetime, now: datetime) -> Correlation:
    """3.6.1 Isolate Customer Problem (eTOM 1.1.1.6.1): turn the alarms raised since
    ``since`` into service problems and one ticket per affected customer."""
    result = Correlation()
    _one_at_a_time(session)
    groups = alarm_groups(session, since)
    decisions = {g.key: (g, _decide(g, now)) for g in groups}
    keys = [k for k, (_, decision) in decisions.items() if decision]
    result.ignored = sorted(k for k, (_, decision) in decisions.items() if decision is None)
    if not keys:
        return result
    already = set(
        session.scalars(
            select(ServiceProblemRow.correlation_key).where(
                ServiceProblemRow.correlation_key.in_(keys),
                ServiceProblemRow.status.in_(OPEN_PROBLEM_STATES),
            )
        )
    )
    new_keys = [k for k in keys if k not in already]
    links = _links_for(session, new_keys)
    for key in sorted(new_keys):
        group, decision = decisions[key]
        assert decision is not None
        hit = links.get(key, [])
        if decision == "flapping":
            result.flapping.append(key)
        problem = _open_problem(session, key, decision, group, hit)
        result.problems.append(problem["id"])
        products = [link.product_id for link in hit if link.product_id]
        problem = report_problem(session, problem, products, group.first_raised.isoformat())
        for customer_id, products in _by_customer(hit).items():
            ticket = _open_ticket(session, problem, decision, customer_id, products, now)
            result.tickets.append(ticket["id"])
            result.customers.add(customer_id)
    return result


def _one_at_a_time(session: Session) -> None:
    """Two correlations at once (the schedule and a manual run, two workers) would both
    find a cause without a problem and open two. On PostgreSQL a transaction lock makes
    them take turns; SQLite's writers take turns already (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CORRELATION_LOCK})


def _links_for(session: Session, keys: Sequence[str]) -> dict[str, list[NetworkLinkRow]]:
    """The access links each key stands for (a point of presence: all of its links)."""
    pops = [k.split(":", 1)[1] for k in keys if k.startswith("pop:")]
    link_ids = [k.split(":", 1)[1] for k in keys if k.startswith("link:")]
    rows = session.scalars(
        select(NetworkLinkRow).where(
            NetworkLinkRow.pop_id.in_(pops) | NetworkLinkRow.id.in_(link_ids)
        )
    ).all()
    out: dict[str, list[NetworkLinkRow]] = {}
    for row in rows:
        if row.pop_id in pops:
            out.setdefault(f"pop:{row.pop_id}", []).append(row)
        if row.id in link_ids:
            out.setdefault(f"link:{row.id}", []).append(row)
    return out


def _by_customer(links: Sequence[NetworkLinkRow]) -> dict[str, list[str]]:
    customers: dict[str, list[str]] = {}
    for link in links:
        products = customers.setdefault(link.customer_id, [])
        if link.product_id:
            products.append(link.product_id)
    return customers


DESCRIPTIONS = {
    "outage": "Point of presence {what} is down: every access link to it is affected",
    "flapping": "Access link {what} is flapping (up and down repeatedly)",
    "down": "Access link {what} is down",
}


def _open_problem(
    session: Session, key: str, decision: str, group: AlarmGroup, links: Sequence[NetworkLinkRow]
) -> JsonDict:
    kind, what = key.split(":", 1)
    payload: JsonDict = {
        "category": "network",
        "priority": 1 if decision == "outage" else 3,
        "impactImportanceFactor": "critical" if decision == "outage" else "medium",
        "description": DESCRIPTIONS[decision].format(what=what),
        "reason": f"{group.raised} alarm(s) since {group.first_raised.isoformat()}",
        "originatorParty": {
            "id": "network",
            "name": "network monitoring",
            "role": "originator",
            "@referredType": "Organization",
        },
        "affectedNumberOfServices": len(links),
        "affectedResource": [
            {"id": what, "@referredType": "PointOfPresence" if kind == "pop" else "AccessLink"}
        ],
        "affectedService": [
            {"id": link.product_id, "@referredType": "Product"} for link in links if link.product_id
        ],
        "correlationKey": key,
    }
    body, _, _ = resources.create(session, SERVICE_PROBLEM_KIND, SYSTEM, payload)
    return body


def _open_ticket(
    session: Session,
    problem: JsonDict,
    decision: str,
    customer_id: str,
    product_ids: Sequence[str],
    now: datetime,
) -> JsonDict:
    existing = session.scalar(
        select(TroubleTicketRow.body).where(
            TroubleTicketRow.owner_customer_id == customer_id,
            TroubleTicketRow.status.not_in(CLOSED_TICKET_STATES),
            TroubleTicketRow.name == _ticket_name(problem),
        )
    )
    if existing is not None:
        return dict(existing)
    payload: JsonDict = {
        "name": _ticket_name(problem),
        "description": problem["description"],
        "severity": "critical" if decision == "outage" else "major",
        "priority": "High" if decision == "outage" else "Medium",
        "ticketType": "network",
        "channel": {"id": "monitoring", "name": "network monitoring"},
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "relatedEntity": [
            {"id": problem["id"], "@referredType": "ServiceProblem", "role": "cause"},
            *({"id": p, "@referredType": "Product", "role": "affected"} for p in product_ids),
        ],
    }
    return open_ticket(session, SYSTEM, payload, now=now)


def _ticket_name(problem: JsonDict) -> str:
    return ticket_name(str(problem["id"]))


def ticket_name(problem_id: str) -> str:
    """The name of the tickets a service problem opened: how its flow finds them."""
    return f"Network problem {problem_id}"
