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


ACCOUNT = "/tmf-api/accountManagement/v4"
PAYMENT_METHOD = "/tmf-api/paymentMethod/v4"


def billing_account(
    client: TestClient,
    headers: dict[str, str],
    customer_id: str,
    name: str = "BMW AG Zentrale",
    **extra: Any,
) -> dict[str, Any]:
    """A TMF666 billing account of the customer, billed on the 1st, bills by e-mail."""
    body: dict[str, Any] = {
        "name": name,
        "relatedParty": [
            {"id": customer_id, "@referredType": "Customer", "role": "customer", "name": name}
        ],
        "billCycleDay": 1,
        "currency": "EUR",
        "billStructure": {"presentationMedia": [{"name": "email"}, {"name": "portal"}]},
        "contact": [
            {
                "contactType": "billing",
                "contactName": "Sabine Huber",
                "validFor": {"startDateTime": "2026-01-01T00:00:00Z"},
                "contactMedium": [
                    {
                        "mediumType": "email",
                        "characteristic": {"emailAddress": "rechnung@bmw.example"},
                    },
                    {
                        "mediumType": "postalAddress",
                        "characteristic": {
                            "street1": "Petuelring 130",
                            "postCode": "80809",
                            "city": "München",
                            "country": "DE",
                        },
                    },
                ],
            }
        ],
        **extra,
    }
    return post(client, f"{ACCOUNT}/billingAccount", body, headers)


def sepa_debit(
    client: TestClient,
    headers: dict[str, str],
    account_id: str,
    reference: str = "BMW-EXTRANET-0001",
    **extra: Any,
) -> dict[str, Any]:
    """A TMF670 SEPA B2B direct debit paying for the account."""
    body: dict[str, Any] = {
        "@type": "bankAccountDebit",
        "name": "SEPA B2B direct debit",
        "account": [{"id": account_id, "@referredType": "BillingAccount"}],
        "accountNumber": "DE02120300000000202051",
        "BIC": "BYLADEM1001",
        "owner": "Bayerische Motoren Werke AG",
        "mandate": {"reference": reference, "dateOfSignature": "2026-01-15", "scheme": "B2B"},
        **extra,
    }
    return post(client, f"{PAYMENT_METHOD}/paymentMethod", body, headers)


def paying_account(client: TestClient, headers: dict[str, str], customer_id: str) -> str:
    """3.4.4: a billing account with a SEPA mandate, what contracting needs; its id."""
    account = billing_account(client, headers, customer_id)
    sepa_debit(client, headers, account["id"])
    return str(account["id"])
