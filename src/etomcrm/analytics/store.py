"""The analytical store's derivation: operational tables → facts and dimensions.

Each fact and dimension has one derivation, run for some customers (a refresh, when the
bus reports that something of theirs changed) or for all (a rebuild). The refresh
deletes what the store holds of those customers and derives it again with the same code
the rebuild runs, so a store kept by refreshes equals a store rebuilt from scratch.

Usage is the one fact refreshed by day as well as by customer: a customer's usage grows
by the hour, and re-deriving its whole history on every ingest would cost more the
longer it stays.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Date, bindparam, cast, delete, func, insert, select, text
from sqlalchemy.orm import Session

from etomcrm.analytics import segmentation
from etomcrm.analytics.models import (
    DERIVED,
    AnCampaign,
    AnCampaignLeadFact,
    AnCampaignTarget,
    AnCampaignTouchFact,
    AnContactFact,
    AnCustomer,
    AnDay,
    AnDunningFact,
    AnOrderFact,
    AnPending,
    AnProduct,
    AnRevenueFact,
    AnSegment,
    AnSite,
    AnTicketFact,
    AnUsageFact,
)
from etomcrm.billing.dunning_models import DunningCaseRow
from etomcrm.billing.models import AppliedRateRow, CustomerBillRow, UsageRecordRow
from etomcrm.config import get_settings
from etomcrm.customer_interface.models import (
    CommunicationMessageRow,
    CustomerRow,
    GeographicSiteRow,
    PartyInteractionRow,
)
from etomcrm.db import UTCDateTime, session_scope, utcnow
from etomcrm.marketing.models import CampaignRow, CampaignTargetRow
from etomcrm.order_handling.models import ProductOrderRow, ProductRow
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.selling.models import SalesLeadRow, SalesOpportunityRow

JsonDict = dict[str, Any]
UNSEGMENTED = segmentation.NO_DATA
# Statuses in which a contact's handling is over, and those of them that resolved it.
CONTACT_ENDED = frozenset({"completed", "closed", "resolved", "cancelled"})
CONTACT_RESOLVED = CONTACT_ENDED - {"cancelled"}
CHUNK = 500  # ids per IN (...) list
BATCH = 5_000  # rows per INSERT


def month_of(moment: date | datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def instant(value: Any) -> datetime | None:
    """An ISO 8601 text of a document as a UTC datetime (None when absent or unreadable:
    the store describes the record of business, it does not judge it)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds()))


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


def _insert(session: Session, table: Any, rows: list[JsonDict]) -> None:
    for i in range(0, len(rows), BATCH):
        session.execute(insert(table), rows[i : i + BATCH])


def _customer_rows(session: Session, row_class: Any, ids: Sequence[str] | None) -> Iterable[Any]:
    """The rows of ``row_class`` owned by these customers (all customers' when None)."""
    stmt = select(row_class.id, row_class.owner_customer_id, row_class.body, row_class.status)
    if ids is None:
        yield from session.execute(stmt.where(row_class.owner_customer_id.is_not(None)))
        return
    for part in _chunks(ids):
        yield from session.execute(stmt.where(row_class.owner_customer_id.in_(part)))


# ----- dimensions ---------------------------------------------------------------------


def derive_customers(session: Session, ids: Sequence[str] | None) -> None:
    """The customer dimension, each customer in the segment its facts put it in
    (3.9.2, :func:`etomcrm.analytics.segmentation.segment_for`); a rebuild derives the
    customers before their facts and assigns the segments again at its end."""
    segments = segmentation.segments_of(session, ids) if ids is not None else {}
    stmt = select(CustomerRow.id, CustomerRow.name, CustomerRow.status, CustomerRow.body)
    rows: list[JsonDict] = []
    for part in [None] if ids is None else list(_chunks(ids)):
        query = stmt if part is None else stmt.where(CustomerRow.id.in_(part))
        for customer_id, name, status, body in session.execute(query):
            created = instant(body.get("creationDate") or body.get("validFor", {}).get("start"))
            rows.append(
                {
                    "customer_id": customer_id,
                    "name": name,
                    "segment": segments.get(customer_id, UNSEGMENTED),
                    "status": status,
                    "created_on": created.date() if created else None,
                }
            )
    _insert(session, AnCustomer, rows)


def derive_sites(session: Session, ids: Sequence[str] | None) -> None:
    rows = []
    for site_id, owner, body, _status in _customer_rows(session, GeographicSiteRow, ids):
        place = (body.get("place") or [{}])[0]
        rows.append(
            {
                "site_id": site_id,
                "customer_id": owner,
                "name": body.get("name"),
                "city": place.get("city") if isinstance(place, dict) else None,
            }
        )
    _insert(session, AnSite, rows)


def _first_place(document: JsonDict) -> str | None:
    for place in document.get("place") or []:
        if isinstance(place, dict) and place.get("id"):
            return str(place["id"])
    return None


def derive_products(session: Session, ids: Sequence[str] | None) -> None:
    rows = []
    for product_id, owner, body, status in _customer_rows(session, ProductRow, ids):
        offering = body.get("productOffering") or {}
        rows.append(
            {
                "product_id": product_id,
                "customer_id": owner,
                "offering_id": offering.get("id"),
                "offering_name": offering.get("name") or body.get("name"),
                "site_id": _first_place(body),
                "status": status,
            }
        )
    _insert(session, AnProduct, rows)


def derive_campaigns(session: Session, campaign_ids: Sequence[str] | None) -> None:
    stmt = select(CampaignRow.id, CampaignRow.name, CampaignRow.status, CampaignRow.body)
    if campaign_ids is not None:
        stmt = stmt.where(CampaignRow.id.in_(campaign_ids))
    rows = []
    for campaign_id, name, status, body in session.execute(stmt):
        budget = (body.get("budget") or {}).get("value") if isinstance(body, dict) else None
        rows.append(
            {
                "campaign_id": campaign_id,
                "name": name,
                "status": status,
                "budget": Decimal(str(budget)) if isinstance(budget, int | float | str) else None,
            }
        )
    _insert(session, AnCampaign, rows)


def sync_segments(session: Session) -> None:
    """The segment dimension: exactly the segments some customer is in. Two set-based
    statements whatever changed, so a refresh costs the same number of statements every
    time (the request that triggered it counts them)."""
    in_use = select(AnCustomer.segment).distinct()
    session.execute(delete(AnSegment).where(AnSegment.segment.not_in(in_use)))
    session.execute(
        insert(AnSegment).from_select(
            ["segment"], in_use.where(AnCustomer.segment.not_in(select(AnSegment.segment)))
        )
    )


FACT_DAYS: list[Any] = [
    AnUsageFact.day,
    AnContactFact.day,
    AnTicketFact.opened_at,
    AnOrderFact.ordered_on,
    AnDunningFact.opened_on,
    AnCampaignTouchFact.day,
]


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def sync_days(session: Session) -> None:
    """The time dimension: every day from the first fact's to the last fact's (revenue
    counts its months from their first day), contiguous so a trend shows empty days."""
    # min and max each in a query of its own: SQLite answers a lone min() or max() from
    # the index, but scans the table for both in one query (this runs on every refresh).
    bounds: list[date] = []
    for column in FACT_DAYS:
        for edge in (func.min(column), func.max(column)):
            found = _as_date(session.scalar(select(edge)))
            if found is not None:
                bounds.append(found)
    for edge in (func.min(AnRevenueFact.month), func.max(AnRevenueFact.month)):
        month = session.scalar(select(edge))
        if month:
            bounds.append(date.fromisoformat(f"{month}-01"))
    if not bounds:
        return
    first, last = min(bounds), max(bounds)
    have_low = _as_date(session.scalar(select(func.min(AnDay.day))))
    have_high = _as_date(session.scalar(select(func.max(AnDay.day))))
    missing: list[date] = []
    day = first
    while day <= last:
        if have_low is None or have_high is None or not have_low <= day <= have_high:
            missing.append(day)
        day += timedelta(days=1)
    _insert(
        session,
        AnDay,
        [{"day": d, "month": month_of(d), "year": d.year, "weekday": d.weekday()} for d in missing],
    )


# ----- facts --------------------------------------------------------------------------


def derive_revenue(session: Session, ids: Sequence[str] | None) -> None:
    """Rated charges on issued bills (a bill has its number once issued), per customer
    (the bill's), product, month of the period charged and kind; credit notes' lines
    count too."""
    month_source = func.coalesce(AppliedRateRow.period_start, CustomerBillRow.period_start)
    # The customer is the bill's: its owner column is indexed (the rate's is not), so a
    # refresh of one customer reads its bills and their lines, not every rated charge.
    stmt = (
        select(
            CustomerBillRow.owner_customer_id,
            AppliedRateRow.product_id,
            month_source,
            AppliedRateRow.rate_type,
            AppliedRateRow.currency,
            AppliedRateRow.tax_excluded,
        )
        .join(CustomerBillRow, CustomerBillRow.id == AppliedRateRow.bill_id)
        .where(CustomerBillRow.bill_no.is_not(None), CustomerBillRow.owner_customer_id.is_not(None))
    )
    sums: dict[tuple[str, str | None, str, str, str], Decimal] = defaultdict(Decimal)
    for part in [None] if ids is None else list(_chunks(ids)):
        query = stmt if part is None else stmt.where(CustomerBillRow.owner_customer_id.in_(part))
        for customer_id, product_id, start, rate_type, currency, amount in session.execute(query):
            start_date = _as_date(start)
            if start_date is None:
                continue
            key = (str(customer_id), product_id, month_of(start_date), rate_type, currency)
            sums[key] += Decimal(amount)
    _insert(
        session,
        AnRevenueFact,
        [
            {
                "customer_id": c,
                "product_id": p,
                "month": m,
                "rate_type": t,
                "currency": cur,
                "amount": amount,
            }
            for (c, p, m, t, cur), amount in sorted(sums.items(), key=lambda kv: str(kv[0]))
        ],
    )


def _usage_day(dialect: str) -> Any:
    if dialect == "postgresql":
        # A timestamptz cast to date takes the session's zone; the store's days are UTC.
        return cast(func.timezone("UTC", UsageRecordRow.start_at), Date)
    return func.date(UsageRecordRow.start_at)


def derive_usage(
    session: Session, ids: Sequence[str] | None, days: Collection[date] | None = None
) -> None:
    """Usage per customer, site, day, type and unit, summed in the database."""
    day = _usage_day(session.get_bind().dialect.name).label("day")
    stmt = select(
        UsageRecordRow.customer_id,
        UsageRecordRow.site_id,
        day,
        UsageRecordRow.usage_type,
        UsageRecordRow.unit,
        func.sum(UsageRecordRow.volume),
        func.count(),
    ).group_by(
        UsageRecordRow.customer_id,
        UsageRecordRow.site_id,
        day,
        UsageRecordRow.usage_type,
        UsageRecordRow.unit,
    )
    if days is not None:
        first, last = min(days), max(days)
        stmt = stmt.where(
            UsageRecordRow.start_at >= datetime(first.year, first.month, first.day, tzinfo=UTC),
            UsageRecordRow.start_at
            < datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1),
        )
    rows: list[JsonDict] = []
    for part in [None] if ids is None else list(_chunks(ids)):
        query = stmt if part is None else stmt.where(UsageRecordRow.customer_id.in_(part))
        for customer_id, site_id, on, usage_type, unit, volume, count in session.execute(query):
            on_date = _as_date(on)
            if on_date is None or (days is not None and on_date not in days):
                continue
            rows.append(
                {
                    "customer_id": customer_id,
                    "site_id": site_id,
                    "day": on_date,
                    "usage_type": usage_type,
                    "unit": unit,
                    "volume": Decimal(volume),
                    "records": int(count),
                }
            )
    _insert(session, AnUsageFact, rows)


@dataclass(frozen=True)
class _Contact:
    interaction_id: str
    customer_id: str
    channel: str
    reason: str
    direction: str
    status: str | None
    received_at: datetime
    response_seconds: int | None
    handling_seconds: int | None
    ended: bool


def _channel(body: JsonDict) -> str:
    for channel in body.get("channel") or []:
        if isinstance(channel, dict):
            name = channel.get("name") or channel.get("id")
            if name:
                return str(name)[:100]
    return "unknown"


def contact_of(interaction_id: str, owner: str, body: JsonDict, status: str | None) -> _Contact:
    period = body.get("interactionDate") or {}
    received = instant(body.get("creationDate"))
    start = instant(period.get("startDateTime"))
    end = instant(period.get("endDateTime"))
    if end is None and status in CONTACT_ENDED:
        end = instant(body.get("statusChangeDate"))
    received = received or start or end or datetime(1970, 1, 1, tzinfo=UTC)
    # Without the start of its handling a contact says nothing about its response.
    response = _seconds(received, start)
    return _Contact(
        interaction_id=interaction_id,
        customer_id=owner,
        channel=_channel(body),
        reason=str(body.get("reason") or "(none)")[:200],
        # A contact that does not say is taken as the customer's (most of the history).
        direction=str(body.get("direction") or "inbound")[:20],
        status=status,
        received_at=received,
        response_seconds=response,
        handling_seconds=_seconds(start, end),
        ended=end is not None or status in CONTACT_ENDED,
    )


def derive_contacts(session: Session, ids: Sequence[str] | None) -> None:
    """Contacts with their times and first-contact resolution. A repeat is judged among
    the customer's own contacts, so one customer's contacts are derived together."""
    window = timedelta(days=get_settings().analytics_fcr_window_days)
    by_customer: dict[str, list[_Contact]] = defaultdict(list)
    for interaction_id, owner, body, status in _customer_rows(session, PartyInteractionRow, ids):
        contact = contact_of(interaction_id, owner, body, status)
        by_customer[contact.customer_id].append(contact)
    rows: list[JsonDict] = []
    for contacts in by_customer.values():
        inbound = sorted(
            (c for c in contacts if c.direction == "inbound"),
            key=lambda c: (c.received_at, c.interaction_id),
        )
        repeated: set[str] = set()
        for i, contact in enumerate(inbound):
            for later in inbound[i + 1 :]:
                if later.received_at - contact.received_at > window:
                    break
                if later.reason.casefold() == contact.reason.casefold():
                    repeated.add(contact.interaction_id)
                    break
        for c in contacts:
            resolved = (
                c.direction == "inbound"
                and c.ended
                and c.status not in ("cancelled",)
                and c.interaction_id not in repeated
            )
            rows.append(
                {
                    "interaction_id": c.interaction_id,
                    "customer_id": c.customer_id,
                    "channel": c.channel,
                    "reason": c.reason,
                    "direction": c.direction,
                    "status": c.status,
                    "received_at": c.received_at,
                    "day": c.received_at.date(),
                    "response_seconds": c.response_seconds,
                    "handling_seconds": c.handling_seconds,
                    "ended": c.ended,
                    "first_contact_resolved": resolved,
                }
            )
    _insert(session, AnContactFact, rows)


def derive_tickets(session: Session, ids: Sequence[str] | None) -> None:
    rows = []
    for ticket_id, owner, body, status in _customer_rows(session, TroubleTicketRow, ids):
        opened = instant(body.get("creationDate"))
        if opened is None:
            continue
        resolved = instant(body.get("resolutionDate"))
        rows.append(
            {
                "ticket_id": ticket_id,
                "customer_id": owner,
                "status": status,
                "priority": str(body["priority"])[:50] if body.get("priority") else None,
                "opened_at": opened,
                "month": month_of(opened),
                "resolved_at": resolved,
                "repair_seconds": _seconds(opened, resolved),
            }
        )
    _insert(session, AnTicketFact, rows)


def derive_orders(session: Session, ids: Sequence[str] | None) -> None:
    stmt_rows = _customer_rows(session, ProductOrderRow, ids)
    rows = []
    for order_id, owner, body, _status in stmt_rows:
        ordered = instant(body.get("orderDate") or body.get("creationDate"))
        if ordered is None:
            continue
        completed = instant(body.get("completionDate"))
        items = [i for i in body.get("productOrderItem") or [] if isinstance(i, dict)]
        sites = {
            place
            for item in items
            if item.get("action", "add") == "add"
            for place in [_first_place(item.get("product") or {})]
            if place
        }
        rows.append(
            {
                "order_id": order_id,
                "customer_id": owner,
                "state": body.get("state"),
                "ordered_on": ordered.date(),
                "month": month_of(ordered),
                "item_count": len(items),
                "site_count": len(sites),
                "completed_on": completed.date() if completed else None,
                "completed_month": month_of(completed) if completed else None,
            }
        )
    _insert(session, AnOrderFact, rows)


def derive_dunning(session: Session, ids: Sequence[str] | None) -> None:
    stmt = select(
        DunningCaseRow.id,
        DunningCaseRow.owner_customer_id,
        DunningCaseRow.created_at,
        DunningCaseRow.level,
        DunningCaseRow.status,
    ).where(DunningCaseRow.owner_customer_id.is_not(None))
    rows = []
    for part in [None] if ids is None else list(_chunks(ids)):
        query = stmt if part is None else stmt.where(DunningCaseRow.owner_customer_id.in_(part))
        for case_id, owner, created, level, status in session.execute(query):
            rows.append(
                {
                    "case_id": case_id,
                    "customer_id": owner,
                    "opened_on": created.date(),
                    "month": month_of(created),
                    "level": level,
                    "status": status,
                }
            )
    _insert(session, AnDunningFact, rows)


def _campaign_ref(document: JsonDict) -> str | None:
    campaign = document.get("marketingCampaign")
    if isinstance(campaign, dict) and campaign.get("id"):
        return str(campaign["id"])
    for entity in document.get("relatedEntity") or []:
        if isinstance(entity, dict) and entity.get("role") == "campaign" and entity.get("id"):
            return str(entity["id"])
    return None


def derive_touches(
    session: Session, ids: Sequence[str] | None, campaign_id: str | None = None
) -> None:
    """Marketing messages and responses (sales leads) naming a campaign."""
    rows = []
    for kind, row_class in (("message", CommunicationMessageRow), ("response", SalesLeadRow)):
        for touch_id, owner, body, _status in _customer_rows(session, row_class, ids):
            campaign = _campaign_ref(body)
            if campaign is None or (campaign_id is not None and campaign != campaign_id):
                continue
            moment = instant(body.get("creationDate") or body.get("sendTime"))
            if moment is None:
                continue
            rows.append(
                {
                    "touch_id": touch_id,
                    "campaign_id": campaign,
                    "customer_id": owner,
                    "kind": kind,
                    "day": moment.date(),
                }
            )
    _insert(session, AnCampaignTouchFact, rows)


def derive_campaign_targets(session: Session, campaign_id: str | None) -> None:
    """The targets of a campaign (of every campaign when None) and their group."""
    stmt = select(
        CampaignTargetRow.campaign_id,
        CampaignTargetRow.customer_id,
        CampaignTargetRow.group,
        CampaignTargetRow.assigned_at,
    )
    if campaign_id is not None:
        stmt = stmt.where(CampaignTargetRow.campaign_id == campaign_id)
    _insert(
        session,
        AnCampaignTarget,
        [
            {
                "campaign_id": campaign,
                "customer_id": customer,
                "group": group,
                "assigned_on": _as_date(assigned),
            }
            for campaign, customer, group, assigned in session.execute(stmt)
        ],
    )


def derive_campaign_leads(
    session: Session, ids: Sequence[str] | None, campaign_id: str | None = None
) -> None:
    """Customers' leads naming a campaign, with the opportunity each became: its stage
    and, when won, the day it closed."""
    leads: dict[str, JsonDict] = {}
    for lead_id, owner, body, status in _customer_rows(session, SalesLeadRow, ids):
        campaign = _campaign_ref(body)
        if campaign is None or (campaign_id is not None and campaign != campaign_id):
            continue
        moment = instant(body.get("creationDate"))
        if moment is None:
            continue
        leads[lead_id] = {
            "lead_id": lead_id,
            "campaign_id": campaign,
            "customer_id": owner,
            "responded_on": moment.date(),
            "lead_status": body.get("status") or status,
            "opportunity_id": None,
            "opportunity_stage": None,
            "won_on": None,
        }
    if leads:
        for opportunity_id, _owner, body, stage in _customer_rows(
            session, SalesOpportunityRow, ids
        ):
            lead_ref = body.get("salesLead")
            lead = leads.get(str(lead_ref.get("id"))) if isinstance(lead_ref, dict) else None
            if lead is None:
                continue
            lead["opportunity_id"] = opportunity_id
            lead["opportunity_stage"] = body.get("stage") or stage
            if lead["opportunity_stage"] == "closedWon":
                closed = instant(body.get("closeDate") or body.get("lastUpdate"))
                lead["won_on"] = closed.date() if closed else lead["responded_on"]
    _insert(session, AnCampaignLeadFact, list(leads.values()))


# ----- refresh and rebuild -----------------------------------------------------------

# Derivation per customer-keyed table; the order is the order of a rebuild.
PER_CUSTOMER: list[tuple[Any, Callable[[Session, Sequence[str] | None], None]]] = [
    (AnCustomer, derive_customers),
    (AnSite, derive_sites),
    (AnProduct, derive_products),
    (AnRevenueFact, derive_revenue),
    (AnUsageFact, derive_usage),
    (AnContactFact, derive_contacts),
    (AnTicketFact, derive_tickets),
    (AnOrderFact, derive_orders),
    (AnDunningFact, derive_dunning),
    (AnCampaignTouchFact, derive_touches),
    (AnCampaignLeadFact, derive_campaign_leads),
]


UNDATED = frozenset({AnCustomer, AnSite, AnProduct})
# The tables a customer's segment is computed from.
SEGMENT_INPUTS = frozenset(
    {AnCustomer, AnRevenueFact, AnUsageFact, AnContactFact, AnTicketFact, AnDunningFact}
)


def refresh_customers(
    session: Session, customer_ids: Collection[str], tables: Collection[Any] | None = None
) -> None:
    """Derive again what the store holds of these customers: every table, or only
    ``tables`` (those a change can have touched; usage is derived for every day)."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    for table, derive in PER_CUSTOMER:
        if tables is not None and table not in tables:
            continue
        for part in _chunks(ids):
            session.execute(delete(table).where(table.customer_id.in_(part)))
        derive(session, ids)
    # A customer's segment is computed from its facts (3.9.2): assigned again whenever
    # one of the facts it reads may have changed.
    if tables is None or not SEGMENT_INPUTS.isdisjoint(tables):
        segmentation.assign_segments(session, ids)
        sync_segments(session)
    # The time dimension spans the dated facts; the dimensions carry no day of their own.
    if tables is None or not set(tables) <= UNDATED:
        sync_days(session)


def refresh_usage(session: Session, customer_days: Collection[tuple[str, date]]) -> None:
    """Derive again the usage of these customers on these days (after an ingest)."""
    days_of: dict[str, set[date]] = defaultdict(set)
    for customer_id, day in customer_days:
        days_of[customer_id].add(day)
    # Customers with the same days are derived together (the hourly feed: one day, all).
    groups: dict[frozenset[date], list[str]] = defaultdict(list)
    for customer_id, customer_days_ in days_of.items():
        groups[frozenset(customer_days_)].append(customer_id)
    for days, ids in groups.items():
        for part in _chunks(sorted(ids)):
            session.execute(
                delete(AnUsageFact).where(
                    AnUsageFact.customer_id.in_(part), AnUsageFact.day.in_(sorted(days))
                )
            )
            derive_usage(session, part, days)
    segmentation.assign_segments(session, sorted(days_of))
    sync_segments(session)
    sync_days(session)


def refresh_campaign(session: Session, campaign_id: str) -> None:
    """Derive again one campaign and the touches that name it."""
    session.execute(delete(AnCampaign).where(AnCampaign.campaign_id == campaign_id))
    derive_campaigns(session, [campaign_id])
    session.execute(
        delete(AnCampaignTouchFact).where(AnCampaignTouchFact.campaign_id == campaign_id)
    )
    derive_touches(session, None, campaign_id)
    session.execute(delete(AnCampaignTarget).where(AnCampaignTarget.campaign_id == campaign_id))
    derive_campaign_targets(session, campaign_id)
    session.execute(delete(AnCampaignLeadFact).where(AnCampaignLeadFact.campaign_id == campaign_id))
    derive_campaign_leads(session, None, campaign_id)
    sync_days(session)


@dataclass(frozen=True)
class RebuildResult:
    customers: int
    rows: dict[str, int]


def rebuild(session: Session, progress: Callable[[str], None] | None = None) -> RebuildResult:
    """Empty every derived table and derive it again from the operational tables."""
    # What was marked before now is derived below; a later mark is a later change.
    session.execute(delete(AnPending).where(AnPending.marked_at <= utcnow()))
    for table in DERIVED:
        session.execute(delete(table))
    for table, derive in PER_CUSTOMER:
        if progress:
            progress(table.__tablename__)
        derive(session, None)
    derive_campaigns(session, None)
    derive_campaign_targets(session, None)
    segmentation.assign_segments(session, None)
    sync_segments(session)
    sync_days(session)
    counts = {
        table.__tablename__: int(session.scalar(select(func.count()).select_from(table)) or 0)
        for table in DERIVED
    }
    return RebuildResult(customers=counts["an_customer"], rows=counts)


# ----- the catch-up: the bus marks, the store derives later ----------------------------

# A bit per per-customer table in a customer's mark; 0 marks every table.
TABLE_BITS: dict[Any, int] = {table: 1 << n for n, (table, _) in enumerate(PER_CUSTOMER)}
CUSTOMER, USAGE, CAMPAIGN = "customer", "usage", "campaign"
CATCH_UP_BATCH = 1_000  # marks derived per transaction by the scheduled catch-up


def _mask(tables: Collection[Any] | None) -> int:
    return 0 if tables is None else sum(TABLE_BITS[table] for table in set(tables))


def _tables(mask: int) -> list[Any] | None:
    return None if mask == 0 else [table for table, bit in TABLE_BITS.items() if mask & bit]


# Marks meet: the tables of both are derived; "every table" (0) absorbs any other. The
# marks go as one JSON array (one statement, parsed once, whatever their number: a bill
# run's chunk marks a thousand customers).
_MARK_CONFLICT = (
    " ON CONFLICT (kind, key) DO UPDATE SET tables = CASE WHEN an_pending.tables = 0"
    " OR excluded.tables = 0 THEN 0 ELSE an_pending.tables | excluded.tables END"
)
_MARK = {
    "postgresql": text(
        "INSERT INTO an_pending (kind, key, tables, marked_at)"
        " SELECT :kind, x.key, x.tables, :now"
        " FROM json_to_recordset(CAST(:marks AS json)) AS x(key text, tables int)" + _MARK_CONFLICT
    ),
    "sqlite": text(
        "INSERT INTO an_pending (kind, key, tables, marked_at)"
        " SELECT :kind, json_extract(value, '$.key'), json_extract(value, '$.tables'), :now"
        " FROM json_each(:marks) WHERE true" + _MARK_CONFLICT
    ),
}


def _mark(session: Session, kind: str, keys: dict[str, int]) -> None:
    if not keys:
        return
    marks = orjson.dumps([{"key": key, "tables": mask} for key, mask in sorted(keys.items())])
    session.execute(
        _MARK[session.get_bind().dialect.name].bindparams(bindparam("now", type_=UTCDateTime)),
        {"kind": kind, "marks": marks.decode(), "now": utcnow()},
    )


def mark_customers(session: Session, changes: Mapping[str, Collection[Any] | None]) -> None:
    """Note that each customer's tables (all, for None) are to be derived again."""
    _mark(session, CUSTOMER, {customer: _mask(tables) for customer, tables in changes.items()})


def mark_usage(session: Session, customer_days: Collection[tuple[str, date]]) -> None:
    """Note that these customers' usage on these days is to be derived again."""
    _mark(session, USAGE, {f"{customer}|{day.isoformat()}": 0 for customer, day in customer_days})


def mark_campaign(session: Session, campaign_id: str) -> None:
    """Note that a campaign and the touches that name it are to be derived again."""
    _mark(session, CAMPAIGN, {campaign_id: 0})


def pending(session: Session) -> int:
    """How many marks wait for the catch-up."""
    return int(session.scalar(select(func.count()).select_from(AnPending)) or 0)


def catch_up(session: Session, limit: int | None = None) -> int:
    """Derive again what the marks name (the oldest ``limit`` of them, or all), and
    drop those marks; returns how many were taken.

    On PostgreSQL the marks are claimed with ``FOR UPDATE SKIP LOCKED``: two catch-ups
    at once (the schedule and an analyst's report) never derive the same customer
    together, and a mark made while its customer is being derived waits for that
    transaction and is taken by the next catch-up.
    """
    query = select(AnPending.kind, AnPending.key, AnPending.tables).order_by(
        AnPending.marked_at, AnPending.kind, AnPending.key
    )
    if limit is not None:
        query = query.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    marks = session.execute(query).all()
    if not marks:
        return 0
    for kind in (CUSTOMER, USAGE, CAMPAIGN):
        keys = sorted(key for kind_, key, _ in marks if kind_ == kind)
        for part in _chunks(keys):
            session.execute(
                delete(AnPending).where(AnPending.kind == kind, AnPending.key.in_(part))
            )
    by_mask: dict[int, list[str]] = defaultdict(list)
    days: list[tuple[str, date]] = []
    for kind, key, mask in marks:
        if kind == CUSTOMER:
            by_mask[mask].append(key)
        elif kind == USAGE:
            customer, _, day = key.rpartition("|")
            days.append((customer, date.fromisoformat(day)))
        else:
            refresh_campaign(session, key)
    for mask in sorted(by_mask):
        refresh_customers(session, by_mask[mask], _tables(mask))
    if days:
        refresh_usage(session, days)
    return len(marks)


def catch_up_all(batch: int = CATCH_UP_BATCH) -> int:
    """Derive every pending mark, ``batch`` marks per transaction (the schedule, and a
    report before it reads: its figures include every change committed before it)."""
    total = 0
    while True:
        with session_scope() as session:
            taken = catch_up(session, batch)
        total += taken
        if taken < batch:
            return total
