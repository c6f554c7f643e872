"""The TMF resource kinds this area serves (the API applies the TMF conventions)."""

from __future__ import annotations

from etomcrm.core.resources import ResourceKind
from etomcrm.selling import accounts, feasibility, prospects, quotes

KINDS: list[ResourceKind] = [
    prospects.SALES_LEAD_KIND,
    prospects.SALES_OPPORTUNITY_KIND,
    quotes.QUOTE_KIND,
    feasibility.PRODUCT_OFFERING_QUALIFICATION_KIND,
    accounts.BILLING_ACCOUNT_KIND,
    accounts.PAYMENT_METHOD_KIND,
]
