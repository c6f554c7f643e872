"""campaign control groups and campaign success: campaign_target, an_campaign_target,
an_campaign_lead_fact

Revision ID: 0020_campaigns
Revises: 0019_churn
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import etomcrm.db

revision: str = "0020_campaigns"
down_revision: str | None = "0019_churn"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign_target",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("target_group", sa.String(length=10), nullable=False),
        sa.Column("assigned_at", etomcrm.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "customer_id"),
    )
    with op.batch_alter_table("campaign_target", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_target_customer_id"), ["customer_id"], unique=False
        )
    op.create_table(
        "an_campaign_target",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("target_group", sa.String(length=10), nullable=False),
        sa.Column("assigned_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "customer_id"),
    )
    with op.batch_alter_table("an_campaign_target", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_an_campaign_target_customer_id"), ["customer_id"], unique=False
        )
    op.create_table(
        "an_campaign_lead_fact",
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("responded_on", sa.Date(), nullable=False),
        sa.Column("lead_status", sa.String(length=50), nullable=True),
        sa.Column("opportunity_id", sa.String(length=64), nullable=True),
        sa.Column("opportunity_stage", sa.String(length=50), nullable=True),
        sa.Column("won_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("lead_id"),
    )
    with op.batch_alter_table("an_campaign_lead_fact", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_an_campaign_lead_fact_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_an_campaign_lead_fact_customer_id"), ["customer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("an_campaign_lead_fact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_campaign_lead_fact_customer_id"))
        batch_op.drop_index(batch_op.f("ix_an_campaign_lead_fact_campaign_id"))
    op.drop_table("an_campaign_lead_fact")
    with op.batch_alter_table("an_campaign_target", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_campaign_target_customer_id"))
    op.drop_table("an_campaign_target")
    with op.batch_alter_table("campaign_target", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_target_customer_id"))
    op.drop_table("campaign_target")
