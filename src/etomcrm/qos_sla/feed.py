"""3.7.1 Performance data from the network side: one entry for a real OSS (the API,
``POST /etomcrm/v1/performance/measurementBatch``, as a ``network`` principal) and for
the simulated network (:func:`etomcrm.network.telemetry.generate_measurements`).

A batch is a list of measurements, each of one access link over one interval: the
share of the interval the link was up, the latency and loss while it was, the bytes
in and out. Every measurement carries its sender's id:

- a measurement sent again with the same values is a duplicate: counted, not stored
  again (a retried batch stores nothing new);
- an id sent again with other values is refused (409, naming the ids): a measurement
  is kept as first sent; nothing of that batch is stored.

A batch is checked whole before anything is written; a refused batch writes nothing,
and the message names each refused row by its index (``measurement[3]``). Accepted
rows go to :func:`etomcrm.qos_sla.ingest.ingest_measurements`, the continuous SLA
check (a violation certain for the month is recorded at once, 3.7.2); downtime in the
current month is then assessed for the products it touches and warned about when the
month trends below its target (:func:`etomcrm.qos_sla.assessment.trend_warning`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.core import resources
from etomcrm.core.clock import iso
from etomcrm.core.errors import Conflict, Forbidden, InvalidRequest, RefusedRows
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.network.models import NetworkLinkRow, NetworkMeasurementRow
from etomcrm.qos_sla.assessment import assess, trend_warning
from etomcrm.qos_sla.ingest import ingest_measurements
from etomcrm.security.service import SYSTEM, Principal, Role

FEEDERS = frozenset({Role.NETWORK, Role.ADMIN})
ANSWER_TYPE = "MeasurementBatchResult"
MAX_BATCH = 2_000  # measurements per batch: about half of the API's body size limit
MAX_ERRORS = 10  # refused rows named in one answer
MAX_BYTES = 2**63 - 1  # what a BIGINT column holds
# The zone SLA months are counted in (business calendars are local, DESIGN.md 3).
CALENDAR_ZONE = ZoneInfo("Europe/Berlin")
# An interval ending this far ahead of our clock is the sender's clock skew.
CLOCK_SKEW = timedelta(minutes=1)
VALUES = (
    "link_id",
    "at",
    "interval_seconds",
    "availability",
    "latency_ms",
    "loss_percent",
    "bytes_in",
    "bytes_out",
)
# API attribute -> row column
NUMBERS = {
    "latencyMs": "latency_ms",
    "lossPercent": "loss_percent",
    "bytesIn": "bytes_in",
    "bytesOut": "bytes_out",
}


@dataclass
class BatchResult:
    """What one batch did."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    violations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # products warned of a trend

    def answer(self) -> JsonDict:
        return {
            "@type": ANSWER_TYPE,
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "violationsRecorded": len(self.violations),
            "slaViolation": [{"id": v, "@referredType": "SlaViolation"} for v in self.violations],
            "trendWarnings": len(self.warnings),
        }


def _number(row: Mapping[str, Any], name: str) -> float | None:
    value = row.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_batch(payload: Any) -> list[dict[str, Any]]:
    """The API body (``{"measurement": [...]}``, see the README) as measurement rows.
    Each row's form is checked here and its sense by :func:`feed_measurements`."""
    if not isinstance(payload, dict) or not isinstance(payload.get("measurement"), list):
        raise InvalidRequest(
            'send {"measurement": [{"id", "linkId", "intervalStart", "intervalSeconds", '
            '"availability" or "upSeconds", "latencyMs", "lossPercent", "bytesIn", '
            '"bytesOut"}, ...]}'
        )
    items: list[Any] = payload["measurement"]
    if len(items) > MAX_BATCH:
        raise InvalidRequest(
            f"a batch holds at most {MAX_BATCH} measurements, this one {len(items)}: "
            "split it into several batches"
        )
    problems = RefusedRows("measurement", "measurement(s)", shown=MAX_ERRORS)
    rows: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            problems.add(index, "must be a JSON object")
            continue
        missing = [
            name
            for name in ("id", "linkId", "intervalStart", "intervalSeconds", *NUMBERS)
            if item.get(name) is None
        ]
        if ("availability" in item) == ("upSeconds" in item):
            missing.append("availability or upSeconds (one of them)")
        if missing:
            problems.add(index, f"missing {', '.join(missing)}")
            continue
        row = _row(index, item, problems)
        if row is not None:
            rows.append(row)
    problems.raise_any()
    return rows


def _row(index: int, item: Mapping[str, Any], problems: RefusedRows) -> dict[str, Any] | None:
    measurement_id, link_id = item["id"], item["linkId"]
    if not isinstance(measurement_id, str) or not 0 < len(measurement_id) <= 128:
        problems.add(index, "id must be text of 1 to 128 characters")
        return None
    if not isinstance(link_id, str) or not link_id:
        problems.add(index, "linkId must be the access link's id (text)")
        return None
    try:
        at = datetime.fromisoformat(str(item["intervalStart"]))
    except ValueError:
        problems.add(index, f"intervalStart {item['intervalStart']!r} is not an ISO 8601 instant")
        return None
    seconds = item["intervalSeconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        problems.add(index, f"intervalSeconds must be a whole number, not {seconds!r}")
        return None
    numbers = {column: _number(item, name) for name, column in NUMBERS.items()}
    bad = [name for name, column in NUMBERS.items() if numbers[column] is None]
    if bad:
        problems.add(index, f"{', '.join(bad)} must be numbers")
        return None
    if "upSeconds" in item:
        up = _number(item, "upSeconds")
        if up is None or seconds <= 0:
            problems.add(index, "upSeconds must be a number (and intervalSeconds above 0)")
            return None
        availability: float | None = up / seconds
    else:
        availability = _number(item, "availability")
        if availability is None:
            problems.add(index, "availability must be a number (the share up, 0 to 1)")
            return None
    fractions = [name for name in ("bytesIn", "bytesOut") if not float(item[name]).is_integer()]
    if fractions:
        problems.add(index, f"{', '.join(fractions)} must be whole numbers of bytes")
        return None
    return {
        "measurement_id": measurement_id,
        "link_id": link_id,
        "at": at,
        "interval_seconds": seconds,
        "availability": availability,
        "latency_ms": numbers["latency_ms"],
        "loss_percent": numbers["loss_percent"],
        # counters are whole: kept exact, not through a float
        "bytes_in": int(item["bytesIn"]),
        "bytes_out": int(item["bytesOut"]),
    }


def receive_batch(
    session: Session,
    principal: Principal,
    payload: Any,
    *,
    now: datetime,
    idempotency_key: str | None = None,
) -> tuple[JsonDict, bool]:
    """3.7.1 Assess QoS Performance (eTOM 1.1.1.7.1), input: a batch of performance
    data posted by the network side: authorised, parsed, fed (:func:`feed_measurements`).
    Returns the answer and whether it replays the first answer to the same
    ``Idempotency-Key``."""
    _authorize(principal)
    if idempotency_key is not None:
        previous = resources.previous_answer(
            session, principal, idempotency_key, ANSWER_TYPE, payload
        )
        if previous is not None:
            return previous.response_body, True
    answer = feed_measurements(session, principal, parse_batch(payload), now=now).answer()
    if idempotency_key is not None:
        resources.remember_answer(
            session,
            principal,
            idempotency_key,
            ANSWER_TYPE,
            payload,
            answer,
            status_code=201,
            answer_type=ANSWER_TYPE,
        )
    return answer, False


def feed_simulated(session: Session, rows: list[dict[str, Any]], now: datetime) -> int:
    """The simulated network's deliveries (:mod:`etomcrm.network.telemetry`): the same
    entry as a real OSS's, as the system; returns the rows stored."""
    return feed_measurements(session, SYSTEM, rows, now=now).accepted


def _authorize(principal: Principal) -> None:
    if principal.is_customer or principal.role not in FEEDERS:
        raise Forbidden(
            f"the role {principal.role.value!r} may not deliver performance data; the "
            "network side does (an API key with the role network)"
        )


def _check_values(index: int, row: Mapping[str, Any], now: datetime, problems: RefusedRows) -> None:
    at: datetime = row["at"]
    seconds: int = row["interval_seconds"]
    if at.tzinfo is None:
        problems.add(index, f"intervalStart {at.isoformat()} needs a time zone (Z or +01:00)")
        return
    if not 0 < seconds <= 86_400:
        problems.add(index, f"intervalSeconds must be 1 to 86400, not {seconds}")
        return
    ends = at + timedelta(seconds=seconds)
    if ends > now + CLOCK_SKEW:
        problems.add(
            index,
            f"the interval ends at {iso(ends)}, after now ({iso(now)}): only intervals "
            "measured to their end are taken",
        )
    if not 0.0 <= row["availability"] <= 1.0:
        problems.add(
            index,
            f"availability is the share of the interval the link was up, 0 to 1 (upSeconds "
            f"0 to intervalSeconds), not {row['availability']}",
        )
    if row["latency_ms"] < 0:
        problems.add(index, f"latencyMs must not be negative, not {row['latency_ms']}")
    if not 0.0 <= row["loss_percent"] <= 100.0:
        problems.add(index, f"lossPercent runs from 0 to 100, not {row['loss_percent']}")
    for column, name in (("bytes_in", "bytesIn"), ("bytes_out", "bytesOut")):
        if not 0 <= row[column] <= MAX_BYTES:
            problems.add(index, f"{name} runs from 0 to {MAX_BYTES}, not {row[column]}")


def _same(row: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    return all(row[name] == other[name] for name in VALUES)


def feed_measurements(
    session: Session, principal: Principal, rows: Sequence[Mapping[str, Any]], *, now: datetime
) -> BatchResult:
    """3.7.1 Assess QoS Performance (eTOM 1.1.1.7.1), input: the network side delivers a
    batch of measurements (rows with the columns of ``network_measurement`` and a
    ``measurement_id``; ``site_id`` comes from the link). Checked whole, each stored
    once, assessed continuously (see the module docstring). Four queries, plus the
    continuous check's when the batch shows downtime."""
    _authorize(principal)
    if len(rows) > MAX_BATCH:
        raise InvalidRequest(
            f"a batch holds at most {MAX_BATCH} measurements, this one {len(rows)}: "
            "split it into several batches"
        )
    result = BatchResult(received=len(rows))
    links = {
        link_id: (site_id, product_id)
        for link_id, site_id, product_id in session.execute(
            select(NetworkLinkRow.id, NetworkLinkRow.site_id, NetworkLinkRow.product_id).where(
                NetworkLinkRow.id.in_({str(r["link_id"]) for r in rows})
            )
        )
    }
    problems = RefusedRows("measurement", "measurement(s)", shown=MAX_ERRORS)
    first: dict[str, tuple[int, Mapping[str, Any]]] = {}
    fresh: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        if row["link_id"] not in links:
            problems.add(
                index,
                f"linkId {row['link_id']!r} is no access link etomcrm knows",
                unknown=True,
            )
            continue
        _check_values(index, row, now, problems)
        seen = first.get(row["measurement_id"])
        if seen is not None:
            if not _same(seen[1], row):
                problems.add(
                    index,
                    f"id {row['measurement_id']!r} is measurement[{seen[0]}]'s, with other values",
                )
            else:
                result.duplicates += 1
            continue
        first[row["measurement_id"]] = (index, row)
        fresh.append({**row, "site_id": links[row["link_id"]][0]})
    problems.raise_any()
    stored = {
        stored_row.measurement_id: stored_row
        for stored_row in session.execute(
            select(NetworkMeasurementRow.measurement_id, *_columns()).where(
                NetworkMeasurementRow.measurement_id.in_(list(first))
            )
        )
    }
    changed = sorted(
        m for m, stored_row in stored.items() if not _same(dict(stored_row._mapping), first[m][1])
    )
    if changed:
        shown = ", ".join(changed[:MAX_ERRORS]) + (" ..." if len(changed) > MAX_ERRORS else "")
        raise Conflict(
            f"{len(changed)} measurement id(s) were sent before with other values: {shown}; "
            "a measurement is kept as first sent, and nothing of this batch was stored"
        )
    new = [row for row in fresh if row["measurement_id"] not in stored]
    result.duplicates += len(fresh) - len(new)
    result.accepted = len(new)
    ingested = ingest_measurements(session, new)
    result.violations = ingested.violations
    result.warnings = _warn(session, new, links, now)
    return result


def _month(moment: datetime) -> str:
    return moment.astimezone(CALENDAR_ZONE).strftime("%Y-%m")


def _columns() -> list[Any]:
    return [getattr(NetworkMeasurementRow, name) for name in VALUES]


def _warn(
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    links: Mapping[str, tuple[str, str | None]],
    now: datetime,
) -> list[str]:
    """The month so far assessed for the products whose links were down in it, and a
    warning where it trends below its target (once per product and month)."""
    period = _month(now)
    touched = sorted(
        {
            product_id
            for row in rows
            if row["availability"] < 1 and _month(row["at"]) == period
            for product_id in [links[row["link_id"]][1]]
            if product_id
        }
    )
    if not touched:
        return []
    results = assess(session, period=period, now=now, product_ids=touched)
    return [warning.product_id for warning in trend_warning(session, results)]
