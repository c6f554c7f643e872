"""What this area serves over HTTP: resource kinds (TMF conventions applied by
``api.tmf``) and routers for operations beyond create/read/patch/delete."""

from __future__ import annotations

from fastapi import APIRouter

from etomcrm.core.resources import ResourceKind

KINDS: list[ResourceKind] = []

ROUTERS: list[APIRouter] = []
