"""bills: issued bill documents and customer bill on demand requests

Revision ID: 0011_bills
Revises: 0010_dunning
Create Date: 2026-12-01 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import etomcrm.db

revision: str = "0011_bills"
down_revision: str | None = "0010_dunning"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bill_document",
        sa.Column("bill_id", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("xml", sa.LargeBinary(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("bill_id"),
    )
    op.create_table(
        "customer_bill_on_demand",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=100), nullable=True),
        sa.Column("owner_customer_id", sa.String(length=64), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", etomcrm.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", etomcrm.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("customer_bill_on_demand", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_bill_on_demand_name"), ["name"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_customer_bill_on_demand_owner_customer_id"),
            ["owner_customer_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_customer_bill_on_demand_status"), ["status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_bill_on_demand", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_bill_on_demand_status"))
        batch_op.drop_index(batch_op.f("ix_customer_bill_on_demand_owner_customer_id"))
        batch_op.drop_index(batch_op.f("ix_customer_bill_on_demand_name"))
    op.drop_table("customer_bill_on_demand")
    op.drop_table("bill_document")
