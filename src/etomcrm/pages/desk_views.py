"""What the staff ticket desk shows and does (issue 11: "Ticket desk: a ticket with its
SLA clock (paused time shown), its problem and alarms, resolve and message the
customer"), through the same service functions as the API:

- the open tickets come from the ``trouble_ticket`` table ordered by their resolution
  due time (the column :mod:`etomcrm.problem_handling.tickets` keeps; a paused ticket
  has none and comes last), scoped by :data:`TROUBLE_TICKET_KIND` as the API's list;
- a ticket is taken up and resolved by :func:`etomcrm.problem_handling.tickets.change_status`
  (the API's PATCH of ``status``: the same state machine, due times and customer
  message); the resolution text is the change's reason, which the customer is told;
- a message to the customer is a TMF681 communication message written by
  :func:`etomcrm.customer_interface.communication.write_message` (delivered as every
  other), and noted on the ticket so the team sees it in the ticket's notes.

Each page reads a bounded number of queries whatever the number of rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from etomcrm.core import resources
from etomcrm.core.clock import iso
from etomcrm.core.errors import Forbidden, InvalidRequest
from etomcrm.core.resources import CREATE, READ, UPDATE, ResourceKind
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.communication import (
    COMMUNICATION_MESSAGE_KIND,
    INFORMATION,
    write_message,
)
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.customer_interface.service import customer_of
from etomcrm.pages.portal_views import Clock, clock, when
from etomcrm.problem_handling import tickets
from etomcrm.problem_handling.alarms import ALARM_KIND
from etomcrm.problem_handling.models import AlarmRow, ServiceProblemRow, TroubleTicketRow
from etomcrm.problem_handling.service import SERVICE_PROBLEM_KIND
from etomcrm.problem_handling.tickets import FINAL, TROUBLE_TICKET_KIND, waiting_intervals
from etomcrm.security.service import Principal

PAGE_SIZE = 100
# The states a ticket is open in (the desk's filter offers them).
OPEN_STATES = tuple(s for s in tickets.TICKET_TRANSITIONS if s not in FINAL)
SEVERITIES = ("Critical", "Major", "Minor")
TEXT_MAX = 2000
SUBJECT_MAX = 200
# A ticket's alarms shown at most (a flapping link raises many; the API lists them all).
ALARM_LIMIT = 50


def staff_only(principal: Principal) -> None:
    """The desk is the provider's: a customer's users follow their tickets in the portal."""
    if principal.is_customer:
        raise Forbidden("the ticket desk is for the provider's staff; see your portal")


def _may(kind: ResourceKind, principal: Principal, operation: str) -> bool:
    try:
        kind.authorize(principal, operation)
    except Forbidden:
        return False
    return True


def _customer_names(session: Session, ids: set[str]) -> dict[str, str]:
    """Customer id → name, in one query."""
    if not ids:
        return {}
    return {
        cid: str(name or cid)
        for cid, name in session.execute(
            select(CustomerRow.id, CustomerRow.name).where(CustomerRow.id.in_(ids))
        )
    }


# ----- the desk: open tickets by time left ----------------------------------------------


@dataclass(frozen=True)
class DeskLine:
    id: str
    name: str
    status: str
    severity: str
    priority: str
    customer_id: str | None
    customer_name: str
    created: str
    clock: Clock


@dataclass
class DeskPage:
    tickets: list[DeskLine]
    total: int
    page: int
    pages: int
    state: str = ""
    severity: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    states: tuple[str, ...] = OPEN_STATES
    severities: tuple[str, ...] = SEVERITIES

    def query(self, page: int) -> str:
        """The query string of another page of the same filters."""
        parts = [f"page={page}"]
        if self.state:
            parts.append(f"state={self.state}")
        if self.severity:
            parts.append(f"severity={self.severity}")
        return "?" + "&".join(parts)


def _page_number(text: str) -> int | None:
    if not text:
        return 1
    if not text.isdigit() or not 0 < int(text) <= 100_000:
        return None
    return int(text)


def desk_page(
    session: Session, principal: Principal, params: dict[str, str], *, now: datetime
) -> DeskPage:
    """Open tickets, the one whose SLA clock runs out first on top (paused ones last),
    filtered by state and severity, :data:`PAGE_SIZE` a page: two queries whatever
    their number (the tickets with their total, and their customers' names)."""
    staff_only(principal)
    TROUBLE_TICKET_KIND.authorize(principal, READ)
    state = params.get("state", "").strip()
    severity = params.get("severity", "").strip()
    page_number = _page_number(params.get("page", "").strip())
    errors: dict[str, str] = {}
    if state and state not in OPEN_STATES:
        errors["state"] = "state"
    if severity and severity not in SEVERITIES:
        errors["severity"] = "severity"
    if page_number is None:
        errors["page"] = "page"
    if errors:
        return DeskPage([], 0, 1, 1, state, severity, errors)
    assert page_number is not None
    row = TroubleTicketRow
    conditions: list[Any] = [row.status.in_([state] if state else OPEN_STATES)]
    if severity:
        # Severities arrive in any case (the monitoring writes "critical").
        conditions.append(func.lower(row.body["severity"].as_string()) == severity.lower())
    paused_last = case((row.resolution_due_at.is_(None), 1), else_=0)
    found = session.execute(
        TROUBLE_TICKET_KIND.scoped(
            principal,
            select(row.body, row.owner_customer_id, func.count().over())
            .where(*conditions)
            .order_by(paused_last, row.resolution_due_at, row.created_at, row.id)
            .offset((page_number - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE),
        )
    ).all()
    total = int(found[0][2]) if found else 0
    names = _customer_names(session, {owner for _, owner, _ in found if owner})
    lines = [
        DeskLine(
            id=str(body["id"]),
            name=str(body.get("name") or body.get("description") or body["id"])[:80],
            status=str(body.get("status")),
            severity=str(body.get("severity") or ""),
            priority=str(body.get("priority") or ""),
            customer_id=owner,
            customer_name=names.get(owner, owner) if owner else "",
            created=when(body.get("creationDate")),
            clock=clock(body, now),
        )
        for body, owner, _ in found
    ]
    pages = max(1, -(-total // PAGE_SIZE))
    return DeskPage(lines, total, page_number, pages, state, severity)


# ----- one ticket -------------------------------------------------------------------------


@dataclass(frozen=True)
class Paused:
    """The time a ticket's clock stood still (waiting for the customer)."""

    minutes: int
    now: bool  # it waits now
    since: datetime | None


def paused_time(body: JsonDict, now: datetime) -> Paused:
    intervals, waiting = waiting_intervals(
        [e for e in body.get("statusChange") or [] if isinstance(e, dict)], now
    )
    spent = sum((end - begin for begin, end in intervals), timedelta())
    since = None
    if waiting:
        since = datetime.fromisoformat(str(body["statusChange"][-1]["changeDate"]))
        spent += now - since
    return Paused(int(spent.total_seconds() // 60), waiting, since)


@dataclass(frozen=True)
class Problem:
    id: str
    status: str
    description: str
    priority: str
    expected: str
    key: str
    href: str


@dataclass(frozen=True)
class Alarm:
    id: str
    state: str
    severity: str
    object: str
    raised: str
    text: str


@dataclass
class TicketPage:
    ticket: JsonDict
    title: str
    customer_id: str | None
    customer_name: str
    clock: Clock
    paused: Paused
    history: list[JsonDict]
    notes: list[JsonDict]
    problems: list[Problem] | None  # None: the role may not read them
    alarms: list[Alarm] | None
    can_work: bool
    can_message: bool
    # The forms' state after a refused post: what was typed, what is wrong with it.
    resolution: str = ""
    subject: str = ""
    content: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    when = staticmethod(when)

    @property
    def status(self) -> str:
        return str(self.ticket.get("status"))

    @property
    def can_take_up(self) -> bool:
        # A resolved ticket goes back to work when its customer rejects the resolution
        # (the portal's answer), not by a button here.
        return self.can_work and self.status in tickets.TAKE_UP_FROM

    @property
    def can_resolve(self) -> bool:
        return self.can_work and self.status == "inProgress"


def _problem_ids(body: JsonDict) -> list[str]:
    found = [
        str(e["id"])
        for e in body.get("relatedEntity") or []
        if isinstance(e, dict) and e.get("@referredType") == "ServiceProblem" and e.get("id")
    ]
    linked = ((body.get("diagnosis") or {}).get("serviceProblem") or {}).get("id")
    if linked and str(linked) not in found:
        found.append(str(linked))
    return found


def _problems(session: Session, principal: Principal, ids: list[str]) -> list[Problem]:
    if not ids:
        return []
    rows = session.execute(
        select(ServiceProblemRow.body, ServiceProblemRow.correlation_key)
        .where(ServiceProblemRow.id.in_(ids))
        .order_by(ServiceProblemRow.created_at, ServiceProblemRow.id)
    ).all()
    return [
        Problem(
            id=str(body["id"]),
            status=str(body.get("status") or ""),
            description=str(body.get("description") or ""),
            priority=str(body.get("priority") or ""),
            expected=when(body.get("expectedResolutionDate")),
            key=key or "",
            href=resources.href_for(SERVICE_PROBLEM_KIND, "", str(body["id"])),
        )
        for body, key in rows
    ]


def _alarms(session: Session, problems: list[Problem]) -> list[Alarm]:
    """The alarms behind the ticket's problems: those on what each problem is about
    (its correlation key), newest first, in one query."""
    keys = [p.key for p in problems if p.key]
    if not keys:
        return []
    bodies = session.scalars(
        select(AlarmRow.body)
        .where(AlarmRow.correlation_key.in_(keys))
        .order_by(AlarmRow.created_at.desc(), AlarmRow.id)
        .limit(ALARM_LIMIT)
    ).all()
    return [
        Alarm(
            id=str(body.get("id")),
            state=str(body.get("state") or ""),
            severity=str(body.get("perceivedSeverity") or ""),
            object=str((body.get("alarmedObject") or {}).get("id") or ""),
            raised=when(body.get("alarmRaisedTime")),
            text=str(body.get("alarmDetails") or body.get("probableCause") or ""),
        )
        for body in bodies
    ]


def ticket_page(
    session: Session, principal: Principal, ticket_id: str, *, now: datetime
) -> TicketPage:
    """A ticket with its clock, paused time, problems and alarms, history and notes:
    at most four queries (the ticket, its customer's name, its problems, their alarms)."""
    staff_only(principal)
    body, _ = resources.get(session, TROUBLE_TICKET_KIND, principal, ticket_id)
    owner = customer_of(body)
    names = _customer_names(session, {owner} if owner else set())
    problems = alarms = None
    if _may(SERVICE_PROBLEM_KIND, principal, READ):
        problems = _problems(session, principal, _problem_ids(body))
        if _may(ALARM_KIND, principal, READ):
            alarms = _alarms(session, problems)
    can_work = _may(TROUBLE_TICKET_KIND, principal, UPDATE)
    return TicketPage(
        ticket=body,
        title=str(body.get("name") or body.get("description") or body["id"])[:80],
        customer_id=owner,
        customer_name=names.get(owner, owner) if owner else "",
        clock=clock(body, now),
        paused=paused_time(body, now),
        history=[e for e in body.get("statusChange") or [] if isinstance(e, dict)],
        notes=[n for n in body.get("note") or [] if isinstance(n, dict)],
        problems=problems,
        alarms=alarms,
        can_work=can_work,
        can_message=(
            can_work
            and owner is not None
            and _may(COMMUNICATION_MESSAGE_KIND, principal, CREATE)
            and body.get("status") not in FINAL
        ),
    )


def take_up(session: Session, principal: Principal, ticket_id: str, *, now: datetime) -> None:
    """Staff take the ticket up (or resume it): to inProgress, as the API's PATCH."""
    staff_only(principal)
    tickets.take_up(session, principal, ticket_id, now=now)


def resolve(
    session: Session,
    principal: Principal,
    ticket_id: str,
    form: dict[str, str],
    *,
    now: datetime,
) -> TicketPage | None:
    """Resolve the ticket with what was done (3.6.3): its resolution text is the status
    change's reason, which the customer is told and asked to confirm (3.6.4). None when
    resolved; else the page again with the reason beside the field."""
    page = ticket_page(session, principal, ticket_id, now=now)
    page.resolution = form.get("resolution", "").strip()
    if not page.resolution:
        page.errors["resolution"] = "empty"
    elif len(page.resolution) > TEXT_MAX:
        page.errors["resolution"] = "long"
    elif page.status != "inProgress":
        # The page was open while someone else moved it: say so beside the form.
        page.errors["resolution"] = "state"
    if page.errors:
        return page
    tickets.change_status(
        session, principal, ticket_id, "resolved", reason=page.resolution, now=now
    )
    return None


def message_customer(
    session: Session,
    principal: Principal,
    ticket_id: str,
    form: dict[str, str],
    *,
    now: datetime,
) -> TicketPage | None:
    """Write to the ticket's customer (TMF681, category information, to every contact
    of the customer as the service's own messages) and note it on the ticket. None when
    written; else the page again with the reason beside each bad field."""
    page = ticket_page(session, principal, ticket_id, now=now)
    page.subject = form.get("subject", "").strip()
    page.content = form.get("content", "").strip()
    if not page.can_message:
        raise Forbidden("this ticket names no customer, or your role may not write to one")
    if not page.subject:
        page.errors["subject"] = "empty"
    elif len(page.subject) > SUBJECT_MAX:
        page.errors["subject"] = "long"
    if not page.content:
        page.errors["content"] = "empty"
    elif len(page.content) > TEXT_MAX:
        page.errors["content"] = "long"
    if page.errors:
        return page
    assert page.customer_id is not None
    # The same form sent twice (a double click) is one message: the key is what was
    # written, on this ticket, after the notes it had then.
    digest = hashlib.sha256(f"{page.subject}\n{page.content}".encode()).hexdigest()[:16]
    key = f"desk/ticket/{ticket_id}/{len(page.notes)}/{digest}"
    message = write_message(
        session,
        principal,
        customer_id=page.customer_id,
        subject=page.subject,
        content=page.content,
        key=key,
        category=INFORMATION,
        related_entity=[{"id": ticket_id, "role": "ticket", "@referredType": "TroubleTicket"}],
    )
    if message is None:  # only marketing is ever skipped
        raise InvalidRequest("the message was not written")
    note = {
        "author": principal.name,
        "date": iso(now),
        "text": f"Message {message['id']} to the customer: {page.subject}",
    }
    if any(n.get("text") == note["text"] for n in page.notes):
        return None  # the double click: noted already
    resources.patch(
        session, TROUBLE_TICKET_KIND, principal, ticket_id, {"note": [*page.notes, note]}
    )
    return None
