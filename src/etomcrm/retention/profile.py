"""3.9.4 Personalise customer profiles: what the provider knows of one customer, in one
place, for the account manager and the analyst.

- **needs**: what the customer's facts say it needs, each with its evidence: a site
  near its line's capacity, a site with many incidents, a site without managed
  equipment (the rules of :mod:`etomcrm.retention.recommendations`), trouble tickets
  still open;
- **preferences**: the contact channels it uses (its contacts in the analytical store,
  most used first), the language its portal users chose, how its bills are delivered
  (its billing accounts' ``billStructure.presentationMedia``);
- **value**: billed revenue, cost to serve and profit of the last 12 months
  (:func:`etomcrm.analytics.profitability.customer_profitability`);
- **risk**: the latest TMF696 assessment's churn and bad-debt scores and reasons;
- **products**: its active products with their site and contract end;
- **contacts**: its latest interactions (TMF683);
- **offers**: the next best offers ranked by expected value, each explained.

A fixed number of queries, whatever the number of products, contacts or tickets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from etomcrm.analytics.models import AnContactFact
from etomcrm.analytics.profitability import customer_profitability
from etomcrm.config import get_settings
from etomcrm.core.errors import Forbidden, InvalidRequest, NotFound
from etomcrm.core.json_filters import document_path_equals
from etomcrm.core.tmf_schemas import PRODUCT_INVENTORY, JsonDict
from etomcrm.customer_interface.models import CustomerRow, PartyInteractionRow
from etomcrm.order_handling.models import ProductRow
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.retention.models import PartyRoleRiskAssessmentRow
from etomcrm.retention.moments import contract_end
from etomcrm.retention.offers import segment_of
from etomcrm.retention.recommendations import characteristic, recommendation_items
from etomcrm.retention.risk import NOT_OPEN
from etomcrm.security.models import UserAccount
from etomcrm.security.service import Principal, Role
from etomcrm.selling.models import BillingAccountRow, RecommendationRow

PROFILE_READERS = frozenset(
    {Role.ADMIN, Role.SALES, Role.MARKETING, Role.ANALYST, Role.SUPPORT, Role.BILLING}
)
RECENT_CONTACTS = 10
VALUE_MONTHS = 12
NEEDS = {
    "gold": "faster repair",
    "usage": "more capacity",
    "router": "managed equipment",
}


@dataclass
class CustomerProfile:
    customer_id: str
    name: str
    status: str
    segment: str
    needs: list[JsonDict] = field(default_factory=list)
    preferences: JsonDict = field(default_factory=dict)
    value: JsonDict = field(default_factory=dict)
    risk: JsonDict | None = None
    products: list[JsonDict] = field(default_factory=list)
    contacts: list[JsonDict] = field(default_factory=list)
    offers: list[JsonDict] = field(default_factory=list)

    def as_json(self) -> JsonDict:
        return {
            "customer": {
                "id": self.customer_id,
                "name": self.name,
                "status": self.status,
                "segment": self.segment,
            },
            "needs": self.needs,
            "preferences": self.preferences,
            "value": self.value,
            "risk": self.risk,
            "products": self.products,
            "contacts": self.contacts,
            "nextBestOffers": self.offers,
        }


def _month_back(today: date, months: int) -> date:
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _needs(session: Session, customer_id: str, offers: list[JsonDict]) -> list[JsonDict]:
    needs: list[JsonDict] = []
    for item in offers:
        product = item["product"]
        places = product.get("place") or []
        site = str(places[0].get("name") or places[0].get("id")) if places else None
        rule = str(characteristic(item, "recommendationRule"))
        needs.append(
            {
                "need": NEEDS.get(rule, rule),
                "site": site,
                "evidence": characteristic(item, "recommendationReason"),
            }
        )
    still_open = session.scalar(
        select(func.count()).where(
            TroubleTicketRow.owner_customer_id == customer_id,
            TroubleTicketRow.status.not_in(NOT_OPEN),
        )
    )
    if still_open:
        needs.append(
            {
                "need": "a fix",
                "site": None,
                "evidence": f"{still_open} trouble ticket(s) still open",
            }
        )
    return needs


def _preferences(session: Session, customer_id: str) -> JsonDict:
    channels = session.execute(
        select(AnContactFact.channel, func.count())
        .where(AnContactFact.customer_id == customer_id)
        .group_by(AnContactFact.channel)
        .order_by(func.count().desc(), AnContactFact.channel)
    ).all()
    languages = Counter(
        language
        for language in session.scalars(
            select(UserAccount.language).where(
                UserAccount.customer_id == customer_id, UserAccount.language.is_not(None)
            )
        )
        if language
    )
    delivery = sorted(
        {
            str(medium.get("name"))
            for body in session.scalars(
                select(BillingAccountRow.body).where(
                    BillingAccountRow.owner_customer_id == customer_id
                )
            )
            for medium in (body.get("billStructure") or {}).get("presentationMedia") or []
            if isinstance(medium, dict) and medium.get("name")
        }
    )
    return {
        "contactChannel": channels[0][0] if channels else None,
        "contactsByChannel": [{"channel": c, "contacts": n} for c, n in channels],
        "language": languages.most_common(1)[0][0] if languages else None,
        "billDelivery": delivery,
    }


def _value(session: Session, customer_id: str, today: date) -> JsonDict:
    start = _month_back(today, VALUE_MONTHS - 1)
    report = customer_profitability(
        session, by="customer", start=start, end=today, customer_id=customer_id
    )
    row = report.groups[0].as_row() if report.groups else report.total.as_row()
    return {
        "from": f"{start.year:04d}-{start.month:02d}",
        "to": f"{today.year:04d}-{today.month:02d}",
        "currency": report.currency,
        "revenue": row["revenue"],
        "costToServe": row["costToServe"],
        "profit": row["profit"],
    }


def _risk(session: Session, customer_id: str) -> JsonDict | None:
    body: JsonDict | None = session.scalar(
        select(PartyRoleRiskAssessmentRow.body)
        .where(PartyRoleRiskAssessmentRow.owner_customer_id == customer_id)
        .order_by(
            PartyRoleRiskAssessmentRow.created_at.desc(), PartyRoleRiskAssessmentRow.id.desc()
        )
        .limit(1)
    )
    if body is None:
        return None
    result = body.get("riskAssessmentResult") or {}
    scores = {str(s.get("risk")): s for s in result.get("score") or [] if isinstance(s, dict)}
    return {
        "assessmentId": body["id"],
        "assessedAt": (result.get("validFor") or {}).get("startDateTime"),
        "churnScore": scores.get("churn", {}).get("score"),
        "churnLevel": scores.get("churn", {}).get("level"),
        "badDebtScore": scores.get("badDebt", {}).get("score"),
        "badDebtLevel": scores.get("badDebt", {}).get("level"),
        "reasons": list(body.get("reason") or []),
    }


def _products(session: Session, customer_id: str) -> list[JsonDict]:
    named = document_path_equals(
        session.get_bind().dialect.name,
        ProductRow.__tablename__,
        PRODUCT_INVENTORY,
        "Product",
        ["relatedParty", "id"],
        customer_id,
    )
    default_term = get_settings().nbo_term_months
    found: list[JsonDict] = []
    for body in session.scalars(
        select(ProductRow.body)
        .where(or_(ProductRow.owner_customer_id == customer_id, named))
        .where(ProductRow.status == "active")
        .order_by(ProductRow.id)
    ):
        places = body.get("place") or []
        ends = contract_end(body, default_term)
        found.append(
            {
                "id": body["id"],
                "name": body.get("name"),
                "site": (places[0].get("name") or places[0].get("id")) if places else None,
                "startDate": body.get("startDate"),
                "contractEnd": ends.isoformat() if ends else None,
            }
        )
    return found


def _contacts(session: Session, customer_id: str) -> list[JsonDict]:
    found: list[JsonDict] = []
    for created, body in session.execute(
        select(PartyInteractionRow.created_at, PartyInteractionRow.body)
        .where(PartyInteractionRow.owner_customer_id == customer_id)
        .order_by(PartyInteractionRow.created_at.desc(), PartyInteractionRow.id.desc())
        .limit(RECENT_CONTACTS)
    ):
        channel = next(
            (
                str(c.get("name") or c.get("id"))
                for c in body.get("channel") or []
                if isinstance(c, dict)
            ),
            None,
        )
        found.append(
            {
                "id": body["id"],
                "date": created.isoformat(),
                "type": body.get("@type") or "PartyInteraction",
                "channel": channel,
                "reason": body.get("reason"),
                "direction": body.get("direction"),
                "status": body.get("status"),
            }
        )
    return found


def customer_profile(
    session: Session, principal: Principal, customer_id: str, *, now: datetime
) -> CustomerProfile:
    """3.9.4 Personalise Customer Profiles (eTOM 1.1.1.9.4): the customer's needs,
    preferences, value, risk, products, contacts and next best offers (module
    docstring). Staff of the reading roles only; NotFound for an unknown customer."""
    if principal.role not in PROFILE_READERS:
        raise Forbidden(
            f"customer profiles are for the roles {', '.join(sorted(PROFILE_READERS))}, "
            f"not {principal.role}"
        )
    customer = session.get(CustomerRow, customer_id)
    if customer is None:
        raise NotFound(f"no customer with id {customer_id}")
    offers = recommendation_items(session, customer_id, now=now)
    return CustomerProfile(
        customer_id=customer_id,
        name=customer.name or customer_id,
        status=str(customer.status or customer.body.get("status") or ""),
        segment=segment_of(session, customer_id),
        needs=_needs(session, customer_id, offers),
        preferences=_preferences(session, customer_id),
        value=_value(session, customer_id, now.date()),
        risk=_risk(session, customer_id),
        products=_products(session, customer_id),
        contacts=_contacts(session, customer_id),
        offers=offers,
    )


def offer_summary(item: JsonDict) -> dict[str, Any]:
    """The figures of one recommendation item, flat (pages and CSV)."""
    product = item.get("product") or {}
    places = product.get("place") or []
    return {
        "rank": item.get("priority"),
        "offer": product.get("name"),
        "site": (places[0].get("name") or places[0].get("id")) if places else None,
        "expectedValue": characteristic(item, "expectedValue"),
        "acceptanceProbability": characteristic(item, "acceptanceProbability"),
        "acceptanceBasis": characteristic(item, "acceptanceBasis"),
        "marginOverTerm": characteristic(item, "marginOverTerm"),
        "why": characteristic(item, "recommendationReason"),
        "whyNow": characteristic(item, "recommendationMoment"),
        "explanation": characteristic(item, "expectedValueExplanation"),
    }


@dataclass(frozen=True)
class OfferRow:
    """One customer of the overview with its latest next best offer (or none yet)."""

    customer_id: str
    customer: str
    query_id: str | None
    asked_at: datetime | None
    top: dict[str, Any] | None

    def as_row(self) -> dict[str, Any]:
        top = self.top or {}
        return {
            "customerId": self.customer_id,
            "customer": self.customer,
            "offer": top.get("offer"),
            "site": top.get("site"),
            "expectedValue": top.get("expectedValue"),
            "acceptanceProbability": top.get("acceptanceProbability"),
            "acceptanceBasis": top.get("acceptanceBasis"),
            "marginOverTerm": top.get("marginOverTerm"),
            "recommendationId": self.query_id,
            "askedAt": self.asked_at.isoformat() if self.asked_at else None,
        }


@dataclass(frozen=True)
class OfferOverview:
    rows: list[OfferRow]
    total: int
    offset: int
    limit: int


MAX_PAGE = 200


def offer_overview(
    session: Session, principal: Principal, *, offset: int = 0, limit: int | None = 50
) -> OfferOverview:
    """3.9.4, the analyst's and marketing's view: each customer (by name) with the top
    item of its latest answered TMF680 query and that item's expected value; the page's
    rows sorted by expected value, highest first. Three queries whatever the page size;
    ``limit`` None for all (the CSV export)."""
    if principal.role not in PROFILE_READERS:
        raise Forbidden(
            f"the offer overview is for the roles {', '.join(sorted(PROFILE_READERS))}, "
            f"not {principal.role}"
        )
    if offset < 0 or (limit is not None and not 1 <= limit <= MAX_PAGE):
        raise InvalidRequest(f"offset is 0 or more and limit from 1 to {MAX_PAGE}")
    total = session.scalar(select(func.count()).select_from(CustomerRow)) or 0
    query = select(CustomerRow.id, CustomerRow.name).order_by(CustomerRow.name, CustomerRow.id)
    if limit is not None:
        query = query.offset(offset).limit(limit)
    customers = session.execute(query).all()
    ids = [c.id for c in customers]
    latest = (
        select(
            RecommendationRow.owner_customer_id.label("customer_id"),
            func.max(RecommendationRow.created_at).label("at"),
        )
        .where(RecommendationRow.owner_customer_id.in_(ids))
        .group_by(RecommendationRow.owner_customer_id)
        .subquery()
    )
    answers: dict[str, tuple[str, datetime, JsonDict]] = {}
    for customer_id, query_id, created, body in session.execute(
        select(
            RecommendationRow.owner_customer_id,
            RecommendationRow.id,
            RecommendationRow.created_at,
            RecommendationRow.body,
        )
        .join(
            latest,
            (latest.c.customer_id == RecommendationRow.owner_customer_id)
            & (latest.c.at == RecommendationRow.created_at),
        )
        .order_by(RecommendationRow.id)
    ):
        answers[str(customer_id)] = (query_id, created, body)
    rows: list[OfferRow] = []
    for customer in customers:
        found = answers.get(customer.id)
        items = (found[2].get("recommendationItem") or []) if found else []
        rows.append(
            OfferRow(
                customer_id=customer.id,
                customer=customer.name or customer.id,
                query_id=found[0] if found else None,
                asked_at=found[1] if found else None,
                top=offer_summary(items[0]) if items else None,
            )
        )
    rows.sort(key=lambda r: -float((r.top or {}).get("expectedValue") or 0))
    return OfferOverview(rows, total, offset, limit or len(rows))
