"""3.2.2 Handle customer requests: log every inbound request, classify it, route it.

A request is a TMF683 ``partyInteraction`` of ``@type`` ``CustomerRequest`` with these
extension attributes:

- ``classification``: ``selling``, ``orderHandling``, ``problemHandling`` or ``billing``;
- ``classifiedBy``: ``rule`` (the keyword rules below) or ``staff`` (a person decided);
- ``classificationReason``: the keywords that matched, or who overrode the rule;
- ``routedTo``: the queue, which is the staff role that serves the request.

The classification rule reads the subject and description (case-insensitive, whole
words or phrases, English and German) and counts the keywords of each class in
:data:`KEYWORDS`. The class with the most hits wins; a tie goes to the class listed
first (a fault outranks a bill, a bill outranks an order, an order outranks a sale,
because a customer waiting on a fault loses most). With no hit the request goes to
selling, whose account managers own the relationship and triage the rest.

Status: ``open`` → ``inProgress`` → ``resolved`` → ``closed`` (see
:data:`REQUEST_TRANSITIONS`); the requester reads its requests and their status.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.core import resources, states
from etomcrm.core.bus import record
from etomcrm.core.clock import iso
from etomcrm.core.errors import Forbidden, InvalidRequest, NotFound
from etomcrm.core.resources import READ
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.events import SellingRequestLogged
from etomcrm.customer_interface.models import CustomerRow, PartyInteractionRow
from etomcrm.customer_interface.service import PARTY_INTERACTION_KIND, REQUEST_TRANSITIONS
from etomcrm.db import utcnow
from etomcrm.security.service import SELLERS, SYSTEM, Principal, Role

REQUEST_TYPE = "CustomerRequest"
CHANNELS = ("portal", "api", "phone", "email")
# What a customer can use itself; phone and e-mail requests are logged by staff.
CUSTOMER_CHANNELS = ("portal", "api")

# classification -> the queue (staff role) that serves it
QUEUES: dict[str, Role] = {
    "problemHandling": Role.SUPPORT,
    "billing": Role.BILLING,
    "orderHandling": Role.ORDER_MANAGER,
    "selling": Role.SALES,
}
DEFAULT_CLASSIFICATION = "selling"
# In tie-break order: the first class with the most hits wins.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "problemHandling": (
        "outage",
        "down",
        "fault",
        "broken",
        "not working",
        "no connection",
        "unreachable",
        "packet loss",
        "slow",
        "latency",
        "alarm",
        "ticket",
        "störung",
        "ausfall",
        "defekt",
        "keine verbindung",
    ),
    "billing": (
        "invoice",
        "bill",
        "billing",
        "charge",
        "charged",
        "payment",
        "refund",
        "credit note",
        "direct debit",
        "overcharged",
        "rechnung",
        "gutschrift",
        "zahlung",
        "lastschrift",
    ),
    "orderHandling": (
        "order",
        "delivery",
        "installation",
        "install",
        "appointment",
        "activation",
        "cancel",
        "cancellation",
        "delay",
        "bestellung",
        "auftrag",
        "lieferung",
        "termin",
        "storno",
    ),
    "selling": (
        "quote",
        "offer",
        "price",
        "pricing",
        "new site",
        "new sites",
        "upgrade",
        "interested",
        "buy",
        "extranet",
        "access",
        "proposal",
        "angebot",
        "preis",
        "interesse",
        "anfrage",
    ),
}
_PATTERNS = {
    cls: [(word, re.compile(rf"(?<!\w){re.escape(word)}(?!\w)")) for word in words]
    for cls, words in KEYWORDS.items()
}

REQUEST_STATES = tuple(REQUEST_TRANSITIONS)


def classify(subject: str, description: str) -> tuple[str, list[str]]:
    """The class the keyword rules give a request, and the keywords that decided it."""
    text = f"{subject}\n{description}".lower()
    best, best_hits = DEFAULT_CLASSIFICATION, list[str]()
    for cls, patterns in _PATTERNS.items():
        hits = [word for word, pattern in patterns if pattern.search(text)]
        if len(hits) > len(best_hits):
            best, best_hits = cls, hits
    return best, best_hits


def _check_classification(classification: str) -> None:
    if classification not in QUEUES:
        raise InvalidRequest(
            f"unknown classification {classification!r}; use one of {', '.join(QUEUES)}"
        )


def _customer_ref(customer_id: str) -> JsonDict:
    return {"id": customer_id, "@referredType": "Customer", "role": "requester"}


def handle_customer_request(
    session: Session,
    principal: Principal,
    *,
    customer_id: str,
    channel: str,
    subject: str,
    description: str,
    classification: str | None = None,
) -> JsonDict:
    """3.2.2 Handle Customer Request (eTOM 1.1.1.2.2): log, classify and route a request.

    A customer files its own requests (portal or API); staff log phone and e-mail
    requests for any customer and may override the classification. A request routed
    to selling opens a sales lead (3.4.1) and names it in ``interactionItem``.
    """
    if principal.is_customer and customer_id != principal.customer_id:
        raise NotFound(f"no customer with id {customer_id}")
    if channel not in CHANNELS:
        raise InvalidRequest(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
    if principal.is_customer and channel not in CUSTOMER_CHANNELS:
        raise InvalidRequest(
            f"a customer files requests through {' or '.join(CUSTOMER_CHANNELS)}; "
            f"{channel} requests are logged by our staff"
        )
    if not subject.strip():
        raise InvalidRequest("a request needs a subject that says what it is about")
    if session.get(CustomerRow, customer_id) is None:
        raise NotFound(f"no customer with id {customer_id}")
    if classification is not None:
        if principal.is_customer:
            raise Forbidden("only staff may choose a request's classification")
        _check_classification(classification)
        reason = f"set by {principal.name} ({principal.role.value})"
        decided_by = "staff"
    else:
        classification, hits = classify(subject, description)
        reason = (
            f"keywords: {', '.join(hits)}"
            if hits
            else f"no keyword matched; {DEFAULT_CLASSIFICATION} triages unclassified requests"
        )
        decided_by = "rule"
    payload: JsonDict = {
        "@type": REQUEST_TYPE,
        "@baseType": "PartyInteraction",
        "reason": subject.strip(),
        "description": description,
        "direction": "inbound",
        "channel": [{"id": channel, "name": channel}],
        "status": "open",
        "relatedParty": [_customer_ref(customer_id)],
        "classification": classification,
        "classifiedBy": decided_by,
        "classificationReason": reason,
        "routedTo": QUEUES[classification].value,
    }
    body, _, _ = resources.create(session, PARTY_INTERACTION_KIND, principal, payload)
    if classification == "selling":
        body = _open_lead(session, principal, body, customer_id, channel)
    return body


class SellingIntake(Protocol):
    """3.4.1 as 3.2.2 hands it a selling request: records the lead and returns it."""

    def __call__(
        self,
        session: Session,
        principal: Principal,
        *,
        customer_id: str,
        name: str,
        description: str,
        channel: str,
    ) -> JsonDict: ...


# Selling builds on this area, so the composition root hands its intake in. The request
# and its lead are stored in one transaction, or neither is.
_selling_intake: list[SellingIntake] = []


def route_selling_requests_to(intake: SellingIntake) -> None:
    """Wire 3.4.1's intake (called by the composition root)."""
    _selling_intake[:] = [intake]


def _open_lead(
    session: Session, principal: Principal, body: JsonDict, customer_id: str, channel: str
) -> JsonDict:
    if not _selling_intake:
        raise RuntimeError("no selling intake is wired: call etomcrm.bootstrap.bootstrap()")
    # A seller who logs the request owns the lead; otherwise (the customer itself, a
    # support agent taking a call) the house opens it for the sales queue.
    lead = _selling_intake[0](
        session,
        principal if principal.role in SELLERS else SYSTEM,
        customer_id=customer_id,
        name=body["reason"],
        description=body.get("description", ""),
        channel=channel,
    )
    # The pre-sale flow takes the request from here (3.4.1 onwards), once it is stored.
    owner = principal.name if principal.role in SELLERS else "sales"
    record(session, SellingRequestLogged(str(body["id"]), customer_id, owner))
    item = {"id": lead["id"], "role": "salesLead", "@referredType": "SalesLead"}
    if lead.get("name"):
        item["name"] = lead["name"]
    return _system_patch(
        session, body["id"], {"interactionItem": [{"id": "1", "item": item, "reason": "lead"}]}
    )


def _system_patch(session: Session, request_id: str, changes: JsonDict) -> JsonDict:
    body, _ = resources.patch(session, PARTY_INTERACTION_KIND, SYSTEM, request_id, changes)
    return body


def _load_request(session: Session, principal: Principal, request_id: str) -> JsonDict:
    body, _ = resources.get(session, PARTY_INTERACTION_KIND, principal, request_id)
    if body.get("@type") != REQUEST_TYPE:
        raise NotFound(f"no customer request with id {request_id}")
    return body


def update_customer_request(
    session: Session,
    principal: Principal,
    request_id: str,
    *,
    status: str | None = None,
    classification: str | None = None,
    note: str | None = None,
) -> JsonDict:
    """3.2.2 Handle Customer Request (eTOM 1.1.1.2.2): work a request through its queue.

    Staff move the status along :data:`REQUEST_TRANSITIONS`, re-route a request by
    overriding its classification, and add notes the requester can read.
    """
    if principal.is_customer:
        raise Forbidden("a customer reads its requests; our staff work them")
    if principal.role is Role.ANALYST:
        raise Forbidden("the role 'analyst' may not work customer requests")
    current = _load_request(session, principal, request_id)
    changes: JsonDict = {}
    now = iso(utcnow())
    if status is not None and status != current.get("status"):
        before = str(current.get("status"))
        if status not in REQUEST_TRANSITIONS:
            raise InvalidRequest(
                f"unknown request status {status!r}; states are {', '.join(REQUEST_STATES)}"
            )
        states.check_transition("request status", REQUEST_TRANSITIONS, before, status)
        changes["status"] = status
        changes["statusChangeDate"] = now
    if classification is not None and classification != current.get("classification"):
        _check_classification(classification)
        changes.update(
            classification=classification,
            classifiedBy="staff",
            classificationReason=f"set by {principal.name} ({principal.role.value})",
            routedTo=QUEUES[classification].value,
        )
    if note:
        notes = list(current.get("note") or [])
        notes.append(
            {"id": str(len(notes) + 1), "author": principal.name, "date": now, "text": note}
        )
        changes["note"] = notes
    if not changes:
        return current
    return _system_patch(session, request_id, changes)


def request_queue(
    session: Session,
    principal: Principal,
    *,
    queue: str | None = None,
    statuses: Sequence[str] = ("open", "inProgress"),
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[JsonDict], int]:
    """3.2.2 Handle Customer Request (eTOM 1.1.1.2.2): the requests waiting in a queue.

    Staff see the queue named (default: the queue of their own role; an admin sees every
    queue); a customer sees its own requests. Oldest first; two statements per page.
    """
    PARTY_INTERACTION_KIND.authorize(principal, READ)
    for status in statuses:
        if status not in REQUEST_TRANSITIONS:
            raise InvalidRequest(
                f"unknown request status {status!r}; states are {', '.join(REQUEST_STATES)}"
            )
    conditions: list[Any] = [
        PartyInteractionRow.at_type == REQUEST_TYPE,
        PartyInteractionRow.status.in_(list(statuses)),
    ]
    if principal.is_customer:
        conditions.append(PartyInteractionRow.owner_customer_id == principal.customer_id)
    else:
        if queue is None and principal.role is not Role.ADMIN:
            queue = principal.role.value
        if queue is not None:
            if queue not in {role.value for role in QUEUES.values()}:
                names = ", ".join(role.value for role in QUEUES.values())
                raise InvalidRequest(f"unknown queue {queue!r}; queues are {names}")
            conditions.append(PartyInteractionRow.body["routedTo"].as_string() == queue)
    total = session.scalar(select(func.count()).select_from(PartyInteractionRow).where(*conditions))
    items: list[JsonDict] = []
    if total and offset < total:
        items = list(
            session.scalars(
                select(PartyInteractionRow.body)
                .where(*conditions)
                .order_by(PartyInteractionRow.id)
                .offset(offset)
                .limit(limit)
            )
        )
    return items, total or 0
