"""Every schema change is a migration: the migrated database matches the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from typer.testing import CliRunner

from etomcrm.cli import app as cli
from etomcrm.db import get_engine
from etomcrm.models import metadata
from tests.conftest import SHARED


def test_models_and_migrations_agree(db_url: str) -> None:
    # given a database built by the migrations alone (the db_url fixture does that)
    with get_engine(db_url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        # when it is compared with the models, then nothing differs
        assert compare_metadata(context, metadata) == []


def test_db_upgrade_command_is_repeatable(db_url: str) -> None:
    for _ in range(2):
        result = CliRunner().invoke(cli, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert "database at head" in result.output


@pytest.mark.skipif(
    not (SHARED / "tmf-openapi").is_dir(), reason="shared/ is not beside the checkout"
)
def test_shipped_tmf_documents_are_the_official_ones() -> None:
    shipped = Path(__file__).resolve().parents[1] / "src/etomcrm/api/tmf_documents"
    for document in shipped.glob("*.json"):
        official = SHARED / "tmf-openapi" / document.name
        assert json.loads(document.read_text()) == json.loads(official.read_text()), document.name
