"""The TMF resource kinds this area serves (the API applies the TMF conventions)."""

from __future__ import annotations

from etomcrm.core.resources import ResourceKind
from etomcrm.customer_interface import communication, service

KINDS: list[ResourceKind] = [
    service.INDIVIDUAL_KIND,
    service.ORGANIZATION_KIND,
    service.CUSTOMER_KIND,
    service.GEOGRAPHIC_SITE_KIND,
    service.PARTY_INTERACTION_KIND,
    communication.COMMUNICATION_MESSAGE_KIND,
]
