"""What the network side serves over HTTP: the TMF641 service orders it received, for
staff to read. Nobody writes them through the API: the order flows send them through
the port (:mod:`etomcrm.network.port`), and the network moves them on."""

from __future__ import annotations

from etomcrm.core import resources
from etomcrm.core.resources import ResourceKind
from etomcrm.core.tmf_schemas import SERVICE_ORDERING
from etomcrm.network.models import NetworkServiceOrderRow
from etomcrm.security.service import STAFF_ROLES, Role

SERVICE_ORDER_KIND = ResourceKind(
    name="serviceOrder",
    type_name="ServiceOrder",
    doc=SERVICE_ORDERING,
    row=NetworkServiceOrderRow,
    # the network side reads what it was sent
    read_roles=STAFF_ROLES | {Role.NETWORK},
    write_roles=frozenset(),
    status_attribute="state",
    name_attribute="externalId",
    writable=False,
    # how the simulated network will answer (outcome, timing): for tests and the demo
    extensions={"simulation": resources.OBJECT},
)

KINDS: list[ResourceKind] = [SERVICE_ORDER_KIND]
