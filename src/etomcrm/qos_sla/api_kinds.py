"""What this area serves over HTTP: resource kinds (TMF conventions applied by
``api.tmf``) and routers for operations beyond create/read/patch/delete.

TMF623 ``sla`` and ``slaViolation`` are read-only: etomcrm makes them (3.7.1, 3.7.2).
"""

from __future__ import annotations

from fastapi import APIRouter

from etomcrm.core.resources import ResourceKind
from etomcrm.qos_sla.service import SLA_KIND, SLA_VIOLATION_KIND

KINDS: list[ResourceKind] = [SLA_KIND, SLA_VIOLATION_KIND]

ROUTERS: list[APIRouter] = []
