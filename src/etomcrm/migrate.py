"""Schema migrations (Alembic), run from the installed package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

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


def schema_problem(url: str | None = None) -> str | None:
    """What stops a command from using the database, in one line, or None.

    Checked before a command touches it, so that a new user who skipped ``db upgrade``
    reads what to run instead of a traceback, and no empty SQLite file is left behind.
    """
    url = url or get_settings().database_url
    shown = url.split("@")[-1]
    parsed = make_url(url)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file not in (None, "", ":memory:") and not Path(str(file)).exists():
        return f"there is no database at {shown} yet: run 'etomcrm db upgrade' first"
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except OperationalError as error:
        return (
            f"the database at {shown} cannot be reached ({error.orig}); check ETOMCRM_DATABASE_URL"
        )
    finally:
        engine.dispose()
    if current is None:
        return f"the database at {shown} has no etomcrm schema: run 'etomcrm db upgrade' first"
    if current != head:
        return (
            f"the database at {shown} is at schema revision {current}, this etomcrm needs "
            f"{head}: run 'etomcrm db upgrade'"
        )
    return None
