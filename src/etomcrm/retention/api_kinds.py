"""The TMF resource kinds this area serves (the API applies the TMF conventions)."""

from __future__ import annotations

from etomcrm.core.resources import ResourceKind
from etomcrm.retention.recommendations import QUERY_PRODUCT_RECOMMENDATION_KIND
from etomcrm.retention.risk import PARTY_ROLE_RISK_ASSESSMENT_KIND

# The next best offer (TMF680) serves 3.4.5 and 3.9.4; it reads the installed base,
# tickets and traffic of the areas below, so it lives here.
KINDS: list[ResourceKind] = [PARTY_ROLE_RISK_ASSESSMENT_KIND, QUERY_PRODUCT_RECOMMENDATION_KIND]
