"""direct-debit batches (3.8.5)

Revision ID: 0012_payments
Revises: 0011_bills
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import etomcrm.db

revision: str = "0012_payments"
down_revision: str | None = "0011_bills"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "direct_debit_batch",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("collection_date", sa.Date(), nullable=False),
        sa.Column("message_id", sa.String(length=35), nullable=False),
        sa.Column("debit_count", sa.Integer(), nullable=False),
        sa.Column("total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("created_at", etomcrm.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_direct_debit_batch_date", "direct_debit_batch", ["collection_date"], unique=True
    )
    op.create_table(
        "direct_debit_item",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("bill_id", sa.String(length=64), nullable=False),
        sa.Column("billing_account_id", sa.String(length=64), nullable=False),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=False),
        sa.Column("mandate_reference", sa.String(length=35), nullable=False),
        sa.Column("sequence", sa.String(length=4), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_direct_debit_item_batch_id", "direct_debit_item", ["batch_id"])
    op.create_index("ix_direct_debit_item_bill_id", "direct_debit_item", ["bill_id"])
    op.create_index("ix_direct_debit_item_end_to_end_id", "direct_debit_item", ["end_to_end_id"])
    op.create_index(
        "ix_direct_debit_item_mandate_reference", "direct_debit_item", ["mandate_reference"]
    )


def downgrade() -> None:
    op.drop_table("direct_debit_item")
    op.drop_table("direct_debit_batch")
