"""TMF642 alarms: what the network reports, and what operators do about it (3.6.1).

- Alarm ids are integers, as TMF642 defines them (``Alarm.id`` is an integer): the
  time in milliseconds shifted left 22 bits plus a per-process counter, so ids sort in
  raising order, stay unique within a process up to four million alarms per
  millisecond, and fit a signed 64-bit integer until 2039. The row's id is its
  decimal text.
- ``state`` runs raised -> updated -> cleared (:data:`ALARM_TRANSITIONS`);
  ``ackState`` unacknowledged <-> acknowledged (:data:`ACK_TRANSITIONS`);
  ``perceivedSeverity`` is the document's enum and becomes ``cleared`` with the alarm.
- The network side raises, updates and clears alarms (:func:`raise_alarm`,
  :func:`update_alarm`, :func:`clear_alarm`); ``raise_alarm`` is one insert, because
  an outage raises thousands at once. Operators read them, acknowledge (PATCH
  ``ackState`` or POST ``ackAlarms``), clear them (POST ``clearAlarms``, or PATCH
  ``state: cleared``) and comment; what the alarm says about the fault stays the
  network's.
- ``correlation_key`` (column) says what the fault is about for correlation into
  service problems (a point of presence, a link); ``alarmed_object_id`` is the
  alarmed object's id.
- A real OSS (a principal with the ``network`` role) reports through the API what the
  simulator reports through :func:`raise_alarm`: ``POST .../alarm`` with a TMF642
  ``Alarm_Create`` body raises, ``PATCH`` updates (severity) and clears (``state:
  cleared``). The alarmed object is named by ``alarmedObjectType`` (or the object's
  ``@referredType``/``@type``) and ``alarmedObject.id``: an ``AccessLink`` (also
  ``NetworkLink``) correlates as ``link:<id>``, a ``PointOfPresence`` as
  ``pop:<id>``, a ``GeographicSite`` as its access link; without a type the id is
  looked up as a link, a PoP, then a site. A link alarm while its PoP has an open
  alarm, or one naming a ``parentAlarm``, joins that cause. Other objects (a core
  router) are kept for the operators but correlate into nothing
  (:func:`correlation_target`).
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.core import resources, states
from etomcrm.core.bus import record, recorded
from etomcrm.core.clock import iso
from etomcrm.core.errors import Conflict, Forbidden, InvalidRequest
from etomcrm.core.resources import ResourceKind, validate_against
from etomcrm.core.tmf_schemas import ALARM, JsonDict
from etomcrm.db import new_id, utcnow
from etomcrm.network.models import NetworkLinkRow, NetworkPopRow
from etomcrm.network.scenario import AlarmEvent, set_status
from etomcrm.problem_handling.events import AlarmCleared
from etomcrm.problem_handling.models import AlarmRow
from etomcrm.security.service import SYSTEM, Principal, Role

ALARM_OPERATORS = frozenset({Role.ADMIN, Role.SUPPORT, Role.SLA_MANAGER})
ALARM_READERS = ALARM_OPERATORS | {Role.ANALYST, Role.NETWORK}
# Operators acknowledge and clear; the network side raises, updates and clears.
ALARM_WRITERS = ALARM_OPERATORS | {Role.NETWORK}

RAISED, UPDATED, CLEARED = "raised", "updated", "cleared"
ALARM_TRANSITIONS: dict[str, frozenset[str]] = {
    RAISED: frozenset({UPDATED, CLEARED}),
    UPDATED: frozenset({UPDATED, CLEARED}),
    CLEARED: frozenset(),
}
ACKNOWLEDGED, UNACKNOWLEDGED = "acknowledged", "unacknowledged"
ACK_TRANSITIONS: dict[str, frozenset[str]] = {
    UNACKNOWLEDGED: frozenset({ACKNOWLEDGED}),
    ACKNOWLEDGED: frozenset({UNACKNOWLEDGED}),
}
SEVERITIES: tuple[str, ...] = tuple(ALARM.definitions["PerceivedSeverity"]["enum"])
ALARM_TYPES: tuple[str, ...] = tuple(ALARM.definitions["AlarmType"]["enum"])
# What an operator may change on an alarm; the rest is what the network reported.
OPERATOR_EDITABLE = frozenset(
    {
        "ackState",
        "ackUserId",
        "ackSystemId",
        "comment",
        "alarmDetails",
        "alarmEscalation",
        "state",
        "alarmClearedTime",
        "clearUserId",
        "clearSystemId",
        "alarmChangedTime",
    }
)
NETWORK_SYSTEM = "etomcrm-network"
# What the network side may change on an alarm it raised: what it says about the fault,
# and its clearing. Acknowledging, comments and escalation stay the operators'; what
# identifies the alarm (object, cause, raise time, source) never changes.
NETWORK_EDITABLE = frozenset(
    {
        "perceivedSeverity",
        "specificProblem",
        "alarmDetails",
        "proposedRepairedActions",
        "serviceAffecting",
        "crossedThresholdInformation",
        "plannedOutageIndicator",
        "affectedService",
        "correlatedAlarm",
        "isRootCause",
        "parentAlarm",
        "state",
        "alarmChangedTime",
        "alarmReportingTime",
        "alarmClearedTime",
        "clearSystemId",
        "clearUserId",
    }
)
# How an OSS names what an alarm is about (alarmedObjectType), and the correlation key
# prefix each stands for; a site stands for its access link.
LINK_TYPES = frozenset({"AccessLink", "NetworkLink"})
POP_TYPES = frozenset({"PointOfPresence"})
SITE_TYPES = frozenset({"GeographicSite"})
# A raise time this far ahead of our clock is the sender's clock skew, not the future.
CLOCK_SKEW = timedelta(minutes=1)

_counter = itertools.count(secrets.randbelow(1 << 22))


def new_alarm_id() -> int:
    """A TMF642 integer alarm id in raising order (see the module docstring)."""
    return (time.time_ns() // 1_000_000) << 22 | (next(_counter) & ((1 << 22) - 1))


def _check_enum(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidRequest(f"{name} is one of {', '.join(allowed)} (TMF642), not {value!r}")


@dataclass
class AlarmKind(ResourceKind):
    """TMF642 alarm: read by staff, acknowledged and cleared by operators."""

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        return None  # a network alarm may touch many customers

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        if old is None:
            if not principal.is_network:
                raise Forbidden(
                    "alarms are reported by the network side (an API key with the role "
                    "network), not by staff; acknowledge them (PATCH ackState or POST "
                    "ackAlarms) or clear them (POST clearAlarms)"
                )
            _check_new_alarm(body)
            return
        if principal.is_network:
            _network_change(old, body)
        elif principal is not SYSTEM:
            changed = {k for k in set(old) | set(body) if old.get(k) != body.get(k)}
            refused = sorted(changed - OPERATOR_EDITABLE - {"id"})
            if refused:
                raise Forbidden(
                    f"what an alarm reports ({', '.join(refused)}) is the network's; operators "
                    f"change only {', '.join(sorted(OPERATOR_EDITABLE))}"
                )
        now = iso(utcnow())
        before_ack = str(old.get("ackState") or UNACKNOWLEDGED)
        after_ack = str(body.get("ackState") or UNACKNOWLEDGED)
        if before_ack != after_ack:
            states.check_transition("alarm ackState", ACK_TRANSITIONS, before_ack, after_ack)
            # Who acknowledged: the operator, unless the request named the user.
            if body.get("ackUserId") == old.get("ackUserId"):
                body["ackUserId"] = principal.name
            body.setdefault("ackSystemId", "etomcrm")
        before, after = str(old.get("state")), str(body.get("state"))
        if before != after:
            states.check_transition("alarm state", ALARM_TRANSITIONS, before, after)
            if after == CLEARED:
                body["perceivedSeverity"] = CLEARED
                body.setdefault("alarmClearedTime", now)
                if body.get("clearUserId") == old.get("clearUserId"):
                    body["clearUserId"] = principal.name
                clearer = old.get("sourceSystemId") if principal.is_network else "etomcrm"
                body.setdefault("clearSystemId", clearer)
                _tell_cleared(session, body)
        if body.get("perceivedSeverity") is not None:
            _check_enum("perceivedSeverity", str(body["perceivedSeverity"]), SEVERITIES)
        if body != old:
            body["alarmChangedTime"] = now

    def row_columns(self, session: Session, body: JsonDict) -> dict[str, Any]:
        object_id, key = correlation_target(session, body)
        return {"id": str(body["id"]), "alarmed_object_id": object_id[:200], "correlation_key": key}

    def before_delete(self, session: Session, principal: Principal, body: JsonDict) -> None:
        if principal.is_network:
            raise Forbidden("the network side clears alarms; deleting them is the operators'")
        if body.get("state") != CLEARED:
            raise Conflict(
                f"alarm {body['id']} is {body.get('state')!r}; only a cleared alarm may be "
                "deleted (clear it first)"
            )


def _instant(name: str, value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidRequest(
            f"{name} must be an ISO 8601 instant such as 2026-11-24T09:00:00Z, not {value!r}"
        ) from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"{name} needs a time zone (Z or +01:00), not {value!r}")
    return moment


def _check_new_alarm(body: JsonDict) -> None:
    """3.6.1 Isolate Customer Problem (eTOM 1.1.1.6.1), input: a network system
    reports a fault through the API. What it says is checked as :func:`raise_alarm`
    checks the simulator's; the server sets the id and what only etomcrm knows."""
    if body.get("state") != RAISED:
        raise InvalidRequest(
            f"a new alarm is reported with state 'raised', not {body.get('state')!r}; "
            "update or clear it afterwards with PATCH .../alarm/{id}"
        )
    _check_enum("alarmType", str(body.get("alarmType")), ALARM_TYPES)
    _check_enum("perceivedSeverity", str(body.get("perceivedSeverity")), SEVERITIES[:-1])
    raised = _instant("alarmRaisedTime", body.get("alarmRaisedTime"))
    now = utcnow()
    if raised > now + CLOCK_SKEW:
        raise InvalidRequest(
            f"alarmRaisedTime {body['alarmRaisedTime']} is in the future (it is {iso(now)} "
            "here); check the sending system's clock"
        )
    refused = sorted(k for k in ("ackState", "ackUserId", "ackSystemId") if k in body)
    if refused:
        raise InvalidRequest(
            f"a new alarm is unacknowledged: leave out {', '.join(refused)} (operators "
            "acknowledge alarms in etomcrm)"
        )
    body["id"] = new_alarm_id()
    body["ackState"] = UNACKNOWLEDGED
    body.setdefault("alarmReportingTime", iso(now))
    body.setdefault("alarmChangedTime", body["alarmRaisedTime"])
    body.setdefault("serviceAffecting", body["perceivedSeverity"] in ("critical", "major"))


def _network_change(old: JsonDict, body: JsonDict) -> None:
    """3.6.1 Isolate Customer Problem (eTOM 1.1.1.6.1), input: the network side changes
    an alarm it raised (as :func:`update_alarm` and :func:`clear_alarm` do for the
    simulator): a new severity makes the alarm ``updated``; ``state: cleared`` (or the
    severity ``cleared``) clears it."""
    if old.get("state") == CLEARED:
        raise Conflict(
            f"alarm {old['id']} was cleared at {old.get('alarmClearedTime')}; a cleared alarm "
            "does not change: raise a new alarm if the fault is back"
        )
    changed = {k for k in set(old) | set(body) if old.get(k) != body.get(k)}
    refused = sorted(changed - NETWORK_EDITABLE)
    if refused:
        raise Forbidden(
            f"the network side may not change {', '.join(refused)} of an alarm: what "
            "identifies it is fixed and acknowledging is the operators'; it changes only "
            f"{', '.join(sorted(NETWORK_EDITABLE))}"
        )
    if body.get("perceivedSeverity") == CLEARED:
        body["state"] = CLEARED
    elif body.get("state") == RAISED and changed - {"alarmReportingTime"}:
        body["state"] = UPDATED


def _tell_cleared(session: Session, body: JsonDict) -> None:
    row = session.get(AlarmRow, str(body["id"]))  # loaded (and locked) by the patch
    key = row.correlation_key if row is not None else None
    told = {e.correlation_key for e in recorded(session) if isinstance(e, AlarmCleared)}
    if key and key not in told:
        # The problem flow of this cause looks again: was that its last alarm? (Once
        # per cause and transaction, however many of its alarms clear in it.)
        record(session, AlarmCleared(alarm_id=str(body["id"]), correlation_key=key))


def _object_type(body: JsonDict) -> str | None:
    alarmed = body.get("alarmedObject") or {}
    for candidate in (
        body.get("alarmedObjectType"),
        alarmed.get("@referredType"),
        alarmed.get("@type"),
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def correlation_target(session: Session, body: JsonDict) -> tuple[str, str | None]:
    """The alarmed object's id and the correlation key it stands for (``link:<id>``,
    ``pop:<id>``; see the module docstring), or None for objects etomcrm does not
    model. A link, PoP or site etomcrm does not know is refused, naming the id.

    As the simulator reports a PoP outage, an alarm on a link whose PoP has an open
    alarm is part of that outage (``pop:<id>``), not a fault of its own; so is an
    alarm naming a ``parentAlarm`` etomcrm holds (its key)."""
    alarmed = body.get("alarmedObject")
    object_id = alarmed.get("id") if isinstance(alarmed, dict) else None
    if not isinstance(object_id, str) or not object_id.strip():
        raise InvalidRequest(
            "alarmedObject.id names what the alarm is about: an access link, a point of "
            'presence or a site, e.g. {"alarmedObjectType": "AccessLink", '
            '"alarmedObject": {"id": "<link id>"}}'
        )
    parents = [str(p["id"]) for p in body.get("parentAlarm") or [] if isinstance(p, dict)]
    if parents:
        key = session.scalar(
            select(AlarmRow.correlation_key)
            .where(AlarmRow.id.in_(parents), AlarmRow.correlation_key.is_not(None))
            .limit(1)
        )
        if key is None:
            raise InvalidRequest(
                f"parentAlarm {', '.join(parents)}: no alarm of a known cause has this id "
                "here; name the parent by the id etomcrm gave it, or leave parentAlarm out"
            )
        return object_id, key
    kind = _object_type(body)
    if kind is not None and kind not in LINK_TYPES | POP_TYPES | SITE_TYPES:
        return object_id, None  # not modelled here: kept for the operators, not correlated
    link = session.get(NetworkLinkRow, object_id) if kind is None or kind in LINK_TYPES else None
    pop = None
    if link is None:
        pop = session.get(NetworkPopRow, object_id) if kind is None or kind in POP_TYPES else None
    if pop is not None:
        return object_id, f"pop:{object_id}"
    if link is None and (kind is None or kind in SITE_TYPES):
        links = session.scalars(
            select(NetworkLinkRow).where(NetworkLinkRow.site_id == object_id)
        ).all()
        if len(links) > 1:
            raise InvalidRequest(
                f"site {object_id} has {len(links)} access links "
                f"({', '.join(sorted(x.id for x in links))}): name the failed one "
                '(alarmedObjectType "AccessLink", alarmedObject.id)'
            )
        link = links[0] if links else None
    if link is not None:
        pop_key = f"pop:{link.pop_id}"
        pop_down = session.scalar(
            select(AlarmRow.id)
            .where(AlarmRow.correlation_key == pop_key, AlarmRow.status != CLEARED)
            .limit(1)
        )
        return object_id, pop_key if pop_down else f"link:{link.id}"
    if kind in LINK_TYPES:
        what = "access link"
    elif kind in POP_TYPES:
        what = "point of presence"
    elif kind in SITE_TYPES:
        what = "site with an access link"
    else:
        what = "access link, point of presence or site"
    raise InvalidRequest(
        f"alarmedObject.id {object_id!r}: no {what} with this id is known to etomcrm; name "
        "links, points of presence and sites by the ids of etomcrm's network inventory"
    )


ALARM_KIND = AlarmKind(
    name="alarm",
    type_name="Alarm",
    doc=ALARM,
    row=AlarmRow,
    read_roles=ALARM_READERS,
    write_roles=ALARM_WRITERS,
    customer_owned=False,
    status_attribute="state",
    name_attribute=None,
)


# ----- the network side --------------------------------------------------------------


def raise_alarm(
    session: Session,
    *,
    alarmed_object_id: str,
    alarm_type: str,
    perceived_severity: str,
    probable_cause: str,
    specific_problem: str,
    raised_at: datetime,
    correlation_key: str | None = None,
    alarmed_object_type: str | None = None,
) -> JsonDict:
    """3.6.1 Isolate Customer Problem (eTOM 1.1.1.6.1), input: the network reports a
    fault. One insert and nothing else, so an outage's thousands of alarms are taken
    as fast as the database writes them; correlation reads them afterwards."""
    _check_enum("alarmType", alarm_type, ALARM_TYPES)
    _check_enum("perceivedSeverity", perceived_severity, SEVERITIES[:-1])
    if raised_at.tzinfo is None:
        raise InvalidRequest("raised_at must be timezone-aware")
    alarm_id = new_alarm_id()
    raised = iso(raised_at)
    body: JsonDict = {
        "id": alarm_id,
        "@type": "Alarm",
        "alarmType": alarm_type,
        "perceivedSeverity": perceived_severity,
        "probableCause": probable_cause,
        "specificProblem": specific_problem,
        "alarmedObject": {"id": alarmed_object_id},
        "sourceSystemId": NETWORK_SYSTEM,
        "state": RAISED,
        "ackState": UNACKNOWLEDGED,
        "alarmRaisedTime": raised,
        "alarmReportingTime": iso(utcnow()),
        "alarmChangedTime": raised,
        "serviceAffecting": perceived_severity in ("critical", "major"),
    }
    if alarmed_object_type:
        body["alarmedObjectType"] = alarmed_object_type
        body["alarmedObject"]["@type"] = alarmed_object_type
    session.add(
        AlarmRow(
            id=str(alarm_id),
            at_type="Alarm",
            status=RAISED,
            body=body,
            version=1,
            alarmed_object_id=alarmed_object_id[:200],
            correlation_key=correlation_key[:200] if correlation_key else None,
        )
    )
    return body


def update_alarm(
    session: Session, alarm_id: str, *, perceived_severity: str, changed_at: datetime
) -> JsonDict:
    """3.6.1 Isolate Customer Problem (eTOM 1.1.1.6.1), input: the network changes an
    open alarm's severity (state ``updated``)."""
    _check_enum("perceivedSeverity", perceived_severity, SEVERITIES[:-1])
    body, _ = resources.patch(
        session,
        ALARM_KIND,
        SYSTEM,
        str(alarm_id),
        {"state": UPDATED, "perceivedSeverity": perceived_severity},
    )
    return body


def clear_alarm(session: Session, alarm_id: str, *, cleared_at: datetime) -> JsonDict:
    """3.6.1 Isolate Customer Problem (eTOM 1.1.1.6.1), input: the network says the
    fault is gone. Clearing a cleared alarm again changes nothing (the network may
    repeat itself)."""
    row = session.get(AlarmRow, str(alarm_id))
    if row is not None and row.status == CLEARED:
        return dict(row.body)
    body, _ = resources.patch(
        session,
        ALARM_KIND,
        SYSTEM,
        str(alarm_id),
        {"state": CLEARED, "alarmClearedTime": iso(cleared_at), "clearSystemId": NETWORK_SYSTEM},
    )
    return body


# ----- operators' task resources (ackAlarms, clearAlarms) -----------------------------


def _matches(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            _matches(expected, value.get(key)) for key, expected in pattern.items()
        )
    return bool(pattern == value)


def matching_alarms(session: Session, patterns: list[JsonDict]) -> list[AlarmRow]:
    """Alarms that match any pattern (all of a pattern's attributes equal). A pattern
    names ``id`` or ``alarmedObject.id``, so the search stays an indexed query."""
    ids: set[str] = set()
    objects: set[str] = set()
    for pattern in patterns:
        if "id" in pattern:
            ids.add(str(pattern["id"]))
        elif isinstance(pattern.get("alarmedObject"), dict) and "id" in pattern["alarmedObject"]:
            objects.add(str(pattern["alarmedObject"]["id"]))
        else:
            raise InvalidRequest(
                "each alarmPattern names the alarm's id or its alarmedObject.id "
                "(other attributes narrow the match)"
            )
    rows = session.scalars(
        select(AlarmRow)
        .where(AlarmRow.id.in_(ids) | AlarmRow.alarmed_object_id.in_(objects))
        .order_by(AlarmRow.id)
    ).all()
    return [r for r in rows if any(_matches(p, r.body) for p in patterns)]


def _alarm_ref(body: JsonDict, base_url: str) -> JsonDict:
    return {"id": body["id"], "href": resources.href_for(ALARM_KIND, base_url, str(body["id"]))}


def acknowledge_alarms(
    session: Session, principal: Principal, request: Any, *, base_url: str = ""
) -> JsonDict:
    """3.6.1 Isolate Customer Problem (eTOM 1.1.1.6.1): an operator acknowledges the
    alarms matching the request's patterns (TMF642 ackAlarms); alarms acknowledged
    already are left as they are and not listed."""
    ALARM_KIND.authorize(principal, resources.UPDATE)
    validate_against(ALARM, "AckAlarms_Create", request, "ackAlarms request")
    acked = []
    for row in matching_alarms(session, request["alarmPattern"]):
        if row.body.get("ackState") == ACKNOWLEDGED:
            continue
        body, _ = resources.patch(
            session,
            ALARM_KIND,
            principal,
            row.id,
            {
                "ackState": ACKNOWLEDGED,
                "ackUserId": request["ackUserId"],
                "ackSystemId": request["ackSystemId"],
            },
            base_url=base_url,
        )
        acked.append(_alarm_ref(body, base_url))
    return {
        **request,
        "id": new_id(),
        "@type": "AckAlarms",
        "ackTime": request.get("ackTime") or iso(utcnow()),
        "state": "done",
        "ackedAlarm": acked,
    }


def clear_alarms(
    session: Session, principal: Principal, request: Any, *, base_url: str = ""
) -> JsonDict:
    """3.6.1 Isolate Customer Problem (eTOM 1.1.1.6.1): an operator clears the alarms
    matching the request's patterns (TMF642 clearAlarms); cleared ones are not listed."""
    ALARM_KIND.authorize(principal, resources.UPDATE)
    validate_against(ALARM, "ClearAlarms_Create", request, "clearAlarms request")
    cleared = []
    for row in matching_alarms(session, request["alarmPattern"]):
        if row.status == CLEARED:
            continue
        body, _ = resources.patch(
            session,
            ALARM_KIND,
            principal,
            row.id,
            {
                "state": CLEARED,
                "alarmClearedTime": request["alarmClearedTime"],
                "clearUserId": request["clearUserId"],
                "clearSystemId": request["clearSystemId"],
            },
            base_url=base_url,
        )
        cleared.append(_alarm_ref(body, base_url))
    return {
        **request,
        "id": new_id(),
        "@type": "ClearAlarms",
        "state": "done",
        "clearedAlarm": cleared,
    }


def emit_alarms(
    session: Session, events: Iterable[AlarmEvent], *, until: datetime | None = None
) -> int:
    """3.6.1 input: the simulated network's alarm events reported, in order; with ``until`` only
    those up to that moment (a caller's clock). Links and PoPs take the status the
    alarms say (down while a ``linkDown``, ``lossOfSignal`` or ``powerProblem`` is
    open). An update or clear whose raise was reported by an earlier call finds the
    open alarm by its object, cause and correlation key. Returns the events reported."""
    alarm_ids: dict[str, str] = {}
    reported = 0
    for event in events:
        if until is not None and event.at > until:
            continue
        if event.action == "raise":
            body = raise_alarm(
                session,
                alarmed_object_id=event.alarmed_object_id,
                alarm_type=event.alarm_type,
                perceived_severity=event.perceived_severity,
                probable_cause=event.probable_cause,
                specific_problem=event.specific_problem,
                raised_at=event.at,
                correlation_key=event.correlation_key,
                alarmed_object_type=event.alarmed_object_type,
            )
            alarm_ids[event.handle] = str(body["id"])
            set_status(session, event, "down")
        else:
            alarm_id = alarm_ids.get(event.handle)
            if alarm_id is None:
                session.flush()
                candidates = session.scalars(
                    select(AlarmRow)
                    .where(
                        AlarmRow.alarmed_object_id == event.alarmed_object_id,
                        AlarmRow.correlation_key == event.correlation_key,
                        AlarmRow.status != "cleared",
                    )
                    .order_by(AlarmRow.id)
                ).all()
                matching = [
                    r for r in candidates if r.body.get("probableCause") == event.probable_cause
                ]
                if not matching:
                    continue  # cleared already, or raised before this network kept alarms
                alarm_id = matching[0].id
            if event.action == "update":
                update_alarm(
                    session,
                    alarm_id,
                    perceived_severity=event.perceived_severity,
                    changed_at=event.at,
                )
            else:
                clear_alarm(session, alarm_id, cleared_at=event.at)
                set_status(session, event, "up")
        reported += 1
    return reported
