"""Operational records written straight into their tables, for the analytical store's
tests: the figures are computed by hand from exactly these."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.analytics import models as an
from etomcrm.billing.dunning_models import DunningCaseRow
from etomcrm.billing.models import AppliedRateRow, CustomerBillRow, UsageRecordRow
from etomcrm.customer_interface.models import CustomerRow, PartyInteractionRow
from etomcrm.db import new_id
from etomcrm.order_handling.models import ProductOrderRow
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.retention.models import PartyRoleRiskAssessmentRow


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _row(row_class: Any, owner: str | None, body: dict[str, Any], **columns: Any) -> Any:
    rid = body.setdefault("id", new_id())
    return row_class(
        id=rid,
        at_type=row_class.__name__.removesuffix("Row"),
        name=columns.pop("name", None),
        status=columns.pop("status", None),
        owner_customer_id=owner,
        body=body,
        **columns,
    )


def customer(
    session: Session, name: str, segment: str | None = None, email: str | None = None
) -> str:
    body: dict[str, Any] = {"name": name, "status": "active"}
    if segment:
        body["characteristic"] = [{"name": "segment", "value": segment}]
    if email:
        body["contactMedium"] = [{"mediumType": "email", "characteristic": {"emailAddress": email}}]
    row = _row(CustomerRow, None, body, name=name, status="active")
    row.owner_customer_id = row.id
    session.add(row)
    session.flush()
    return str(row.id)


def bill(
    session: Session,
    customer_id: str,
    period_start: date,
    lines: list[tuple[str, str, str | None]],
    *,
    issued: bool = True,
) -> str:
    """A bill of the customer with its lines (rate type, net amount, product id)."""
    bill_id = new_id()
    session.add(
        CustomerBillRow(
            id=bill_id,
            at_type="CustomerBill",
            status="settled" if issued else "new",
            owner_customer_id=customer_id,
            body={"id": bill_id},
            billing_account_id="account-" + customer_id,
            bill_no=f"RE-{bill_id[-12:]}" if issued else None,
            period_start=period_start,
            bill_date=period_start,
        )
    )
    for rate_type, amount, product_id in lines:
        session.add(
            AppliedRateRow(
                id=new_id(),
                source_key=new_id(),
                billing_account_id="account-" + customer_id,
                customer_id=customer_id,
                bill_id=bill_id,
                product_id=product_id,
                rate_type=rate_type,
                name=rate_type,
                period_start=period_start,
                tax_excluded=Decimal(amount),
                tax_rate=Decimal("19"),
                tax_amount=Decimal(0),
                tax_included=Decimal(amount),
                currency="EUR",
                characteristic={},
            )
        )
    session.flush()
    return bill_id


def usage(session: Session, customer_id: str, day: date, volume: str) -> None:
    """One usage record of traffic (GB) of the customer, an hour of ``day``."""
    start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    session.add(
        UsageRecordRow(
            usage_id=new_id(),
            customer_id=customer_id,
            usage_type="traffic",
            start_at=start,
            end_at=start.replace(hour=11),
            volume=Decimal(volume),
            unit="GB",
        )
    )
    session.flush()


def completed_order(
    session: Session, customer_id: str, completed: datetime, site_ids: list[str]
) -> str:
    body = {
        "state": "completed",
        "orderDate": completed.isoformat(),
        "completionDate": completed.isoformat(),
        "productOrderItem": [
            {"id": str(i), "action": "add", "product": {"place": [{"id": site}]}}
            for i, site in enumerate(site_ids, 1)
        ],
    }
    row = _row(ProductOrderRow, customer_id, body, status="completed")
    session.add(row)
    session.flush()
    return str(row.id)


def ticket(session: Session, customer_id: str, opened: datetime, resolved: datetime | None) -> str:
    body: dict[str, Any] = {"creationDate": opened.isoformat(), "priority": "high"}
    if resolved is not None:
        body["resolutionDate"] = resolved.isoformat()
    row = _row(TroubleTicketRow, customer_id, body, status="resolved" if resolved else "inProgress")
    session.add(row)
    session.flush()
    return str(row.id)


def dunning_case(session: Session, customer_id: str, opened: datetime) -> str:
    case_id = new_id()
    session.add(
        DunningCaseRow(
            id=case_id,
            at_type="DunningCase",
            status="open",
            owner_customer_id=customer_id,
            body={"history": []},
            bill_id="bill",
            billing_account_id="account-" + customer_id,
            trigger="overdue",
            level=1,
            created_at=opened,
            updated_at=opened,
        )
    )
    session.flush()
    return case_id


def contact(
    session: Session,
    customer_id: str,
    *,
    channel: str,
    reason: str,
    created: str,
    start: str | None = None,
    end: str | None = None,
    status: str = "completed",
    direction: str = "inbound",
) -> str:
    body: dict[str, Any] = {
        "reason": reason,
        "direction": direction,
        "channel": [{"id": channel, "name": channel}],
        "creationDate": at(created).isoformat(),
        "status": status,
    }
    period = {}
    if start:
        period["startDateTime"] = at(start).isoformat()
    if end:
        period["endDateTime"] = at(end).isoformat()
    if period:
        body["interactionDate"] = period
    row = _row(PartyInteractionRow, customer_id, body, name=reason, status=status)
    session.add(row)
    session.flush()
    return str(row.id)


def risk_assessment(session: Session, customer_id: str, churn: int, assessed: datetime) -> str:
    """A TMF696 assessment of the customer with this churn score, made at ``assessed``."""
    body = {
        "status": "succeeded",
        "partyRole": {"id": customer_id, "@referredType": "Customer"},
        "riskAssessmentResult": {
            "score": [
                {"risk": "churn", "score": churn},
                {"risk": "badDebt", "score": 10},
            ]
        },
    }
    row = _row(PartyRoleRiskAssessmentRow, customer_id, body, status="succeeded")
    row.created_at = assessed
    session.add(row)
    session.flush()
    return str(row.id)


def store_snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every derived table's rows without their surrogate ids, in a stable order."""
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    for table in an.DERIVED:
        columns = [c for c in table.__table__.columns if c.name != "id"]
        rows = session.execute(select(*columns)).all()
        snapshot[table.__tablename__] = sorted(
            (tuple(str(v) for v in row) for row in rows), key=str
        )
    return snapshot
