"""3.1 Support & Readiness: SLA levels and materials the other processes read."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from etomcrm.catalog.service import material_availability, sla_level, sla_levels
from etomcrm.db import session_scope
from tests.factories import CATALOG, STOCK, post


def _sla_body(name: str, availability: Any = "99.9", repair: Any = 4) -> dict[str, Any]:
    def characteristic(char_name: str, value: Any, value_type: str) -> dict[str, Any]:
        return {
            "name": char_name,
            "valueType": value_type,
            "productSpecCharacteristicValue": [{"value": value, "isDefault": True}],
        }

    return {
        "name": name,
        "@type": "SlaSpecification",
        "@baseType": "ProductSpecification",
        "lifecycleStatus": "Active",
        "productSpecCharacteristic": [
            characteristic("availabilityTarget", availability, "number"),
            characteristic("timeToRepairHours", repair, "number"),
            characteristic("latencyBoundMs", 30, "number"),
            characteristic("penaltyRule", "10% of MRC per violated metric, max 30%", "string"),
        ],
    }


def test_sla_levels_are_specifications_later_processes_can_read(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given Gold and Silver SLA levels in the catalog
    gold = post(client, f"{CATALOG}/productSpecification", _sla_body("SLA Gold"), admin)
    post(client, f"{CATALOG}/productSpecification", _sla_body("SLA Silver", "99.5", 8), admin)
    post(client, f"{CATALOG}/productSpecification", {"name": "Managed router"}, admin)
    # when they are read through the service layer
    with session_scope() as session:
        level = sla_level(session, gold["id"])
        names = [lvl.name for lvl in sla_levels(session)]
    # then the figures are exact decimals
    assert level.availability_target == Decimal("99.9")
    assert level.time_to_repair_hours == Decimal(4)
    assert level.latency_bound_ms == Decimal(30)
    assert "max 30%" in level.penalty_rule
    assert names == ["SLA Gold", "SLA Silver"]


def test_incomplete_sla_level_is_refused_with_what_is_missing(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = _sla_body("SLA Bronze")
    body["productSpecCharacteristic"] = body["productSpecCharacteristic"][:2]
    response = client.post(f"{CATALOG}/productSpecification", json=body, headers=admin)
    assert response.status_code == 400
    assert (
        "latencyBoundMs" in response.json()["message"]
        and "penaltyRule" in response.json()["message"]
    )
    response = client.post(
        f"{CATALOG}/productSpecification", json=_sla_body("SLA X", "101"), headers=admin
    )
    assert response.status_code == 400 and "at most 100" in response.json()["message"]
    response = client.post(
        f"{CATALOG}/productSpecification", json=_sla_body("SLA Y", "high"), headers=admin
    )
    assert response.status_code == 400 and "must be a number" in response.json()["message"]


def test_material_availability_from_stock(client: TestClient, admin: dict[str, str]) -> None:
    # given 40 routers available and 10 reserved, replenished in 21 days
    router = post(client, f"{CATALOG}/productSpecification", {"name": "Managed router"}, admin)

    def stock(amount: int, status: str) -> None:
        post(
            client,
            f"{STOCK}/productStock",
            {
                "name": f"Routers {status}",
                "productStockStatusType": status,
                "productStockLevel": {"amount": amount, "units": "unit"},
                "stockedProduct": {
                    "name": "Managed router",
                    "productSpecification": {"id": router["id"]},
                    "productCharacteristic": [{"name": "replenishmentLeadTimeDays", "value": 21}],
                },
            },
            admin,
        )

    stock(40, "available")
    stock(10, "reserved")
    with session_scope() as session:
        materials = material_availability(session, router["id"])
    assert materials.available == Decimal(40)
    assert materials.lead_time_days == 21
    from datetime import date

    assert materials.ready_by(Decimal(30), date(2026, 12, 1)) == date(2026, 12, 1)
    assert materials.ready_by(Decimal(41), date(2026, 12, 1)) == date(2026, 12, 22)


def test_stock_must_name_an_existing_specification(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post(
        f"{STOCK}/productStock",
        json={
            "productStockStatusType": "available",
            "productStockLevel": {"amount": 1},
            "stockedProduct": {"productSpecification": {"id": "missing"}},
        },
        headers=admin,
    )
    assert response.status_code == 422


def test_category_parent_must_exist_and_not_be_itself(
    client: TestClient, admin: dict[str, str]
) -> None:
    root = post(client, f"{CATALOG}/category", {"name": "Site access", "isRoot": True}, admin)
    child = post(client, f"{CATALOG}/category", {"name": "Fibre", "parentId": root["id"]}, admin)
    assert (
        client.post(
            f"{CATALOG}/category", json={"name": "x", "parentId": "nope"}, headers=admin
        ).status_code
        == 422
    )
    response = client.patch(
        f"{CATALOG}/category/{child['id']}", json={"parentId": child["id"]}, headers=admin
    )
    assert response.status_code == 400


def test_catalog_lastupdate_is_set_by_the_server(client: TestClient, admin: dict[str, str]) -> None:
    created = post(
        client,
        f"{CATALOG}/catalog",
        {"name": "Extranet Services", "lastUpdate": "2000-01-01T00:00:00Z"},
        admin,
    )
    assert created["lastUpdate"] != "2000-01-01T00:00:00Z"
    assert created["lastUpdate"].endswith("Z")


def test_every_catalog_entity_answers_with_its_lifecycle_status(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given marketing writes each TMF620 entity with the least its document allows
    minimal = {
        "catalog": {"name": "Business catalog"},
        "category": {"name": "Site access"},
        "productSpecification": {"name": "Managed router"},
        "productOffering": {"name": "Extranet Basic"},
        "productOfferingPrice": {"name": "Monthly fee", "priceType": "recurring"},
    }
    for entity, body in minimal.items():
        # when it is created, read and listed
        created = post(client, f"{CATALOG}/{entity}", body, admin)
        read = client.get(f"{CATALOG}/{entity}/{created['id']}", headers=admin).json()
        listed = client.get(f"{CATALOG}/{entity}", headers=admin).json()
        # then each answer carries the lifecycleStatus TMF620 makes mandatory
        assert created["lifecycleStatus"] == "Active", entity
        assert read["lifecycleStatus"] == "Active", entity
        assert all(item["lifecycleStatus"] for item in listed), entity
    # and a status the writer gives is kept; removing it keeps the last one
    draft = post(
        client,
        f"{CATALOG}/productOffering",
        {"name": "Extranet Pro", "lifecycleStatus": "In design"},
        admin,
    )
    assert draft["lifecycleStatus"] == "In design"
    cleared = client.patch(
        f"{CATALOG}/productOffering/{draft['id']}", json={"lifecycleStatus": None}, headers=admin
    )
    assert cleared.status_code == 200 and cleared.json()["lifecycleStatus"] == "In design"
    # and an empty status is refused with what to send
    empty = client.post(
        f"{CATALOG}/productOffering", json={"name": "X", "lifecycleStatus": " "}, headers=admin
    )
    assert empty.status_code == 400 and "Active" in empty.json()["message"]
