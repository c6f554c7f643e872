"""The resource kinds this area serves through the TMF APIs."""

from __future__ import annotations

from etomcrm.core.resources import ResourceKind
from etomcrm.customer_interface import service

KINDS: list[ResourceKind] = [
    service.INDIVIDUAL_KIND,
    service.ORGANIZATION_KIND,
    service.CUSTOMER_KIND,
    service.GEOGRAPHIC_SITE_KIND,
    service.PARTY_INTERACTION_KIND,
]
