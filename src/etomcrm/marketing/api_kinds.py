"""The resource kinds this area serves through the TMF APIs."""

from __future__ import annotations

from etomcrm.core.resources import ResourceKind

KINDS: list[ResourceKind] = []
