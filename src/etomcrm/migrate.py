"""Schema migrations (Alembic), run from the installed package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from etomcrm.config import get_settings


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url or get_settings().database_url)
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def revision(message: str, url: str | None = None) -> None:
    """Write a new migration from the difference between models and database."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
