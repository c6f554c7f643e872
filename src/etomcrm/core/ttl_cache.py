"""A small in-process map whose entries expire, shared by the token and total caches."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Entries live for the seconds given when put; the map is emptied when it is full."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: dict[K, tuple[V, float]] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def get(self, key: K) -> V | None:
        hit = self._entries.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        return None

    def put(self, key: K, value: V, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (value, time.monotonic() + seconds)

    def discard_where(self, matches: Callable[[K], bool]) -> None:
        with self._lock:
            for key in [k for k in self._entries if matches(k)]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
