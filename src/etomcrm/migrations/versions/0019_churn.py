"""churn model (seed 5.3, predict): an_churn_model, one row per fit, kept as data

Revision ID: 0019_churn
Revises: 0018_analytics_store
Create Date: 2026-12-01 13:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import etomcrm.db

revision: str = "0019_churn"
down_revision: str | None = "0018_analytics_store"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "an_churn_model",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("trained_at", etomcrm.db.UTCDateTime(), nullable=False),
        sa.Column("trained_by", sa.String(length=200), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("churned", sa.Integer(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("means", sa.JSON(), nullable=False),
        sa.Column("scales", sa.JSON(), nullable=False),
        sa.Column("coefficients", sa.JSON(), nullable=False),
        sa.Column("intercept", sa.Float(), nullable=False),
        sa.Column("calibration", sa.JSON(), nullable=False),
        sa.Column("evaluation", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("an_churn_model", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_an_churn_model_trained_at"), ["trained_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("an_churn_model", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_an_churn_model_trained_at"))
    op.drop_table("an_churn_model")
