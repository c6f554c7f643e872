"""The staff's customer requests (3.2.2, issue 11): the requests of the person's queue,
oldest first, each with its customer, and taking one up (open → in progress), as the
API's ``customerRequest`` list and PATCH do. One service call per page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.customer_interface import requests
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.customer_interface.service import customer_of
from etomcrm.pages.portal_views import when
from etomcrm.security.service import Principal

LIMIT = 200


@dataclass(frozen=True)
class RequestLine:
    id: str
    subject: str
    customer_id: str
    customer_name: str
    channel: str
    status: str
    logged: str


@dataclass(frozen=True)
class RequestsPage:
    lines: list[RequestLine]
    total: int


def requests_page(session: Session, principal: Principal) -> RequestsPage:
    """The open and in-progress requests of the principal's queue (an admin: every
    queue), oldest first, at most :data:`LIMIT`, with their customers' names: three
    queries whatever their number."""
    items, total = requests.request_queue(session, principal, limit=LIMIT)
    ids = {customer_of(body) or "" for body in items} - {""}
    names: dict[str, str] = {}
    if ids:
        names = {
            row_id: str(name or row_id)
            for row_id, name in session.execute(
                select(CustomerRow.id, CustomerRow.name).where(CustomerRow.id.in_(ids))
            )
        }
    lines = []
    for body in items:
        customer_id = customer_of(body) or ""
        channels = body.get("channel") or [{}]
        lines.append(
            RequestLine(
                id=str(body["id"]),
                subject=str(body.get("reason") or ""),
                customer_id=customer_id,
                customer_name=names.get(customer_id, customer_id),
                channel=str(channels[0].get("name") or ""),
                status=str(body.get("status") or ""),
                logged=when(body.get("interactionDate") or body.get("creationDate")),
            )
        )
    return RequestsPage(lines, total)


def take_up(session: Session, principal: Principal, request_id: str) -> str:
    """Take a request up (open → in progress, noted with who took it); its customer."""
    body = requests.update_customer_request(
        session, principal, request_id, status="inProgress", note=f"taken up by {principal.name}"
    )
    return customer_of(body) or ""
