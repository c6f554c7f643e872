"""A simulated network side: coverage, lead times, activation that runs late or fails.

Everything it decides comes from a seeded hash, never from a shared random stream, so
the answer for a site or a service order does not depend on what was asked before or
in which process. The hash takes what the network knows a site by (its code, name and
address: :func:`etomcrm.network.identity.site_identity`), never the CRM's ids, which
are new on every run: the same seed and site give the same coverage, lead time and
outcome on every run.

Per site (hash of seed + site identity): serviceable or not, fibre at the site or copper
only, a regional and a site-specific share of the lead time, and whether a special
build (civil works, a new line) is needed. Lead times: 10 days for up to 10 Mbit/s,
14 for up to 100 Mbit/s, 20 for more (fibre only), plus up to 6 days by region
(postcode area) and 4 by site, so 10 to 30 days; a special build adds 10 to 20.

Per service order (hash of seed + site identity + attempt): on time, late by 3 to 15
days, or failed part way. One simulated day lasts ``day_seconds`` real seconds. A
service order is ``inProgress`` with ``ready_at`` at its planned end; asked at or after
that time it is ``completed``, or ``failed``, or (late) ``inProgress`` once more with a
later expected date and a new ``ready_at``. With ``day_seconds`` 0 an on-time order is
completed when it is sent; a late one still reports its delay once before it completes,
so a flow sees the same sequence of answers at any speed. The stored order holds its
outcome and phase, so the status survives restarts of any process.

Link status (3.6.1): a link is as its row says (``up``, ``degraded``, ``down``), and
down whatever it says while its point of presence is down; a site without a link is
``unknown`` to the network.

Repairs (3.6.2): a repair request for a service problem is stored as a TMF641 service
order of ``@type`` ``SimulatedRepairOrder`` (id from the problem, so asking twice is one
repair). Its duration (1 to 6 hours) and cause come from the seeded hash of the resource
at fault (a point of presence by its id, an access link by its site); one hour lasts
``day_seconds / 24`` real seconds, so with ``day_seconds`` 0 a repair is done as soon as
the network looks (:meth:`SimulatedNetwork.repairs_done`, on the network side's
schedule). A done repair puts the link or point of presence up again and is reported as
a :class:`RepairReport`, which the caller delivers through the TMF656 entry a real OSS
uses (a PATCH of the service problem).
"""

from __future__ import annotations

import copy
import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from etomcrm.catalog.models import ProductOfferingRow
from etomcrm.config import get_settings
from etomcrm.core.clock import iso
from etomcrm.core.errors import NotFound
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import GeographicSiteRow
from etomcrm.db import utcnow
from etomcrm.network.identity import site_identity, site_identity_of
from etomcrm.network.models import NetworkLinkRow, NetworkPopRow, NetworkServiceOrderRow
from etomcrm.network.port import (
    LinkState,
    LinkStatus,
    RepairOrder,
    ServiceOrderAction,
    ServiceOrderRefused,
    ServiceOrderState,
    ServiceOrderStatus,
    ServiceState,
    SiteQualification,
    business_date,
    service_order_id,
    start_of_business_date,
)

# What a test or the demo may force on one site:
# - "unserviceable": no access network reaches the site;
# - "special_build": serviceable only after a special build;
# - "late": its service orders run late (every attempt);
# - "fail": its first service order fails, retries go through on time;
# - "on_time": serviceable, no special build, every service order on time;
# - "refuse": the network refuses every service order for the site outright (its
#   address is not in the network's inventory) until the override is lifted.
# Any of them but "unserviceable" makes the site serviceable.
Override = Literal["unserviceable", "special_build", "late", "fail", "on_time", "refuse"]
# Ceasing a site's service takes this many days (no build, no delay, no failure).
CEASE_DAYS = 1
Outcome = Literal["onTime", "late", "failed"]

FIBRE_SHARE = 0.7
FIBRE_ONLY_ABOVE_MBITS = 100
LATE_REASONS = (
    "fibre civil works",
    "landlord access to the building",
    "line handover by the local carrier",
    "router configuration backlog",
    "permit for the street works",
)
FAILURE_REASONS = (
    "CPE not reachable",
    "line test failed at the handover point",
    "VLAN conflict at the point of presence",
    "no technician access on the appointed day",
)
SPECIAL_BUILD_REASONS = (
    "a new line from the street to the building",
    "civil works on the site's own ground",
    "an in-house cabling extension to the equipment room",
)


REPAIR_TYPE = "SimulatedRepairOrder"
REPAIR_HOURS = (1, 6)
LINK_CAUSES = (
    "fibre cut by street works near the site; spliced",
    "line card failure at the point of presence; card replaced",
    "power supply of the CPE at the site failed; replaced by the field technician",
    "water in the cable duct; cable section replaced",
)
POP_CAUSES = (
    "power failure at the point of presence; mains restored and the UPS replaced",
    "core router at the point of presence crashed; restarted with fixed firmware",
    "cooling failure at the point of presence; equipment restarted after the repair",
)


@dataclass(frozen=True)
class RepairReport:
    """A repair the network finished: what the CRM is told (TMF656 PATCH)."""

    problem_id: str
    repair_order_id: str
    cause: str
    root_cause_resource: JsonDict  # a TMF656 ResourceRef: the link or the PoP
    repaired_at: datetime


def _service_state(action: str, state: str, target: str | None = None) -> str:
    if state != "completed":
        return "designed"
    if action == "modify":
        return target or "active"
    return "terminated" if action == "delete" else "active"


def _verb(action: str, service_state: str | None) -> str:
    if action == "modify":
        return "suspend" if service_state == "suspended" else "resume"
    return "cease" if action == "delete" else "activate"


def _date_time(day: date) -> str:
    return start_of_business_date(day).isoformat()


def _place(site: JsonDict) -> JsonDict:
    for place in site.get("place", []) or []:
        if isinstance(place, dict):
            return place
    return {}


@dataclass(frozen=True)
class _Coverage:
    """What the network has at one site; drawn once per seed and site."""

    serviceable: bool
    unserviceable_reason: str
    fibre: bool
    region_days: int
    site_days: int
    special_build: bool
    special_build_days: int
    special_build_reason: str


class SimulatedNetwork:
    """The simulated network side; see the module docstring for its rules."""

    def __init__(
        self,
        *,
        seed: int | None = None,
        day_seconds: float | None = None,
        late_rate: float | None = None,
        failure_rate: float | None = None,
        unserviceable_rate: float | None = None,
        special_build_rate: float | None = None,
        overrides: Mapping[str, Override] | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        settings = get_settings()
        self.seed = settings.network_seed if seed is None else seed
        self.day_seconds = settings.network_day_seconds if day_seconds is None else day_seconds
        self.late_rate = settings.network_late_rate if late_rate is None else late_rate
        self.failure_rate = settings.network_failure_rate if failure_rate is None else failure_rate
        self.unserviceable_rate = (
            settings.network_unserviceable_rate
            if unserviceable_rate is None
            else unserviceable_rate
        )
        self.special_build_rate = (
            settings.network_special_build_rate
            if special_build_rate is None
            else special_build_rate
        )
        # Kept as given, not copied: a test or the demo may force a site after creation.
        self.overrides: Mapping[str, Override] = overrides if overrides is not None else {}
        self.now = now

    # ----- seeded draws -----------------------------------------------------------------

    def _random(self, purpose: str, identity: str) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}|{purpose}|{identity}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _coverage(self, site: JsonDict) -> _Coverage:
        postcode = str(_place(site).get("postcode", ""))
        region = self._random("region", postcode[:2] or "unknown")
        draw = self._random("site", site_identity(site))
        # Every draw is made whatever the earlier ones gave, so each stays stable.
        unserviceable = draw.random() < self.unserviceable_rate
        distance_km = draw.randint(12, 60)
        fibre = draw.random() < FIBRE_SHARE
        site_days = draw.randint(0, 4)
        special_build = draw.random() < self.special_build_rate
        special_build_days = draw.randint(10, 20)
        special_build_reason = draw.choice(SPECIAL_BUILD_REASONS)
        return _Coverage(
            serviceable=not unserviceable,
            unserviceable_reason=(
                "no access network within reach: the nearest point of presence is "
                f"{distance_km} km from the site"
            ),
            fibre=fibre,
            region_days=region.randint(0, 6),
            site_days=site_days,
            special_build=special_build,
            special_build_days=special_build_days,
            special_build_reason=special_build_reason,
        )

    # ----- qualification ----------------------------------------------------------------

    def _bandwidth(self, session: Session, offering_id: str) -> int | None:
        body = session.get(ProductOfferingRow, offering_id)
        if body is None:
            return None
        for use in body.body.get("prodSpecCharValueUse", []) or []:
            if isinstance(use, dict) and use.get("name") == "bandwidth":
                for value in use.get("productSpecCharacteristicValue", []) or []:
                    if isinstance(value, dict) and isinstance(value.get("value"), int | float):
                        return int(value["value"])
        return None

    def qualify(self, session: Session, *, site: JsonDict, offering_id: str) -> SiteQualification:
        site_id = str(site.get("id", ""))
        override = self.overrides.get(site_id)
        coverage = self._coverage(site)
        if override == "unserviceable" or (override is None and not coverage.serviceable):
            return SiteQualification(
                site_id, offering_id, False, 0, False, coverage.unserviceable_reason
            )
        bandwidth = self._bandwidth(session, offering_id)
        if bandwidth is None or bandwidth <= 10:
            base = 10
        elif bandwidth <= FIBRE_ONLY_ABOVE_MBITS:
            base = 14
        else:
            base = 20
        days = base + coverage.region_days + coverage.site_days
        special = False
        fibre = coverage.fibre or override == "on_time"
        technology = "fibre (FTTB)" if fibre else "copper (VDSL)"
        speed = f"{bandwidth} Mbit/s" if bandwidth else "the offering"
        reasons = [f"{speed} over {technology} at the site"]
        if bandwidth is not None and bandwidth > FIBRE_ONLY_ABOVE_MBITS and not fibre:
            special = True
            reasons = [
                f"{speed} needs fibre; the site has copper only: "
                "special build of a fibre connection"
            ]
        elif override == "special_build" or (override != "on_time" and coverage.special_build):
            special = True
            reasons.append(f"special build: {coverage.special_build_reason}")
        if special:
            days += coverage.special_build_days
            reasons.append(f"{coverage.special_build_days} days for the special build")
        return SiteQualification(site_id, offering_id, True, days, special, "; ".join(reasons))

    # ----- service orders ---------------------------------------------------------------

    def _outcome(
        self, site: JsonDict, site_id: str, attempt: int
    ) -> tuple[Outcome, int, float, str]:
        """The outcome, the days of delay, the share of the lead time after which a
        failing order fails, and the detail the network reports when it happens."""
        draw = self._random("order", f"{site_identity(site)}|{attempt}")
        roll = draw.random()
        delay_days = draw.randint(3, 15)
        fail_share = draw.uniform(0.1, 1.0)
        late_reason = draw.choice(LATE_REASONS)
        failure_reason = draw.choice(FAILURE_REASONS)
        override = self.overrides.get(site_id)
        outcome: Outcome
        if override == "late":
            outcome = "late"
        elif override == "fail":
            outcome = "failed" if attempt == 1 else "onTime"
        elif override == "on_time":
            outcome = "onTime"
        elif roll < self.failure_rate:
            outcome = "failed"
        elif roll < self.failure_rate + self.late_rate:
            outcome = "late"
        else:
            outcome = "onTime"
        detail = {
            "onTime": "on schedule",
            "late": f"delayed: {late_reason}",
            "failed": f"failed: {failure_reason}",
        }[outcome]
        return outcome, delay_days, fail_share, detail

    def _after(self, start: datetime, days: float) -> datetime:
        return start + timedelta(seconds=days * self.day_seconds)

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
        order_id = service_order_id(key)
        existing = session.get(NetworkServiceOrderRow, order_id, with_for_update=True)
        if existing is not None:
            return self._advance(existing)
        if self.overrides.get(site_id) == "refuse":
            raise ServiceOrderRefused(
                f"the network refused the service order {key} for site {site_id}: the "
                "site's address is not in the network inventory; have network operations "
                "register the site, then retry"
            )
        now = self.now()
        site_row = session.get(GeographicSiteRow, site_id)
        site = site_row.body if site_row is not None else {"id": site_id}
        qualification = self.qualify(session, site=site, offering_id=offering_id)
        outcome, delay_days, fail_share, detail = self._outcome(site, site_id, attempt)
        lead = qualification.lead_time_days
        if action == "delete":
            # Ceasing a service needs no build: it is done on the day planned.
            qualification = replace(
                qualification, serviceable=True, special_build=False, reason="cease the service"
            )
            outcome, detail, lead = "onTime", "on schedule", CEASE_DAYS
        if action == "modify":
            # Suspending or resuming a service is a configuration change: done at once.
            qualification = replace(
                qualification,
                serviceable=True,
                special_build=False,
                reason=f"set the service {service_state}",
            )
            outcome, detail, lead = "onTime", "on schedule", 0
        expected = business_date(now) + timedelta(days=lead)
        state: ServiceOrderState = "inProgress"
        if not qualification.serviceable:
            outcome, detail, state = "failed", f"failed: {qualification.reason}", "failed"
            ready_at = now
        elif outcome == "failed":
            ready_at = self._after(now, lead * fail_share)
        else:
            ready_at = self._after(now, lead)
        if state == "inProgress" and outcome == "onTime" and ready_at <= now:
            state = "completed"
        simulation: JsonDict = {
            "outcome": outcome,
            "phase": "done" if state != "inProgress" else "planned",
            "detail": detail if state != "inProgress" else "on schedule",
            # What the network will report when the order's time comes.
            "pendingDetail": detail,
            "siteId": site_id,
            "offeringId": offering_id,
            "submittedAt": iso(now),
            "leadTimeDays": lead,
            "delayDays": delay_days if outcome == "late" else 0,
            "expectedDate": expected.isoformat(),
            "serviceState": service_state,
        }
        body: JsonDict = {
            "id": order_id,
            "@type": "SimulatedServiceOrder",
            "@baseType": "ServiceOrder",
            "externalId": key,
            "description": f"Site {site_id}: "
            f"{_verb(action, service_state)} product offering {offering_id} "
            f"(attempt {attempt})",
            "state": state,
            "orderDate": iso(now),
            "startDate": iso(now),
            "expectedCompletionDate": _date_time(expected),
            "relatedParty": [
                {
                    "id": customer_id,
                    "role": "customer",
                    "@type": "RelatedParty",
                    "@referredType": "Customer",
                }
            ],
            "externalReference": [
                {"name": product_order_id, "externalReferenceType": "ProductOrder"},
                {"name": order_item_id, "externalReferenceType": "ProductOrderItem"},
            ],
            "serviceOrderItem": [
                {
                    "id": "1",
                    "action": action,
                    "state": state,
                    "service": {
                        "serviceType": "siteAccess",
                        "state": _service_state(action, state, service_state),
                        "place": [
                            {
                                "id": site_id,
                                "role": "installationAddress",
                                "@referredType": "GeographicSite",
                            }
                        ],
                        "serviceCharacteristic": [
                            {"name": "productOfferingId", "value": offering_id},
                            {"name": "leadTimeDays", "value": lead},
                            {"name": "specialBuild", "value": qualification.special_build},
                        ],
                    },
                }
            ],
            "note": [{"date": iso(now), "author": "network", "text": qualification.reason}],
            "simulation": simulation,
        }
        if state == "completed":
            body["completionDate"] = iso(now)
        if state == "failed":
            body["note"].append({"date": iso(now), "author": "network", "text": detail})
        row = NetworkServiceOrderRow(
            id=order_id,
            at_type="SimulatedServiceOrder",
            name=key[:200],
            status=state,
            owner_customer_id=customer_id,
            body=body,
            version=1,
            attempt=attempt,
            ready_at=ready_at,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            # The same key sent concurrently: the other sender's order is this order.
            existing = session.get(NetworkServiceOrderRow, order_id, populate_existing=True)
            if existing is None:
                raise
            return self._advance(existing)
        return self._status(row)

    def service_order_status(self, session: Session, service_order_id: str) -> ServiceOrderStatus:
        row = session.get(NetworkServiceOrderRow, service_order_id, with_for_update=True)
        if row is None:
            raise NotFound(f"the network has no service order {service_order_id}")
        return self._advance(row)

    def _advance(self, row: NetworkServiceOrderRow) -> ServiceOrderStatus:
        """Move an order on if its time has come; the answer is stored with it."""
        body: JsonDict = row.body
        simulation = body["simulation"]
        now = self.now()
        if simulation["phase"] == "done" or row.ready_at is None or now < row.ready_at:
            return self._status(row)
        body = copy.deepcopy(body)
        simulation = body["simulation"]
        submitted = datetime.fromisoformat(simulation["submittedAt"])
        state: ServiceOrderState
        if simulation["outcome"] == "late" and simulation["phase"] == "planned":
            state = "inProgress"
            simulation["phase"] = "delayed"
            simulation["detail"] = simulation["pendingDetail"]
            expected = date.fromisoformat(simulation["expectedDate"]) + timedelta(
                days=simulation["delayDays"]
            )
            simulation["expectedDate"] = expected.isoformat()
            body["expectedCompletionDate"] = _date_time(expected)
            total_days = simulation["leadTimeDays"] + simulation["delayDays"]
            row.ready_at = max(self._after(submitted, total_days), now)
            text = f"{simulation['detail']}; now expected on {expected.isoformat()}"
        elif simulation["outcome"] == "failed":
            state = "failed"
            simulation["phase"] = "done"
            simulation["detail"] = simulation["pendingDetail"]
            text = simulation["detail"]
        else:
            state = "completed"
            simulation["phase"] = "done"
            simulation["detail"] = "completed"
            body["completionDate"] = iso(row.ready_at)
            item_action = body["serviceOrderItem"][0].get("action")
            ceased = item_action == "delete"
            target = _service_state(item_action, "completed", simulation.get("serviceState"))
            body["serviceOrderItem"][0]["service"]["state"] = target
            text = "service ceased at the site" if ceased else f"service {target} at the site"
        body["state"] = state
        body["serviceOrderItem"][0]["state"] = state
        body.setdefault("note", []).append({"date": iso(now), "author": "network", "text": text})
        row.body = body
        row.status = state
        row.version += 1
        row.updated_at = now
        return self._status(row)

    def _status(self, row: NetworkServiceOrderRow) -> ServiceOrderStatus:
        body: JsonDict = row.body
        simulation: dict[str, Any] = body["simulation"]
        return ServiceOrderStatus(
            id=row.id,
            key=str(body["externalId"]),
            site_id=str(simulation["siteId"]),
            state=body["state"],
            ready_at=row.ready_at or row.created_at,
            expected_completion_date=date.fromisoformat(simulation["expectedDate"]),
            attempt=row.attempt,
            detail=str(simulation["detail"]),
        )

    # ----- link status (3.6.1) ----------------------------------------------------------

    def link_status(self, session: Session, *, site_id: str) -> list[LinkStatus]:
        now = self.now()
        rows = session.execute(
            select(NetworkLinkRow, NetworkPopRow)
            .outerjoin(NetworkPopRow, NetworkPopRow.id == NetworkLinkRow.pop_id)
            .where(NetworkLinkRow.site_id == site_id)
            .order_by(NetworkLinkRow.id)
        ).all()
        answers = []
        for link, pop in rows:
            state: LinkState
            fault: JsonDict | None = {"id": link.id, "@referredType": "AccessLink"}
            if pop is not None and pop.status == "down":
                state, detail = "down", f"point of presence {pop.id} ({pop.name}) is down"
                fault = {"id": pop.id, "@referredType": "PointOfPresence"}
            elif link.status == "down":
                state, detail = "down", f"access link {link.id} is down"
            elif link.status == "degraded":
                state, detail = "degraded", f"access link {link.id} is degraded"
            else:
                state, detail, fault = "up", f"access link {link.id} is up", None
            answers.append(LinkStatus(link.id, site_id, link.pop_id, state, detail, now, fault))
        return answers

    # ----- repairs (3.6.2) --------------------------------------------------------------

    def _fault_identity(self, session: Session, resource: JsonDict | None, problem_id: str) -> str:
        """What a repair's draw is keyed by: the resource at fault as the network knows
        it (a point of presence by its id, a link by its site), not the problem's id."""
        if resource is None:
            return problem_id
        link = session.get(NetworkLinkRow, resource["id"])
        if link is not None:
            return f"link|{site_identity_of(session, link.site_id)}"
        return f"{resource['@referredType']}|{resource['id']}"

    def request_repair(self, session: Session, *, problem: JsonDict) -> RepairOrder:
        problem_id = str(problem["id"])
        key = f"repair/{problem_id}"
        order_id = service_order_id(key)
        existing = session.get(NetworkServiceOrderRow, order_id)
        if existing is not None:
            return self._repair_order(existing)
        resource = next(
            (
                {"id": str(r["id"]), "@referredType": str(r.get("@referredType") or "Resource")}
                for r in problem.get("affectedResource") or []
                if isinstance(r, dict) and r.get("id")
            ),
            None,
        )
        draw = self._random("repair", self._fault_identity(session, resource, problem_id))
        hours = draw.randint(*REPAIR_HOURS)
        causes = (
            POP_CAUSES
            if resource and resource["@referredType"] == "PointOfPresence"
            else LINK_CAUSES
        )
        cause = draw.choice(causes)
        now = self.now()
        expected = now + timedelta(hours=hours)
        body: JsonDict = {
            "id": order_id,
            "@type": REPAIR_TYPE,
            "@baseType": "ServiceOrder",
            "externalId": key,
            "description": f"Repair for service problem {problem_id}: "
            f"{problem.get('description') or 'fault reported by the CRM'}",
            "state": "inProgress",
            "orderDate": iso(now),
            "startDate": iso(now),
            "expectedCompletionDate": iso(expected),
            "externalReference": [{"name": problem_id, "externalReferenceType": "ServiceProblem"}],
            "serviceOrderItem": [
                {
                    "id": "1",
                    "action": "modify",
                    "state": "inProgress",
                    "service": {
                        "serviceType": "repair",
                        "supportingResource": [resource] if resource else [],
                    },
                }
            ],
            "note": [
                {
                    "date": iso(now),
                    "author": "network",
                    "text": f"field service dispatched; repair expected within {hours} h",
                }
            ],
            "simulation": {
                "kind": "repair",
                "problemId": problem_id,
                "cause": cause,
                "resource": resource,
                "repairHours": hours,
            },
        }
        row = NetworkServiceOrderRow(
            id=order_id,
            at_type=REPAIR_TYPE,
            name=key[:200],
            status="inProgress",
            owner_customer_id=None,
            body=body,
            version=1,
            attempt=1,
            ready_at=now + timedelta(seconds=hours / 24 * self.day_seconds),
        )
        session.add(row)
        session.flush()
        return self._repair_order(row)

    def _repair_order(self, row: NetworkServiceOrderRow) -> RepairOrder:
        body: JsonDict = row.body
        return RepairOrder(
            id=row.id,
            problem_id=str(body["simulation"]["problemId"]),
            state=body["state"],
            expected_resolution=datetime.fromisoformat(body["expectedCompletionDate"]),
            detail=str(body["note"][-1]["text"]),
        )

    def repairs_done(self, session: Session) -> list[RepairReport]:
        """The repairs whose time has come: each is completed, its link or point of
        presence is up again, and its report returned for the CRM (once)."""
        now = self.now()
        rows = session.scalars(
            select(NetworkServiceOrderRow)
            .where(
                NetworkServiceOrderRow.at_type == REPAIR_TYPE,
                NetworkServiceOrderRow.status == "inProgress",
                NetworkServiceOrderRow.ready_at <= now,
            )
            .order_by(NetworkServiceOrderRow.ready_at, NetworkServiceOrderRow.id)
            .with_for_update(skip_locked=True)
        ).all()
        reports = []
        for row in rows:
            body = copy.deepcopy(row.body)
            simulation = body["simulation"]
            resource = simulation.get("resource") or {}
            self._restore(session, resource)
            body["state"] = "completed"
            body["completionDate"] = iso(now)
            body["serviceOrderItem"][0]["state"] = "completed"
            body["note"].append(
                {"date": iso(now), "author": "network", "text": f"repaired: {simulation['cause']}"}
            )
            row.body = body
            row.status = "completed"
            row.version += 1
            row.updated_at = now
            reports.append(
                RepairReport(
                    problem_id=str(simulation["problemId"]),
                    repair_order_id=row.id,
                    cause=str(simulation["cause"]),
                    root_cause_resource=dict(resource),
                    repaired_at=now,
                )
            )
        return reports

    def _restore(self, session: Session, resource: JsonDict) -> None:
        if not resource.get("id"):
            return  # the problem named no resource (an SLA violation's cause)
        if resource.get("@referredType") == "PointOfPresence":
            pop = session.get(NetworkPopRow, resource.get("id"))
            if pop is not None:
                pop.status = "up"
            return
        link = session.get(NetworkLinkRow, resource.get("id"))
        if link is not None:
            link.status = "up"
