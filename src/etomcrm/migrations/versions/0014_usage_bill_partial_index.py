"""usage record: the bill index only over billed records

``usage_record.bill_id`` is empty until a bill charges the record, so the full index
took an entry for every record ingested (all NULL) and cost every COPY of usage. Only
billed records are indexed now: ingest writes nothing to it (bench/README.md, "Usage
ingest").

Revision ID: 0014_usage_bill_partial_index
Revises: 0013_applied_rate_product_index
Create Date: 2026-12-01 05:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_usage_bill_partial_index"
down_revision: str | None = "0013_applied_rate_product_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BILLED = sa.text("bill_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("usage_record", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_record_bill")
        batch_op.create_index(
            "ix_usage_record_bill",
            ["bill_id"],
            unique=False,
            postgresql_where=BILLED,
            sqlite_where=BILLED,
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_record", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_record_bill")
        batch_op.create_index("ix_usage_record_bill", ["bill_id"], unique=False)
