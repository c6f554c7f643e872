"""documents as json text on PostgreSQL (was jsonb)

The API answers with the stored document text as it is; jsonb had to be turned back
into text on every read. SQLite keeps JSON as text already: nothing changes there.
The change rewrites each table; on a large PostgreSQL database run ``VACUUM ANALYZE``
afterwards (outside a transaction, so not here), or index-only scans read the heap
until autovacuum gets to it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 07:26:10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOCUMENT_TABLES = (
    "individual",
    "organization",
    "customer",
    "geographic_site",
    "party_interaction",
    "catalog",
    "category",
    "product_specification",
    "product_offering",
    "product_offering_price",
    "product_stock",
)
COLUMNS = [(table, "body") for table in DOCUMENT_TABLES] + [
    ("audit_record", "changes"),
    ("idempotency_record", "response_body"),
    ("outbox_event", "payload"),
]


def _retype(old: sa.types.TypeEngine[object], new: sa.types.TypeEngine[object], cast: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(
            table,
            column,
            existing_type=old,
            type_=new,
            existing_nullable=False,
            postgresql_using=f"{column}::{cast}",
        )


def upgrade() -> None:
    _retype(postgresql.JSONB(astext_type=sa.Text()), sa.JSON(), "json")


def downgrade() -> None:
    _retype(sa.JSON(), postgresql.JSONB(astext_type=sa.Text()), "jsonb")
