"""user account: the lock a run of wrong passwords caused, kept until its user is told

A lock protects the account, but the person it belongs to should hear of it: the time
of the last lock stays on the account until the next successful sign-in, which shows
it ("locked on …; if that was not you, tell your administrator") and clears it.

Revision ID: 0015_sign_in_lock_notice
Revises: 0014_usage_bill_partial_index
Create Date: 2026-12-01 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import etomcrm.db

revision: str = "0015_sign_in_lock_notice"
down_revision: str | None = "0014_usage_bill_partial_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("unnoticed_lock_at", etomcrm.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("unnoticed_lock_at")
