"""The TMF resource kinds billing serves (the API applies the TMF conventions)."""

from __future__ import annotations

from etomcrm.billing.payments import PAYMENT_KIND
from etomcrm.core.resources import ResourceKind

KINDS: list[ResourceKind] = [PAYMENT_KIND]
