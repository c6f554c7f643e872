"""Tables of TMF622 Product Ordering and TMF637 Product Inventory."""

from __future__ import annotations

from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base


class ProductOrderRow(TmfResourceRow, Base):
    __tablename__ = "product_order"


class CancelProductOrderRow(TmfResourceRow, Base):
    __tablename__ = "cancel_product_order"


class ProductRow(TmfResourceRow, Base):
    __tablename__ = "product"
