"""A short-lived cache of list totals (``X-Total-Count``).

Counting 100,000 rows costs far more than reading a page of 50, and a person paging
through a list does not need the total to the second. A total is kept for a couple of
seconds per process; any change this process makes to a kind forgets its totals at
once, so a client sees its own creates and deletes counted immediately. A change made
by another worker process shows in the total within ``list_total_cache_seconds``.
"""

from __future__ import annotations

from typing import Any

from etomcrm.core.ttl_cache import TtlCache

# (kind name, customer scope, filters) -> total
TOTALS: TtlCache[tuple[Any, ...], int] = TtlCache()


def forget_totals(kind_name: str) -> None:
    """Drop every cached total of one kind."""
    TOTALS.discard_where(lambda key: key[0] == kind_name)
