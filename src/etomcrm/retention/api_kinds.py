"""The TMF resource kinds this area serves (the API applies the TMF conventions)."""

from __future__ import annotations

from etomcrm.core.resources import ResourceKind
from etomcrm.retention.risk import PARTY_ROLE_RISK_ASSESSMENT_KIND

KINDS: list[ResourceKind] = [PARTY_ROLE_RISK_ASSESSMENT_KIND]
