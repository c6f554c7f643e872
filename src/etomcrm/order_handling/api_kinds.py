"""The TMF resource kinds this area serves (the API applies the TMF conventions)."""

from __future__ import annotations

from etomcrm.core.resources import ResourceKind
from etomcrm.order_handling import service

KINDS: list[ResourceKind] = [
    service.PRODUCT_ORDER_KIND,
    service.CANCEL_PRODUCT_ORDER_KIND,
    service.PRODUCT_KIND,
]
