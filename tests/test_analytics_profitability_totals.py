"""Customer profitability's total, now summed from the database's groups: the same
whatever the grouping, with each customer counted once."""

from __future__ import annotations

from etomcrm.analytics.profitability import GROUPINGS, customer_profitability
from etomcrm.db import session_scope
from tests.test_analytics_profitability import three_months  # noqa: F401 (the fixture)


def test_the_total_is_the_same_in_every_grouping_and_counts_each_customer_once(
    three_months: str,  # noqa: F811
) -> None:
    # given the dealer over three months and another customer with one month (the fixture)
    # when the profitability is grouped each way
    with session_scope(readonly=True) as session:
        reports = {by: customer_profitability(session, by=by) for by in GROUPINGS}

    # then every grouping has the same total, and two customers in it (the dealer is in
    # three months and three customer-months, but is one customer)
    totals = {by: report.total.as_row() for by, report in reports.items()}
    assert totals["customer"]["customers"] == 2
    assert totals["customer"]["profit"] == "-84.50"  # -584.50 + 500.00
    for by in GROUPINGS:
        assert totals[by] == totals["customer"], by
    # and each group counts its own customers
    months = {p.key: p.customers for p in reports["month"].groups}
    assert months == {"2026-01": 1, "2026-02": 2, "2026-03": 1}
    # and the groups add up to the total
    for by, report in reports.items():
        assert sum(p.profit for p in report.groups) == report.total.profit, by
