"""3.6.2 Report the problem: TMF656 service problems, the provider's view of a fault.

A service problem is the network-side problem behind one or many customers' tickets.
Only staff see it (support, SLA management, admin); a customer's ticket references it.

- ``status`` follows :data:`PROBLEM_TRANSITIONS` (TMF656 ServiceProblemStateType);
  every change, and the creation, is written to ``trackingRecord`` (the document's
  record of who did what when).
- ``priority`` is TMF656's integer, 1 (highest) to 10; ``impactImportanceFactor`` is
  one of :data:`IMPACT_FACTORS`.
- ``affectedService``, ``affectedResource``, ``underlyingAlarm`` and ``troubleTicket``
  say what it is about; the ``correlation_key`` column is set from the first of: a
  ``correlationKey`` extension attribute, the first affected resource, the first
  affected service, so the correlation step (3.6.1) finds an open problem by what it
  is about in one indexed query.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from etomcrm.core import resources, states
from etomcrm.core.clock import iso
from etomcrm.core.errors import Forbidden, InvalidRequest
from etomcrm.core.resources import RefSpec, ResourceKind
from etomcrm.core.tmf_schemas import SERVICE_PROBLEM, JsonDict
from etomcrm.db import utcnow
from etomcrm.problem_handling.models import ServiceProblemRow
from etomcrm.security.service import Principal, Role

PROBLEM_STAFF = frozenset({Role.ADMIN, Role.SUPPORT, Role.SLA_MANAGER})
# The network side reads the problems addressed to it and reports on them (PATCH);
# opening and deleting them stays etomcrm's.
PROBLEM_WORKERS = PROBLEM_STAFF | {Role.NETWORK}

# TMF656: like a ticket's, without customer confirmation; closed, rejected and
# cancelled are final, a resolved problem that comes back is worked again.
PROBLEM_TRANSITIONS: dict[str, frozenset[str]] = {
    "acknowledged": frozenset({"inProgress", "rejected", "cancelled"}),
    "inProgress": frozenset({"pending", "held", "resolved", "cancelled"}),
    "pending": frozenset({"inProgress", "cancelled"}),
    "held": frozenset({"inProgress", "cancelled"}),
    "resolved": frozenset({"closed", "inProgress"}),
    "closed": frozenset(),
    "rejected": frozenset(),
    "cancelled": frozenset(),
}
INITIAL_STATES = frozenset({"acknowledged"})
IMPACT_FACTORS = ("critical", "high", "medium", "low")
PRIORITY_RANGE = (1, 10)
CORRELATION_KEY = "correlationKey"


def _iso_now() -> str:
    return iso(utcnow())


def correlation_key_of(body: JsonDict) -> str | None:
    """What a problem is about, for correlation: explicit key, resource, or service."""
    explicit = body.get(CORRELATION_KEY)
    if isinstance(explicit, str) and explicit.strip():
        return explicit.strip()[:200]
    for attribute, prefix in (("affectedResource", "resource"), ("affectedService", "service")):
        for ref in body.get(attribute) or []:
            if isinstance(ref, dict) and isinstance(ref.get("id"), str):
                return f"{prefix}:{ref['id']}"[:200]
    return None


@dataclass
class ServiceProblemKind(ResourceKind):
    """TMF656 serviceProblem: staff only, a state machine and a tracking record."""

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        return None  # the provider's own: it may affect many customers

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        priority = body.get("priority")
        if priority is not None and not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
            raise InvalidRequest(f"priority runs from 1 (highest) to 10, not {priority}")
        impact = body.get("impactImportanceFactor")
        if impact is not None and impact not in IMPACT_FACTORS:
            raise InvalidRequest(
                f"impactImportanceFactor is one of {', '.join(IMPACT_FACTORS)}, not {impact!r}"
            )
        now = _iso_now()
        if old is None:
            if principal.is_network:
                raise Forbidden(
                    "the network side reports alarms (POST .../alarmManagement/v4/alarm); "
                    "etomcrm opens the service problems from them, and the network reads "
                    "and updates them"
                )
            status = body.setdefault("status", "acknowledged")
            if status not in INITIAL_STATES:
                raise InvalidRequest(f"a new service problem is acknowledged, not {status!r}")
            body["statusChangeDate"] = now
            body["trackingRecord"] = [_track("acknowledged", principal, now)]
            return
        # The tracking record is the server's: a client's copy is replaced.
        body["trackingRecord"] = list(old.get("trackingRecord") or [])
        before, after = str(old.get("status")), str(body.get("status"))
        if before != after:
            states.check_transition("service problem status", PROBLEM_TRANSITIONS, before, after)
            body["statusChangeDate"] = now
            body["trackingRecord"].append(_track(after, principal, now))
            if after == "resolved":
                body["resolutionDate"] = now

    def before_delete(self, session: Session, principal: Principal, body: JsonDict) -> None:
        if principal.is_network:
            raise Forbidden("the network side may not delete service problems")

    def after_save(
        self, session: Session, principal: Principal, body: JsonDict, owner: str | None
    ) -> None:
        session.execute(
            update(ServiceProblemRow)
            .where(ServiceProblemRow.id == body["id"])
            .values(correlation_key=correlation_key_of(body))
            .execution_options(synchronize_session=False)
        )


def _track(status: str, principal: Principal, now: str) -> JsonDict:
    return {
        "description": status,
        "systemId": "etomcrm",
        "time": now,
        "user": principal.name,
    }


SERVICE_PROBLEM_KIND = ServiceProblemKind(
    name="serviceProblem",
    type_name="ServiceProblem",
    doc=SERVICE_PROBLEM,
    row=ServiceProblemRow,
    read_roles=PROBLEM_WORKERS,
    write_roles=PROBLEM_WORKERS,
    customer_owned=False,
    refs=(RefSpec("troubleTicket[]", "troubleTicket"),),
    extensions={"correlationKey": resources.TEXT},
)
