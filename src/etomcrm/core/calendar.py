"""Business-hour calendars: the clock that SLA targets (3.6.3) and SLA measurement
(3.7.1) run on.

A :class:`BusinessCalendar` says which minutes count: opening hours on chosen weekdays
in one time zone, minus the public holidays of one German state, or every minute
(24x7). Its arithmetic is exact to the microsecond and pure (no database, no clock):

* :meth:`BusinessCalendar.add` gives the due time of a target: the earliest moment at
  which ``duration`` of business time has passed since ``start``, not counting pauses
  (a ticket waiting for the customer);
* :meth:`BusinessCalendar.between` measures business time between two moments.

For every ``start``, ``duration >= 0`` and pauses ``P``::

    cal.between(start, cal.add(start, duration, P), P) == duration

Datetimes go in timezone-aware (any zone) and come out in UTC; a naive datetime is a
programming error (``ValueError``). Opening hours are wall-clock times of the
calendar's zone, so a day keeps its 08:00-18:00 across a DST change; an opening time
that does not exist on the day of the spring change is read with the offset before
the change (``fold=0``), as :mod:`zoneinfo` does.

SLA characteristics read by :func:`calendar_for` (all optional):

``serviceHours``
    ``"24x7"`` (or ``"24/7"``): every minute counts, holidays ignored; or days and
    hours such as ``"Mon-Fri 08:00-18:00"``, ``"Mon-Sat 07:00-20:00"``,
    ``"Mon,Wed,Fri 08:00-12:00"``; ``"24:00"`` closes at midnight. Without it the SLA
    does not restrict its hours, so the calendar is 24x7.
``holidayState``
    the German state whose public holidays are closed days, as the ISO 3166-2 code
    with or without ``DE-`` (``"BY"``, ``"DE-BE"``; also ``"Augsburg"``, which the
    ``holidays`` library knows as its own subdivision); ``"none"`` for no holidays.
    Without it: Bavaria, the provider's home state.
``timeZone``
    an IANA zone name; without it ``"Europe/Berlin"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from holidays.countries.germany import Germany

from etomcrm.core.errors import InvalidRequest

Interval = tuple[datetime, datetime]

# Beyond any due time a ticket can have; the 24x7 calendar's one open interval ends here.
_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)
_MIDNIGHT = time(0, 0)
_DAY = timedelta(days=1)
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def merge_intervals(intervals: Sequence[Interval], what: str = "interval") -> list[Interval]:
    """Intervals in UTC, sorted, overlapping and touching ones joined, empty ones dropped.

    Raises ValueError for a naive datetime or an interval that ends before it starts.
    """
    cleaned: list[Interval] = []
    for begin, end in intervals:
        b, e = _utc(begin, f"{what} start"), _utc(end, f"{what} end")
        if e < b:
            raise ValueError(f"{what} ends ({e.isoformat()}) before it starts ({b.isoformat()})")
        if e > b:
            cleaned.append((b, e))
    cleaned.sort()
    merged: list[Interval] = []
    for b, e in cleaned:
        if merged and b <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((b, e))
    return merged


def _subtract(intervals: Iterator[Interval], pauses: list[Interval]) -> Iterator[Interval]:
    """``intervals`` (sorted, disjoint) minus ``pauses`` (merged), lazily.

    One pointer walks the pauses alongside the intervals, so a month of days against
    many pauses stays linear.
    """
    first = 0
    for begin, end in intervals:
        while first < len(pauses) and pauses[first][1] <= begin:
            first += 1
        current = begin
        index = first
        while index < len(pauses) and pauses[index][0] < end:
            pause_begin, pause_end = pauses[index]
            if pause_begin > current:
                yield current, pause_begin
            current = max(current, pause_end)
            if pause_end > end:
                # the pause reaches into the next interval: keep it for that one
                break
            index += 1
        if current < end:
            yield current, end
        first = index


@lru_cache(maxsize=256)
def _holidays(state: str, year: int) -> frozenset[date]:
    return frozenset(Germany(subdiv=state, years=year).keys())


@dataclass(frozen=True)
class BusinessCalendar:
    """Which minutes count for an SLA: opening hours on weekdays in a zone, minus a
    German state's public holidays, or every minute (``always``)."""

    timezone: str = "Europe/Berlin"
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    opens: time = time(8, 0)
    closes: time = time(18, 0)  # time(0, 0) closes at the midnight ending the day
    # ISO 3166-2 subdivision code without "DE-"; None = no holidays
    state: str | None = "BY"
    always: bool = False  # 24x7: every minute counts, the other fields are ignored
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        object.__setattr__(self, "_zone", zone)
        if self.always:
            return
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            raise ValueError(
                f"weekdays must be a non-empty set of 0 (Monday) .. 6 (Sunday), "
                f"got {sorted(self.weekdays)}"
            )
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ValueError("opening hours are wall-clock times without a time zone")
        if self.closes != _MIDNIGHT and self.closes <= self.opens:
            raise ValueError(
                f"closing time {self.closes} must be after opening time {self.opens} "
                "(hours across midnight are not supported)"
            )
        if self.state is not None and self.state not in Germany.subdivisions:
            known = ", ".join(Germany.subdivisions)
            raise ValueError(f"unknown German state {self.state!r}; one of {known}")

    @classmethod
    def round_the_clock(cls) -> BusinessCalendar:
        """24x7: every minute counts, holidays included."""
        return cls(state=None, always=True)

    def is_holiday(self, day: date) -> bool:
        return self.state is not None and day in _holidays(self.state, day.year)

    def is_open(self, moment: datetime) -> bool:
        """Whether ``moment`` is business time (opening hours and closing are
        inclusive-exclusive: open at 08:00, closed at 18:00)."""
        at = _utc(moment, "moment")
        if self.always:
            return True
        local_day = at.astimezone(self._zone).date()
        for begin, end in self._day_windows(local_day - _DAY):
            if begin > at:
                return False
            if at < end:
                return True
        raise AssertionError("unreachable: the windows run on without end")

    def add(
        self, start: datetime, duration: timedelta, pauses: Sequence[Interval] = ()
    ) -> datetime:
        """The due time of a target: the earliest moment at which ``duration`` of
        business time has passed since ``start``, not counting time inside ``pauses``
        (``(begin, end)`` intervals; they may overlap and lie partly before ``start``).

        A start outside business hours starts counting at the next opening; a target
        used up exactly at closing time is due at closing time; a zero duration is due
        at ``start``. Steps a day at a time, so weeks cost a few dozen steps.
        """
        begin = _utc(start, "start")
        if duration < timedelta(0):
            raise ValueError(f"a target duration cannot be negative, got {duration}")
        remaining = duration
        if not remaining:
            return begin
        for open_begin, open_end in self._counted(begin, pauses):
            span = open_end - open_begin
            if span >= remaining:
                return open_begin + remaining
            remaining -= span
        raise AssertionError("unreachable: the windows run on without end")

    def between(self, start: datetime, end: datetime, pauses: Sequence[Interval] = ()) -> timedelta:
        """Business time from ``start`` to ``end``, minus time inside ``pauses``;
        zero if ``end`` is not after ``start``."""
        begin, finish = _utc(start, "start"), _utc(end, "end")
        total = timedelta(0)
        if finish <= begin:
            return total
        for open_begin, open_end in self._counted(begin, pauses):
            if open_begin >= finish:
                break
            total += min(open_end, finish) - open_begin
        return total

    def open_windows(self, start: datetime, end: datetime) -> list[Interval]:
        """The business time from ``start`` to ``end`` as sorted disjoint UTC
        intervals, clipped to them (one interval for 24x7; none if ``end`` is not
        after ``start``)."""
        begin, finish = _utc(start, "start"), _utc(end, "end")
        windows: list[Interval] = []
        if finish <= begin:
            return windows
        for open_begin, open_end in self._counted(begin, ()):
            if open_begin >= finish:
                break
            windows.append((open_begin, min(open_end, finish)))
        return windows

    def _counted(self, start: datetime, pauses: Sequence[Interval]) -> Iterator[Interval]:
        """Business time from ``start`` on, as sorted disjoint UTC intervals."""
        merged = merge_intervals(pauses, "pause")
        if self.always:
            return _subtract(iter([(start, _END_OF_TIME)]), merged)
        # the day before too: the earliest window that can still be open at `start`
        local_day = start.astimezone(self._zone).date() - _DAY
        windows = (
            (max(begin, start), end) for begin, end in self._day_windows(local_day) if end > start
        )
        return _subtract(windows, merged)

    def _day_windows(self, first_day: date) -> Iterator[Interval]:
        """Opening windows in UTC, day by day from ``first_day`` (local), without end.

        Each boundary is a local wall-clock time converted on its own day, which is
        what keeps 08:00 at 08:00 on both sides of a DST change.
        """
        day = first_day
        while True:
            if day.weekday() in self.weekdays and not self.is_holiday(day):
                begin = datetime.combine(day, self.opens, tzinfo=self._zone)
                if self.closes == _MIDNIGHT:
                    end = datetime.combine(day + _DAY, _MIDNIGHT, tzinfo=self._zone)
                else:
                    end = datetime.combine(day, self.closes, tzinfo=self._zone)
                begin_utc, end_utc = begin.astimezone(UTC), end.astimezone(UTC)
                # hours lying wholly in the hour a spring change skips are no hours
                if end_utc > begin_utc:
                    yield begin_utc, end_utc
            day += _DAY


_HOURS = re.compile(
    r"^\s*(?P<days>[A-Za-z]{3}(?:\s*[-,]\s*[A-Za-z]{3})*)\s+"
    r"(?P<opens>\d{1,2}:\d{2})\s*-\s*(?P<closes>\d{1,2}:\d{2})\s*$"
)
_HOURS_HELP = (
    'serviceHours is "24x7" or days and hours like "Mon-Fri 08:00-18:00" '
    '(days Mon Tue Wed Thu Fri Sat Sun, ranges with "-", lists with ",")'
)


def _clock(text: str, *, closing: bool) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if closing and (hours, minutes) == (24, 0):
        return _MIDNIGHT
    if hours > 23 or minutes > 59:
        raise InvalidRequest(f"{text} is not a time of day; {_HOURS_HELP}")
    return time(hours, minutes)


def _day_index(name: str) -> int:
    try:
        return _DAY_NAMES.index(name.lower())
    except ValueError:
        raise InvalidRequest(f"{name!r} is not a day; {_HOURS_HELP}") from None


def _weekdays(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = (piece.strip() for piece in part.partition("-"))
        begin = _day_index(first)
        end = _day_index(last) if last else begin
        # a range may wrap over the weekend, e.g. "Fri-Mon"
        days.update((begin + offset) % 7 for offset in range((end - begin) % 7 + 1))
    return frozenset(days)


def calendar_for(sla_characteristics: Mapping[str, Any]) -> BusinessCalendar:
    """3.7.1 Assess QoS Performance (eTOM 1.1.1.7.1), support: the business-hour
    calendar an SLA's characteristics (name -> value) describe; the names are in the
    module docstring. Raises InvalidRequest, naming the characteristic, for a value
    that cannot be read."""
    hours = sla_characteristics.get("serviceHours")
    zone = str(sla_characteristics.get("timeZone") or "Europe/Berlin")
    if hours in (None, "") or str(hours).strip().lower() in ("24x7", "24/7"):
        try:
            return BusinessCalendar(timezone=zone, state=None, always=True)
        except ValueError as error:
            raise InvalidRequest(f"SLA characteristic timeZone: {error}") from None
    found = _HOURS.match(str(hours))
    if found is None:
        raise InvalidRequest(f"cannot read serviceHours {hours!r}; {_HOURS_HELP}")
    raw_state = sla_characteristics.get("holidayState", "BY")
    state: str | None = None
    if raw_state not in (None, "") and str(raw_state).strip().lower() != "none":
        state = str(raw_state).strip().removeprefix("DE-").removeprefix("de-")
        state = state if state == "Augsburg" else state.upper()
    try:
        return BusinessCalendar(
            timezone=zone,
            weekdays=_weekdays(found["days"]),
            opens=_clock(found["opens"], closing=False),
            closes=_clock(found["closes"], closing=True),
            state=state,
        )
    except ValueError as error:
        raise InvalidRequest(
            f"SLA characteristics serviceHours/holidayState/timeZone: {error}"
        ) from None
