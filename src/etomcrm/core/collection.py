"""Python's cyclic garbage collector paused around bulk work.

A bill run's chunk makes hundreds of thousands of short-lived, acyclic objects (rows,
decimals, the invoices' dicts); each few hundred of them start a collection, and every
tenth of those walks all the objects the process holds (the application and its
libraries). Measured on a chunk of 500 accounts, that was a sixth of the chunk's time
(bench/README.md, "Bill run"). Reference counting frees the chunk's objects all the
same; what cycles it leaves are collected once the pause ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_paused = 0
_was_enabled = False


@contextmanager
def collection_paused() -> Iterator[None]:
    """The collector off while the block runs (in any thread; it is process-wide, so
    the pauses of threads that overlap are counted and the last one to end restores
    it as it was before the first)."""
    global _paused, _was_enabled
    with _lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()
