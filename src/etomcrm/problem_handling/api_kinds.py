"""The TMF resource kinds this area serves (the API applies the TMF conventions)."""

from __future__ import annotations

from etomcrm.core.resources import ResourceKind
from etomcrm.problem_handling.alarms import ALARM_KIND
from etomcrm.problem_handling.service import SERVICE_PROBLEM_KIND
from etomcrm.problem_handling.tickets import TROUBLE_TICKET_KIND

KINDS: list[ResourceKind] = [TROUBLE_TICKET_KIND, SERVICE_PROBLEM_KIND, ALARM_KIND]
