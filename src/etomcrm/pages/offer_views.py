"""3.9.4 on the pages: a customer's profile with its next best offers, and the
analysts' and marketing's overview of every customer's top offer. The figures come
from :mod:`etomcrm.retention.profile`; this module only shapes them for the templates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from etomcrm.analytics.export import csv_text
from etomcrm.pages.portal_views import PAGE_SIZE, Paging
from etomcrm.retention.profile import (
    CustomerProfile,
    OfferRow,
    customer_profile,
    offer_overview,
    offer_summary,
)
from etomcrm.security.service import Principal


@dataclass(frozen=True)
class ProfilePage:
    profile: CustomerProfile
    offers: list[dict[str, Any]]


def profile_page(
    session: Session, principal: Principal, customer_id: str, *, now: datetime
) -> ProfilePage:
    """The profile page: the customer's profile and its offers, flat for the table."""
    found = customer_profile(session, principal, customer_id, now=now)
    return ProfilePage(found, [offer_summary(item) for item in found.offers])


@dataclass(frozen=True)
class OffersPage:
    rows: list[OfferRow]
    total: int
    paging: Paging


def offers_page(session: Session, principal: Principal, number: int) -> OffersPage:
    """One page of the overview (:data:`PAGE_SIZE` customers), its queries bounded."""
    offset = (number - 1) * PAGE_SIZE
    overview = offer_overview(session, principal, offset=offset, limit=PAGE_SIZE)
    return OffersPage(
        overview.rows,
        overview.total,
        Paging(number, offset + len(overview.rows) < overview.total),
    )


def offers_csv(session: Session, principal: Principal) -> str:
    """Every customer's top offer as CSV."""
    return csv_text([r.as_row() for r in offer_overview(session, principal, limit=None).rows])
