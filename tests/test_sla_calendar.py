"""Business-hour calendars (3.6.3 targets, 3.7.1 measurement): hand-computed due times
on the Bavarian Mon-Fri 08:00-18:00 calendar, holidays per state, DST, pauses, and
the properties the arithmetic must keep for any start, duration and pause."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etomcrm.core.calendar import BusinessCalendar, Interval, calendar_for
from etomcrm.core.errors import InvalidRequest

BERLIN = ZoneInfo("Europe/Berlin")
BAVARIA = BusinessCalendar()  # Mon-Fri 08:00-18:00 Europe/Berlin, Bavarian holidays
BERLIN_STATE = BusinessCalendar(state="BE")
HOURS = timedelta(hours=1)


def berlin(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


# --- the cases the issue names ---------------------------------------------------------


def test_ticket_opened_friday_before_closing_is_due_monday_morning() -> None:
    # given a ticket opened Friday 2026-11-20 17:55 with a 4-business-hour target
    opened = berlin(2026, 11, 20, 17, 55)
    # when its due time is computed on the Bavarian business calendar
    due = BAVARIA.add(opened, 4 * HOURS)
    # then 5 minutes count on Friday and 3 h 55 min on Monday
    assert due == berlin(2026, 11, 23, 11, 55)
    assert due.tzinfo is UTC


def test_whit_monday_is_skipped() -> None:
    # given the same ticket opened Friday 2026-05-22 17:55, before Whit Monday 2026-05-25
    due = BAVARIA.add(berlin(2026, 5, 22, 17, 55), 4 * HOURS)
    # then it is due on Tuesday
    assert due == berlin(2026, 5, 26, 11, 55)


# --- starts outside business hours -----------------------------------------------------


@pytest.mark.parametrize(
    ("opened", "due"),
    [
        (berlin(2026, 11, 21, 10, 0), berlin(2026, 11, 23, 12, 0)),  # Saturday
        (berlin(2026, 11, 22, 23, 59), berlin(2026, 11, 23, 12, 0)),  # Sunday night
        (berlin(2026, 11, 24, 22, 0), berlin(2026, 11, 25, 12, 0)),  # Tuesday night
        (berlin(2026, 11, 24, 6, 30), berlin(2026, 11, 24, 12, 0)),  # before opening
        (berlin(2026, 11, 24, 18, 0), berlin(2026, 11, 25, 12, 0)),  # at closing
    ],
)
def test_start_outside_hours_counts_from_the_next_opening(opened: datetime, due: datetime) -> None:
    assert BAVARIA.add(opened, 4 * HOURS) == due


def test_a_target_used_up_at_closing_time_is_due_at_closing_time() -> None:
    # 50 business hours from Monday 08:00 are the whole week, not next Monday's opening
    assert BAVARIA.add(berlin(2026, 11, 23, 8, 0), 50 * HOURS) == berlin(2026, 11, 27, 18, 0)


def test_zero_duration_is_due_at_once() -> None:
    saturday = berlin(2026, 11, 21, 10, 0)
    assert BAVARIA.add(saturday, timedelta(0)) == saturday


def test_weeks_long_target_crosses_christmas_and_the_year_end() -> None:
    # given a 151-business-hour target from Monday 2026-12-14 08:00: 15 days of 10 h are
    # Dec 14-18, 21-24, 28-31 and Jan 4-5 (Dec 25, Jan 1 holidays), then Jan 6 Epiphany
    due = BAVARIA.add(berlin(2026, 12, 14, 8, 0), 151 * HOURS)
    # then the last hour falls on Thursday 2027-01-07
    assert due == berlin(2027, 1, 7, 9, 0)
    assert BAVARIA.between(berlin(2026, 12, 14, 8, 0), due) == 151 * HOURS


def test_new_years_eve_afternoon_continues_after_new_year() -> None:
    assert BAVARIA.add(berlin(2025, 12, 31, 16, 0), 4 * HOURS) == berlin(2026, 1, 2, 10, 0)


# --- pauses ----------------------------------------------------------------------------


def test_waiting_for_the_customer_pushes_the_due_time_by_the_business_time_it_covers() -> None:
    # given a ticket opened Monday 09:00 with a 4 h target, due 13:00 without waiting
    opened = berlin(2026, 11, 23, 9, 0)
    assert BAVARIA.add(opened, 4 * HOURS) == berlin(2026, 11, 23, 13, 0)
    # when it waits for the customer 10:00-11:30
    waited = [(berlin(2026, 11, 23, 10, 0), berlin(2026, 11, 23, 11, 30))]
    # then it is due 1 h 30 min later
    assert BAVARIA.add(opened, 4 * HOURS, waited) == berlin(2026, 11, 23, 14, 30)


def test_a_pause_over_night_pushes_only_by_its_business_hours() -> None:
    # given a wait from Monday 17:00 to Tuesday 09:00: 1 h on Monday, 1 h on Tuesday
    opened = berlin(2026, 11, 23, 15, 0)
    waited = [(berlin(2026, 11, 23, 17, 0), berlin(2026, 11, 24, 9, 0))]
    # then a 4 h target (due Tuesday 09:00 without waiting) is due Tuesday 11:00
    assert BAVARIA.add(opened, 4 * HOURS) == berlin(2026, 11, 24, 9, 0)
    assert BAVARIA.add(opened, 4 * HOURS, waited) == berlin(2026, 11, 24, 11, 0)
    assert BAVARIA.between(*waited[0]) == 2 * HOURS


def test_overlapping_pauses_count_once_and_a_pause_before_the_start_is_clipped() -> None:
    opened = berlin(2026, 11, 23, 9, 0)
    waited = [
        (berlin(2026, 11, 23, 8, 0), berlin(2026, 11, 23, 9, 30)),  # began before opening
        (berlin(2026, 11, 23, 10, 0), berlin(2026, 11, 23, 11, 0)),
        (berlin(2026, 11, 23, 10, 30), berlin(2026, 11, 23, 11, 30)),
    ]
    # 30 min + 1 h 30 min of waiting: due 13:00 + 2 h
    assert BAVARIA.add(opened, 4 * HOURS, waited) == berlin(2026, 11, 23, 15, 0)
    assert BAVARIA.between(opened, berlin(2026, 11, 23, 15, 0), waited) == 4 * HOURS


# --- DST -------------------------------------------------------------------------------


def test_spring_dst_weekend_keeps_wall_clock_hours() -> None:
    # given Friday 2026-03-27 16:00 CET; clocks go forward on Sunday 2026-03-29
    opened = berlin(2026, 3, 27, 16, 0)
    # then a 4 h target is due Monday 10:00 CEST (08:00 UTC), not 09:00 or 11:00
    due = BAVARIA.add(opened, 4 * HOURS)
    assert due == berlin(2026, 3, 30, 10, 0)
    assert due == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


def test_autumn_dst_weekend_keeps_wall_clock_hours() -> None:
    due = BAVARIA.add(berlin(2026, 10, 23, 16, 0), 4 * HOURS)
    assert due == berlin(2026, 10, 26, 10, 0)
    assert due == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)


def test_a_whole_day_calendar_has_23_and_25_hour_days_at_the_dst_changes() -> None:
    every_day = BusinessCalendar(
        weekdays=frozenset(range(7)), opens=time(0, 0), closes=time(0, 0), state=None
    )
    assert every_day.between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * HOURS
    assert every_day.between(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 25 * HOURS
    assert every_day.add(berlin(2026, 3, 28, 12, 0), 24 * HOURS) == berlin(2026, 3, 29, 13, 0)


NIGHT_SHIFT = BusinessCalendar(
    weekdays=frozenset(range(7)), opens=time(2, 30), closes=time(3, 15), state=None
)


def test_hours_inside_the_skipped_hour_count_as_they_fall_on_the_clock() -> None:
    # 02:30 does not exist on 2026-03-29 (read with the winter offset: 03:30 CEST),
    # so the day has no hours; on 2026-10-25 02:30 comes twice and the first one counts
    assert NIGHT_SHIFT.between(berlin(2026, 3, 28), berlin(2026, 3, 29)) == timedelta(minutes=45)
    assert NIGHT_SHIFT.between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == timedelta(0)
    assert NIGHT_SHIFT.between(berlin(2026, 10, 25), berlin(2026, 10, 26)) == timedelta(minutes=105)
    assert NIGHT_SHIFT.add(berlin(2026, 3, 28, 3, 0), timedelta(minutes=30)) == berlin(
        2026, 3, 30, 2, 45
    )


# --- 24x7 ------------------------------------------------------------------------------


def test_round_the_clock_counts_every_minute_holidays_and_nights_included() -> None:
    always = BusinessCalendar.round_the_clock()
    # Friday evening before Whit Monday: 4 h later, that night
    assert always.add(berlin(2026, 5, 22, 17, 55), 4 * HOURS) == berlin(2026, 5, 22, 21, 55)
    # elapsed time, not wall-clock time: Saturday 12:00 CET + 24 h = Sunday 13:00 CEST
    assert always.add(berlin(2026, 3, 28, 12, 0), 24 * HOURS) == berlin(2026, 3, 29, 13, 0)
    assert always.between(berlin(2026, 12, 24), berlin(2026, 12, 27)) == 72 * HOURS
    assert always.is_open(berlin(2026, 12, 25, 3, 0))
    waited = [(berlin(2026, 5, 22, 18, 0), berlin(2026, 5, 22, 20, 0))]
    assert always.add(berlin(2026, 5, 22, 17, 55), 4 * HOURS, waited) == berlin(2026, 5, 22, 23, 55)


# --- holidays per state ----------------------------------------------------------------


def test_epiphany_is_closed_in_bavaria_but_open_in_berlin() -> None:
    # given Monday 2026-01-05 17:00 before Epiphany (Tuesday 2026-01-06, BY only)
    opened = berlin(2026, 1, 5, 17, 0)
    # then the Bavarian ticket skips Tuesday, the Berlin one does not
    assert BAVARIA.add(opened, 4 * HOURS) == berlin(2026, 1, 7, 11, 0)
    assert BERLIN_STATE.add(opened, 4 * HOURS) == berlin(2026, 1, 6, 11, 0)
    assert not BAVARIA.is_open(berlin(2026, 1, 6, 10, 0))
    assert BERLIN_STATE.is_open(berlin(2026, 1, 6, 10, 0))


def test_corpus_christi_is_closed_in_bavaria_but_open_in_berlin() -> None:
    week = (berlin(2026, 6, 1, 0, 0), berlin(2026, 6, 6, 0, 0))
    assert BAVARIA.between(*week) == 40 * HOURS
    assert BERLIN_STATE.between(*week) == 50 * HOURS


def test_no_state_means_no_holidays() -> None:
    no_holidays = BusinessCalendar(state=None)
    assert no_holidays.add(berlin(2026, 5, 22, 17, 55), 4 * HOURS) == berlin(2026, 5, 25, 11, 55)


# --- is_open and between ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (berlin(2026, 11, 23, 8, 0), True),
        (berlin(2026, 11, 23, 7, 59, 59), False),
        (berlin(2026, 11, 23, 17, 59, 59), True),
        (berlin(2026, 11, 23, 18, 0), False),
        (berlin(2026, 11, 21, 12, 0), False),  # Saturday
        (berlin(2026, 12, 25, 12, 0), False),  # Christmas
    ],
)
def test_is_open(moment: datetime, open_: bool) -> None:
    assert BAVARIA.is_open(moment) is open_


def test_between_is_zero_when_the_end_is_not_after_the_start() -> None:
    moment = berlin(2026, 11, 23, 12, 0)
    assert BAVARIA.between(moment, moment) == timedelta(0)
    assert BAVARIA.between(moment, moment - HOURS) == timedelta(0)


def test_open_windows_of_a_week_with_a_holiday() -> None:
    # given the week of Corpus Christi 2026 (Thursday 4 June, closed in Bavaria), from
    # Monday 12:00 to Saturday
    windows = BAVARIA.open_windows(berlin(2026, 6, 1, 12, 0), berlin(2026, 6, 6))
    # then Monday's afternoon, Tuesday, Wednesday and Friday, in UTC
    assert windows == [
        (berlin(2026, 6, 1, 12, 0), berlin(2026, 6, 1, 18, 0)),
        (berlin(2026, 6, 2, 8, 0), berlin(2026, 6, 2, 18, 0)),
        (berlin(2026, 6, 3, 8, 0), berlin(2026, 6, 3, 18, 0)),
        (berlin(2026, 6, 5, 8, 0), berlin(2026, 6, 5, 18, 0)),
    ]
    assert all(begin.tzinfo is UTC and end.tzinfo is UTC for begin, end in windows)
    # and round the clock it is one window; an empty span has none
    always = BusinessCalendar.round_the_clock()
    assert always.open_windows(berlin(2026, 6, 1), berlin(2026, 6, 6)) == [
        (berlin(2026, 6, 1), berlin(2026, 6, 6))
    ]
    assert BAVARIA.open_windows(berlin(2026, 6, 2, 9, 0), berlin(2026, 6, 2, 9, 0)) == []


def test_any_zone_in_utc_out() -> None:
    new_york = ZoneInfo("America/New_York")
    opened = datetime(2026, 11, 20, 11, 55, tzinfo=new_york)  # 17:55 in Berlin
    assert BAVARIA.add(opened, 4 * HOURS) == datetime(2026, 11, 23, 10, 55, tzinfo=UTC)


# --- refused input ---------------------------------------------------------------------


def test_naive_datetimes_negative_durations_and_reversed_pauses_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        BAVARIA.add(datetime(2026, 11, 20, 17, 55), HOURS)
    with pytest.raises(ValueError, match="timezone-aware"):
        BAVARIA.between(berlin(2026, 11, 20), datetime(2026, 11, 21))
    with pytest.raises(ValueError, match="negative"):
        BAVARIA.add(berlin(2026, 11, 20), -HOURS)
    with pytest.raises(ValueError, match="before it starts"):
        BAVARIA.add(berlin(2026, 11, 20), HOURS, [(berlin(2026, 11, 21), berlin(2026, 11, 20))])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timezone": "Europe/Munich"}, "unknown time zone"),
        ({"weekdays": frozenset()}, "weekdays"),
        ({"weekdays": frozenset({7})}, "weekdays"),
        ({"opens": time(18, 0), "closes": time(8, 0)}, "after opening"),
        ({"state": "XX"}, "unknown German state"),
    ],
)
def test_a_calendar_that_cannot_work_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(**fields)  # type: ignore[arg-type]


# --- calendars from SLA characteristics ------------------------------------------------


def test_calendar_for_reads_business_hours_and_state() -> None:
    calendar = calendar_for({"serviceHours": "Mon-Fri 08:00-18:00", "holidayState": "DE-BE"})
    assert calendar == BERLIN_STATE


def test_calendar_for_defaults_to_bavaria_and_knows_no_holidays() -> None:
    assert calendar_for({"serviceHours": "mon-fri 8:00-18:00"}) == BAVARIA
    assert calendar_for({"serviceHours": "Mon-Fri 08:00-18:00", "holidayState": "none"}) == (
        BusinessCalendar(state=None)
    )


@pytest.mark.parametrize("hours", ["24x7", "24/7", None, ""])
def test_calendar_for_without_business_hours_is_round_the_clock(hours: str | None) -> None:
    characteristics: dict[str, object] = {"availabilityTarget": 99.9, "holidayState": "BY"}
    if hours is not None:
        characteristics["serviceHours"] = hours
    assert calendar_for(characteristics) == BusinessCalendar.round_the_clock()


def test_calendar_for_reads_lists_wrapping_ranges_and_midnight() -> None:
    calendar = calendar_for(
        {"serviceHours": "Fri-Mon, Wed 07:00-24:00", "timeZone": "Europe/Vienna"}
    )
    assert calendar.weekdays == frozenset({4, 5, 6, 0, 2})
    assert (calendar.opens, calendar.closes) == (time(7, 0), time(0, 0))
    assert calendar.timezone == "Europe/Vienna"


@pytest.mark.parametrize(
    ("characteristics", "message"),
    [
        ({"serviceHours": "weekdays 8-18"}, "serviceHours"),
        ({"serviceHours": "Mon-Fry 08:00-18:00"}, "'Fry' is not a day"),
        ({"serviceHours": "Mon-Fri 08:00-25:00"}, "not a time of day"),
        ({"serviceHours": "Mon-Fri 18:00-08:00"}, "after opening"),
        ({"serviceHours": "Mon-Fri 08:00-18:00", "holidayState": "Bavaria"}, "German state"),
        ({"serviceHours": "24x7", "timeZone": "Mars/Olympus"}, "timeZone"),
    ],
)
def test_calendar_for_explains_what_it_cannot_read(
    characteristics: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        calendar_for(characteristics)


# --- properties ------------------------------------------------------------------------

CALENDARS = st.sampled_from(
    [
        BAVARIA,
        BERLIN_STATE,
        BusinessCalendar.round_the_clock(),
        BusinessCalendar(weekdays=frozenset({0, 1, 2, 3, 4, 5}), opens=time(7), closes=time(20)),
        BusinessCalendar(
            weekdays=frozenset(range(7)), opens=time(0), closes=time(0), state="Augsburg"
        ),
        # 02:00-03:00 lies in the hour the spring change skips in New York
        BusinessCalendar(timezone="America/New_York", state=None, opens=time(2), closes=time(9)),
        NIGHT_SHIFT,
    ]
)
MOMENTS = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2027, 2, 1), timezones=st.just(UTC)
)
DURATIONS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=25))
PAUSES = st.lists(
    st.tuples(MOMENTS, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4))).map(
        lambda pair: (pair[0], pair[0] + pair[1])
    ),
    max_size=5,
)
PROPERTY = settings(max_examples=300, deadline=None)


@PROPERTY
@given(CALENDARS, MOMENTS, DURATIONS, PAUSES)
def test_between_measures_exactly_what_add_added(
    calendar: BusinessCalendar, start: datetime, duration: timedelta, pauses: list[Interval]
) -> None:
    due = calendar.add(start, duration, pauses)
    assert calendar.between(start, due, pauses) == duration
    # and it is the earliest such moment: a microsecond before, the target is not used up
    if duration:
        assert calendar.between(start, due - timedelta(microseconds=1), pauses) < duration


@PROPERTY
@given(CALENDARS, MOMENTS, MOMENTS, PAUSES)
def test_add_what_between_measured_is_due_no_later_than_the_end(
    calendar: BusinessCalendar, start: datetime, end: datetime, pauses: list[Interval]
) -> None:
    assert calendar.add(start, calendar.between(start, end, pauses), pauses) <= max(start, end)


@PROPERTY
@given(CALENDARS, MOMENTS, DURATIONS, PAUSES, MOMENTS, st.timedeltas(timedelta(0), timedelta(3)))
def test_pausing_never_makes_a_ticket_due_earlier(
    calendar: BusinessCalendar,
    start: datetime,
    duration: timedelta,
    pauses: list[Interval],
    pause_start: datetime,
    pause_length: timedelta,
) -> None:
    extra = (pause_start, pause_start + pause_length)
    assert calendar.add(start, duration, [*pauses, extra]) >= calendar.add(start, duration, pauses)


@PROPERTY
@given(CALENDARS, MOMENTS, DURATIONS, DURATIONS, PAUSES)
def test_more_business_time_is_never_due_earlier(
    calendar: BusinessCalendar,
    start: datetime,
    first: timedelta,
    second: timedelta,
    pauses: list[Interval],
) -> None:
    shorter, longer = sorted((first, second))
    assert calendar.add(start, shorter, pauses) <= calendar.add(start, longer, pauses)


@PROPERTY
@given(CALENDARS, st.lists(MOMENTS, min_size=3, max_size=3), PAUSES)
def test_between_adds_up_over_a_split_point(
    calendar: BusinessCalendar, moments: list[datetime], pauses: list[Interval]
) -> None:
    begin, middle, end = sorted(moments)
    assert calendar.between(begin, end, pauses) == (
        calendar.between(begin, middle, pauses) + calendar.between(middle, end, pauses)
    )


@PROPERTY
@given(CALENDARS, MOMENTS)
def test_is_open_agrees_with_between(calendar: BusinessCalendar, moment: datetime) -> None:
    # open exactly when the next microsecond counts
    counted = calendar.between(moment, moment + timedelta(microseconds=1))
    assert calendar.is_open(moment) is (counted == timedelta(microseconds=1))


@PROPERTY
@given(CALENDARS, MOMENTS, MOMENTS)
def test_open_windows_add_up_to_between(
    calendar: BusinessCalendar, start: datetime, end: datetime
) -> None:
    windows = calendar.open_windows(start, end)
    assert sum((e - b for b, e in windows), timedelta(0)) == calendar.between(start, end)
    # sorted, disjoint, within [start, end) and open throughout
    assert all(b < e for b, e in windows)
    assert all(e1 <= b2 for (_, e1), (b2, _) in pairwise(windows))
    assert all(start <= b and e <= end and calendar.is_open(b) for b, e in windows)
