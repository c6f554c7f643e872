"""What this area serves over HTTP: resource kinds (TMF conventions applied by
``api.tmf``) and routers for operations beyond create/read/patch/delete."""

from __future__ import annotations

from etomcrm.core.resources import ResourceKind
from etomcrm.selling import feasibility, prospects, quotes, recommendations

KINDS: list[ResourceKind] = [
    prospects.SALES_LEAD_KIND,
    prospects.SALES_OPPORTUNITY_KIND,
    quotes.QUOTE_KIND,
    feasibility.PRODUCT_OFFERING_QUALIFICATION_KIND,
    recommendations.QUERY_PRODUCT_RECOMMENDATION_KIND,
]
