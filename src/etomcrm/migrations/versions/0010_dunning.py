"""dunning cases and billing enquiries

Revision ID: 0010_dunning
Revises: 0009
Create Date: 2026-12-01 02:40:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import etomcrm.db

revision: str = "0010_dunning"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _resource_columns() -> list[Any]:
    return [
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
    ]


def _resource_indexes(table: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{table}_name"), ["name"], unique=False)
        batch_op.create_index(
            batch_op.f(f"ix_{table}_owner_customer_id"), ["owner_customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f(f"ix_{table}_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f(f"ix_{table}_bill_id"), ["bill_id"], unique=False)


def upgrade() -> None:
    op.create_table(
        "dunning_case",
        sa.Column("bill_id", sa.String(length=64), nullable=False),
        sa.Column("billing_account_id", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=120), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("next_step_at", etomcrm.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("suspension_date", sa.Date(), nullable=True),
        sa.Column("fee", sa.Numeric(precision=14, scale=2), nullable=False),
        *_resource_columns(),
    )
    _resource_indexes("dunning_case")
    with op.batch_alter_table("dunning_case", schema=None) as batch_op:
        batch_op.create_index("ux_dunning_case_bill_trigger", ["bill_id", "trigger"], unique=True)
    op.create_table(
        "billing_enquiry",
        sa.Column("bill_id", sa.String(length=64), nullable=False),
        sa.Column("disputed_amount", sa.Numeric(precision=14, scale=2), nullable=False),
        *_resource_columns(),
    )
    _resource_indexes("billing_enquiry")


def downgrade() -> None:
    op.drop_table("billing_enquiry")
    op.drop_table("dunning_case")
