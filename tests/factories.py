"""Request bodies a test can post: minimal but realistic TMF resources."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

PARTY = "/tmf-api/party/v4"
CUSTOMER = "/tmf-api/customerManagement/v4"
SITE = "/tmf-api/geographicSiteManagement/v4"
INTERACTION = "/tmf-api/partyInteraction/v4"
CATALOG = "/tmf-api/productCatalogManagement/v4"
STOCK = "/tmf-api/stock/v4"


def post(
    client: TestClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def organization(
    client: TestClient, headers: dict[str, str], name: str = "BMW AG"
) -> dict[str, Any]:
    return post(
        client,
        f"{PARTY}/organization",
        {"tradingName": name, "name": name, "isLegalEntity": True, "organizationType": "company"},
        headers,
    )


def customer(client: TestClient, headers: dict[str, str], name: str = "BMW AG") -> dict[str, Any]:
    org = organization(client, headers, name)
    return post(
        client,
        f"{CUSTOMER}/customer",
        {
            "name": name,
            "engagedParty": {"id": org["id"], "@referredType": "Organization", "name": name},
        },
        headers,
    )


def site(
    client: TestClient, headers: dict[str, str], customer_id: str, city: str = "München"
) -> dict[str, Any]:
    return post(
        client,
        f"{SITE}/geographicSite",
        {
            "name": f"Dealer {city}",
            "code": city[:3].upper(),
            "status": "active",
            "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
            "place": [
                {
                    "@type": "GeographicAddress",
                    "city": city,
                    "postcode": "80809",
                    "country": "DE",
                    "street1": "Petuelring 130",
                }
            ],
        },
        headers,
    )


def interaction(client: TestClient, headers: dict[str, str], customer_id: str) -> dict[str, Any]:
    return post(
        client,
        f"{INTERACTION}/partyInteraction",
        {
            "reason": "Request for extranet access",
            "direction": "inbound",
            "channel": [{"id": "phone", "name": "phone"}],
            "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        },
        headers,
    )


def accept_delivery(client: TestClient, headers: dict[str, str], order_id: str) -> None:
    """3.5.5: the customer (or staff for it) accepts what a completed order delivered, so
    its post-ordering flow goes on to the survey and ends."""
    response = client.patch(
        f"/tmf-api/productOrderingManagement/v4/productOrder/{order_id}",
        json={"customerAcceptance": {"state": "accepted"}},
        headers=headers,
    )
    assert response.status_code == 200, response.text


def link_down_alarm(link_id: str, raised: datetime) -> dict[str, Any]:
    """The alarm a real OSS sends when an access link goes down (TMF642 Alarm_Create)."""
    return {
        "externalAlarmId": "oss-77812",
        "alarmType": "communicationsAlarm",
        "perceivedSeverity": "major",
        "probableCause": "linkDown",
        "specificProblem": "LOS on the access port towards the customer site",
        "alarmedObjectType": "AccessLink",
        "alarmedObject": {"id": link_id},
        "sourceSystemId": "acme-oss",
        "state": "raised",
        "alarmRaisedTime": raised.isoformat().replace("+00:00", "Z"),
    }
