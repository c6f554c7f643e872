"""``db.among``: a column among any number of values, one parameter, on both databases,
whatever the values hold (quotes, backslashes, separators, braces, words SQL knows)."""

from __future__ import annotations

from sqlalchemy import select

from etomcrm.db import among, session_scope
from etomcrm.selling.models import BillingAccountRow
from tests import bill_helpers

# Values JSON writes as they are (array text takes them quoted) ...
PLAIN_IN_JSON = ["a,b", "{braced}", "NULL", "null", "", " spaced ", "Grüße €"]
# ... and values JSON escapes.
ESCAPED_IN_JSON = ['say "hi"', "back\\slash", "tab\there", "line\nbreak"]
AWKWARD = PLAIN_IN_JSON + ESCAPED_IN_JSON


def test_among_finds_exactly_the_rows_whose_value_is_among_any_values(db_url: str) -> None:
    # given accounts named by awkward values and plain ones
    with session_scope() as session:
        ids = {}
        for name in [*AWKWARD, "plain-1", "plain-2"]:
            account_id = bill_helpers.billable_account(session, "10.00", "1.00")[1]
            session.get(BillingAccountRow, account_id).name = name  # type: ignore[union-attr]
            ids[name] = account_id

    # when they are looked for among the values (and one no account has), each kind apart
    # and together, and among plain ids
    def named(values: list[str]) -> set[str]:
        with session_scope() as session:
            return set(
                session.scalars(
                    select(BillingAccountRow.name).where(
                        among(session, BillingAccountRow.name, [*values, "nobody"])
                    )
                )
            )

    with session_scope() as session:
        by_id = set(
            session.scalars(
                select(BillingAccountRow.name).where(
                    among(session, BillingAccountRow.id, [ids["plain-1"], ids[""]])
                )
            )
        )

    # then exactly those rows are found
    assert named(PLAIN_IN_JSON) == set(PLAIN_IN_JSON)
    assert named(ESCAPED_IN_JSON) == set(ESCAPED_IN_JSON)
    assert named(AWKWARD) == set(AWKWARD)
    assert by_id == {"plain-1", ""}
