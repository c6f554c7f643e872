"""Authentication and authorisation: tokens in, a Principal out; roles per operation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt
from pwdlib import PasswordHash
from sqlalchemy import column, select, table, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from etomcrm.config import get_settings
from etomcrm.core.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    TmfError,
    TooManyRequests,
    Unauthorized,
)
from etomcrm.core.ttl_cache import TtlCache
from etomcrm.db import utcnow
from etomcrm.security.models import ApiKey, InstallationSecret, UserAccount

# The customer table, named rather than imported: security sits below every area, and
# needs no more of a customer than that its id exists.
_CUSTOMER = table("customer", column("id"))


class Role(StrEnum):
    ADMIN = "admin"
    SALES = "sales"
    ORDER_MANAGER = "order_manager"
    SUPPORT = "support"
    SLA_MANAGER = "sla_manager"
    BILLING = "billing"
    MARKETING = "marketing"
    ANALYST = "analyst"
    CUSTOMER = "customer"
    # The provider's OSS as a system account: it feeds alarms and performance data and
    # works the service problems and orders addressed to the network side, nothing more.
    NETWORK = "network"


STAFF_ROLES = frozenset(Role) - {Role.CUSTOMER, Role.NETWORK}
# Who sells: owns leads, opportunities and quotes (3.4).
SELLERS = frozenset({Role.ADMIN, Role.SALES, Role.MARKETING})


@dataclass(frozen=True)
class Principal:
    """The caller of one request."""

    id: str
    name: str
    role: Role
    customer_id: str | None = None
    # A signed-in person's chosen language for the pages; None for API keys and for
    # a person who never chose one.
    language: str | None = None

    @property
    def is_customer(self) -> bool:
        return self.role is Role.CUSTOMER

    @property
    def is_network(self) -> bool:
        return self.role is Role.NETWORK


SYSTEM = Principal(id="system", name="system", role=Role.ADMIN)

_password_hash = PasswordHash.recommended()  # Argon2id
API_KEY_PREFIX = "etm_"


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidRequest(
            f"unknown role {role!r}; roles are: {', '.join(r.value for r in Role)}"
        ) from None


def _check_customer_scope(session: Session, role: Role, customer_id: str | None) -> None:
    if role is Role.CUSTOMER:
        if not customer_id:
            raise InvalidRequest("the customer role needs a customer id (--customer)")
        if session.scalar(select(_CUSTOMER.c.id).where(_CUSTOMER.c.id == customer_id)) is None:
            raise NotFound(f"no customer with id {customer_id}")
    elif customer_id:
        raise InvalidRequest("only the customer role is scoped to a customer")


def create_api_key(
    session: Session, name: str, role: str, customer_id: str | None = None
) -> tuple[ApiKey, str]:
    """Create an API key; the token is returned once and only its hash is stored."""
    parsed = _parse_role(role)
    _check_customer_scope(session, parsed, customer_id)
    token = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name, role=parsed.value, customer_id=customer_id, token_hash=_hash_token(token)
    )
    session.add(key)
    session.flush()
    return key, token


def revoke_api_key(session: Session, key_id: str) -> None:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"no API key with id {key_id}")
    key.revoked_at = utcnow()
    PRINCIPALS.clear()


def create_user(
    session: Session, username: str, password: str, role: str, customer_id: str | None = None
) -> UserAccount:
    parsed = _parse_role(role)
    _check_customer_scope(session, parsed, customer_id)
    if parsed is Role.NETWORK:
        raise InvalidRequest(
            "the network role is a system account: create an API key for it "
            "(etomcrm apikey create --role network)"
        )
    if len(password) < 12:
        raise InvalidRequest("a password needs at least 12 characters")
    user = UserAccount(
        username=username,
        password_hash=_password_hash.hash(password),
        role=parsed.value,
        customer_id=customer_id,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a user named {username!r} exists already") from None
    return user


def _signing_secret(session: Session) -> str:
    settings = get_settings()
    if settings.secret_key:
        return settings.secret_key
    if settings.secret_key_file:
        try:
            from_file = settings.secret_key_file.read_text().strip()
        except OSError as error:
            raise RuntimeError(
                f"ETOMCRM_SECRET_KEY_FILE {settings.secret_key_file}: {error.strerror}"
            ) from None
        if len(from_file) < 32:
            raise RuntimeError("ETOMCRM_SECRET_KEY_FILE holds fewer than 32 characters")
        return from_file
    return installation_secret(session, "login-token")


def installation_secret(session: Session, name: str) -> str:
    """A random secret of this installation, made on first use and kept in its database."""
    row = session.get(InstallationSecret, name)
    if row is None:
        row = InstallationSecret(name=name, value=secrets.token_urlsafe(48))
        session.add(row)
        try:
            session.flush()
        except IntegrityError:  # another worker made it first
            session.rollback()
            row = session.get(InstallationSecret, name)
            assert row is not None
    return row.value


@dataclass(frozen=True)
class SignIn:
    """What a password check came to: a token, or the error to answer with.

    The error is returned, not raised, so that the count of failures it recorded is
    committed with it (a raised error would roll the count back).
    """

    token: str | None = None
    error: TmfError | None = None
    locked_now: bool = False
    # On a success: the account was locked since the last sign-in (see lock_notice).
    locked_since_last_sign_in: datetime | None = None
    # The language the user chose for the pages, if any.
    language: str | None = None

    @property
    def lock_notice(self) -> str | None:
        """What the person signing in is told of a lock they may not have caused."""
        if self.locked_since_last_sign_in is None:
            return None
        return (
            f"Your sign-in was locked on {self.locked_since_last_sign_in:%Y-%m-%d at %H:%M} "
            "UTC after a run of wrong passwords. If that was not you, tell your "
            "administrator and change your password."
        )


def login(session: Session, username: str, password: str, *, now: datetime | None = None) -> SignIn:
    """Check a user's password and issue a signed, expiring bearer token.

    After ``login_lockout_failures`` wrong passwords in a row the user is locked for
    ``login_lockout_minutes``: while locked, even the right password is refused (429
    with the time the lock ends), so guessing gains nothing.
    """
    settings = get_settings()
    now = now or utcnow()
    user = session.scalar(select(UserAccount).where(UserAccount.username == username))
    if user is not None and user.locked_until is not None and user.locked_until > now:
        return SignIn(error=_locked(user, now))
    # Verify against a dummy hash for unknown users too, so timing does not tell them apart.
    stored = user.password_hash if user else _DUMMY_HASH
    if not _password_hash.verify(password, stored) or user is None or not user.active:
        if user is None:
            return SignIn(error=Unauthorized("wrong username or password"))
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= settings.login_lockout_failures:
            user.failed_logins = 0
            user.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
            user.unnoticed_lock_at = now
            return SignIn(error=_locked(user, now), locked_now=True)
        return SignIn(error=Unauthorized("wrong username or password"))
    user.failed_logins = 0
    user.locked_until = None
    # Told once, at this sign-in: the person learns someone guessed at their password.
    locked_at, user.unnoticed_lock_at = user.unnoticed_lock_at, None
    claims = {
        "sub": user.id,
        "name": user.username,
        "role": user.role,
        "cust": user.customer_id,
        "iat": now,
        "exp": now + timedelta(minutes=settings.login_token_minutes),
    }
    return SignIn(
        token=jwt.encode(claims, _signing_secret(session), algorithm="HS256"),
        locked_since_last_sign_in=locked_at,
        language=user.language,
    )


def _locked(user: UserAccount, now: datetime) -> TooManyRequests:
    assert user.locked_until is not None
    return TooManyRequests(
        f"the user {user.username!r} is locked after "
        f"{get_settings().login_lockout_failures} wrong passwords in a row, until "
        f"{user.locked_until:%Y-%m-%d %H:%M} UTC; try again then, or ask an administrator "
        f"to unlock it ('etomcrm user unlock {user.username}')",
        retry_after=int((user.locked_until - now).total_seconds()) + 1,
    )


def unlock_user(session: Session, username: str) -> None:
    """Lift a password-guessing lock (an administrator, after checking with the user)."""
    user = session.scalar(select(UserAccount).where(UserAccount.username == username))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    user.failed_logins = 0
    user.locked_until = None


_DUMMY_HASH = _password_hash.hash("not a password of anyone")

# Verified tokens, so a request needs no database lookup to know its caller.
PRINCIPALS: TtlCache[str, Principal] = TtlCache()


def cached_principal(token: str) -> Principal | None:
    """A recently verified token's principal, without touching the database."""
    return PRINCIPALS.get(token)


def authenticate(session: Session, token: str | None) -> Principal:
    """Turn a bearer token (API key or login token) into the calling Principal."""
    if not token:
        raise Unauthorized("send 'Authorization: Bearer <token>'")
    hit = cached_principal(token)
    if hit is not None:
        return hit
    principal = _login_principal(session, token) if token.count(".") == 2 else None
    if principal is None:
        principal = _api_key_principal(session, token)
    PRINCIPALS.put(token, principal, get_settings().token_cache_seconds)
    return principal


def _api_key_principal(session: Session, token: str) -> Principal:
    key = session.scalar(select(ApiKey).where(ApiKey.token_hash == _hash_token(token)))
    if key is None or key.revoked_at is not None:
        raise Unauthorized("the bearer token is not valid")
    return Principal(
        id=key.id, name=f"apikey:{key.name}", role=Role(key.role), customer_id=key.customer_id
    )


def _login_principal(session: Session, token: str) -> Principal | None:
    try:
        # A token without an expiry would be good forever: every claim etomcrm issues
        # must be there.
        claims = jwt.decode(
            token,
            _signing_secret(session),
            algorithms=["HS256"],
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the login token has expired; sign in again") from None
    except jwt.MissingRequiredClaimError as missing:
        raise Unauthorized(f"the login token lacks the {missing.claim!r} claim") from None
    except jwt.InvalidTokenError:
        return None
    user = session.get(UserAccount, claims.get("sub"))
    if user is None or not user.active:
        raise Unauthorized("the user of this token is no longer active")
    return Principal(
        id=user.id,
        name=user.username,
        role=Role(user.role),
        customer_id=user.customer_id,
        language=user.language,
    )


def set_language(session: Session, user_id: str, language: str) -> None:
    """Keep the language a signed-in person chose for the pages on their account. The
    caller checks it is one the pages speak; an API key has no account (NotFound)."""
    user = session.get(UserAccount, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    user.language = language


def select_one() -> Any:
    """A trivial statement for health checks."""
    return text("SELECT 1")
