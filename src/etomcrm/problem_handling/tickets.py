"""TMF621 trouble tickets: 3.6.3 Track and manage the problem, 3.6.4 Close the problem.

How a ticket is shaped:

- ``relatedParty`` names its customer (``@referredType`` Customer); a customer's own
  ticket gets it added. Staff may open a ticket that names no customer (only what
  TMF621 requires: ``description``, ``severity``, ``ticketType``): an internal ticket,
  marked ``internal`` true, seen by staff only and told to no customer.
  ``relatedEntity`` names the affected products (``@referredType`` Product, role
  ``affectedProduct``); ``ticketType`` says what it is about ("network", "billing", ...).
- ``priority`` is one of TMF621's own examples: Critical, High, Medium, Low (any case
  is accepted and written capitalised); Medium unless said.
- ``status`` follows :data:`TICKET_TRANSITIONS`; every change appends to
  ``statusChange`` (the server keeps that list; a client's copy is ignored).
- Targets (3.6.3): the SLA tier comes from the best ``slaLevel`` characteristic of the
  affected products ("SLA Gold" -> gold, "SLA Silver" -> silver, else standard), the
  calendar from that SLA specification's ``serviceHours``/``holidayState``/``timeZone``
  (:func:`etomcrm.core.calendar.calendar_for`); without an SLA the standard calendar
  Mon-Fri 08:00-18:00 Europe/Berlin with Bavarian holidays. Extension attributes:
  ``slaTier``, ``responseDueDate`` (TMF621 has none for response) and the document's
  ``expectedResolutionDate``; ``respondedDate`` once staff took the ticket up;
  ``slaWarning`` and ``escalation`` list what was warned and escalated (once each
  per target); ``reopenCount`` counts rejected resolutions. ``resolutionDueDate`` is
  the resolution target; ``expectedResolutionDate`` is the same, unless the ticket was
  linked to a service problem with the network's estimate, which it takes over.
- 3.6.1: a new ticket naming a site or product is isolated when it is opened
  (:mod:`etomcrm.problem_handling.isolation`): linked to the open service problem on
  its site, or diagnosed against the network, with the result in ``diagnosis``
  (``linkStatus``, ``checkedAt``, ``detail``, ``serviceProblem``,
  ``expectedResolutionDate``) and a note.
- The clock stops while the ticket waits for the customer: the intervals spent in
  ``pending`` (waiting for information from the customer) and in ``resolved``
  (waiting for the customer to confirm). While it waits no due time runs, so the due
  columns are empty and nothing is warned or escalated.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from etomcrm.catalog.models import ProductSpecificationRow
from etomcrm.core import resources, states
from etomcrm.core.bus import record
from etomcrm.core.calendar import BusinessCalendar, calendar_for
from etomcrm.core.clock import ServiceClock, iso
from etomcrm.core.errors import Forbidden, IllegalTransition, InvalidRequest, NotFound
from etomcrm.core.resources import CREATE, READ, UPDATE, RefSpec
from etomcrm.core.tmf_schemas import TROUBLE_TICKET, JsonDict
from etomcrm.customer_interface.communication import inform_customer
from etomcrm.customer_interface.service import CustomerOwnedKind, customer_of
from etomcrm.order_handling.models import ProductRow
from etomcrm.problem_handling.events import TicketEnded
from etomcrm.problem_handling.isolation import attach_ticket, isolate_problem
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.security.service import SYSTEM, Principal, Role

TICKET_WORKERS = frozenset({Role.ADMIN, Role.SUPPORT, Role.SLA_MANAGER, Role.BILLING})
TICKET_READERS = TICKET_WORKERS | {Role.SALES, Role.ORDER_MANAGER, Role.ANALYST}

# TMF621 life cycle. Closed, rejected and cancelled are final; a resolved ticket
# reopens (inProgress) when the customer rejects the resolution.
TICKET_TRANSITIONS: dict[str, frozenset[str]] = {
    "acknowledged": frozenset({"inProgress", "rejected", "cancelled"}),
    "inProgress": frozenset({"pending", "held", "resolved", "cancelled"}),
    "pending": frozenset({"inProgress", "cancelled"}),
    "held": frozenset({"inProgress", "cancelled"}),
    "resolved": frozenset({"closed", "inProgress"}),
    "closed": frozenset(),
    "rejected": frozenset(),
    "cancelled": frozenset(),
}
FINAL = frozenset(s for s, after in TICKET_TRANSITIONS.items() if not after)
# States in which the ticket waits for the customer: its clock stops.
PAUSED = frozenset({"pending", "resolved"})
# What a customer may do to its own ticket: answer (pending -> inProgress), confirm or
# reject a resolution, withdraw it; and add notes. Everything else is staff's work.
CUSTOMER_TARGET_STATES = frozenset({"inProgress", "closed", "cancelled"})
CUSTOMER_EDITABLE = frozenset(
    {"note", "attachment", "status", "statusChangeReason", "lastUpdate", "statusChange"}
)

PRIORITIES = ("Critical", "High", "Medium", "Low")
DEFAULT_PRIORITY = "Medium"
GOLD, SILVER, STANDARD = "gold", "silver", "standard"
TIER_RANK = {STANDARD: 0, SILVER: 1, GOLD: 2}

log = logging.getLogger(__name__)


def _hours(h: float) -> timedelta:
    return timedelta(minutes=round(h * 60))


# Response and resolution targets in business hours of the SLA's calendar, per tier
# and priority: (response, resolution). Gold and Silver follow the provider's SLA
# sheets (Gold critical: answered within half an hour, repaired within 4 hours, the
# SLA's time to repair); standard is what a customer without an SLA is promised.
TARGETS: dict[str, dict[str, tuple[timedelta, timedelta]]] = {
    GOLD: {
        "Critical": (_hours(0.5), _hours(4)),
        "High": (_hours(1), _hours(8)),
        "Medium": (_hours(2), _hours(16)),
        "Low": (_hours(4), _hours(40)),
    },
    SILVER: {
        "Critical": (_hours(1), _hours(8)),
        "High": (_hours(2), _hours(16)),
        "Medium": (_hours(4), _hours(24)),
        "Low": (_hours(8), _hours(60)),
    },
    STANDARD: {
        "Critical": (_hours(4), _hours(24)),
        "High": (_hours(4), _hours(32)),
        "Medium": (_hours(8), _hours(40)),
        "Low": (_hours(16), _hours(80)),
    },
}
RESPONSE, RESOLUTION = "response", "resolution"
# How long before a target runs out the team (and the customer, on the ticket) is warned.
WARNING_HORIZON = timedelta(minutes=30)
# The server's bookkeeping on a ticket: only etomcrm itself (SYSTEM) writes it.
SERVER_KEPT = (
    "creationDate",
    "escalation",
    "slaWarning",
    "reopenCount",
    "respondedDate",
    "diagnosis",
)

# The moment service functions run "now" at; the API path leaves it unset (the clock).
_CLOCK = ServiceClock("ticket_now")
_at, _now = _CLOCK.at, _CLOCK.now


def _product_ids(body: JsonDict) -> list[str]:
    return [
        str(e["id"])
        for e in body.get("relatedEntity") or []
        if isinstance(e, dict) and e.get("@referredType") == "Product"
    ]


def normalise_priority(value: Any) -> str:
    if value is None:
        return DEFAULT_PRIORITY
    for name in PRIORITIES:
        if isinstance(value, str) and value.strip().lower() == name.lower():
            return name
    raise InvalidRequest(f"priority must be one of {', '.join(PRIORITIES)} (TMF621), not {value!r}")


# ----- 3.6.3 targets ---------------------------------------------------------------


def _characteristic_values(characteristics: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for c in characteristics or []:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            continue
        if "value" in c:
            values[c["name"]] = c["value"]
            continue
        options = c.get("productSpecCharacteristicValue") or []
        chosen = [v for v in options if isinstance(v, dict) and v.get("isDefault")] or options
        if chosen and isinstance(chosen[0], dict):
            values[c["name"]] = chosen[0].get("value")
    return values


def _tier_of(sla_name: str) -> str:
    lowered = sla_name.lower()
    if GOLD in lowered:
        return GOLD
    if SILVER in lowered:
        return SILVER
    return STANDARD


@dataclass(frozen=True)
class SlaTerms:
    """The tier and the calendar a ticket's targets run on."""

    tier: str
    calendar: BusinessCalendar


def sla_terms(session: Session, product_ids: Sequence[str]) -> SlaTerms:
    """The best SLA among the affected products, and its business-hour calendar."""

    best_name, best_tier = None, STANDARD
    if product_ids:
        for body in session.scalars(select(ProductRow.body).where(ProductRow.id.in_(product_ids))):
            name = _characteristic_values(body.get("productCharacteristic")).get("slaLevel")
            if isinstance(name, str) and TIER_RANK[_tier_of(name)] > TIER_RANK[best_tier]:
                best_name, best_tier = name, _tier_of(name)
    if best_name is None:
        return SlaTerms(STANDARD, BusinessCalendar())
    spec = session.scalar(
        select(ProductSpecificationRow.body).where(
            ProductSpecificationRow.at_type == "SlaSpecification",
            ProductSpecificationRow.name == best_name,
        )
    )
    if spec is None:
        return SlaTerms(best_tier, BusinessCalendar())
    return SlaTerms(
        best_tier, calendar_for(_characteristic_values(spec.get("productSpecCharacteristic")))
    )


def waiting_intervals(
    history: Sequence[JsonDict], now: datetime
) -> tuple[list[tuple[datetime, datetime]], bool]:
    """The closed intervals the ticket spent waiting for the customer, and whether it
    waits now (an interval still open)."""
    pauses: list[tuple[datetime, datetime]] = []
    for entry, following in zip(history, [*history[1:], None], strict=True):
        if entry.get("status") not in PAUSED:
            continue
        begin = datetime.fromisoformat(str(entry["changeDate"]))
        if following is None:
            return pauses, True
        pauses.append((begin, datetime.fromisoformat(str(following["changeDate"]))))
    return pauses, False


def _has(body: JsonDict, attribute: str, target: str) -> bool:
    return any(isinstance(e, dict) and e.get("target") == target for e in body.get(attribute) or [])


def _recompute_due(session: Session, body: JsonDict, now: datetime) -> None:
    """Due times from the creation date, the tier's targets and the waiting pauses."""
    terms = sla_terms(session, _product_ids(body))
    body["slaTier"] = terms.tier
    response, resolution = TARGETS[terms.tier][body["priority"]]
    start = datetime.fromisoformat(body["creationDate"])
    pauses, _ = waiting_intervals(body.get("statusChange") or [], now)
    body["responseDueDate"] = iso(terms.calendar.add(start, response, pauses))
    body["resolutionDueDate"] = iso(terms.calendar.add(start, resolution, pauses))
    # A ticket linked to a service problem is told the network's estimate (3.6.1); the
    # resolution target it is warned and escalated on stays the SLA's.
    estimate = (body.get("diagnosis") or {}).get("expectedResolutionDate")
    body["expectedResolutionDate"] = estimate or body["resolutionDueDate"]


def _due_columns(body: JsonDict, now: datetime) -> tuple[datetime | None, datetime | None]:
    """What the due-time columns hold: only targets still running and not escalated."""
    status = body.get("status")
    if status in FINAL or status in PAUSED:
        return None, None
    response = None
    if status == "acknowledged" and not _has(body, "escalation", RESPONSE):
        response = datetime.fromisoformat(body["responseDueDate"])
    resolution = None
    if not _has(body, "escalation", RESOLUTION):
        resolution = datetime.fromisoformat(
            body.get("resolutionDueDate") or body["expectedResolutionDate"]
        )
    return response, resolution


# ----- the resource kind -------------------------------------------------------------


def _status_entry(status: str, reason: str, at: datetime) -> JsonDict:
    return {"status": status, "changeDate": iso(at), "changeReason": reason}


@dataclass
class TroubleTicketKind(CustomerOwnedKind):
    """TMF621 troubleTicket: a customer's problem, its state machine and its targets."""

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        super().before_save(session, principal, body, old)
        now = _now()
        # A ticket staff open for no customer is the provider's own (internal).
        body["internal"] = customer_of(body) is None
        body["priority"] = normalise_priority(body.get("priority"))
        if old is None:
            self._open(session, principal, body, now)
            return
        if principal.is_customer:
            self._check_customer_change(old, body)
        # statusChange is the server's record; a client's copy never replaces it.
        body["statusChange"] = list(old.get("statusChange") or [])
        kept = SERVER_KEPT if principal is not SYSTEM else ("creationDate", "reopenCount")
        for attribute in kept:
            if attribute in old:
                body[attribute] = old[attribute]
            else:
                body.pop(attribute, None)
        before, after = str(old.get("status")), str(body.get("status"))
        if before != after:
            states.check_transition("trouble ticket status", TICKET_TRANSITIONS, before, after)
            reason = body.get("statusChangeReason")
            if not isinstance(reason, str) or reason == old.get("statusChangeReason"):
                reason = f"{before} -> {after} by {principal.name}"
                body["statusChangeReason"] = reason
            body["statusChange"].append(_status_entry(after, reason, now))
            body["statusChangeDate"] = iso(now)
            if before == "acknowledged" and "respondedDate" not in old:
                body["respondedDate"] = iso(now)
            if after == "resolved":
                body["resolutionDate"] = iso(now)
            if before == "resolved" and after == "inProgress":
                body["reopenCount"] = int(old.get("reopenCount") or 0) + 1
                body.pop("resolutionDate", None)
        _recompute_due(session, body, now)

    def _open(self, session: Session, principal: Principal, body: JsonDict, now: datetime) -> None:
        status = body.setdefault("status", "acknowledged")
        if status != "acknowledged":
            raise InvalidRequest(f"a new trouble ticket is acknowledged, not {status!r}")
        # The clock starts when we receive the ticket, not when a client says it did.
        body["creationDate"] = iso(now)
        body["statusChangeDate"] = iso(now)
        reason = body.get("statusChangeReason")
        if not isinstance(reason, str):
            reason = f"received from {principal.name}"
            body["statusChangeReason"] = reason
        body["statusChange"] = [_status_entry("acknowledged", reason, now)]
        for attribute in ("escalation", "slaWarning", "reopenCount", "respondedDate", "diagnosis"):
            body.pop(attribute, None)
        customer_id = principal.customer_id if principal.is_customer else customer_of(body)
        if customer_id is not None:
            isolate_problem(session, body, customer_id, now)
        _recompute_due(session, body, now)

    def _check_customer_change(self, old: JsonDict, body: JsonDict) -> None:
        # internal is the server's (a ticket written before it existed gains it now).
        changed = {k for k in set(old) | set(body) if old.get(k) != body.get(k)} - {
            "id",
            "internal",
        }
        refused = sorted(changed - CUSTOMER_EDITABLE - {"priority"})
        if body.get("priority") != old.get("priority"):
            refused.append("priority")
        if refused:
            raise Forbidden(
                "a customer may add notes and attachments to its ticket, answer it, "
                f"confirm or reject its resolution, or withdraw it; not change {', '.join(refused)}"
            )
        after = body.get("status")
        if after != old.get("status") and after not in CUSTOMER_TARGET_STATES:
            raise Forbidden(
                "a customer may move its ticket only to "
                f"{', '.join(sorted(CUSTOMER_TARGET_STATES))}; {after!r} is set by the support team"
            )

    def after_save(
        self, session: Session, principal: Principal, body: JsonDict, owner: str | None
    ) -> None:
        response_due, resolution_due = _due_columns(body, _now())
        session.execute(
            update(TroubleTicketRow)
            .where(TroubleTicketRow.id == body["id"])
            .values(response_due_at=response_due, resolution_due_at=resolution_due)
            .execution_options(synchronize_session=False)
        )
        history = body.get("statusChange") or []
        if len(history) == 1 and body.get("diagnosis"):
            attach_ticket(session, body)
        if history and history[-1].get("status") in FINAL:
            _ended(session, body, owner, history[-1]["status"])
        if owner is None:
            return
        if not history:
            return
        last = history[-1]
        # Every status change is told to the customer, once (the key is the change's
        # place in the ticket's history).

        inform_customer(
            session,
            customer_id=owner,
            subject=f"Your ticket {body.get('name') or body['id']}: {last['status']}",
            content=_status_message(body, last),
            key=f"ticket/{body['id']}/status/{len(history)}",
            related_entity=[{"id": body["id"], "role": "ticket", "@referredType": "TroubleTicket"}],
        )


def _status_message(body: JsonDict, last: JsonDict) -> str:
    text = {
        "acknowledged": "We have received your ticket and will respond by "
        f"{body.get('responseDueDate')}; we expect to resolve it by "
        f"{body.get('expectedResolutionDate')}.",
        "inProgress": "We are working on your ticket; we expect to resolve it by "
        f"{body.get('expectedResolutionDate')}.",
        "pending": "We need information from you to continue; the resolution clock "
        "is stopped until you answer.",
        "held": "Your ticket waits for a third party; we keep you informed.",
        "resolved": "We have resolved your ticket. Please confirm the resolution or tell "
        "us what is still wrong.",
        "closed": "Your ticket is closed.",
        "rejected": "We cannot take this ticket up.",
        "cancelled": "Your ticket is cancelled.",
    }[str(last["status"])]
    reason = str(last.get("changeReason") or "")
    # A reason etomcrm wrote itself names a user or an API key ("apikey:portal"), which
    # tells the customer nothing: only a reason someone gave in words is passed on.
    if not reason or _written_by_etomcrm(reason):
        return text
    return f"{text} Reason: {reason}"


def _written_by_etomcrm(reason: str) -> bool:
    """The reasons a ticket gets from etomcrm when none is given (opened, status moved)."""
    return bool(re.fullmatch(r"received from .+|\w+ -> \w+ by .+", reason))


TROUBLE_TICKET_KIND = TroubleTicketKind(
    name="troubleTicket",
    type_name="TroubleTicket",
    doc=TROUBLE_TICKET,
    row=TroubleTicketRow,
    read_roles=TICKET_READERS,
    write_roles=TICKET_WORKERS,
    customer_operations=frozenset({READ, CREATE, UPDATE}),
    refs=(RefSpec("relatedParty[]"), RefSpec("relatedEntity[]")),
    ended_not_deleted="resolve, close or cancel it through its status",
    extensions={
        "slaTier": resources.TEXT,
        "responseDueDate": resources.INSTANT,
        "resolutionDueDate": resources.INSTANT,
        "diagnosis": resources.OBJECT,
        "respondedDate": resources.INSTANT,
        "slaWarning": resources.LIST,
        "escalation": resources.LIST,
        "reopenCount": resources.NUMBER,
        "internal": {"type": "boolean"},
    },
)


# ----- process functions -----------------------------------------------------------


def open_ticket(
    session: Session, principal: Principal, payload: JsonDict, *, now: datetime | None = None
) -> JsonDict:
    """3.6.3 Track and Manage Customer Problem Resolution (eTOM 1.1.1.6.3): take a ticket
    up from the customer, the portal or staff; its targets start running."""
    with _at(now):
        body, _, _ = resources.create(session, TROUBLE_TICKET_KIND, principal, payload)
    return body


def change_status(
    session: Session,
    principal: Principal,
    ticket_id: str,
    status: str,
    *,
    reason: str | None = None,
    now: datetime | None = None,
) -> JsonDict:
    """3.6.3 Track and Manage Customer Problem Resolution (eTOM 1.1.1.6.3): move a ticket
    along its life cycle; due times are recomputed and the customer told."""
    changes: JsonDict = {"status": status}
    if reason:
        changes["statusChangeReason"] = reason
    with _at(now):
        body, _ = resources.patch(session, TROUBLE_TICKET_KIND, principal, ticket_id, changes)
    return body


# The states staff take a ticket up (or back up) from. A resolved ticket is not among
# them: it goes back to work only by the customer's rejection of the resolution.
TAKE_UP_FROM = frozenset({"acknowledged", "pending", "held"})


def take_up(
    session: Session, principal: Principal, ticket_id: str, *, now: datetime | None = None
) -> JsonDict:
    """3.6.3 Track and Manage Customer Problem Resolution: staff take the ticket up (or
    resume it): to inProgress, from the states in :data:`TAKE_UP_FROM` only."""
    body, _ = resources.get(session, TROUBLE_TICKET_KIND, principal, ticket_id)
    if body.get("status") not in TAKE_UP_FROM:
        raise IllegalTransition(
            f"trouble ticket {ticket_id} is {body.get('status')!r}; it is taken up from "
            f"{', '.join(sorted(TAKE_UP_FROM))}"
        )
    return change_status(session, principal, ticket_id, "inProgress", now=now)


def _own_resolved(session: Session, principal: Principal, ticket_id: str) -> JsonDict:
    row = session.get(TroubleTicketRow, ticket_id)
    if row is None or (principal.is_customer and row.owner_customer_id != principal.customer_id):
        raise NotFound(f"no troubleTicket with id {ticket_id}")
    if row.status != "resolved":
        raise IllegalTransition(
            f"trouble ticket {ticket_id} is {row.status!r}; only a resolved ticket's "
            "resolution can be confirmed or rejected"
        )
    return dict(row.body)


def confirm_resolution(
    session: Session, principal: Principal, ticket_id: str, *, now: datetime | None = None
) -> JsonDict:
    """3.6.4 Close Customer Problem Report (eTOM 1.1.1.6.4): the customer confirms the
    resolution; the ticket closes and a survey follows."""
    _own_resolved(session, principal, ticket_id)
    closed = change_status(
        session,
        principal,
        ticket_id,
        "closed",
        reason="the customer confirmed the resolution",
        now=now,
    )
    return closed


def _ended(session: Session, ticket: JsonDict, owner: str | None, status: str) -> None:
    """States that the ticket ended, naming the service problems behind it (3.6.4) and
    the SLA violations it follows up (3.7.2): their flows wait on it, and a customer
    whose ticket closed is asked how it went (3.9.5)."""
    violations = [
        str(e["id"])
        for e in ticket.get("relatedEntity") or []
        if isinstance(e, dict) and e.get("@referredType") == "SlaViolation"
    ]
    record(
        session,
        TicketEnded(
            str(ticket["id"]),
            tuple(problems_behind(ticket)),
            tuple(violations),
            status=status,
            customer_id=owner,
        ),
    )


def reject_resolution(
    session: Session,
    principal: Principal,
    ticket_id: str,
    reason: str,
    *,
    now: datetime | None = None,
) -> JsonDict:
    """3.6.4 Close Customer Problem Report (eTOM 1.1.1.6.4): the customer says the
    problem is not solved; the ticket reopens (inProgress) and counts the reopening."""
    if not reason.strip():
        raise InvalidRequest("say why the resolution does not solve the problem")
    _own_resolved(session, principal, ticket_id)
    return change_status(
        session,
        principal,
        ticket_id,
        "inProgress",
        reason=f"the customer rejected the resolution: {reason.strip()}",
        now=now,
    )


def close_silent_resolutions(session: Session, *, silence: timedelta, now: datetime) -> list[str]:
    """3.6.4 Close Customer Problem Report (eTOM 1.1.1.6.4): resolved tickets the
    customer left without an answer for ``silence`` close by themselves."""
    closed = []
    limit = now - silence
    rows = session.scalars(
        select(TroubleTicketRow).where(TroubleTicketRow.status == "resolved")
    ).all()
    for row in rows:
        if datetime.fromisoformat(row.body["statusChangeDate"]) > limit or problems_behind(
            row.body
        ):
            continue
        change_status(
            session,
            SYSTEM,
            row.id,
            "closed",
            reason=f"no answer from the customer within {_describe(silence)} of the resolution",
            now=now,
        )
        closed.append(row.id)
    return closed


def problems_behind(body: JsonDict) -> list[str]:
    """The service problems that caused a ticket (correlation opened it for them); such
    a ticket closes with its problem's flow, which waits for the same silence."""
    return [
        str(e["id"])
        for e in body.get("relatedEntity") or []
        if isinstance(e, dict)
        and e.get("@referredType") == "ServiceProblem"
        and e.get("role") == "cause"
    ]


@dataclass(frozen=True)
class TicketSweep:
    warned: list[DueWarning]
    escalated: list[str]
    closed: list[str]


def track_tickets(session: Session, *, now: datetime, silence: timedelta) -> TicketSweep:
    """3.6.3 Track and Manage Customer Problem Resolution (eTOM 1.1.1.6.3), on a
    schedule for every ticket, whoever raised it: targets running out within the
    warning horizon are warned, missed ones escalated (each once), and resolutions the
    customer left unanswered for ``silence`` closed (3.6.4)."""
    return TicketSweep(
        warned=tickets_due_soon(session, within=WARNING_HORIZON, now=now),
        escalated=escalate_overdue(session, now=now),
        closed=close_silent_resolutions(session, silence=silence, now=now),
    )


def _describe(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours >= 24 else f"{hours:g} hours"


@dataclass(frozen=True)
class DueWarning:
    """A target that runs out soon (or ran out) on a ticket."""

    ticket_id: str
    customer_id: str | None
    target: str  # response | resolution
    due_at: datetime


def tickets_due_soon(session: Session, *, within: timedelta, now: datetime) -> list[DueWarning]:
    """3.6.3 Track and Manage Customer Problem Resolution (eTOM 1.1.1.6.3): warn of
    targets that run out within ``within``; each target is warned once, and the warning
    is written on the ticket for the customer and the team to see."""
    horizon = now + within
    rows = session.scalars(
        select(TroubleTicketRow).where(
            or_(
                and_(
                    TroubleTicketRow.response_due_at > now,
                    TroubleTicketRow.response_due_at <= horizon,
                ),
                and_(
                    TroubleTicketRow.resolution_due_at > now,
                    TroubleTicketRow.resolution_due_at <= horizon,
                ),
            )
        )
    ).all()
    warnings: list[DueWarning] = []
    for row in rows:
        body = row.body
        fresh = []
        for target, due in ((RESPONSE, row.response_due_at), (RESOLUTION, row.resolution_due_at)):
            if due is not None and now < due <= horizon and not _has(body, "slaWarning", target):
                fresh.append((target, due))
        if not fresh:
            continue
        entries = [*(body.get("slaWarning") or [])]
        notes = [*(body.get("note") or [])]
        for target, due in fresh:
            entries.append({"target": target, "dueDate": iso(due), "warnedAt": iso(now)})
            notes.append(_note(f"The {target} target runs out at {iso(due)}.", now))
            warnings.append(DueWarning(row.id, row.owner_customer_id, target, due))
        with _at(now):
            resources.patch(
                session,
                TROUBLE_TICKET_KIND,
                SYSTEM,
                row.id,
                {"slaWarning": entries, "note": notes},
            )
    return warnings


def _note(text: str, now: datetime) -> JsonDict:
    return {"author": "etomcrm", "date": iso(now), "text": text}


def escalate_overdue(session: Session, *, now: datetime) -> list[str]:
    """3.6.3 Track and Manage Customer Problem Resolution (eTOM 1.1.1.6.3): a missed
    target is escalated once: an ``escalation`` entry and a note on the ticket (so the
    customer sees it) and an event for the support managers. Returns the tickets
    escalated."""
    rows = session.scalars(
        select(TroubleTicketRow).where(
            or_(
                TroubleTicketRow.response_due_at <= now,
                TroubleTicketRow.resolution_due_at <= now,
            )
        )
    ).all()
    escalated = []
    for row in rows:
        body = row.body
        missed = [
            (target, due)
            for target, due in (
                (RESPONSE, row.response_due_at),
                (RESOLUTION, row.resolution_due_at),
            )
            if due is not None and due <= now and not _has(body, "escalation", target)
        ]
        if not missed:
            continue
        entries = [*(body.get("escalation") or [])]
        notes = [*(body.get("note") or [])]
        for target, due in missed:
            entries.append({"target": target, "dueDate": iso(due), "escalatedAt": iso(now)})
            notes.append(
                _note(
                    f"The {target} target ({iso(due)}) was missed; the ticket is escalated "
                    "to the support manager.",
                    now,
                )
            )
        with _at(now):
            resources.patch(
                session,
                TROUBLE_TICKET_KIND,
                SYSTEM,
                row.id,
                {"escalation": entries, "note": notes},
            )
        escalated.append(row.id)
    return escalated
