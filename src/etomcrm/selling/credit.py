"""3.5.2 Assess credit worthiness and grant credit, recorded on the TMF629 customer.

Inputs: the open balance and payment history as billing keeps them (3.8.5, read through
the port :func:`read_payment_history_from`, wired in the composition root: selling does
not import billing), and from the customer's ``characteristic`` list:

- ``creditScore``: 0-1000 from the credit agency; a customer without one counts as
  500 (no history is neither good nor bad);
- ``openBalance``: what the customer owes us now, in EUR; 0 when absent. Billing's figure
  (its issued bills' open amounts less its credit) replaces it once billing knows the
  customer; the characteristic is the figure carried over from before etomcrm billed it;
- ``latePaymentsLast12Months``: how many bills were paid late in the last year; 0 when
  absent. Likewise replaced by billing's count: bills paid after their due date or still
  open past it, plus returned direct debits, in the last 12 months;
- ``approvedCreditLimit``: a limit in EUR that credit management granted after a
  review (a large corporation, a framework contract); when absent the score sets it.

The rule:

- credit limit = approvedCreditLimit, or else creditScore x EUR 100; less 25 % for each
  late payment;
- three or more late payments → **reject** (bad payment history);
- exposure = open balance + order value; exposure within the limit → **accept**;
- exposure up to 1.5 x the limit → **acceptWithDeposit**, the deposit being the
  exposure above the limit (to the cent, rounded up);
- beyond 1.5 x the limit → **reject**.

Each assessment is appended to ``creditProfile`` (creditProfileDate, creditScore,
creditRiskRating 1 = low … 5 = high, validFor 30 days, plus the inputs and the
outcome). The same inputs on the same day give the recorded decision back without a
second entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any, Literal

from sqlalchemy.orm import Session

from etomcrm.core import resources
from etomcrm.core.clock import iso
from etomcrm.core.errors import Forbidden, InvalidRequest
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.service import CUSTOMER_KIND
from etomcrm.db import utcnow
from etomcrm.security.service import Principal

Outcome = Literal["accept", "acceptWithDeposit", "reject"]
CURRENCY = "EUR"
CENT = Decimal("0.01")
DEFAULT_SCORE = 500
MAX_SCORE = 1000
LIMIT_PER_POINT = Decimal(100)
LATE_PAYMENT_CUT = Decimal("0.25")
REJECT_LATE_PAYMENTS = 3
DEPOSIT_CEILING = Decimal("1.5")
VALID_DAYS = 30
ASSESSMENT_TYPE = "CreditAssessment"


@dataclass(frozen=True)
class PaymentRecord:
    """How a customer paid, as billing knows it (3.8.5), in EUR."""

    open_balance: Decimal
    late_payments: int  # bills paid late or open past due in the last 12 months
    returned_debits: int  # direct debits that came back in the last 12 months


# Billing's answer for one customer; None when billing has never billed it.
PaymentRecordReader = Callable[[Session, str], PaymentRecord | None]
_payment_records: PaymentRecordReader | None = None


def read_payment_history_from(reader: PaymentRecordReader | None) -> None:
    """Wire where the assessment reads open balance and payment history (the composition
    root passes billing's; None: the customer's characteristics only)."""
    global _payment_records
    _payment_records = reader


@dataclass(frozen=True)
class CreditDecision:
    """What 3.5.2 decided, in EUR."""

    outcome: Outcome
    deposit: Decimal
    limit: Decimal
    reason: str
    credit_score: int
    risk_rating: int
    currency: str = CURRENCY

    def as_json(self) -> JsonDict:
        return {
            "outcome": self.outcome,
            "deposit": str(self.deposit),
            "limit": str(self.limit),
            "currency": self.currency,
            "reason": self.reason,
            "creditScore": self.credit_score,
            "creditRiskRating": self.risk_rating,
        }


def _characteristic(body: JsonDict, name: str) -> Any:
    for item in body.get("characteristic") or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get("value")
    return None


def _decimal(value: Any, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InvalidRequest(f"{what} must be an amount, not {value!r}") from None
    if not number.is_finite():
        raise InvalidRequest(f"{what} must be a finite amount, not {value!r}")
    return number


def _whole(value: Any, what: str, default: int, maximum: int | None = None) -> int:
    if value is None:
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise InvalidRequest(
            f"the customer's {what} must be a whole number, not {value!r}"
        ) from None
    if number < 0 or (maximum is not None and number > maximum):
        bound = f"0 to {maximum}" if maximum is not None else "0 or more"
        raise InvalidRequest(f"the customer's {what} must be {bound}, not {number}")
    return number


def decide(
    order_value: Decimal,
    balance: Decimal,
    late: int,
    score: int,
    approved_limit: Decimal | None = None,
) -> CreditDecision:
    """The rule of the module docstring, without reading or writing anything."""
    cut = max(Decimal(0), 1 - LATE_PAYMENT_CUT * late)
    base = approved_limit if approved_limit is not None else Decimal(score) * LIMIT_PER_POINT
    limit = (base * cut).quantize(CENT)
    exposure = balance + order_value
    figures = f"order {order_value} + open balance {balance} = {exposure} EUR"
    if late >= REJECT_LATE_PAYMENTS:
        return CreditDecision(
            "reject",
            Decimal("0.00"),
            limit,
            f"{late} late payments in the last 12 months ({REJECT_LATE_PAYMENTS} or more "
            "are refused)",
            score,
            5,
        )
    if exposure <= limit:
        rating = 1 if late == 0 else 2
        return CreditDecision(
            "accept",
            Decimal("0.00"),
            limit,
            f"{figures} is within the limit {limit} EUR",
            score,
            rating,
        )
    if exposure <= limit * DEPOSIT_CEILING:
        deposit = (exposure - limit).quantize(CENT, rounding=ROUND_CEILING)
        return CreditDecision(
            "acceptWithDeposit",
            deposit,
            limit,
            f"{figures} exceeds the limit {limit} EUR; a deposit of {deposit} EUR covers it",
            score,
            3,
        )
    return CreditDecision(
        "reject",
        Decimal("0.00"),
        limit,
        f"{figures} exceeds 1.5 x the limit {limit} EUR",
        score,
        5,
    )


def _recorded(entry: JsonDict) -> CreditDecision:
    return CreditDecision(
        outcome=entry["outcome"],
        deposit=Decimal(entry["deposit"]),
        limit=Decimal(entry["creditLimit"]),
        reason=entry["reason"],
        credit_score=int(entry["creditScore"]),
        risk_rating=int(entry["creditRiskRating"]),
        currency=entry.get("currency", CURRENCY),
    )


def assess_credit(
    session: Session,
    principal: Principal,
    customer_id: str,
    *,
    order_value: Decimal,
    currency: str = CURRENCY,
) -> CreditDecision:
    """3.5.2 Assess Credit Worthiness (eTOM 1.1.1.5.2): accept, ask a deposit, or reject.

    Reads the score from the customer, open balance and payment history from billing
    (or the customer, while billing has not billed it), applies the rule
    of this module and records the assessment in the customer's ``creditProfile``;
    idempotent for the same inputs on the same day.
    """
    if principal.is_customer:
        raise Forbidden("credit is assessed by our staff, not by the customer")
    if currency != CURRENCY:
        raise InvalidRequest(f"credit is assessed in {CURRENCY}; convert {currency} amounts first")
    if not isinstance(order_value, Decimal) or not order_value.is_finite() or order_value < 0:
        raise InvalidRequest(f"the order value must be an amount of 0 or more, not {order_value}")
    order_value = order_value.quantize(CENT)
    body, _ = resources.get(session, CUSTOMER_KIND, principal, customer_id)
    score = _whole(_characteristic(body, "creditScore"), "creditScore", DEFAULT_SCORE, MAX_SCORE)
    late = _whole(_characteristic(body, "latePaymentsLast12Months"), "latePaymentsLast12Months", 0)
    raw_balance = _characteristic(body, "openBalance")
    balance = _decimal(raw_balance if raw_balance is not None else 0, "openBalance").quantize(CENT)
    billed = _payment_records(session, customer_id) if _payment_records is not None else None
    source = "customer characteristics"
    if billed is not None:
        balance = billed.open_balance.quantize(CENT)
        late = billed.late_payments + billed.returned_debits
        source = "billing"
    raw_limit = _characteristic(body, "approvedCreditLimit")
    approved = (
        None if raw_limit is None else _decimal(raw_limit, "approvedCreditLimit").quantize(CENT)
    )
    if approved is not None and approved < 0:
        raise InvalidRequest(
            f"the customer's approvedCreditLimit must be 0 or more, not {approved}"
        )
    now = utcnow()
    key = f"{now.date().isoformat()}|{order_value}|{currency}|{balance}|{late}|{score}|{approved}"
    profiles = list(body.get("creditProfile") or [])
    for entry in profiles:
        if isinstance(entry, dict) and entry.get("assessmentKey") == key:
            return _recorded(entry)
    decision = decide(order_value, balance, late, score, approved)
    stamp = iso(now)
    until = iso(now + timedelta(days=VALID_DAYS))
    profiles.append(
        {
            "@type": ASSESSMENT_TYPE,
            "@baseType": "CreditProfile",
            "creditProfileDate": stamp,
            "creditScore": score,
            "creditRiskRating": decision.risk_rating,
            "validFor": {"startDateTime": stamp, "endDateTime": until},
            "outcome": decision.outcome,
            "reason": decision.reason,
            "orderValue": str(order_value),
            "openBalance": str(balance),
            "latePayments": late,
            "paymentHistorySource": source,
            "creditLimit": str(decision.limit),
            "deposit": str(decision.deposit),
            "currency": currency,
            "assessedBy": principal.name,
            "assessmentKey": key,
        }
    )
    resources.patch(session, CUSTOMER_KIND, principal, customer_id, {"creditProfile": profiles})
    return decision
