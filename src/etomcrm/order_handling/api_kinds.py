"""What this area serves over HTTP: resource kinds (TMF conventions applied by
``api.tmf``) and routers for operations beyond create/read/patch/delete."""

from __future__ import annotations

from etomcrm.core.resources import ResourceKind
from etomcrm.order_handling import service

KINDS: list[ResourceKind] = [
    service.PRODUCT_ORDER_KIND,
    service.CANCEL_PRODUCT_ORDER_KIND,
    service.PRODUCT_KIND,
]
