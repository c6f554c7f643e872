"""usage record: pages half filled, so that rating marks a record rated in its page

Rating marks every record it charges (``status`` rated, ``billed_volume``, the usage
product of a record named by its site). None of those columns is indexed, so on
PostgreSQL the new version of the row can stay in its page (a HOT update, no new
entry in any index) when the page has room for it; pages filled to the brim by the
ingest's COPY had none, and the bill run wrote a new entry in each of the table's
three indexes for each record (bench/README.md, "Bill run"). A fill factor of 50
leaves room for every record of a page to be marked once. It applies to pages
written from now on (a table already full keeps its pages until rewritten). The
price: the table takes about twice the pages. SQLite has no fill factor.

Revision ID: 0017_usage_fillfactor
Revises: 0016_user_language
Create Date: 2026-12-01 10:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017_usage_fillfactor"
down_revision: str | None = "0016_user_language"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE usage_record SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE usage_record RESET (fillfactor)")
