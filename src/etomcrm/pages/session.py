"""The browser's session: the login token of ``/auth/token`` kept in a cookie, and the
CSRF token every form carries.

- The session cookie holds the same signed, expiring login token the API issues
  (:func:`etomcrm.security.service.login`): HttpOnly (no script reads it),
  SameSite=Lax (no other site's form posts with it), Secure when the public base URL is
  https. Reading it back is :func:`etomcrm.security.service.authenticate`, so the pages
  know a user exactly as the API does: same expiry, same roles, same customer scope.
- The CSRF token is an HMAC of the session's token: one per session, which only a page
  of this session can know, checked on every POST. Before sign-in a random pre-session
  cookie stands in for the token, so the sign-in form is protected too (login CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from fastapi import Request, Response

from etomcrm.config import get_settings

SESSION_COOKIE = "etomcrm_session"
PRE_SESSION_COOKIE = "etomcrm_pre"
# Carries a sign-in lock's time from the sign-in to the first page, which tells of it.
LOCK_NOTICE_COOKIE = "etomcrm_lock_notice"
CSRF_FIELD = "csrf_token"


def secure_cookies() -> bool:
    return get_settings().public_base_url.lower().startswith("https://")


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def _csrf_of(secret: str) -> str:
    return hmac.new(secret.encode(), b"etomcrm pages csrf", hashlib.sha256).hexdigest()


def csrf_token(request: Request, pre_session: str | None = None) -> str:
    """The token this request's forms carry (of the session, else of the pre-session)."""
    secret = session_token(request) or pre_session or request.cookies.get(PRE_SESSION_COOKIE)
    return _csrf_of(secret) if secret else ""


def csrf_valid(request: Request, sent: object) -> bool:
    expected = csrf_token(request)
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(expected, sent)


def new_pre_session() -> str:
    return secrets.token_urlsafe(32)


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(),
    )


def start(response: Response, token: str, locked_at: datetime | None = None) -> None:
    set_cookie(response, SESSION_COOKIE, token, get_settings().login_token_minutes * 60)
    response.delete_cookie(PRE_SESSION_COOKIE, path="/")
    if locked_at is not None:
        set_cookie(response, LOCK_NOTICE_COOKIE, locked_at.isoformat(), 3600)


def lock_notice(request: Request) -> datetime | None:
    """The lock to tell the signed-in person of, if their sign-in brought one."""
    try:
        return datetime.fromisoformat(request.cookies.get(LOCK_NOTICE_COOKIE) or "")
    except ValueError:
        return None


def end(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
