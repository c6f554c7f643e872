"""3.4.4 accounts and payment methods: TMF666 billingAccount, TMF670 paymentMethod."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from etomcrm.db import session_scope
from etomcrm.selling.accounts import (
    accounts_due,
    default_account_id,
    mark_first_collection,
    payer_terms,
    record_account_balance,
)
from etomcrm.selling.customer_data import missing_contract_data
from tests.conftest import TokenFactory
from tests.factories import (
    ACCOUNT,
    PAYMENT_METHOD,
    billing_account,
    customer,
    paying_account,
    sepa_debit,
)

ACCOUNTS = f"{ACCOUNT}/billingAccount"
METHODS = f"{PAYMENT_METHOD}/paymentMethod"


def test_an_account_with_a_sepa_mandate_gives_the_payer_terms(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given BMW with a headquarters account billed on the 5th
    bmw = customer(client, admin)
    account = billing_account(client, admin, bmw["id"], billCycleDay=5, vatId="DE129273398")
    assert account["state"] == "active"
    assert account["vatTreatment"] == "standard"
    assert account["billStructure"]["cycleSpecification"]["name"] == "monthly on day 5"
    # when a SEPA B2B mandate is recorded for it
    method = sepa_debit(client, admin, account["id"])
    # then the account lists it as its payment method and default
    read = client.get(f"{ACCOUNTS}/{account['id']}", headers=admin).json()
    assert [r["id"] for r in read["paymentMethod"]] == [method["id"]]
    assert read["defaultPaymentMethod"]["id"] == method["id"]
    assert method["sequenceType"] == "FRST"
    # and billing reads the terms it needs
    with session_scope() as session:
        terms = payer_terms(session, [account["id"]])[account["id"]]
        assert accounts_due(session, 5) == [account["id"]]
        assert accounts_due(session, 1) == []
        assert default_account_id(session, bmw["id"]) == account["id"]
    assert terms.customer_id == bmw["id"]
    assert terms.bill_cycle_day == 5 and terms.currency == "EUR"
    assert terms.delivery == ("email", "portal")
    assert terms.email == "rechnung@bmw.example"
    assert (terms.street, terms.post_code, terms.city, terms.country) == (
        "Petuelring 130",
        "80809",
        "München",
        "DE",
    )
    assert terms.means == "sepaDirectDebit" and terms.scheme == "B2B"
    assert terms.iban == "DE02120300000000202051" and terms.bic == "BYLADEM1001"
    assert terms.mandate_reference == "BMW-EXTRANET-0001"
    assert str(terms.mandate_signed) == "2026-01-15"
    assert terms.reverse_charge is False and terms.first_collection_done is False
    # and after the first collection the mandate is recurrent
    with session_scope() as session:
        mark_first_collection(session, method["id"])
    with session_scope() as session:
        assert payer_terms(session, [account["id"]])[account["id"]].first_collection_done


def test_a_vat_id_of_another_eu_state_means_reverse_charge(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer in Austria (the provider is German)
    audi = customer(client, admin, "Magna Steyr")
    # when its account carries its Austrian VAT id
    account = billing_account(client, admin, audi["id"], vatId="ATU13585627")
    # then the bill is reverse charge
    assert account["vatTreatment"] == "reverseCharge"
    with session_scope() as session:
        assert payer_terms(session, [account["id"]])[account["id"]].reverse_charge
    # and a VAT id that does not check out is refused naming it
    response = client.post(
        ACCOUNTS,
        json={**_minimal(audi["id"]), "vatId": "ATU13585620"},
        headers=admin,
    )
    assert response.status_code == 400 and "vatId" in response.json()["message"]


def _minimal(customer_id: str) -> dict[str, Any]:
    return {
        "name": "Region Süd",
        "relatedParty": [
            {"id": customer_id, "@referredType": "Customer", "role": "customer", "name": "x"}
        ],
        "billStructure": {"presentationMedia": [{"name": "portal"}]},
    }


def test_bad_iban_bic_and_mandate_are_refused_naming_the_field(
    client: TestClient, admin: dict[str, str]
) -> None:
    bmw = customer(client, admin)
    account = billing_account(client, admin, bmw["id"])
    good: dict[str, Any] = {
        "@type": "bankAccountDebit",
        "name": "SEPA",
        "account": [{"id": account["id"]}],
        "accountNumber": "DE02120300000000202051",
        "BIC": "BYLADEM1001",
        "owner": "BMW AG",
        "mandate": {"reference": "M-1", "dateOfSignature": "2026-01-15", "scheme": "CORE"},
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"accountNumber": "DE02120300000000202052"}, "accountNumber"),
        ({"BIC": "BYLAXXM1"}, "BIC"),
        ({"mandate": {**good["mandate"], "reference": "no spaces allowed"}}, "mandate.reference"),
        ({"mandate": {**good["mandate"], "dateOfSignature": "2999-01-01"}}, "future"),
        ({"mandate": {**good["mandate"], "scheme": "COR1"}}, "mandate.scheme"),
        ({"mandate": None}, "mandate"),
        ({"@type": "cash"}, "@type"),
    ]
    for change, field in cases:
        body = {k: v for k, v in {**good, **change}.items() if v is not None}
        response = client.post(METHODS, json=body, headers=admin)
        assert response.status_code == 400, (change, response.text)
        assert field in response.json()["message"], response.json()
    # a bank transfer needs no mandate
    transfer = client.post(
        METHODS,
        json={
            "@type": "bankAccountTransfer",
            "name": "Transfer",
            "account": [{"id": account["id"]}],
        },
        headers=admin,
    )
    assert transfer.status_code == 201, transfer.text


def test_a_customer_sees_and_writes_only_what_is_its_own(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given BMW with two accounts (headquarters and a region with its cost centre) and Audi
    bmw, audi = customer(client, admin, "BMW AG"), customer(client, admin, "Audi AG")
    hq = billing_account(client, admin, bmw["id"])
    region = billing_account(client, admin, bmw["id"], "Region Nord", costCentre="KST-4711")
    billing_account(client, admin, audi["id"], "Audi Zentrale")
    portal = auth("customer", customer_id=bmw["id"])
    # when BMW lists accounts, it sees its two only
    listed = client.get(ACCOUNTS, headers=portal).json()
    assert sorted(a["id"] for a in listed) == sorted([hq["id"], region["id"]])
    # then it may change its delivery, but never the credit limit or the balance
    ok = client.patch(
        f"{ACCOUNTS}/{region['id']}",
        json={"billStructure": {"presentationMedia": [{"name": "portal"}]}},
        headers=portal,
    )
    assert ok.status_code == 200, ok.text
    limit = client.patch(
        f"{ACCOUNTS}/{hq['id']}",
        json={"creditLimit": {"unit": "EUR", "value": 1000000}},
        headers=portal,
    )
    assert limit.status_code == 403 and "creditLimit" in limit.json()["message"]
    balance = client.patch(
        f"{ACCOUNTS}/{hq['id']}",
        json={
            "accountBalance": [
                {
                    "balanceType": "receivable",
                    "amount": {"unit": "EUR", "value": 0},
                    "validFor": {"startDateTime": "2026-01-01T00:00:00Z"},
                }
            ]
        },
        headers=portal,
    )
    assert balance.status_code == 400 and "accountBalance" in balance.json()["message"]
    created = client.post(
        ACCOUNTS,
        json={**_minimal(bmw["id"]), "creditLimit": {"unit": "EUR", "value": 5}},
        headers=portal,
    )
    assert created.status_code == 403
    # and staff set the credit limit; the balance is written by billing only
    staff = client.patch(
        f"{ACCOUNTS}/{hq['id']}",
        json={"creditLimit": {"unit": "EUR", "value": 50000}},
        headers=auth("billing"),
    )
    assert staff.status_code == 200, staff.text
    with session_scope() as session:
        record_account_balance(session, hq["id"], Decimal("1234.565"), "EUR")
    read = client.get(f"{ACCOUNTS}/{hq['id']}", headers=portal).json()
    assert read["accountBalance"][0]["amount"] == {"unit": "EUR", "value": 1234.57}
    assert read["creditLimit"]["value"] == 50000
    # a customer cannot attach a payment method to another customer's account
    audi_account = client.get(ACCOUNTS, headers=admin, params={"name": "Audi Zentrale"}).json()[0]
    response = client.post(
        METHODS,
        json={"@type": "bankAccountTransfer", "name": "x", "account": [{"id": audi_account["id"]}]},
        headers=portal,
    )
    assert response.status_code in (400, 404, 422), response.text
    # and an account is never deleted
    assert client.delete(f"{ACCOUNTS}/{hq['id']}", headers=admin).status_code == 405


def test_contract_readiness_needs_an_account_with_a_payment_method(
    client: TestClient, admin: dict[str, str]
) -> None:
    bmw = customer(client, admin)
    with session_scope() as session:
        assert any("billing account" in m for m in missing_contract_data(session, bmw["id"]))
    account = billing_account(client, admin, bmw["id"])
    with session_scope() as session:
        assert any("billing account" in m for m in missing_contract_data(session, bmw["id"]))
    sepa_debit(client, admin, account["id"])
    with session_scope() as session:
        assert not any("billing account" in m for m in missing_contract_data(session, bmw["id"]))


def test_the_account_list_and_payer_terms_take_bounded_queries(
    client: TestClient, admin: dict[str, str], count_queries: Callable[[], Any]
) -> None:
    def measure(accounts: int) -> tuple[int, int]:
        bmw = customer(client, admin, f"Kunde {accounts}")
        ids = [paying_account(client, admin, bmw["id"]) for _ in range(accounts)]
        with count_queries() as listing:
            response = client.get(ACCOUNTS, headers=admin, params={"limit": 100})
            assert response.status_code == 200
        with count_queries() as terms, session_scope() as session:
            assert len(payer_terms(session, ids)) == accounts
        return listing.count, terms.count

    assert measure(2) == measure(8)


def test_a_customer_opens_a_regional_account_paid_by_transfer(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given BMW in the portal
    bmw = customer(client, admin)
    portal = auth("customer", customer_id=bmw["id"])
    # when it opens an account for a region with its cost centre, billed on the 15th
    response = client.post(
        ACCOUNTS,
        json={**_minimal(bmw["id"]), "billCycleDay": 15, "costCentre": "KST-4711"},
        headers=portal,
    )
    assert response.status_code == 201, response.text
    account = response.json()
    # and pays it by bank transfer
    method = client.post(
        METHODS,
        json={
            "@type": "bankAccountTransfer",
            "name": "Transfer",
            "account": [{"id": account["id"]}],
        },
        headers=portal,
    )
    assert method.status_code == 201, method.text
    # then billing sees a transfer payer due on the 15th
    with session_scope() as session:
        terms = payer_terms(session, [account["id"]])[account["id"]]
        assert account["id"] in accounts_due(session, 15)
    assert terms.means == "bankTransfer" and terms.iban is None and terms.scheme is None
    assert terms.delivery == ("portal",) and terms.bill_cycle_day == 15


def test_bill_cycle_day_state_and_delivery_are_checked(
    client: TestClient, admin: dict[str, str]
) -> None:
    bmw = customer(client, admin)
    for change, field in (
        ({"billCycleDay": 29}, "billCycleDay"),
        ({"billCycleDay": 0}, "billCycleDay"),
        ({"currency": "USD"}, "currency"),
        ({"state": "dormant"}, "state"),
        ({"billStructure": {"presentationMedia": [{"name": "fax"}]}}, "presentationMedia"),
    ):
        response = client.post(ACCOUNTS, json={**_minimal(bmw["id"]), **change}, headers=admin)
        assert response.status_code == 400, (change, response.text)
        assert field in response.json()["message"]
    account = billing_account(client, admin, bmw["id"])
    closed = client.patch(f"{ACCOUNTS}/{account['id']}", json={"state": "closed"}, headers=admin)
    assert closed.status_code == 200, closed.text
    with session_scope() as session:
        assert account["id"] not in accounts_due(session, 1)
    again = client.patch(f"{ACCOUNTS}/{account['id']}", json={"state": "active"}, headers=admin)
    assert again.status_code == 400
