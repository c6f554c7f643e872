"""The TMF resource kinds this area serves (the API applies the TMF conventions)."""

from __future__ import annotations

from etomcrm.core.resources import ResourceKind
from etomcrm.qos_sla.service import SLA_KIND, SLA_VIOLATION_KIND

KINDS: list[ResourceKind] = [SLA_KIND, SLA_VIOLATION_KIND]
