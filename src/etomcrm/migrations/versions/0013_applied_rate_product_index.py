"""applied rate: index by product

Rating looks up what each product was already charged; without the index that is a
scan of every rated charge ever written, per account (bench/README.md, "Bill run").

Revision ID: 0013_applied_rate_product_index
Revises: 0012_payments
Create Date: 2026-12-01 04:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_applied_rate_product_index"
down_revision: str | None = "0012_payments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("applied_rate", schema=None) as batch_op:
        batch_op.create_index("ix_applied_rate_product", ["product_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("applied_rate", schema=None) as batch_op:
        batch_op.drop_index("ix_applied_rate_product")
