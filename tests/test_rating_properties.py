"""Properties of rating (hypothesis): proration adds up, usage increments add up, a
credit is applied once whatever the reruns and redeliveries."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from etomcrm.billing import charges
from etomcrm.billing.charges import Tier
from etomcrm.billing.models import AppliedRateRow
from etomcrm.billing.rating import rate_account, record_sla_credit
from etomcrm.db import session_scope
from etomcrm.qos_sla.events import SlaCreditOwed
from tests.test_rating import _account, _customer, _price, _product

MONEY = st.decimals(min_value=0, max_value=100_000, places=2)
VOLUME = st.decimals(min_value=0, max_value=50_000, places=3)


@given(
    monthly=MONEY,
    month=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 1)),
    cuts=st.lists(st.integers(min_value=1, max_value=30), max_size=6, unique=True),
)
def test_the_prorated_parts_of_a_month_add_up_within_a_cent_per_line(
    monthly: Decimal, month: date, cuts: list[int]
) -> None:
    # Given a billing month cut into parts (activation, changes, termination)
    cycle = charges.cycles(month.replace(day=1), month.replace(day=1))[0]
    days = sorted({c for c in cuts if c < cycle.days})
    bounds = [0, *days, cycle.days]
    # When each part is prorated
    parts = [charges.prorate(monthly, b - a, cycle.days) for a, b in pairwise(bounds)]
    # Then they add up to the monthly charge within one cent per line
    assert abs(sum(parts) - monthly) <= Decimal("0.01") * len(parts)
    assert all(p == charges.cents(p) for p in parts)


@given(
    included=VOLUME,
    increments=st.lists(VOLUME, min_size=1, max_size=5),
    tiers=st.lists(
        st.tuples(
            st.decimals(min_value=1, max_value=10_000, places=0),
            st.decimals(min_value=0, max_value=1, places=3),
        ),
        max_size=3,
    ),
    last=st.decimals(min_value=0, max_value=1, places=3),
)
def test_usage_rated_in_increments_costs_what_it_costs_at_once(
    included: Decimal,
    increments: list[Decimal],
    tiers: list[tuple[Decimal, Decimal]],
    last: Decimal,
) -> None:
    # Given tiers beyond an included volume, and usage arriving in increments
    bounded, top = [], Decimal(0)
    for width, price in tiers:
        top += width
        bounded.append(Tier(top, price))
    priced = (*bounded, Tier(None, last))
    # When each increment is rated against what was charged before
    already, exact = Decimal(0), Decimal(0)
    for volume in increments:
        lines = charges.rate_usage(volume, included, priced, already=already)
        exact += sum((line.quantity * line.unit_price for line in lines), Decimal(0))
        already += volume
    # Then the increments cost exactly what the whole volume costs
    assert exact == charges.usage_cost(already, included, priced)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    amount=st.decimals(min_value=1, max_value=500, places=2),
    deliveries=st.integers(min_value=1, max_value=4),
    reruns=st.integers(min_value=1, max_value=3),
)
def test_a_credit_is_applied_once_whatever_the_reruns(
    client: TestClient, admin: dict[str, str], amount: Decimal, deliveries: int, reruns: int
) -> None:
    # Given a 69.00 monthly product and an SLA credit for October (owed from 1
    # November) delivered several times
    customer_id = _customer(client, admin)
    account = _account(customer_id)
    product = _product(customer_id, [_price("SLA Silver", "69")], "2026-10-01T00:00:00Z")
    event = SlaCreditOwed(
        violation_id=f"violation-{customer_id}",
        customer_id=customer_id,
        product_id=product,
        period="2026-10",
        metric="availability",
        amount=str(amount),
        currency="EUR",
    )
    for _ in range(deliveries):
        record_sla_credit(event)
    # When the months are rated again and again, each month's rates billed
    start, totals = date(2026, 11, 1), []
    for _ in range(4):
        end = charges.add_months(start, 1) - timedelta(days=1)
        for _ in range(reruns):
            with session_scope() as session:
                rates = rate_account(session, account, start, end, today=end)
        with session_scope() as session:
            rates = rate_account(session, account, start, end, today=end)
            totals.append(sum(r.tax_excluded for r in rates))
            for rate in rates:
                rate.bill_id = f"bill-{start}"
        start = end + timedelta(days=1)
    # Then no bill is negative, and the credit was taken once in all
    assert all(total >= 0 for total in totals)
    assert sum(totals) == max(Decimal(0), 4 * Decimal("69.00") - amount)
    with session_scope() as session:
        credits = session.scalars(
            select(AppliedRateRow).where(
                AppliedRateRow.billing_account_id == account,
                AppliedRateRow.rate_type.in_(["credit", "carriedCredit"]),
            )
        ).all()
        assert sum(c.tax_excluded for c in credits if c.bill_id) == -min(amount, 4 * Decimal(69))
        assert len([c for c in credits if c.rate_type == "credit"]) == 1
