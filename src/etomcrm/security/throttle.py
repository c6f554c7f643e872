"""Sign-in attempts counted per client address and per user name (password guessing).

Moving windows in this process's memory (``limits``): each worker counts its own, so
with two workers a guesser gets at most twice the stated rate; the lock after repeated
failures (:func:`etomcrm.security.service.login`) is kept in the database and holds
across workers.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from etomcrm.config import get_settings
from etomcrm.core.errors import TooManyRequests

_limiter = MovingWindowRateLimiter(MemoryStorage())


def check_sign_in(address: str, username: str) -> None:
    """Count one attempt; refuse with 429 and ``Retry-After`` once a window is full."""
    settings = get_settings()
    for scope, key, per_minute in (
        ("address", address, settings.login_attempts_per_address_per_minute),
        ("user", username.casefold(), settings.login_attempts_per_user_per_minute),
    ):
        item = RateLimitItemPerMinute(per_minute)
        if not _limiter.hit(item, "sign-in", scope, key):
            reset = _limiter.get_window_stats(item, "sign-in", scope, key).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            raise TooManyRequests(
                f"too many sign-in attempts from this {scope} (at most {per_minute} a "
                f"minute); try again in {wait} s",
                retry_after=wait,
            )


def forget_attempts() -> None:
    """Start counting afresh (tests; a restart does the same)."""
    _limiter.storage.reset()
