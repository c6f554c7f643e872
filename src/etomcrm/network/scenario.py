"""What happens on the simulated network in a period, and the TMF642 alarms it raises.

A :class:`Scenario` lists events; the measurements (:mod:`etomcrm.network.telemetry`)
show them as downtime, and :func:`alarms_for` turns them into alarm events that
:func:`etomcrm.problem_handling.alarms.emit_alarms` reports through problem handling
(``raise_alarm``, ``update_alarm``, ``clear_alarm``):

- :class:`Flapping`: a link goes down for ``down`` and up for ``up``, over and over,
  ``flaps`` times. Each flap raises a ``linkDown`` alarm (major) and clears it when the
  link is back; correlation key ``link:<id>``.
- :class:`LinkFailure`: one link down from ``start`` to ``end``. A degrading link
  first shows rising latency and loss for ``degrading`` (a ``thresholdCrossed``
  quality alarm, minor, from then on); the ``linkDown`` alarm is major and updated to
  critical once the link has been down for :data:`ESCALATE_AFTER`; both cleared at the
  end. Correlation key ``link:<id>``.
- :class:`PopOutage`: every link of a PoP down from ``start`` to ``end``, whichever
  customer it belongs to. The PoP raises ``powerProblem`` (critical), each of its
  links ``lossOfSignal`` (major); all with correlation key ``pop:<id>``.
- :class:`Maintenance`: planned work, announced in advance
  (:func:`etomcrm.network.maintenance.announce_maintenance`). Its links are down for
  the window, as the work needs, but no alarm is raised: the network suppresses
  alarms for announced work, so nobody opens a ticket for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.core.errors import InvalidRequest
from etomcrm.network.models import NetworkLinkRow, NetworkPopRow

ESCALATE_AFTER = timedelta(minutes=15)
LINK, POP = "NetworkLink", "PointOfPresence"

Window = tuple[datetime, datetime]


@dataclass(frozen=True)
class Flapping:
    link_id: str
    start: datetime
    flaps: int = 12
    down: timedelta = timedelta(minutes=2)
    up: timedelta = timedelta(minutes=3)

    @property
    def end(self) -> datetime:
        return self.start + self.flaps * (self.down + self.up)

    def windows(self) -> list[Window]:
        cycle = self.down + self.up
        return [
            (self.start + n * cycle, self.start + n * cycle + self.down) for n in range(self.flaps)
        ]


@dataclass(frozen=True)
class LinkFailure:
    link_id: str
    start: datetime
    end: datetime
    # How long before the failure latency and loss start to rise; zero for a cut.
    degrading: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class PopOutage:
    pop_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Maintenance:
    start: datetime
    end: datetime
    announced_at: datetime
    description: str
    pop_id: str | None = None
    link_id: str | None = None


@dataclass
class Scenario:
    """The events of a period; ``link_pops`` maps each link to its PoP, so a PoP's
    outage and maintenance reach its links (:meth:`with_links` fills it)."""

    flapping: list[Flapping] = field(default_factory=list)
    failures: list[LinkFailure] = field(default_factory=list)
    pop_outages: list[PopOutage] = field(default_factory=list)
    maintenance: list[Maintenance] = field(default_factory=list)
    link_pops: dict[str, str] = field(default_factory=dict)

    def with_links(self, session: Session) -> Scenario:
        """Fill ``link_pops`` with every link of the PoPs this scenario touches and
        every link it names."""
        pop_ids = {o.pop_id for o in self.pop_outages} | {
            m.pop_id for m in self.maintenance if m.pop_id
        }
        link_ids = (
            {f.link_id for f in self.flapping}
            | {f.link_id for f in self.failures}
            | {m.link_id for m in self.maintenance if m.link_id}
        )
        rows = session.execute(
            select(NetworkLinkRow.id, NetworkLinkRow.pop_id).where(
                NetworkLinkRow.pop_id.in_(pop_ids) | NetworkLinkRow.id.in_(link_ids)
            )
        ).all()
        self.link_pops.update({link_id: pop_id for link_id, pop_id in rows})
        return self

    def links_of(self, pop_id: str) -> list[str]:
        return sorted(link for link, pop in self.link_pops.items() if pop == pop_id)

    def downtime(self) -> dict[str, list[Window]]:
        """Per link, when it is down (unmerged; maintenance included)."""
        down: dict[str, list[Window]] = {}
        for flap in self.flapping:
            down.setdefault(flap.link_id, []).extend(flap.windows())
        for failure in self.failures:
            down.setdefault(failure.link_id, []).append((failure.start, failure.end))
        for outage in self.pop_outages:
            for link_id in self.links_of(outage.pop_id):
                down.setdefault(link_id, []).append((outage.start, outage.end))
        for work in self.maintenance:
            targets = [work.link_id] if work.link_id else self.links_of(str(work.pop_id))
            for link_id in targets:
                down.setdefault(link_id, []).append((work.start, work.end))
        return down

    def degradation(self) -> dict[str, list[Window]]:
        """Per link, when it degrades towards a failure (latency and loss rise)."""
        return {
            failure.link_id: [(failure.start - failure.degrading, failure.start)]
            for failure in self.failures
            if failure.degrading > timedelta(0)
        }


@dataclass(frozen=True)
class AlarmEvent:
    """One thing the network reports: an alarm raised, its severity updated, cleared.

    ``handle`` ties an alarm's update and clear to its raise within one emission."""

    action: Literal["raise", "update", "clear"]
    at: datetime
    handle: str
    alarmed_object_id: str
    alarmed_object_type: str
    alarm_type: str
    perceived_severity: str
    probable_cause: str
    specific_problem: str
    correlation_key: str


def _raise_and_clear(
    handle: str,
    object_id: str,
    object_type: str,
    alarm_type: str,
    severity: str,
    cause: str,
    problem: str,
    key: str,
    window: Window,
) -> list[AlarmEvent]:
    start, end = window
    raised = AlarmEvent(
        "raise", start, handle, object_id, object_type, alarm_type, severity, cause, problem, key
    )
    cleared = AlarmEvent(
        "clear", end, handle, object_id, object_type, alarm_type, "cleared", cause, problem, key
    )
    return [raised, cleared]


def alarms_for(scenario: Scenario) -> list[AlarmEvent]:
    """The alarm events of a scenario in the order the network reports them (by time;
    at the same moment raises before updates before clears, PoP before its links)."""
    events: list[AlarmEvent] = []
    for flap in scenario.flapping:
        key = f"link:{flap.link_id}"
        for n, window in enumerate(flap.windows()):
            events += _raise_and_clear(
                f"flap:{flap.link_id}:{flap.start.isoformat()}:{n}",
                flap.link_id,
                LINK,
                "communicationsAlarm",
                "major",
                "linkDown",
                f"access link {flap.link_id} down (flap {n + 1} of {flap.flaps})",
                key,
                window,
            )
    for failure in scenario.failures:
        key = f"link:{failure.link_id}"
        handle = f"failure:{failure.link_id}:{failure.start.isoformat()}"
        if failure.degrading > timedelta(0):
            events += _raise_and_clear(
                handle + ":quality",
                failure.link_id,
                LINK,
                "qualityOfServiceAlarm",
                "minor",
                "thresholdCrossed",
                f"latency and packet loss rising on access link {failure.link_id}",
                key,
                (failure.start - failure.degrading, failure.end),
            )
        down = _raise_and_clear(
            handle,
            failure.link_id,
            LINK,
            "communicationsAlarm",
            "major",
            "linkDown",
            f"access link {failure.link_id} down",
            key,
            (failure.start, failure.end),
        )
        events += down
        if failure.end - failure.start > ESCALATE_AFTER:
            raised = down[0]
            events.append(
                AlarmEvent(
                    "update",
                    failure.start + ESCALATE_AFTER,
                    handle,
                    raised.alarmed_object_id,
                    LINK,
                    raised.alarm_type,
                    "critical",
                    raised.probable_cause,
                    raised.specific_problem,
                    key,
                )
            )
    for outage in scenario.pop_outages:
        key = f"pop:{outage.pop_id}"
        handle = f"pop:{outage.pop_id}:{outage.start.isoformat()}"
        window = (outage.start, outage.end)
        events += _raise_and_clear(
            handle,
            outage.pop_id,
            POP,
            "environmentalAlarm",
            "critical",
            "powerProblem",
            f"point of presence {outage.pop_id} without power",
            key,
            window,
        )
        for link_id in scenario.links_of(outage.pop_id):
            events += _raise_and_clear(
                f"{handle}:{link_id}",
                link_id,
                LINK,
                "communicationsAlarm",
                "major",
                "lossOfSignal",
                f"no signal on access link {link_id} from point of presence {outage.pop_id}",
                key,
                window,
            )
    order = {"raise": 0, "update": 1, "clear": 2}
    return sorted(
        events,
        key=lambda e: (e.at, order[e.action], e.alarmed_object_type != POP, e.handle),
    )


def set_status(session: Session, event: AlarmEvent, status: str) -> None:
    if event.probable_cause == "thresholdCrossed":
        return
    row: NetworkPopRow | NetworkLinkRow | None
    if event.alarmed_object_type == POP:
        row = session.get(NetworkPopRow, event.alarmed_object_id)
    else:
        row = session.get(NetworkLinkRow, event.alarmed_object_id)
    if row is not None:
        row.status = status


@dataclass
class AlarmStorm:
    """An alarm storm and what it is made of, for correlation tests to check against.

    ``alarms_per_link`` counts raised alarms per flapping link, ``pop_alarms`` the PoP
    outage's (one for the PoP, one per link); ``customers`` lists who is hit: by the
    flapping (per link's customer) and by the PoP outage."""

    scenario: Scenario
    events: list[AlarmEvent]
    total_alarms: int
    alarms_per_link: dict[str, int]
    pop_id: str
    pop_alarms: int
    pop_links: list[str]
    flapping_customers: dict[str, str]  # link id -> customer id
    pop_customers: list[str]

    @property
    def customers(self) -> list[str]:
        return sorted(set(self.flapping_customers.values()) | set(self.pop_customers))


def alarm_storm(
    session: Session,
    *,
    flapping_links: Sequence[str],
    pop_id: str,
    start: datetime,
    total_alarms: int = 10_000,
    outage: timedelta = timedelta(hours=2),
    down: timedelta = timedelta(seconds=20),
    up: timedelta = timedelta(seconds=40),
) -> AlarmStorm:
    """A storm of exactly ``total_alarms`` raised alarms: the PoP's outage from
    ``start`` (one PoP alarm and one per link on it) and the rest as flaps shared out
    over ``flapping_links`` as evenly as they go (the first links one flap more when it
    does not divide). Nothing is written; report it with
    ``problem_handling.alarms.emit_alarms(session, storm.events)``."""
    if not flapping_links:
        raise InvalidRequest("an alarm storm needs at least one flapping link")
    scenario = Scenario(pop_outages=[PopOutage(pop_id, start, start + outage)])
    scenario.with_links(session)
    pop_links = scenario.links_of(pop_id)
    pop_alarms = 1 + len(pop_links)
    flaps = total_alarms - pop_alarms
    if flaps < len(flapping_links):
        raise InvalidRequest(
            f"{total_alarms} alarms leave {flaps} for {len(flapping_links)} flapping links; "
            "ask for more alarms or fewer links"
        )
    each, extra = divmod(flaps, len(flapping_links))
    per_link = {link_id: each + (1 if n < extra else 0) for n, link_id in enumerate(flapping_links)}
    scenario.flapping = [
        Flapping(link_id, start, flaps=count, down=down, up=up)
        for link_id, count in per_link.items()
    ]
    scenario.with_links(session)
    owners = dict(
        session.execute(
            select(NetworkLinkRow.id, NetworkLinkRow.customer_id).where(
                NetworkLinkRow.id.in_(set(flapping_links) | set(pop_links))
            )
        ).all()
    )
    events = alarms_for(scenario)
    return AlarmStorm(
        scenario=scenario,
        events=events,
        total_alarms=sum(1 for e in events if e.action == "raise"),
        alarms_per_link=per_link,
        pop_id=pop_id,
        pop_alarms=pop_alarms,
        pop_links=pop_links,
        flapping_customers={link: owners[link] for link in flapping_links if link in owners},
        pop_customers=sorted({owners[link] for link in pop_links if link in owners}),
    )
