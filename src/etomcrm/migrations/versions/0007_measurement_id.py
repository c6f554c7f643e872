"""measurement ids: a measurement the network sends again is stored once

Revision ID: 0010
Revises: 0006
Create Date: 2026-11-30 17:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("network_measurement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("measurement_id", sa.String(length=128), nullable=True))
        batch_op.create_index(
            "ux_network_measurement_measurement_id", ["measurement_id"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("network_measurement", schema=None) as batch_op:
        batch_op.drop_index("ux_network_measurement_measurement_id")
        batch_op.drop_column("measurement_id")
