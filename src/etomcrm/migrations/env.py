"""Alembic environment: runs against ETOMCRM_DATABASE_URL or the URL the caller set."""

from __future__ import annotations

from alembic import context

from etomcrm.db import get_engine
from etomcrm.models import metadata

config = context.config


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or None
    engine = get_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
