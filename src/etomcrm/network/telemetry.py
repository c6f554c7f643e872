"""Performance data of the simulated network: one row per link and interval.

Values (all from seeded hashes, so the same seed, links and period give the same rows,
whichever window a call asks for: each link's draws come per UTC day, keyed by the
link's site as the network knows it and its point of presence, never by ids):

- ``availability``: the share of the interval the link was up, from the scenario's
  downtime (flaps, failures, PoP outages, maintenance work); 1 otherwise.
- ``latency_ms``: a per-link base of 4 to 25 ms (distance to its PoP) with +-15 %
  noise; ``loss_percent``: 0 to 0.05 %. On a degrading link both rise in the time
  before its failure, latency up to five times and loss up to 5 %. Both describe the
  time the link was up; a link down for the whole interval reports latency 0 and
  loss 100 %.
- ``bytes_in``/``bytes_out``: bandwidth x interval x the site's volume level (its
  peak utilisation, 10 to 70 %) x the daily profile (Europe/Berlin: business hours
  on weekdays full, evenings a third, nights and weekends a tenth) x noise, times
  availability; outbound is a per-site 25 to 60 % of inbound.

:func:`outages_for` reads downtime back from the rows (see there).

The rows enter etomcrm through the same entry as a real OSS's performance data
(``feed``: :func:`etomcrm.qos_sla.feed.feed_simulated`, the service function behind
``POST /etomcrm/v1/performance/measurementBatch``), with ids of their own
(``sim-<seed>-<link>-<epoch>``), so generating a period again stores nothing twice.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.core.errors import InvalidRequest
from etomcrm.network.identity import site_identity_of
from etomcrm.network.maintenance import Window, merge
from etomcrm.network.models import NetworkLinkRow, NetworkMeasurementRow
from etomcrm.network.scenario import Scenario

BERLIN = ZoneInfo("Europe/Berlin")
CHUNK = 2_000  # rows per delivery: the performance feed's batch limit
DAY = timedelta(days=1)
# How measured rows enter etomcrm: (session, rows, the network's now) -> rows stored.
# Given by the caller, so that the network side does not call up into QoS management.
MeasurementFeed = Callable[[Session, list[dict[str, Any]], datetime], int]


def _rng(seed: int, purpose: str, identity: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}|{purpose}|{identity}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def traffic_profile(at: datetime) -> float:
    """How busy a business network is at a moment, 0.1 to 1 (Berlin local time)."""
    local = at.astimezone(BERLIN)
    if local.weekday() >= 5:
        return 0.1
    hour = local.hour + local.minute / 60
    if 8 <= hour < 18:
        return 1.0
    if 6 <= hour < 8 or 18 <= hour < 22:
        return 0.35
    return 0.1


def _overlap(start: datetime, end: datetime, windows: Sequence[Window]) -> float:
    seconds = 0.0
    for w_start, w_end in windows:
        if w_start < end and w_end > start:
            seconds += (min(end, w_end) - max(start, w_start)).total_seconds()
    return seconds


def generate_measurements(
    session: Session,
    *,
    links: Sequence[NetworkLinkRow],
    start: datetime,
    end: datetime,
    interval: timedelta = timedelta(minutes=5),
    seed: int,
    scenario: Scenario | None = None,
    feed: MeasurementFeed,
) -> int:
    """Deliver one measurement per link per interval in [start, end) through ``feed``
    in batches of plain dicts (no ORM object per row), measured as of ``end``; returns
    the rows stored. ``start`` is aligned down to the interval, so runs over adjoining
    periods fit together."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidRequest("start and end must be timezone-aware (UTC)")
    step = int(interval.total_seconds())
    if step <= 0 or 86400 % step:
        raise InvalidRequest("the interval must divide a day (e.g. 1, 5 or 15 minutes)")
    epoch = int(start.timestamp())
    first = datetime.fromtimestamp(epoch - epoch % step, UTC)
    end = end.astimezone(UTC)
    down = {k: merge(v) for k, v in (scenario.downtime() if scenario else {}).items()}
    degrading = scenario.degradation() if scenario else {}
    slots_per_day = 86400 // step
    # The profile depends only on the moment, so it is computed once for all links.
    slots: list[datetime] = []
    at = first
    while at < end:
        slots.append(at)
        at += interval
    profile = [traffic_profile(s) for s in slots]
    bytes_at_full = step / 8 * 1_000_000  # per Mbit/s
    rows: list[dict[str, object]] = []
    written = 0
    for link in links:
        # Drawn by the site as the network knows it, not by ids new on every run.
        known_as = site_identity_of(session, link.site_id)
        site = _rng(seed, "site-volume", known_as)
        level = site.uniform(0.1, 0.7)
        out_share = site.uniform(0.25, 0.6)
        base_latency = _rng(seed, "link-latency", f"{known_as}|{link.pop_id}").uniform(4.0, 25.0)
        full = link.bandwidth_mbits * bytes_at_full * level
        link_down = down.get(link.id, [])
        link_degrading = degrading.get(link.id, [])
        day_draws: list[tuple[float, float, float]] = []
        day_start: datetime | None = None
        for n, slot in enumerate(slots):
            this_day = slot.replace(hour=0, minute=0, second=0, microsecond=0)
            if this_day != day_start:
                day_start = this_day
                draw = _rng(
                    seed, "measure", f"{known_as}|{link.pop_id}|{this_day.date().isoformat()}"
                )
                day_draws = [
                    (draw.uniform(0.85, 1.15), draw.uniform(0.0, 0.05), draw.uniform(0.8, 1.2))
                    for _ in range(slots_per_day)
                ]
            jitter, loss, noise = day_draws[int((slot - this_day).total_seconds()) // step]
            slot_end = slot + interval
            availability = 1.0
            if link_down:
                availability = max(0.0, 1.0 - _overlap(slot, slot_end, link_down) / step)
            latency = base_latency * jitter
            for d_start, d_end in link_degrading:
                if d_start < slot_end and slot < d_end:
                    progress = (slot_end - d_start) / (d_end - d_start)
                    latency *= 1 + 4 * min(1.0, progress)
                    loss += 5 * min(1.0, progress)
            volume = int(full * profile[n] * noise * availability)
            if availability == 0.0:
                latency, loss = 0.0, 100.0
            rows.append(
                {
                    "measurement_id": f"sim-{seed}-{link.id}-{int(slot.timestamp())}",
                    "link_id": link.id,
                    "site_id": link.site_id,
                    "at": slot,
                    "interval_seconds": step,
                    "availability": availability,
                    "latency_ms": round(latency, 3),
                    "loss_percent": round(min(loss, 100.0), 4),
                    "bytes_in": volume,
                    "bytes_out": int(volume * out_share),
                }
            )
            if len(rows) >= CHUNK:
                written += feed(session, rows, end)
                rows = []
    if rows:
        written += feed(session, rows, end)
    return written


def outages_for(
    session: Session, link_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[Window]]:
    """Per link, its downtime within [start, end) as read from the measurements, merged.

    A row says how much of its interval the link was down, not when: the downtime,
    (1 - availability) x interval, is placed at the start of the interval when the
    link was down at the end of the interval before (an outage going on) and at the
    end of the interval otherwise (an outage beginning). So an outage over several
    intervals comes back exactly, and a short one within an interval with its exact
    length (its place inside the interval is not known). Links without downtime map
    to []."""
    rows = session.execute(
        select(
            NetworkMeasurementRow.link_id,
            NetworkMeasurementRow.at,
            NetworkMeasurementRow.interval_seconds,
            NetworkMeasurementRow.availability,
        )
        .where(
            NetworkMeasurementRow.link_id.in_(link_ids),
            NetworkMeasurementRow.at >= start,
            NetworkMeasurementRow.at < end,
            NetworkMeasurementRow.availability < 1.0,
        )
        .order_by(NetworkMeasurementRow.link_id, NetworkMeasurementRow.at)
    ).all()
    found: dict[str, list[Window]] = {link_id: [] for link_id in link_ids}
    for link_id, at, seconds, availability in rows:
        windows = found[link_id]
        length = timedelta(seconds=round((1.0 - availability) * seconds, 3))
        going_on = bool(windows) and windows[-1][1] == at
        window = (
            (at, at + length)
            if going_on
            else (at + timedelta(seconds=seconds) - length, at + timedelta(seconds=seconds))
        )
        windows.append(window)
    return {link_id: merge(windows) for link_id, windows in found.items()}
