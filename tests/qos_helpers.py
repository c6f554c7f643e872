"""Shared set-up of the QoS/SLA tests: an SLA level, products under it, links and
measurements inserted as the network side would write them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.db import new_id, session_scope, utcnow
from etomcrm.network.models import MaintenanceWindowRow, NetworkLinkRow, NetworkMeasurementRow
from etomcrm.qos_sla.feed import CALENDAR_ZONE
from etomcrm.qos_sla.service import establish_sla
from tests.factories import customer

SPEC = "/tmf-api/productCatalogManagement/v4/productSpecification"
OFFERINGS = "/tmf-api/productCatalogManagement/v4/productOffering"
PRODUCTS = "/tmf-api/productInventory/v4/product"
TICKETS = "/tmf-api/troubleTicket/v4/troubleTicket"


def sla_level(
    client: TestClient,
    headers: dict[str, str],
    name: str = "SLA Gold",
    *,
    service_hours: str = "24x7",
) -> None:
    level = {
        "name": name,
        "@type": "SlaSpecification",
        "productSpecCharacteristic": [
            {"name": n, "productSpecCharacteristicValue": [{"value": v}]}
            for n, v in (
                ("availabilityTarget", 99.5),
                ("timeToRepairHours", 4),
                ("latencyBoundMs", 30),
                ("penaltyRule", "10% per violated metric, max 30%"),
                ("serviceHours", service_hours),
            )
        ],
    }
    response = client.post(SPEC, json=level, headers=headers)
    assert response.status_code == 201, response.text


def access_offering(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """A site access offering (it carries a bandwidth): what an SLA is monitored on."""
    response = client.post(
        OFFERINGS,
        json={
            "name": "Site access 100 Mbit/s",
            "lifecycleStatus": "Launched",
            "prodSpecCharValueUse": [
                {"name": "bandwidth", "productSpecCharacteristicValue": [{"value": 100}]}
            ],
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def product(
    client: TestClient,
    headers: dict[str, str],
    customer_id: str,
    level: str = "SLA Gold",
    offering: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An active product sold with the SLA ``level``; of ``offering`` when given."""
    extra: dict[str, Any] = {}
    if offering is not None:
        extra["productOffering"] = {"id": offering["id"], "name": offering["name"]}
    response = client.post(
        PRODUCTS,
        json={
            **extra,
            "name": "Extranet access",
            "status": "active",
            "productCharacteristic": [{"name": "slaLevel", "value": level}],
            "productPrice": [
                {
                    "name": "monthly",
                    "priceType": "recurring",
                    "recurringChargePeriod": "month",
                    "price": {"dutyFreeAmount": {"unit": "EUR", "value": 1000.0}},
                }
            ],
            "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def link(customer_id: str, product_id: str, site_id: str = "site-1", pop: str = "pop-1") -> str:
    link_id = new_id()
    with session_scope() as session:
        session.add(
            NetworkLinkRow(
                id=link_id,
                customer_id=customer_id,
                site_id=site_id,
                pop_id=pop,
                product_id=product_id,
                bandwidth_mbits=100,
                status="up",
            )
        )
    return link_id


def monitored_product(
    client: TestClient, headers: dict[str, str]
) -> tuple[dict[str, Any], str, str]:
    """BMW's active Gold product under its SLA on one link: (customer, product id, link id)."""
    bmw = customer(client, headers)
    sla_level(client, headers)
    sold = product(client, headers, bmw["id"])
    with session_scope() as session:
        establish_sla(session, sold["id"])
    return bmw, sold["id"], link(bmw["id"], sold["id"])


def ticket_about(
    client: TestClient,
    headers: dict[str, str],
    customer_id: str,
    product_id: str,
    *,
    name: str,
    description: str,
    severity: str = "Major",
) -> dict[str, Any]:
    """A network trouble ticket about the product, opened through the API."""
    response = client.post(
        TICKETS,
        json={
            "name": name,
            "description": description,
            "severity": severity,
            "ticketType": "network",
            "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
            "relatedEntity": [
                {"id": product_id, "@referredType": "Product", "role": "affectedProduct"}
            ],
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def measure(
    link_id: str,
    start: datetime,
    count: int,
    *,
    every: timedelta = timedelta(hours=1),
    availability: float = 1.0,
    latency: float = 10.0,
    loss: float = 0.1,
    site_id: str = "site-1",
) -> None:
    with session_scope() as session:
        session.add_all(
            NetworkMeasurementRow(
                link_id=link_id,
                site_id=site_id,
                at=start + every * i,
                interval_seconds=int(every.total_seconds()),
                availability=availability,
                latency_ms=latency,
                loss_percent=loss,
                bytes_in=1000,
                bytes_out=1000,
            )
            for i in range(count)
        )


def maintenance(link_id: str, start: datetime, end: datetime) -> None:
    with session_scope() as session:
        session.add(
            MaintenanceWindowRow(
                id=new_id(),
                link_id=link_id,
                pop_id=None,
                starts_at=start,
                ends_at=end,
                announced_at=start - timedelta(days=7),
                description="router software update",
            )
        )


def repaired_ticket(
    customer_id: str,
    product_id: str,
    steps: Sequence[tuple[str, datetime]],
    *,
    ticket_type: str = "network",
) -> JsonDict:
    """A trouble ticket about the product, opened at the first step's time and moved
    through the others' statuses at theirs (e.g. inProgress, pending, resolved)."""
    from etomcrm.problem_handling.tickets import change_status, open_ticket
    from etomcrm.security.service import SYSTEM

    (_, opened), *changes = steps
    with session_scope() as session:
        ticket = open_ticket(
            session,
            SYSTEM,
            {
                "name": "Link down",
                "description": "The site has no connection.",
                "severity": "Major",
                "ticketType": ticket_type,
                "relatedParty": [
                    {"id": customer_id, "@referredType": "Customer", "role": "customer"}
                ],
                "relatedEntity": [
                    {"id": product_id, "@referredType": "Product", "role": "affectedProduct"}
                ],
            },
            now=opened,
        )
        for status, at in changes:
            ticket = change_status(session, SYSTEM, ticket["id"], status, now=at)
    return ticket


def last_day_in_one_month() -> datetime:
    """The end of the latest 24 hours of five-minute intervals that lie in one SLA month:
    just after a month began (Berlin time) they are the last day of the month before,
    so a day of downtime makes exactly one violation whenever a test runs."""
    now = utcnow()
    end = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    end -= timedelta(minutes=5)
    local = end.astimezone(CALENDAR_ZONE)
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return month_start.astimezone(UTC) if end - timedelta(days=1) < month_start else end
