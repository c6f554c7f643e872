"""Planned maintenance windows: announced in advance, excluded from SLA availability.

A window is on a PoP (every link ending there) or on one link. Its id comes from what
it is on and when it starts, so announcing the same work again changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from etomcrm.core.errors import InvalidRequest, UnknownReference
from etomcrm.network.models import MaintenanceWindowRow, NetworkLinkRow, NetworkPopRow

Window = tuple[datetime, datetime]


def _aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None:
        raise InvalidRequest(f"{name} must be timezone-aware (UTC)")


def announce_maintenance(
    session: Session,
    *,
    pop_id: str | None = None,
    link_id: str | None = None,
    starts_at: datetime,
    ends_at: datetime,
    description: str,
    announced_at: datetime,
) -> str:
    """Record planned work on a PoP or a link; returns the window's id."""
    if (pop_id is None) == (link_id is None):
        raise InvalidRequest("a maintenance window is on a PoP or on a link: name exactly one")
    for name, moment in (
        ("starts_at", starts_at),
        ("ends_at", ends_at),
        ("announced_at", announced_at),
    ):
        _aware(name, moment)
    if ends_at <= starts_at:
        raise InvalidRequest("a maintenance window ends after it starts")
    if announced_at >= starts_at:
        raise InvalidRequest(
            "planned maintenance is announced before it starts; work announced at or after "
            "its start is an outage, not maintenance"
        )
    if pop_id is not None and session.get(NetworkPopRow, pop_id) is None:
        raise UnknownReference(f"no point of presence {pop_id}")
    if link_id is not None and session.get(NetworkLinkRow, link_id) is None:
        raise UnknownReference(f"no access link {link_id}")
    target = f"pop:{pop_id}" if pop_id else f"link:{link_id}"
    window_id = (
        "mw-" + hashlib.sha256(f"{target}|{starts_at.isoformat()}".encode()).hexdigest()[:24]
    )
    if session.get(MaintenanceWindowRow, window_id) is None:
        session.add(
            MaintenanceWindowRow(
                id=window_id,
                pop_id=pop_id,
                link_id=link_id,
                starts_at=starts_at,
                ends_at=ends_at,
                announced_at=announced_at,
                description=description,
            )
        )
        session.flush()
    return window_id


def merge(windows: Sequence[Window]) -> list[Window]:
    """Overlapping or touching windows as one, in order."""
    merged: list[Window] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def maintenance_for(
    session: Session, link_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[Window]]:
    """Per link, the planned maintenance within [start, end), clipped to it and merged;
    a PoP's window counts for every link of the PoP. Links without any map to []."""
    links = dict(
        session.execute(
            select(NetworkLinkRow.id, NetworkLinkRow.pop_id).where(NetworkLinkRow.id.in_(link_ids))
        ).all()
    )
    rows = session.scalars(
        select(MaintenanceWindowRow).where(
            MaintenanceWindowRow.starts_at < end,
            MaintenanceWindowRow.ends_at > start,
            or_(
                MaintenanceWindowRow.link_id.in_(link_ids),
                MaintenanceWindowRow.pop_id.in_(set(links.values())),
            ),
        )
    ).all()
    found: dict[str, list[Window]] = {link_id: [] for link_id in link_ids}
    for row in rows:
        window = (max(row.starts_at, start), min(row.ends_at, end))
        if row.link_id is not None and row.link_id in found:
            found[row.link_id].append(window)
        if row.pop_id is not None:
            for link_id, pop_id in links.items():
                if pop_id == row.pop_id:
                    found[link_id].append(window)
    return {link_id: merge(windows) for link_id, windows in found.items()}
