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
- 3.6.2 :func:`report_problem` asks the network side for the repair through the port:
  the repair order is listed in ``relatedEntity`` (role ``repairOrder``) and the
  network's estimate is the extension ``expectedResolutionDate`` (TMF656 has none),
  which the tickets linked to the problem take over.
- The network side answers through the same entry a real OSS uses: a PATCH to
  ``resolved`` with ``rootCauseResource`` and the cause in ``statusChangeReason``
  (:func:`report_repair` for the simulator). Every move to ``resolved`` records
  :class:`~etomcrm.problem_handling.events.ServiceProblemRepaired`, which wakes the
  problem's flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from etomcrm.core import resources, states
from etomcrm.core.bus import record
from etomcrm.core.clock import iso
from etomcrm.core.errors import Forbidden, InvalidRequest
from etomcrm.core.resources import RefSpec, ResourceKind
from etomcrm.core.tmf_schemas import SERVICE_PROBLEM, JsonDict
from etomcrm.db import utcnow
from etomcrm.network.port import get_network
from etomcrm.problem_handling.events import ServiceProblemRepaired, ServiceProblemReported
from etomcrm.problem_handling.models import ServiceProblemRow
from etomcrm.security.service import SYSTEM, Principal, Role

PROBLEM_STAFF = frozenset({Role.ADMIN, Role.SUPPORT, Role.SLA_MANAGER})
# The network side reads the problems addressed to it and reports on them (PATCH);
# opening and deleting them stays etomcrm's.
PROBLEM_WORKERS = PROBLEM_STAFF | {Role.NETWORK}

# The network side as the CRM knows it when it reports a repair (a real OSS comes with
# its own API key).
NETWORK_SIDE = Principal(id="network", name="network side", role=Role.SUPPORT)

# TMF656: like a ticket's, without customer confirmation; closed, rejected and
# cancelled are final, a resolved problem that comes back is worked again. The network
# may repair a fault before anyone took its problem up (acknowledged -> resolved).
PROBLEM_TRANSITIONS: dict[str, frozenset[str]] = {
    "acknowledged": frozenset({"inProgress", "resolved", "rejected", "cancelled"}),
    "inProgress": frozenset({"pending", "held", "resolved", "cancelled"}),
    "pending": frozenset({"inProgress", "cancelled"}),
    "held": frozenset({"inProgress", "cancelled"}),
    "resolved": frozenset({"closed", "inProgress"}),
    "closed": frozenset(),
    "rejected": frozenset(),
    "cancelled": frozenset(),
}
INITIAL_STATES = frozenset({"acknowledged"})
# A resolved problem waits for its customers' confirmation: it still covers its cause.
OPEN_PROBLEM_STATES = ("acknowledged", "pending", "held", "inProgress", "resolved")
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
                record(session, ServiceProblemRepaired(str(body["id"])))

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
    extensions={"correlationKey": resources.TEXT, "expectedResolutionDate": resources.INSTANT},
)


def report_problem(
    session: Session,
    problem: JsonDict,
    products: Sequence[str],
    since: str,
    to: Sequence[str] = ("network", "qos_sla"),
) -> JsonDict:
    """3.6.2 Report Customer Problem (eTOM 1.1.1.6.2): the network side is asked to
    repair (its repair order and estimate are written on the problem), and SLA
    management learns which products are affected since when. Returns the problem."""
    if "network" in to:
        repair = get_network().request_repair(session, problem=problem)
        at = iso(utcnow())
        problem, _ = resources.patch(
            session,
            SERVICE_PROBLEM_KIND,
            SYSTEM,
            str(problem["id"]),
            {
                "relatedEntity": [
                    *(problem.get("relatedEntity") or []),
                    {"id": repair.id, "role": "repairOrder", "@referredType": "ServiceOrder"},
                ],
                "expectedResolutionDate": iso(repair.expected_resolution),
                "note": [
                    *(problem.get("note") or []),
                    {
                        "author": "network",
                        "date": at,
                        "text": f"repair requested (order {repair.id}): {repair.detail}",
                    },
                ],
            },
        )
    if "qos_sla" in to:
        record(
            session,
            ServiceProblemReported(str(problem["id"]), tuple(sorted(set(products))), since),
        )
    return problem


def report_repair(
    session: Session,
    problem_id: str,
    *,
    cause: str,
    root_cause_resource: JsonDict | None,
    principal: Principal = NETWORK_SIDE,
) -> JsonDict:
    """3.6.2 Report Customer Problem (eTOM 1.1.1.6.2), the answer: the network side
    repaired the fault. The same change as its TMF656 PATCH (``resolved``, the root
    cause); a problem resolved or ended already is left as it is."""
    row = session.get(ServiceProblemRow, problem_id)
    if row is None or row.status not in ("acknowledged", "inProgress", "pending", "held"):
        return dict(row.body) if row is not None else {}
    changes: JsonDict = {"status": "resolved", "statusChangeReason": f"repaired: {cause}"}
    if root_cause_resource:
        changes["rootCauseResource"] = [root_cause_resource]
    if row.status in ("pending", "held"):
        resources.patch(
            session, SERVICE_PROBLEM_KIND, principal, problem_id, {"status": "inProgress"}
        )
    body, _ = resources.patch(session, SERVICE_PROBLEM_KIND, principal, problem_id, changes)
    return body
