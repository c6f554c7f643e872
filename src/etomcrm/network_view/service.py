"""The customer network view (seed 5.1, Customer Network Management): what a customer
sees of its own network in the portal — topology with live status, traffic over time,
open problems and its SLA standing this period. Only its own, always."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.orm import Session

from etomcrm.core import resources
from etomcrm.core.clock import iso
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.service import CUSTOMER_KIND
from etomcrm.network.models import NetworkLinkRow, NetworkMeasurementRow
from etomcrm.network_view.topology import topology_of
from etomcrm.order_handling.models import ProductRow
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.qos_sla.models import QosAssessmentRow
from etomcrm.security.service import Principal

GRANULARITIES = {
    "hour": (13, "YYYY-MM-DD HH24"),
    "day": (10, "YYYY-MM-DD"),
    "month": (7, "YYYY-MM"),
}
CLOSED_TICKETS = ("closed", "cancelled", "rejected")


def _visible_customer(session: Session, principal: Principal, customer_id: str) -> None:
    # A customer asking about another customer gets the same 404 as for nothing at all.
    resources.get(session, CUSTOMER_KIND, principal, customer_id)


def network_view(
    session: Session, principal: Principal, customer_id: str, *, period: str
) -> JsonDict:
    """Customer Network Management (seed 5.1): topology with the status of every site
    and link, open problems and the SLA standing of the period, in a bounded number of
    queries."""

    _visible_customer(session, principal, customer_id)
    return {
        "customerId": customer_id,
        "period": period,
        "topology": topology_of(session, customer_id),
        "openProblems": open_problems(session, customer_id),
        "slaStanding": sla_standing(session, customer_id, period),
    }


def open_problems(session: Session, customer_id: str) -> list[JsonDict]:
    bodies = session.scalars(
        select(TroubleTicketRow.body)
        .where(
            TroubleTicketRow.owner_customer_id == customer_id,
            TroubleTicketRow.status.not_in(CLOSED_TICKETS),
        )
        .order_by(TroubleTicketRow.created_at)
    ).all()
    return [
        {
            "id": body["id"],
            "name": body.get("name", ""),
            "status": body.get("status"),
            "priority": body.get("priority"),
            "expectedResolutionDate": body.get("expectedResolutionDate"),
        }
        for body in bodies
    ]


def sla_standing(session: Session, customer_id: str, period: str) -> list[JsonDict]:
    rows = session.execute(
        select(QosAssessmentRow)
        .join(ProductRow, ProductRow.id == QosAssessmentRow.product_id)
        .where(ProductRow.owner_customer_id == customer_id, QosAssessmentRow.period == period)
        .order_by(QosAssessmentRow.product_id, QosAssessmentRow.metric)
    ).scalars()
    return [
        {
            "productId": row.product_id,
            "metric": row.metric,
            "measured": str(row.measured),
            "target": str(row.target),
            "met": row.met,
            "final": row.final,
        }
        for row in rows
    ]


def _bucket(dialect: str, granularity: str, column: Any) -> ColumnElement[str]:
    length, pattern = GRANULARITIES[granularity]
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), literal(pattern))
    # SQLite keeps UTC as text "YYYY-MM-DD HH:MM:SS...": a prefix is the bucket.
    return func.substr(column, 1, length)


def traffic(
    session: Session,
    principal: Principal,
    customer_id: str,
    *,
    granularity: str,
    start: datetime,
    end: datetime,
    site_id: str | None = None,
) -> JsonDict:
    """Traffic volume over time per site (bytes in and out per hour, day or month), from
    the network's performance data, summed in the database (one query)."""

    if granularity not in GRANULARITIES:
        raise InvalidRequest(
            f"granularity is one of {', '.join(GRANULARITIES)}, not {granularity!r}"
        )
    if end <= start:
        raise InvalidRequest("'to' must be after 'from'")
    _visible_customer(session, principal, customer_id)
    bind = session.get_bind()
    bucket = _bucket(bind.dialect.name, granularity, NetworkMeasurementRow.at).label("bucket")
    stmt = (
        select(
            NetworkMeasurementRow.site_id,
            bucket,
            func.sum(NetworkMeasurementRow.bytes_in),
            func.sum(NetworkMeasurementRow.bytes_out),
        )
        .join(NetworkLinkRow, NetworkLinkRow.id == NetworkMeasurementRow.link_id)
        .where(
            NetworkLinkRow.customer_id == customer_id,
            NetworkMeasurementRow.at >= start,
            NetworkMeasurementRow.at < end,
        )
        .group_by(NetworkMeasurementRow.site_id, bucket)
        .order_by(NetworkMeasurementRow.site_id, bucket)
    )
    if site_id is not None:
        stmt = stmt.where(NetworkMeasurementRow.site_id == site_id)
    sites: dict[str, list[JsonDict]] = {}
    for site, when, bytes_in, bytes_out in session.execute(stmt):
        sites.setdefault(site, []).append(
            {
                "period": _iso_bucket(str(when), granularity),
                "bytesIn": int(bytes_in or 0),
                "bytesOut": int(bytes_out or 0),
            }
        )
    return {
        "customerId": customer_id,
        "granularity": granularity,
        "from": iso(start),
        "to": iso(end),
        "sites": [{"siteId": s, "volume": v} for s, v in sites.items()],
    }


def _iso_bucket(text: str, granularity: str) -> str:
    if granularity == "hour":
        return text.replace(" ", "T") + ":00:00Z"
    return text
