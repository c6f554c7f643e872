"""Settings, read from the environment (prefix ``ETOMCRM_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ETOMCRM_", extra="ignore")

    database_url: str = f"sqlite:///{Path.cwd() / 'etomcrm.db'}"
    # Signs staff login tokens. When unset, a secret is generated once and kept in the
    # database so every worker process of one installation agrees on it.
    secret_key: str | None = None
    max_body_bytes: int = 1_000_000
    default_page_limit: int = 50
    max_page_limit: int = 1000
    login_token_minutes: int = 480
    # Cached token lookups: a revoked API key stops working within this many seconds.
    token_cache_seconds: float = 30.0
    # How long one process may answer X-Total-Count from its cache (see core.totals).
    list_total_cache_seconds: float = 2.0
    hub_delivery_interval_seconds: float = 1.0
    hub_delivery_enabled: bool = True
    hub_max_backoff_seconds: float = 600.0


@lru_cache
def get_settings() -> Settings:
    return Settings()
