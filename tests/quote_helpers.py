"""The BMW catalog and sites for quote tests, and the calls a sales person makes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.catalog.models import ProductOfferingRow
from etomcrm.customer_interface.models import GeographicSiteRow
from etomcrm.db import session_scope
from etomcrm.demo.scenario import load
from etomcrm.security.service import Principal, Role
from etomcrm.selling.quotes import QuoteLine, draft_quote

QUOTES = "/tmf-api/quoteManagement/v4/quote"
SALES = Principal(id="sales-anna", name="Anna (sales)", role=Role.SALES)
MANAGER = Principal(id="sales-bernd", name="Bernd (sales manager)", role=Role.SALES)


@dataclass(frozen=True)
class Bmw:
    customer_id: str
    site_ids: list[str]  # in code order: the headquarters first
    offerings: dict[str, str]  # offering name -> id


def load_bmw() -> Bmw:
    """The demo scenario: BMW AG, its 66 sites, the catalog and the router stock."""
    with session_scope() as session:
        summary = load(session)
        sites = list(
            session.scalars(
                select(GeographicSiteRow.id)
                .where(GeographicSiteRow.owner_customer_id == summary.customer_id)
                .order_by(GeographicSiteRow.id)
            )
        )
        offerings = dict(
            session.execute(select(ProductOfferingRow.name, ProductOfferingRow.id)).all()
        )
    return Bmw(summary.customer_id, sites, {str(k): v for k, v in offerings.items()})


def site_lines(bmw: Bmw, count: int, *offerings: str) -> list[QuoteLine]:
    return [
        QuoteLine(site, bmw.offerings[name]) for site in bmw.site_ids[:count] for name in offerings
    ]


def draft(
    bmw: Bmw,
    sites: int = 2,
    discount: str = "0",
    offerings: tuple[str, ...] = ("Site access 100 Mbit/s", "Managed router", "Installation"),
    sla: str | None = "SLA Gold",
) -> dict[str, Any]:
    with session_scope() as session:
        return draft_quote(
            session,
            SALES,
            customer_id=bmw.customer_id,
            items=site_lines(bmw, sites, *offerings),
            sla_offering_id=bmw.offerings[sla] if sla else None,
            discount_percent=Decimal(discount),
        )


def action(
    client: TestClient, quote_id: str, name: str, headers: dict[str, str], **body: Any
) -> Any:
    return client.post(f"{QUOTES}/{quote_id}/{name}", json=body or None, headers=headers)


def educate(client: TestClient, quote_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post(
        f"{QUOTES}/{quote_id}/education",
        json={"presentedTo": "Katrin Weber", "channel": "meeting"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]
