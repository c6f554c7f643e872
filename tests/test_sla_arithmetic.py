"""SLA arithmetic (3.7.1): availability with maintenance excluded, time to repair on
the SLA's calendar, and penalty credits from the catalog's rules, against hand-computed
figures and properties that must hold for any outages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etomcrm.catalog.service import SLA_CHARACTERISTICS
from etomcrm.core.calendar import BusinessCalendar, Interval
from etomcrm.core.errors import InvalidRequest
from etomcrm.demo.scenario import SLA_LEVELS
from etomcrm.qos_sla.sla import PenaltyRule, availability, penalty, penalty_rule, time_to_repair

BERLIN = ZoneInfo("Europe/Berlin")
BAVARIA = BusinessCalendar()
JUNE = (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))  # 43,200 min
# a 2 h maintenance window: 43,080 minutes are measured
MAINTENANCE = [(datetime(2026, 6, 10, 2, 0, tzinfo=UTC), datetime(2026, 6, 10, 4, 0, tzinfo=UTC))]
GOLD_RULE = "10% of MRC per violated metric, max 30%"
SILVER_RULE = "5% of MRC per violated metric, max 15%"


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=UTC)


def berlin(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


# --- availability ----------------------------------------------------------------------


def test_availability_over_a_month_with_maintenance_excluded() -> None:
    # given a 43 min outage outside the maintenance window
    outage = [(utc(15, 10, 0), utc(15, 10, 43))]
    # then (43,080 - 43) / 43,080 = 99.900185...% -> 99.9002
    assert availability(*JUNE, outage, MAINTENANCE) == Decimal("99.9002")
    # and without the window excluded: (43,200 - 43) / 43,200 = 99.900463...% -> 99.9005
    assert availability(*JUNE, outage) == Decimal("99.9005")


def test_an_outage_overlapping_the_maintenance_window_counts_only_outside_it() -> None:
    # given an outage 01:00-04:00 around the 02:00-04:00 window: 60 minutes count
    outage = [(utc(10, 1, 0), utc(10, 4, 0))]
    # then 43,020 / 43,080 = 99.860724...% -> 99.8607
    assert availability(*JUNE, outage, MAINTENANCE) == Decimal("99.8607")


def test_an_outage_inside_the_maintenance_window_does_not_count() -> None:
    outage = [(utc(10, 2, 30), utc(10, 3, 30))]
    assert availability(*JUNE, outage, MAINTENANCE) == Decimal("100.0000")


def test_overlapping_outages_count_once() -> None:
    # given alarms reporting 10:00-10:30, 10:20-11:00 and 10:40-10:50 of one outage
    outages = [
        (utc(15, 10, 0), utc(15, 10, 30)),
        (utc(15, 10, 20), utc(15, 11, 0)),
        (utc(15, 10, 40), utc(15, 10, 50)),
    ]
    # then 60 minutes are down: 43,020 / 43,080 -> 99.8607
    assert availability(*JUNE, outages, MAINTENANCE) == Decimal("99.8607")


def test_outages_are_clipped_to_the_period() -> None:
    # given an outage from May 31 23:00 to June 1 00:30 and one wholly in July
    outages = [
        (datetime(2026, 5, 31, 23, 0, tzinfo=UTC), utc(1, 0, 30)),
        (datetime(2026, 7, 2, tzinfo=UTC), datetime(2026, 7, 3, tzinfo=UTC)),
    ]
    # then 30 minutes count: 43,050 / 43,080 = 99.930362...% -> 99.9304
    assert availability(*JUNE, outages, MAINTENANCE) == Decimal("99.9304")


def test_availability_on_business_hours_counts_only_business_time() -> None:
    # given June 2026 in Bavaria: 22 weekdays minus Corpus Christi (June 4) = 21 days
    # of 10 h = 12,600 minutes measured
    june = (berlin(6, 1, 0), berlin(7, 1, 0))
    night = [(berlin(6, 9, 22), berlin(6, 10, 6))]
    # then an outage at night costs nothing
    assert availability(*june, night, calendar=BAVARIA) == Decimal("100.0000")
    # and one from 17:00 to 09:00 the next morning costs 2 h: 12,480 / 12,600 = 99.0476...
    evening = [(berlin(6, 9, 17), berlin(6, 10, 9))]
    assert availability(*june, evening, calendar=BAVARIA) == Decimal("99.0476")
    # and maintenance 08:00-10:00 on a business day leaves 12,480 measured:
    # (12,480 - 60) / 12,480 = 99.519230...% -> 99.5192
    window = [(berlin(6, 10, 8), berlin(6, 10, 10))]
    assert availability(*june, evening, window, calendar=BAVARIA) == Decimal("99.5192")


def test_availability_rounds_half_even_from_the_exact_ratio() -> None:
    # given a 2-second period: 1 µs down is 99.99995 %, a tie, rounded to the even 100.0000
    start = datetime(2026, 6, 1, tzinfo=UTC)
    end = start + timedelta(seconds=2)
    micro = timedelta(microseconds=1)
    assert availability(start, end, [(start, start + micro)]) == Decimal("100.0000")
    # and 3 µs down is 99.99985 %, a tie rounded to the even 99.9998
    assert availability(start, end, [(start, start + 3 * micro)]) == Decimal("99.9998")


def test_nothing_measured_means_nothing_missed() -> None:
    whole = [JUNE]
    assert availability(*JUNE, [(utc(15, 10), utc(15, 11))], whole) == Decimal("100.0000")


def test_a_month_down_is_zero() -> None:
    assert availability(*JUNE, [JUNE], MAINTENANCE) == Decimal("0.0000")


def test_availability_refuses_a_reversed_period_and_naive_times() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        availability(JUNE[1], JUNE[0], [])
    with pytest.raises(ValueError, match="timezone-aware"):
        availability(datetime(2026, 6, 1), datetime(2026, 7, 1), [])
    with pytest.raises(ValueError, match="outage ends"):
        availability(*JUNE, [(utc(15, 11), utc(15, 10))])


# --- time to repair --------------------------------------------------------------------


def test_time_to_repair_counts_business_time_without_waiting_for_the_customer() -> None:
    # given a link down Friday 2026-11-20 17:00, restored Monday 10:00
    opened = datetime(2026, 11, 20, 17, 0, tzinfo=BERLIN)
    restored = datetime(2026, 11, 23, 10, 0, tzinfo=BERLIN)
    # then 1 h on Friday and 2 h on Monday count on the business calendar
    assert time_to_repair(opened, restored, BAVARIA) == timedelta(hours=3)
    # and 65 h around the clock
    assert time_to_repair(opened, restored, BusinessCalendar.round_the_clock()) == timedelta(
        hours=65
    )
    # and Monday 08:00-09:30 waiting for access to the site does not count
    waited = [(restored.replace(hour=8), restored.replace(hour=9, minute=30))]
    assert time_to_repair(opened, restored, BAVARIA, waited) == timedelta(minutes=90)


def test_time_to_repair_refuses_a_restoration_before_the_opening() -> None:
    opened = datetime(2026, 11, 20, 17, 0, tzinfo=BERLIN)
    with pytest.raises(ValueError, match="before opened"):
        time_to_repair(opened, opened - timedelta(minutes=1), BAVARIA)


# --- penalty ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mrc", "violated", "rule", "credit"),
    [
        # Gold: 10 % of 1,234.56 = 123.456 -> 123.46 (half up)
        ("1234.56", 1, GOLD_RULE, "123.46"),
        ("1234.56", 2, GOLD_RULE, "246.91"),  # 246.912
        ("1234.56", 3, GOLD_RULE, "370.37"),  # 370.368, the cap exactly
        ("1234.56", 4, GOLD_RULE, "370.37"),  # 40 % capped at 30 %
        ("1234.56", 0, GOLD_RULE, "0.00"),
        # Silver: 5 % of 899.90 = 44.995 -> 45.00 (half up, not to the even 44.99)
        ("899.90", 1, SILVER_RULE, "45.00"),
        ("899.90", 3, SILVER_RULE, "134.99"),  # 134.985
        ("899.90", 7, SILVER_RULE, "134.99"),  # capped at 15 %
        ("899.90", 3, "2.5% per violated metric", "67.49"),  # no cap: 67.4925
    ],
)
def test_penalty_hand_computed(mrc: str, violated: int, rule: str, credit: str) -> None:
    assert penalty(Decimal(mrc), violated, rule) == Decimal(credit)


def test_penalty_reads_the_catalogs_sla_levels() -> None:
    # given the SLA levels the demo puts into the catalog, as characteristics
    levels = {
        level.name: {"penaltyRule": level.penalty, "availabilityTarget": level.availability}
        for level in SLA_LEVELS
    }
    # then their rules read as the text says
    assert penalty_rule(levels["SLA Gold"]) == PenaltyRule(Decimal(10), Decimal(30))
    assert penalty_rule(levels["SLA Silver"]) == PenaltyRule(Decimal(5), Decimal(15))
    assert penalty(Decimal("2000.00"), 5, levels["SLA Gold"]) == Decimal("600.00")
    # and the catalog's own example of the characteristic reads too
    example = SLA_CHARACTERISTICS["penaltyRule"].split("e.g. ")[1].strip("'")
    assert penalty_rule(example) == PenaltyRule(Decimal(10), Decimal(30))


def test_penalty_rule_wordings() -> None:
    assert penalty_rule("7,5 % per violated metric, capped at 20 %") == PenaltyRule(
        Decimal("7.5"), Decimal(20)
    )
    assert penalty_rule("10% per metric, at most 25%") == PenaltyRule(Decimal(10), Decimal(25))


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("a fair share", "cannot read the penalty rule"),
        ({"availabilityTarget": 99.9}, "no penaltyRule"),
        ("10% per violated metric, max 130%", "cap is a percentage"),
    ],
)
def test_an_unreadable_penalty_rule_is_explained(
    rule: str | dict[str, float], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        penalty(Decimal("100.00"), 1, rule)


def test_penalty_refuses_negative_figures() -> None:
    with pytest.raises(ValueError, match="negative"):
        penalty(Decimal("100.00"), -1, GOLD_RULE)
    with pytest.raises(InvalidRequest, match="negative"):
        penalty(Decimal("-100.00"), 1, GOLD_RULE)


# --- properties ------------------------------------------------------------------------

MOMENTS = st.datetimes(
    min_value=datetime(2026, 5, 25), max_value=datetime(2026, 7, 5), timezones=st.just(UTC)
)
INTERVALS = st.lists(
    st.tuples(MOMENTS, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3))).map(
        lambda pair: (pair[0], pair[0] + pair[1])
    ),
    max_size=6,
)
CALENDARS = st.sampled_from([None, BAVARIA, BusinessCalendar(state="BE")])
PROPERTY = settings(max_examples=300, deadline=None)


@PROPERTY
@given(INTERVALS, INTERVALS, CALENDARS)
def test_availability_stays_within_0_and_100_percent(
    outages: list[Interval], maintenance: list[Interval], calendar: BusinessCalendar | None
) -> None:
    value = availability(*JUNE, outages, maintenance, calendar)
    assert Decimal(0) <= value <= Decimal(100)
    assert value == value.quantize(Decimal("0.0001"))


@PROPERTY
@given(INTERVALS, INTERVALS, CALENDARS, MOMENTS, st.timedeltas(timedelta(0), timedelta(days=2)))
def test_more_downtime_never_raises_availability(
    outages: list[Interval],
    maintenance: list[Interval],
    calendar: BusinessCalendar | None,
    begin: datetime,
    length: timedelta,
) -> None:
    before = availability(*JUNE, outages, maintenance, calendar)
    after = availability(*JUNE, [*outages, (begin, begin + length)], maintenance, calendar)
    assert after <= before


@PROPERTY
@given(
    st.decimals(min_value=0, max_value=100_000, places=2),
    st.integers(min_value=0, max_value=10),
    st.sampled_from([GOLD_RULE, SILVER_RULE]),
)
def test_penalty_is_capped_and_grows_with_violations(
    mrc: Decimal, violated: int, rule: str
) -> None:
    credit = penalty(mrc, violated, rule)
    cap = penalty_rule(rule).cap_percent
    assert cap is not None
    assert Decimal(0) <= credit <= (mrc * cap / 100).quantize(Decimal("0.01")) + Decimal("0.01")
    assert credit <= penalty(mrc, violated + 1, rule)
    assert credit == credit.quantize(Decimal("0.01"))
