"""Staff and portal users, API keys and the installation's signing secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from etomcrm.db import Base, UTCDateTime, new_id, utcnow


class UserAccount(Base):
    """A person who signs in: staff with a role, or a customer's portal user."""

    __tablename__ = "user_account"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(50))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Consecutive wrong passwords, and the lock they led to (password guessing).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last lock, until the user's next sign-in tells them of it.
    unnoticed_lock_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The language the person chose for the pages ("de", "en"); None until they choose.
    language: Mapped[str | None] = mapped_column(String(8))


class ApiKey(Base):
    """A machine client's bearer token; only its SHA-256 is kept."""

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(50))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InstallationSecret(Base):
    """A secret of this installation by name: the one that signs login tokens when none is
    configured, the one the demo derives its sign-ins' passwords from."""

    __tablename__ = "installation_secret"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
