"""3.2.2 Customer communication (TMF681): messages to a customer's contacts, sent once.

A message is written first (``state: initial``) in the transaction of the change it
reports, and handed to a :class:`MessageChannel` later by :func:`deliver_pending_messages`;
so nothing leaves the house unless the change that caused it was committed.

Who receives a message: every e-mail address found on the customer (``contactMedium``),
on its engaged party and on the parties its ``relatedParty`` names (its contacts).

Opt-out from marketing is recorded in one of two ways, both TMF extension attributes:

* a characteristic ``{"name": "marketingOptOut", "value": true}`` on the customer
  (``characteristic``) or on a party (``partyCharacteristic``): the whole customer, or
  that contact, receives no marketing at all;
* ``"marketingOptOut": true`` on one ``contactMedium`` entry: that address only.

Opt-out applies to marketing messages (``category: "marketing"``); service messages
(``category: "information"``, what :func:`inform_customer` sends) still go, because a
customer must hear about its orders, faults and bills.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from etomcrm.config import get_settings
from etomcrm.core import resources
from etomcrm.core.clock import iso
from etomcrm.core.errors import Conflict, IllegalTransition, InvalidRequest, NotFound
from etomcrm.core.resources import READ, RefSpec, validate_against
from etomcrm.core.tmf_schemas import COMMUNICATION, JsonDict
from etomcrm.core.totals import forget_totals
from etomcrm.customer_interface.models import (
    CommunicationMessageRow,
    CustomerRow,
    IndividualRow,
    OrganizationRow,
)
from etomcrm.customer_interface.service import CustomerOwnedKind
from etomcrm.db import after_commit, session_scope, utcnow
from etomcrm.security.service import STAFF_ROLES, SYSTEM, Principal, Role

OPT_OUT = "marketingOptOut"
MARKETING, INFORMATION = "marketing", "information"
CATEGORIES = frozenset({MARKETING, INFORMATION})
# Message ids are uuid5 of the sender's key in this namespace: the same key, the same id.
MESSAGE_NAMESPACE = uuid.UUID("6f1c5a43-2d0e-4c55-9d0b-0b3e6c1f7a21")
DEFAULT_TRY_TIMES = 3


def _now_text() -> str:
    return iso(utcnow())


def message_id_for(key: str) -> str:
    """The id of the message a sender writes under ``key``."""
    return str(uuid.uuid5(MESSAGE_NAMESPACE, key))


# ----- who receives what -------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    """One e-mail address of a customer, and whether it takes marketing."""

    email: str
    name: str
    party: JsonDict | None
    opted_out: bool


def _flagged(characteristics: Any) -> bool:
    for item in characteristics or []:
        if isinstance(item, dict) and item.get("name") == OPT_OUT:
            return item.get("value") in (True, "true", "True", "yes", 1)
    return False


def _emails(contact_medium: Any) -> list[tuple[str, bool]]:
    """(address, opted out) of every e-mail medium that is still valid."""
    now = _now_text()
    found = []
    for medium in contact_medium or []:
        if not isinstance(medium, dict):
            continue
        address = (medium.get("characteristic") or {}).get("emailAddress")
        end = (medium.get("validFor") or {}).get("endDateTime")
        if isinstance(address, str) and address.strip() and not (end and end < now):
            found.append((address.strip(), medium.get(OPT_OUT) is True))
    return found


def _party_name(body: JsonDict) -> str:
    for key in ("fullName", "tradingName", "name"):
        if isinstance(body.get(key), str):
            return str(body[key])
    names = [body.get("givenName"), body.get("familyName")]
    return " ".join(n for n in names if isinstance(n, str)) or str(body.get("id"))


def customer_contacts(session: Session, customer_id: str) -> list[Contact]:
    """Every e-mail address the customer can be reached at, each once."""
    customer = session.scalar(select(CustomerRow.body).where(CustomerRow.id == customer_id))
    if customer is None:
        raise NotFound(f"no customer with id {customer_id}")
    company_out = _flagged(customer.get("characteristic"))
    refs = [customer.get("engagedParty"), *(customer.get("relatedParty") or [])]
    party_ids = {
        r["id"]
        for r in refs
        if isinstance(r, dict)
        and isinstance(r.get("id"), str)
        and r.get("@referredType") in (None, "Individual", "Organization")
    }
    parties: list[JsonDict] = []
    if party_ids:
        for row in (IndividualRow, OrganizationRow):
            parties.extend(session.scalars(select(row.body).where(row.id.in_(party_ids))))
    contacts: dict[str, Contact] = {}
    customer_ref = {"id": customer_id, "@referredType": "Customer", "name": customer.get("name")}
    for email, medium_out in _emails(customer.get("contactMedium")):
        name = str(customer.get("name") or customer_id)
        contacts.setdefault(
            email.lower(), Contact(email, name, customer_ref, company_out or medium_out)
        )
    for party in sorted(parties, key=lambda p: str(p["id"])):
        party_out = company_out or _flagged(party.get("partyCharacteristic"))
        ref = {"id": party["id"], "@referredType": party.get("@type", "Individual")}
        for email, medium_out in _emails(party.get("contactMedium")):
            contacts.setdefault(
                email.lower(), Contact(email, _party_name(party), ref, party_out or medium_out)
            )
    return list(contacts.values())


# ----- writing a message -------------------------------------------------------------


def _receiver(contact: Contact) -> JsonDict:
    receiver: JsonDict = {"email": contact.email, "name": contact.name}
    if contact.party is not None:
        receiver["party"] = {k: v for k, v in contact.party.items() if v is not None}
    return receiver


def write_message(
    session: Session,
    principal: Principal,
    *,
    customer_id: str,
    subject: str,
    content: str,
    key: str,
    category: str,
    related_entity: list[JsonDict] | None = None,
    attachment: list[JsonDict] | None = None,
    to: list[str] | None = None,
) -> JsonDict | None:
    """Write one message to the customer's contacts, once per ``key``; ``to`` names the
    addresses instead when the message is for one contact (a bill to the billing
    contact).

    Returns the message written earlier under the same key if there is one. Marketing
    goes only to contacts who have not opted out; when none is left nothing is written
    and None is returned. A customer without any e-mail address still gets the message
    recorded, as ``failed`` with the reason, so staff see that it could not be sent.
    """
    if category not in CATEGORIES:
        raise InvalidRequest(f"message category must be one of {', '.join(sorted(CATEGORIES))}")
    if not subject.strip() or not content.strip():
        raise InvalidRequest("a message needs a subject and a content")
    mid = message_id_for(key)
    existing = session.get(CommunicationMessageRow, mid)
    if existing is not None:
        return existing.body
    contacts = (
        [Contact(email, email, None, False) for email in to]
        if to
        else customer_contacts(session, customer_id)
    )
    if category == MARKETING:
        contacts = [c for c in contacts if not c.opted_out]
        if not contacts:
            return None
    settings = get_settings()
    body: JsonDict = {
        "id": mid,
        "@type": "CommunicationMessage",
        "messageType": "email",
        "subject": subject,
        "content": content,
        "priority": "1" if category == INFORMATION else "5",
        "logFlag": True,
        "tryTimes": DEFAULT_TRY_TIMES,
        "state": "initial",
        "sender": {"email": settings.message_sender, "name": "Customer service"},
        "receiver": [_receiver(c) for c in contacts],
        "characteristic": [{"name": "category", "value": category}],
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "creationDate": _now_text(),
    }
    if related_entity:
        body["relatedEntity"] = related_entity
    if attachment:
        body["attachment"] = attachment
    if not contacts:
        body["state"] = "failed"
        body["characteristic"].append(
            {
                "name": "deliveryError",
                "value": "the customer has no e-mail address on record; add a contactMedium",
            }
        )
    validate_against(COMMUNICATION, "CommunicationMessage", body, "message")
    row = CommunicationMessageRow(
        id=mid,
        at_type="CommunicationMessage",
        name=subject[:200],
        status=body["state"],
        owner_customer_id=customer_id,
        body=body,
        version=1,
    )
    try:
        # A savepoint: a concurrent writer of the same key makes only this insert fail.
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        found = session.get(CommunicationMessageRow, mid)
        if found is None:
            raise
        return found.body
    resources.record_audit(
        session, principal, "create", COMMUNICATION_MESSAGE_KIND, mid, {"created": body}
    )
    resources.emit_change(session, COMMUNICATION_MESSAGE_KIND, "create", body, customer_id, "")
    after_commit(session, lambda: forget_totals(COMMUNICATION_MESSAGE_KIND.name))
    return body


def inform_customer(
    session: Session,
    *,
    customer_id: str,
    subject: str,
    content: str,
    key: str,
    principal: Principal = SYSTEM,
    related_entity: list[JsonDict] | None = None,
) -> JsonDict:
    """3.2.2 Handle customer requests (eTOM 1.1.1.2): tell the customer what happened.

    Writes a service message (category ``information``, sent despite a marketing opt-out)
    to every contact of the customer. Exactly once per ``key``: a flow step that runs
    again after a crash gets the first message back and nothing more is sent.
    """
    body = write_message(
        session,
        principal,
        customer_id=customer_id,
        subject=subject,
        content=content,
        key=key,
        category=INFORMATION,
        related_entity=related_entity,
    )
    assert body is not None  # only marketing is ever skipped
    return body


# ----- channels ----------------------------------------------------------------------


class MessageChannel(Protocol):
    """Where messages leave the house: a mail server, a file drop, a test double."""

    def send(self, message: EmailMessage, message_id: str) -> None:
        """Send one message; raise on failure. Sending the same id twice must be harmless
        where the channel can make it so."""


def to_email(body: JsonDict) -> EmailMessage:
    """The RFC 5322 form of a communicationMessage."""
    message = EmailMessage()
    sender = body.get("sender") or {}
    message["From"] = sender.get("email") or get_settings().message_sender
    message["To"] = ", ".join(r["email"] for r in body.get("receiver", []) if r.get("email"))
    message["Subject"] = body.get("subject", "")
    message["Date"] = format_datetime(utcnow())
    # The same Message-ID on a re-send lets mail systems drop the duplicate.
    message["Message-ID"] = f"<{body['id']}@etomcrm.local>"
    message.set_content(body.get("content", ""))
    for item in body.get("attachment") or []:
        if isinstance(item, dict) and item.get("url"):
            message.add_header("X-Collateral", f"{item.get('name', '')} <{item['url']}>")
    return message


class FileChannel:
    """One ``<message id>.eml`` file per message: a re-send overwrites, never duplicates."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, message_id: str) -> Path:
        return self.directory / f"{message_id}.eml"

    def send(self, message: EmailMessage, message_id: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Written beside and renamed, so a reader never sees half a message.
        fd, temp = tempfile.mkstemp(dir=self.directory, suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes())
        os.replace(temp, self.path_for(message_id))


class SmtpChannel:
    """Mail through a server: ``smtp://user:password@host:port`` (``?starttls=true``) or
    ``smtps://...`` for TLS from the start."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise InvalidRequest(f"smtp_url must look like smtp://host:port, not {url!r}")
        self.tls = parts.scheme == "smtps"
        self.starttls = parse_qs(parts.query).get("starttls", ["false"])[0] == "true"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.tls else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None

    def send(self, message: EmailMessage, message_id: str) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP = (
            smtplib.SMTP_SSL(self.host, self.port, context=context, timeout=30)
            if self.tls
            else smtplib.SMTP(self.host, self.port, timeout=30)
        )
        with smtp:
            if self.starttls:
                smtp.starttls(context=context)
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)


def default_channel() -> MessageChannel:
    settings = get_settings()
    if settings.smtp_url:
        return SmtpChannel(settings.smtp_url)
    return FileChannel(settings.message_dir)


# ----- delivery ----------------------------------------------------------------------


def _characteristic(body: JsonDict, name: str, value: Any) -> None:
    items = [c for c in body.get("characteristic", []) if c.get("name") != name]
    items.append({"name": name, "value": value})
    body["characteristic"] = items


def _store(session: Session, row: CommunicationMessageRow, body: JsonDict) -> None:
    old = row.body
    row.body = body
    row.status = body["state"]
    row.version += 1
    row.updated_at = utcnow()
    changes = {
        k: {"old": old.get(k), "new": body.get(k)}
        for k in set(old) | set(body)
        if old.get(k) != body.get(k)
    }
    resources.record_audit(session, SYSTEM, "update", COMMUNICATION_MESSAGE_KIND, row.id, changes)
    resources.emit_change(
        session, COMMUNICATION_MESSAGE_KIND, "update", body, row.owner_customer_id, ""
    )
    if old.get("state") != body["state"]:
        resources.emit_change(
            session, COMMUNICATION_MESSAGE_KIND, "state", body, row.owner_customer_id, ""
        )


def deliver_pending_messages(
    session: Session, channel: MessageChannel | None = None, limit: int = 100
) -> int:
    """Send messages not yet sent and mark them ``completed``; returns how many went.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite writers are one
    at a time anyway), so two processes never send the same message. A send that fails
    is retried on the next call until ``tryTimes`` is spent, then the message is
    ``failed``. Should the process die between the send and the commit, the message is
    sent again with the same file name and Message-ID: the file sink overwrites it and
    a mail system can drop the duplicate.
    """
    channel = channel or default_channel()
    stmt = (
        select(CommunicationMessageRow)
        .where(CommunicationMessageRow.status == "initial")
        .order_by(CommunicationMessageRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    sent = 0
    for row in session.scalars(stmt).all():
        body = dict(row.body)
        scheduled = body.get("scheduledSendTime")
        if isinstance(scheduled, str) and scheduled > _now_text():
            continue
        body["sendTime"] = _now_text()
        try:
            channel.send(to_email(body), row.id)
        except Exception as error:  # a channel may fail in any way; the message stays
            attempts = 1 + next(
                (
                    int(c["value"])
                    for c in body.get("characteristic", [])
                    if c.get("name") == "deliveryAttempts"
                ),
                0,
            )
            _characteristic(body, "deliveryAttempts", attempts)
            _characteristic(body, "deliveryError", f"{type(error).__name__}: {error}"[:500])
            if attempts >= int(body.get("tryTimes") or DEFAULT_TRY_TIMES):
                body["state"] = "failed"
            _store(session, row, body)
            continue
        body["state"] = "completed"
        body["sendTimeComplete"] = _now_text()
        _store(session, row, body)
        sent += 1
    if sent:
        after_commit(session, lambda: forget_totals(COMMUNICATION_MESSAGE_KIND.name))
    return sent


# ----- the API kind ------------------------------------------------------------------


@dataclass
class CommunicationMessageKind(CustomerOwnedKind):
    """Staff write messages to a customer (named in ``relatedParty``); the delivery sends
    them. Once a message has left, it is a record and does not change."""

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        super().before_save(session, principal, body, old)
        if old is None:
            customers = [
                p
                for p in body.get("relatedParty", []) or []
                if isinstance(p, dict) and p.get("@referredType") == "Customer"
            ]
            if not customers:
                raise InvalidRequest(
                    "name the customer the message is for: relatedParty "
                    '[{"id": ..., "@referredType": "Customer", "role": "customer"}]'
                )
            if body.get("state", "initial") != "initial":
                raise InvalidRequest("a new message starts in state initial; delivery sends it")
            body["state"] = "initial"
            body.setdefault("logFlag", True)
            body.setdefault("tryTimes", DEFAULT_TRY_TIMES)
            categories = [
                c.get("value")
                for c in body.get("characteristic", [])
                if c.get("name") == "category"
            ]
            if not categories:
                _characteristic(body, "category", INFORMATION)
            elif categories[0] not in CATEGORIES:
                raise InvalidRequest(
                    f"characteristic category must be one of {', '.join(sorted(CATEGORIES))}"
                )
            return
        before, after = old.get("state", "initial"), body.get("state")
        if before != "initial":
            raise Conflict(
                f"communicationMessage {old['id']} is {before}; a message that was sent, "
                "failed or cancelled is a record and does not change"
            )
        if before != after and after != "cancelled":
            raise IllegalTransition(
                f"communicationMessage state cannot change from {before!r} to {after!r} "
                "by request; allowed from 'initial': cancelled (the delivery sends it)"
            )


COMMUNICATION_MESSAGE_KIND = CommunicationMessageKind(
    name="communicationMessage",
    type_name="CommunicationMessage",
    doc=COMMUNICATION,
    row=CommunicationMessageRow,
    write_roles=STAFF_ROLES - {Role.ANALYST},
    customer_operations=frozenset({READ}),
    refs=(RefSpec("relatedParty[]"),),
    status_attribute="state",
    name_attribute="subject",
    ended_not_deleted="a message stays in the contact history; an unsent one can be cancelled",
    extensions={
        "relatedParty": resources.LIST,
        "relatedEntity": resources.LIST,
        "creationDate": resources.INSTANT,
    },
)


def deliver_messages() -> int:
    """Deliver the messages waiting for their channel, in a transaction of its own."""
    with session_scope() as session:
        return deliver_pending_messages(session)
