"""A short-lived cache of list totals (``X-Total-Count``).

Counting 100,000 rows costs far more than reading a page of 50, and a person paging
through a list does not need the total to the second. A total is kept for a couple of
seconds per process; any change this process makes to a kind forgets its totals at
once, so a client sees its own creates and deletes counted immediately. A change made
by another worker process shows in the total within ``list_total_cache_seconds``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable

_lock = threading.Lock()
_totals: dict[Hashable, tuple[int, float]] = {}
_MAX_ENTRIES = 10_000


def cached_total(key: Hashable) -> int | None:
    hit = _totals.get(key)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    return None


def remember_total(key: Hashable, total: int, seconds: float) -> None:
    if seconds <= 0:
        return
    with _lock:
        if len(_totals) >= _MAX_ENTRIES:
            _totals.clear()
        _totals[key] = (total, time.monotonic() + seconds)


def forget_totals(kind_name: str) -> None:
    """Drop every cached total of one kind (keys start with the kind's name)."""
    with _lock:
        for key in [k for k in _totals if isinstance(k, tuple) and k and k[0] == kind_name]:
            del _totals[key]
