"""user account: the language the person chose for the pages

The pages answered in the language of a cookie, so a person who switched to German on
one browser met English on the next. The choice is kept on the user now (empty until
they switch): it is used after sign-in before the cookie and the browser's
``Accept-Language``.

Revision ID: 0016_user_language
Revises: 0015_sign_in_lock_notice
Create Date: 2026-12-01 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_user_language"
down_revision: str | None = "0015_sign_in_lock_notice"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("language")
