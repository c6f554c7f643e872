"""The TMF resource kinds this area serves (the API applies the TMF conventions)."""

from __future__ import annotations

from etomcrm.core.resources import ResourceKind
from etomcrm.marketing import service

KINDS: list[ResourceKind] = [service.CAMPAIGN_KIND, service.DOCUMENT_KIND]
