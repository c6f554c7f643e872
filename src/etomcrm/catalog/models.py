"""Tables of TMF620 Product Catalog and TMF687 Stock."""

from __future__ import annotations

from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base


class CatalogRow(TmfResourceRow, Base):
    __tablename__ = "catalog"


class CategoryRow(TmfResourceRow, Base):
    __tablename__ = "category"


class ProductSpecificationRow(TmfResourceRow, Base):
    __tablename__ = "product_specification"


class ProductOfferingRow(TmfResourceRow, Base):
    __tablename__ = "product_offering"


class ProductOfferingPriceRow(TmfResourceRow, Base):
    __tablename__ = "product_offering_price"


class ProductStockRow(TmfResourceRow, Base):
    __tablename__ = "product_stock"
