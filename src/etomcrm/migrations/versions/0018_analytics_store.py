"""analytical store (seed 5.3): facts, dimensions and imported history, tables an_*

Kept apart from the operational tables by name; derived from them (etomcrm analytics
rebuild), except the imported history.

Revision ID: 0018_analytics_store
Revises: 0017_usage_fillfactor
Create Date: 2026-12-01 10:17:22.226912
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import etomcrm.db

revision: str = "0018_analytics_store"
down_revision: str | None = "0017_usage_fillfactor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "an_pending",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("tables", sa.Integer(), nullable=False),
        sa.Column("marked_at", etomcrm.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key"),
    )
    op.create_index("ix_an_pending_marked_at", "an_pending", ["marked_at"])
    op.create_table(
        "an_campaign",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=50), nullable=True),
        sa.Column("budget", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.PrimaryKeyConstraint("campaign_id"),
    )
    op.create_table(
        "an_campaign_touch_fact",
        sa.Column("touch_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("touch_id"),
    )
    with op.batch_alter_table("an_campaign_touch_fact", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_an_campaign_touch_fact_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_an_campaign_touch_fact_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_an_campaign_touch_fact_day"), ["day"], unique=False)

    op.create_table(
        "an_contact_fact",
        sa.Column("interaction_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("direction", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=50), nullable=True),
        sa.Column("received_at", etomcrm.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("response_seconds", sa.Integer(), nullable=True),
        sa.Column("handling_seconds", sa.Integer(), nullable=True),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.Column("first_contact_resolved", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("interaction_id"),
    )
    with op.batch_alter_table("an_contact_fact", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_an_contact_fact_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_an_contact_fact_day"), ["day"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_an_contact_fact_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "an_customer",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=50), nullable=True),
        sa.Column("created_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    with op.batch_alter_table("an_customer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_an_customer_segment"), ["segment"], unique=False)

    op.create_table(
        "an_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    with op.batch_alter_table("an_day", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_an_day_month"), ["month"], unique=False)

    op.create_table(
        "an_dunning_fact",
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=50), nullable=True),
        sa.PrimaryKeyConstraint("case_id"),
    )
    with op.batch_alter_table("an_dunning_fact", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_an_dunning_fact_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_an_dunning_fact_opened_on"), ["opened_on"], unique=False
        )

    op.create_table(
        "an_history_customer",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("import_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("segment", sa.String(length=100), nullable=True),
        sa.Column("tenure_months", sa.Integer(), nullable=False),
        sa.Column("contract_type", sa.String(length=30), nullable=False),
        sa.Column("payment_method", sa.String(length=30), nullable=False),
        sa.Column("monthly_charges", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("total_charges", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("services", sa.String(length=500), nullable=False),
        sa.Column("churned", sa.Boolean(), nullable=False),
        sa.Column("observed_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id"),
    )
    with op.batch_alter_table("an_history_customer", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_an_history_customer_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_an_history_customer_import_id"), ["import_id"], unique=False
        )

    op.create_table(
        "an_history_import",
        sa.Column("import_id", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=300), nullable=False),
        sa.Column("imported_at", etomcrm.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("imported_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("import_id"),
    )
    op.create_table(
        "an_order_fact",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=50), nullable=True),
        sa.Column("ordered_on", sa.Date(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("site_count", sa.Integer(), nullable=False),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("completed_month", sa.String(length=7), nullable=True),
        sa.PrimaryKeyConstraint("order_id"),
    )
    with op.batch_alter_table("an_order_fact", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_an_order_fact_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_an_order_fact_ordered_on"), ["ordered_on"], unique=False
        )

    op.create_table(
        "an_product",
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("offering_id", sa.String(length=64), nullable=True),
        sa.Column("offering_name", sa.String(length=200), nullable=True),
        sa.Column("site_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=50), nullable=True),
        sa.PrimaryKeyConstraint("product_id"),
    )
    with op.batch_alter_table("an_product", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_an_product_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "an_revenue_fact",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=True),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("rate_type", sa.String(length=30), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("an_revenue_fact", schema=None) as batch_op:
        batch_op.create_index(
            "ix_an_revenue_fact_customer_month", ["customer_id", "month"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_an_revenue_fact_month"), ["month"], unique=False)

    op.create_table(
        "an_segment",
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("segment"),
    )
    op.create_table(
        "an_site",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("site_id"),
    )
    with op.batch_alter_table("an_site", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_an_site_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "an_ticket_fact",
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=50), nullable=True),
        sa.Column("priority", sa.String(length=50), nullable=True),
        sa.Column("opened_at", etomcrm.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("resolved_at", etomcrm.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("repair_seconds", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("ticket_id"),
    )
    with op.batch_alter_table("an_ticket_fact", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_an_ticket_fact_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_an_ticket_fact_opened_at"), ["opened_at"], unique=False
        )

    op.create_table(
        "an_usage_fact",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("usage_type", sa.String(length=50), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("volume", sa.Numeric(precision=20, scale=6), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("an_usage_fact", schema=None) as batch_op:
        batch_op.create_index("ix_an_usage_fact_customer_day", ["customer_id", "day"], unique=False)
        batch_op.create_index(batch_op.f("ix_an_usage_fact_day"), ["day"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_an_pending_marked_at", table_name="an_pending")
    op.drop_table("an_pending")
    with op.batch_alter_table("an_usage_fact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_usage_fact_day"))
        batch_op.drop_index("ix_an_usage_fact_customer_day")

    op.drop_table("an_usage_fact")
    with op.batch_alter_table("an_ticket_fact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_ticket_fact_opened_at"))
        batch_op.drop_index(batch_op.f("ix_an_ticket_fact_customer_id"))

    op.drop_table("an_ticket_fact")
    with op.batch_alter_table("an_site", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_site_customer_id"))

    op.drop_table("an_site")
    op.drop_table("an_segment")
    with op.batch_alter_table("an_revenue_fact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_revenue_fact_month"))
        batch_op.drop_index("ix_an_revenue_fact_customer_month")

    op.drop_table("an_revenue_fact")
    with op.batch_alter_table("an_product", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_product_customer_id"))

    op.drop_table("an_product")
    with op.batch_alter_table("an_order_fact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_order_fact_ordered_on"))
        batch_op.drop_index(batch_op.f("ix_an_order_fact_customer_id"))

    op.drop_table("an_order_fact")
    op.drop_table("an_history_import")
    with op.batch_alter_table("an_history_customer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_history_customer_import_id"))
        batch_op.drop_index(batch_op.f("ix_an_history_customer_customer_id"))

    op.drop_table("an_history_customer")
    with op.batch_alter_table("an_dunning_fact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_dunning_fact_opened_on"))
        batch_op.drop_index(batch_op.f("ix_an_dunning_fact_customer_id"))

    op.drop_table("an_dunning_fact")
    with op.batch_alter_table("an_day", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_day_month"))

    op.drop_table("an_day")
    with op.batch_alter_table("an_customer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_customer_segment"))

    op.drop_table("an_customer")
    with op.batch_alter_table("an_contact_fact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_contact_fact_received_at"))
        batch_op.drop_index(batch_op.f("ix_an_contact_fact_day"))
        batch_op.drop_index(batch_op.f("ix_an_contact_fact_customer_id"))

    op.drop_table("an_contact_fact")
    with op.batch_alter_table("an_campaign_touch_fact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_campaign_touch_fact_day"))
        batch_op.drop_index(batch_op.f("ix_an_campaign_touch_fact_customer_id"))
        batch_op.drop_index(batch_op.f("ix_an_campaign_touch_fact_campaign_id"))

    op.drop_table("an_campaign_touch_fact")
    op.drop_table("an_campaign")
