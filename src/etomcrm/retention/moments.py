"""3.9.4 Optimise: the right moment for the next best offer.

Three moments give the account manager a retention task carrying the offer
(:func:`etomcrm.retention.tasks.open_offer_task`), each once, and never a second open
task for the same offer:

- **a resolved problem**: a trouble ticket of the customer closed after its resolution
  (``TicketEnded`` with status closed): the customer has just seen the service work;
- **an upgrade-worthy usage**: usage was ingested for the first day of a month, so the
  month before is complete, and a site's traffic of that month reached 80 % of its
  access's included volume (the bandwidth rule of the recommendations); the task
  carries the best of the usage offers;
- **a contract's end ahead**: an active product's contract (its ``startDate`` plus its
  term, the product characteristic ``contractDurationMonths`` or else
  ``nbo_term_months``) ends within ``nbo_contract_end_days``; the daily scan
  :func:`contracts_ending` states ``ContractEndApproaching`` for each such contract.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.config import get_settings
from etomcrm.core.bus import record
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.order_handling.models import ProductRow
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.retention.events import ContractEndApproaching
from etomcrm.retention.tasks import open_offer_task

USAGE_RULES = frozenset({"usage"})


def offer_after_resolved_ticket(
    session: Session, customer_id: str, ticket_id: str
) -> JsonDict | None:
    """3.9.4: a customer's ticket closed after its resolution; the account manager
    offers while the repair is fresh (once per ticket)."""
    ticket = session.get(TroubleTicketRow, ticket_id)
    if ticket is None or ticket.body.get("status") != "closed":
        return None
    resolved = str(ticket.body.get("resolutionDate") or "")[:10]
    moment = (
        f"trouble ticket {ticket.body.get('name') or ticket_id} was resolved"
        + (f" on {resolved}" if resolved else "")
        + " and closed: the customer has just seen the service work"
    )
    return open_offer_task(session, customer_id, moment=moment, key=f"ticket:{ticket_id}")


def offer_on_usage(session: Session, customer_id: str, month: str) -> JsonDict | None:
    """3.9.4: ``month``'s usage (``YYYY-MM``) is complete; a site that used 80 % or more
    of its included volume is offered the next bandwidth (once per customer and month)."""
    return open_offer_task(
        session,
        customer_id,
        moment=f"the usage of {month} is complete and a site ran near its included volume",
        key=f"usage:{customer_id}:{month}",
        rules=USAGE_RULES,
    )


def offer_before_contract_end(
    session: Session, customer_id: str, product_id: str, ends_on: str, days: int
) -> JsonDict | None:
    """3.9.4: a contract ends in ``days`` days; the account manager offers before the
    customer looks elsewhere (once per contract end)."""
    return open_offer_task(
        session,
        customer_id,
        moment=f"the contract of product {product_id} ends on {ends_on}, in {days} days",
        key=f"contract:{product_id}:{ends_on}",
    )


def _add_months(start: date, months: int) -> date:
    month = start.month - 1 + months
    year, month = start.year + month // 12, month % 12 + 1
    for day in (start.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    raise ValueError(start)  # pragma: no cover - day 28 exists in every month


def _customer_of(row: ProductRow) -> str | None:
    if row.owner_customer_id:
        return row.owner_customer_id
    for party in row.body.get("relatedParty") or []:
        if isinstance(party, dict) and party.get("@referredType") == "Customer":
            return str(party.get("id"))
    return None


def _term(body: JsonDict, default: int) -> int:
    for entry in body.get("productCharacteristic") or []:
        if isinstance(entry, dict) and entry.get("name") == "contractDurationMonths":
            value: Any = entry.get("value")
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return default


def contract_end(product: JsonDict, default_term: int) -> date | None:
    """The day a product's contract ends: its start plus its term; None without a
    start date."""
    start = product.get("startDate")
    if not isinstance(start, str):
        return None
    try:
        started = datetime.fromisoformat(start).date()
    except ValueError:
        return None
    return _add_months(started, _term(product, default_term))


def contracts_ending(session: Session, now: datetime) -> list[ContractEndApproaching]:
    """3.9.4 Personalise Customer Profiles (eTOM 1.1.1.9.4), the timing: the active
    products whose contract ends within ``nbo_contract_end_days`` of ``now``; states
    ``ContractEndApproaching`` for each (its handler's task is once per contract end,
    so the daily scan may find one again). One query."""
    settings = get_settings()
    today = now.astimezone(UTC).date()
    horizon = today + timedelta(days=settings.nbo_contract_end_days)
    found: list[ContractEndApproaching] = []
    for row in session.scalars(
        select(ProductRow).where(ProductRow.status == "active").order_by(ProductRow.id)
    ):
        customer_id = _customer_of(row)
        ends = contract_end(row.body, settings.nbo_term_months)
        if customer_id is None or ends is None:
            continue
        if today < ends <= horizon:
            event = ContractEndApproaching(
                customer_id=customer_id,
                product_id=row.id,
                ends_on=ends.isoformat(),
                days=(ends - today).days,
            )
            record(session, event)
            found.append(event)
    return found
