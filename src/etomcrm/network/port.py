"""The port between the CRM and the network side (service and resource management).

The CRM asks four things of the network: can a site be served with an offering, and
how soon (TMF645-like site qualification); build this site (a TMF641 service order),
then: how is it going; what state is a site's access link in (3.6.1, diagnosing a
customer's ticket); and repair the fault behind a service problem (3.6.2). The network
answers a repair request at once with its work order and estimate; when the repair is
done it tells the CRM through the TMF656 entry a real OSS uses too: a PATCH of the
``serviceProblem`` to ``resolved`` with its ``rootCauseResource`` and the cause in
``statusChangeReason``. The simulator in :mod:`etomcrm.network.simulator` is the
default implementation; a real OSS replaces it by implementing :class:`NetworkPort` and
installing it with :func:`use_network`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from etomcrm.core.clock import iso
from etomcrm.core.tmf_schemas import JsonDict

ServiceOrderState = Literal["inProgress", "completed", "failed"]
# An access link as the network sees it: up, degraded (up but losing quality, or one
# of several paths down), down, or unknown (the network has no such link).
LinkState = Literal["up", "degraded", "down", "unknown"]
ServiceOrderAction = Literal["add", "delete", "modify"]
# What a modify sets a site's service to: suspended (dunning) or active again.
ServiceState = Literal["active", "suspended"]
# Lead times and expected dates are business dates where the sites are.
BUSINESS_TIMEZONE = ZoneInfo("Europe/Berlin")
# Service order ids derive from the sender's key under this namespace, so the same key
# is the same order on every run and in every process.
SERVICE_ORDER_NAMESPACE = uuid.UUID("6d1f3c2e-5a0b-4c1e-9a57-0e7c3f1b2d40")


def business_date(moment: datetime) -> date:
    """The date at the sites at ``moment`` (an aware datetime)."""
    return moment.astimezone(BUSINESS_TIMEZONE).date()


def start_of_business_date(day: date) -> datetime:
    """The moment a business date begins at the sites (for TMF date-time attributes)."""
    return datetime.combine(day, time(), BUSINESS_TIMEZONE)


def service_order_id(key: str) -> str:
    """The network's id of the service order sent with ``key``."""
    return str(uuid.uuid5(SERVICE_ORDER_NAMESPACE, key))


class ServiceOrderRefused(Exception):
    """The network did not take a service order (TMF641 answered with an error): unlike
    an activation that fails, nothing was started, and sending it again will not help
    until someone fixes the cause the message names."""


@dataclass(frozen=True)
class SiteQualification:
    """The network's answer for one site and one offering."""

    site_id: str
    offering_id: str
    serviceable: bool
    lead_time_days: int  # calendar days from order to active; 0 when not serviceable
    special_build: bool  # civil works or a new line are needed first (included in the days)
    reason: str  # why: the access technology, what the special build is, why not servable


@dataclass(frozen=True)
class ServiceOrderStatus:
    """Where one service order stands, as the network reports it."""

    id: str
    key: str
    site_id: str
    state: ServiceOrderState
    # Real UTC time at which asking again is worthwhile (a flow sleeps durably until then).
    ready_at: datetime
    expected_completion_date: date  # business date the network now expects
    attempt: int
    detail: str  # e.g. "on schedule", "delayed: fibre civil works", "failed: CPE not reachable"


@dataclass(frozen=True)
class LinkStatus:
    """The network's answer about one access link (the TMF638 service behind a site's
    access: its ``operatingStatus``, in the CRM's words)."""

    link_id: str
    site_id: str
    pop_id: str | None
    state: LinkState
    detail: str  # in words, e.g. "point of presence pop-by-1 is down"
    checked_at: datetime
    # What failed (a TMF ResourceRef: the link, or its point of presence); None when up.
    fault: JsonDict | None = None

    def as_tmf(self) -> JsonDict:
        """The shape a ticket's diagnosis carries."""
        return {
            "linkStatus": self.state,
            "checkedAt": iso(self.checked_at),
            "detail": self.detail,
            "accessLink": {"id": self.link_id, "@referredType": "AccessLink"},
            "site": {"id": self.site_id, "@referredType": "GeographicSite"},
        }


@dataclass(frozen=True)
class RepairOrder:
    """The network's answer to a repair request: its work order and its estimate."""

    id: str  # the network's id of the repair (a TMF641 service order of the repair)
    problem_id: str
    state: ServiceOrderState
    expected_resolution: datetime  # when the network expects the service back
    detail: str


class NetworkPort(Protocol):
    def qualify(self, session: Session, *, site: JsonDict, offering_id: str) -> SiteQualification:
        """Whether ``site`` (a TMF674 GeographicSite body) can be served with the offering."""
        ...

    def submit_service_order(
        self,
        session: Session,
        *,
        key: str,
        customer_id: str,
        product_order_id: str,
        order_item_id: str,
        site_id: str,
        offering_id: str,
        attempt: int = 1,
        action: ServiceOrderAction = "add",
        service_state: ServiceState | None = None,
    ) -> ServiceOrderStatus:
        """Send a service order; the same ``key`` again returns the same order.

        ``action`` "add" builds the site's service, "delete" ceases it, "modify" sets
        it to ``service_state`` (suspended, or active again). Works in the
        caller's session and never commits: the order is sent exactly when the caller's
        transaction commits. A retry after a failure uses a new key. Raises
        :class:`ServiceOrderRefused` when the network does not take the order at all.
        """
        ...

    def service_order_status(self, session: Session, service_order_id: str) -> ServiceOrderStatus:
        """The current status of a service order sent before."""
        ...

    def link_status(self, session: Session, *, site_id: str) -> list[LinkStatus]:
        """The state of every access link of a site now (none: the network knows no
        link there)."""
        ...

    def request_repair(self, session: Session, *, problem: JsonDict) -> RepairOrder:
        """Ask the network to repair the fault of a TMF656 service problem body. The same
        problem again returns the same repair. Works in the caller's session and never
        commits; the answer that the repair is done comes later, as a PATCH of the
        service problem (see the module docstring)."""
        ...


_installed: NetworkPort | None = None
# What the composition root wires as the network side when none is installed: built per
# call (cheap, and it follows the current settings, which tests change).
_default: list[Callable[[], NetworkPort]] = []


def use_network(network: NetworkPort | None) -> None:
    """Install the network every caller of :func:`get_network` gets (None: the default)."""
    global _installed
    _installed = network


def set_default_network(factory: Callable[[], NetworkPort]) -> None:
    """The network side a process talks to unless one is installed (the composition
    root wires the simulator)."""
    _default[:] = [factory]


def get_network() -> NetworkPort:
    """The configured network side: the one installed, else the default."""
    if _installed is not None:
        return _installed
    if not _default:
        raise RuntimeError("no network side is wired: call etomcrm.bootstrap.bootstrap()")
    return _default[0]()
