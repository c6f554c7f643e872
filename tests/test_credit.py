"""3.5.2 Assess credit worthiness: accept, accept with deposit, or reject, recorded."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from etomcrm.billing.payments import reverse_payment
from etomcrm.db import session_scope, utcnow
from etomcrm.security.service import SYSTEM
from etomcrm.selling.credit import assess_credit, decide
from tests.conftest import TokenFactory
from tests.factories import CUSTOMER, customer
from tests.payment_helpers import account, bill, paid


def _profile(client: TestClient, headers: dict[str, str], customer_id: str, **values: Any) -> None:
    response = client.patch(
        f"{CUSTOMER}/customer/{customer_id}",
        json={"characteristic": [{"name": k, "value": v} for k, v in values.items()]},
        headers=headers,
    )
    assert response.status_code == 200, response.text


def _assess(client: TestClient, headers: dict[str, str], customer_id: str, value: str) -> Any:
    return client.post(
        f"{CUSTOMER}/customer/{customer_id}/creditAssessment",
        json={"orderValue": value},
        headers=headers,
    )


@pytest.mark.parametrize(
    ("order", "balance", "late", "score", "outcome", "deposit", "limit"),
    [
        ("40000", "0", 0, 500, "accept", "0.00", "50000.00"),
        ("40000", "10000", 0, 500, "accept", "0.00", "50000.00"),
        ("60000", "0", 0, 500, "acceptWithDeposit", "10000.00", "50000.00"),
        ("75000", "0", 0, 500, "acceptWithDeposit", "25000.00", "50000.00"),
        ("75000.01", "0", 0, 500, "reject", "0.00", "50000.00"),
        ("40000", "0", 1, 500, "acceptWithDeposit", "2500.00", "37500.00"),
        ("1000", "0", 3, 900, "reject", "0.00", "22500.00"),
    ],
)
def test_the_rule(
    order: str, balance: str, late: int, score: int, outcome: str, deposit: str, limit: str
) -> None:
    decision = decide(Decimal(order), Decimal(balance), late, score)
    assert (decision.outcome, decision.deposit, decision.limit) == (
        outcome,
        Decimal(deposit),
        Decimal(limit),
    )


def test_assessment_is_recorded_on_the_customer(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given a customer with score 800 owing 20,000 EUR
    bmw = customer(client, admin)
    _profile(client, admin, bmw["id"], creditScore=800, openBalance="20000.00")
    sales = auth("order_manager")
    # when an order of 80,000 EUR is assessed
    response = _assess(client, sales, bmw["id"], "80000.00")
    # then exposure 100,000 exceeds the 80,000 limit: a deposit of 20,000
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["outcome"] == "acceptWithDeposit"
    assert decision["deposit"] == "20000.00" and decision["limit"] == "80000.00"
    assert "deposit of 20000.00 EUR" in decision["reason"]
    stored = client.get(f"{CUSTOMER}/customer/{bmw['id']}", headers=admin).json()
    [profile] = stored["creditProfile"]
    assert profile["creditScore"] == 800 and profile["creditRiskRating"] == 3
    assert profile["validFor"]["startDateTime"] == profile["creditProfileDate"]
    assert profile["outcome"] == "acceptWithDeposit"


def test_same_inputs_on_the_same_day_record_once(client: TestClient, admin: dict[str, str]) -> None:
    bmw = customer(client, admin)
    first = _assess(client, admin, bmw["id"], "1000").json()
    again = _assess(client, admin, bmw["id"], "1000.00").json()
    assert first == again and first["outcome"] == "accept"
    with session_scope() as session:
        assess_credit(session, SYSTEM, bmw["id"], order_value=Decimal("1000"))
    stored = client.get(f"{CUSTOMER}/customer/{bmw['id']}", headers=admin).json()
    assert len(stored["creditProfile"]) == 1
    # a different order value is a new assessment
    assert _assess(client, admin, bmw["id"], "2000").status_code == 200
    stored = client.get(f"{CUSTOMER}/customer/{bmw['id']}", headers=admin).json()
    assert len(stored["creditProfile"]) == 2


def test_bad_payment_history_is_rejected(client: TestClient, admin: dict[str, str]) -> None:
    bmw = customer(client, admin)
    _profile(client, admin, bmw["id"], creditScore=950, latePaymentsLast12Months=4)
    decision = _assess(client, admin, bmw["id"], "100").json()
    assert decision["outcome"] == "reject" and "4 late payments" in decision["reason"]


def test_bad_input_is_refused(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    bmw = customer(client, admin)
    assert _assess(client, admin, bmw["id"], "-5").status_code == 400
    assert _assess(client, admin, bmw["id"], "lots").status_code == 400
    response = client.post(
        f"{CUSTOMER}/customer/{bmw['id']}/creditAssessment",
        json={"orderValue": "10", "currency": "USD"},
        headers=admin,
    )
    assert response.status_code == 400 and "EUR" in response.json()["message"]
    _profile(client, admin, bmw["id"], creditScore="excellent")
    response = _assess(client, admin, bmw["id"], "10")
    assert response.status_code == 400 and "creditScore" in response.json()["message"]
    # the customer does not assess itself; other roles than sellers may not record
    portal = auth("customer", customer_id=bmw["id"])
    assert _assess(client, portal, bmw["id"], "10").status_code == 403
    assert _assess(client, admin, "no-such-customer", "10").status_code == 404


def test_a_limit_granted_after_review_replaces_the_score_based_one() -> None:
    # given a large order: 300,000 EUR, far above any score-based limit (100,000 at most)
    order = Decimal("300000.00")
    # when credit management has granted 500,000 EUR, then the order is accepted
    granted = decide(order, Decimal(0), 0, 1000, Decimal("500000.00"))
    assert granted.outcome == "accept" and granted.limit == Decimal("500000.00")
    # and late payments still cut the granted limit (2 x 25 %), asking for a deposit
    cut = decide(order, Decimal(0), 2, 1000, Decimal("500000.00"))
    assert cut.outcome == "acceptWithDeposit" and cut.deposit == Decimal("50000.00")
    # without it, the same order is refused
    assert decide(order, Decimal(0), 0, 1000).outcome == "reject"


def test_a_customer_cannot_write_its_own_credit_facts(
    client: TestClient, auth: TokenFactory
) -> None:
    # given a customer refused for six late payments, as billing staff recorded them
    admin = auth("admin")
    bmw = customer(client, admin)
    _profile(client, admin, bmw["id"], latePaymentsLast12Months=6, creditScore=300)
    assert _assess(client, admin, bmw["id"], "40000").json()["outcome"] == "reject"
    own = auth("customer", customer_id=bmw["id"])

    # when the customer, with its own token, rewrites the facts, or drops them
    rewritten = client.patch(
        f"{CUSTOMER}/customer/{bmw['id']}",
        json={
            "characteristic": [
                {"name": "latePaymentsLast12Months", "value": 0},
                {"name": "creditScore", "value": 900},
                {"name": "approvedCreditLimit", "value": 1000000},
            ]
        },
        headers=own,
    )
    dropped = client.patch(
        f"{CUSTOMER}/customer/{bmw['id']}",
        json={"characteristic": [{"name": "preferredLanguage", "value": "de"}]},
        headers=own,
    )

    # then both are refused, naming the facts, and the order is still refused
    assert rewritten.status_code == 403
    message = rewritten.json()["message"]
    assert all(
        n in message for n in ("approvedCreditLimit", "creditScore", "latePaymentsLast12Months")
    )
    assert dropped.status_code == 403
    assert _assess(client, admin, bmw["id"], "40000").json()["outcome"] == "reject"

    # and a characteristic of its own it may add, keeping the provider's facts as they are
    kept = client.get(f"{CUSTOMER}/customer/{bmw['id']}", headers=own).json()["characteristic"]
    added = client.patch(
        f"{CUSTOMER}/customer/{bmw['id']}",
        json={"characteristic": [*kept, {"name": "preferredLanguage", "value": "de"}]},
        headers=own,
    )
    assert added.status_code == 200, added.text


def test_billing_s_open_balance_and_payment_history_replace_the_typed_figures(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer whose characteristics claim nothing is owed and nothing was late
    bmw = customer(client, admin)
    _profile(client, admin, bmw["id"], creditScore=500, openBalance="0", latePaymentsLast12Months=0)
    # but billing knows a bill paid late, a direct debit returned and 20,000 EUR open
    today = utcnow().date()
    with session_scope() as session:
        account_id = account(session, bmw["id"])
        bill(session, account_id, bmw["id"], "CR-1", "100.00", today - timedelta(days=60))
        bill(session, account_id, bmw["id"], "CR-2", "20000.00", today + timedelta(days=10))
        bill(session, account_id, bmw["id"], "CR-3", "50.00", today - timedelta(days=30))
    with session_scope() as session:
        paid(session, account_id, "100.00", today - timedelta(days=40), "CR-1")
        debit = paid(
            session,
            account_id,
            "50.00",
            today - timedelta(days=30),
            "CR-3",
            means="sepaDirectDebit",
        )
    with session_scope() as session:
        reverse_payment(session, debit, reason="AM04", fee=Decimal("3.00"))
    # when an order of 10,000 EUR is assessed
    decision = _assess(client, admin, bmw["id"], "10000").json()
    # then billing's figures count: CR-1 late, CR-3 open past due and returned (3 late
    # payments → reject), and the open balance is 20,050 EUR
    assert decision["outcome"] == "reject" and "3 late payments" in decision["reason"]
    [profile] = client.get(f"{CUSTOMER}/customer/{bmw['id']}", headers=admin).json()[
        "creditProfile"
    ]
    assert profile["openBalance"] == "20050.00"
    assert profile["paymentHistorySource"] == "billing"
    assert profile["latePayments"] == 3


def test_a_customer_billing_never_billed_is_assessed_on_its_carried_over_figures(
    client: TestClient, admin: dict[str, str]
) -> None:
    bmw = customer(client, admin)
    _profile(client, admin, bmw["id"], openBalance="1000.00")
    _assess(client, admin, bmw["id"], "10")
    [profile] = client.get(f"{CUSTOMER}/customer/{bmw['id']}", headers=admin).json()[
        "creditProfile"
    ]
    assert profile["openBalance"] == "1000.00"
    assert profile["paymentHistorySource"] == "customer characteristics"
