"""3.9.2 Understand customers and trends, and the seed's "predict": what each segment
is, who is in it, how its revenue, usage and contacts went month by month (with the
months that stand out) and where its revenue and usage are heading.

Every figure is read from the analytical store. A segment's history is the history of
the customers in it today (a cohort view): a customer who moved from "Mid value" to
"High value" brings its whole past along. Months are complete months only: today's
month is not over, and its half-counted figures would stand out as a fall.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from scipy import stats
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.analytics import segmentation
from etomcrm.analytics.models import (
    AnContactFact,
    AnCustomer,
    AnDay,
    AnDunningFact,
    AnRevenueFact,
    AnSegment,
    AnTicketFact,
    AnUsageFact,
)
from etomcrm.analytics.segmentation import (
    NOT_REVENUE,
    TRAFFIC,
    SegmentRule,
    add_months,
    clock_today,
    last_complete_month,
    months_between,
)
from etomcrm.config import get_settings
from etomcrm.core.errors import InvalidRequest, NotFound
from etomcrm.security.service import Role

# Who reads the segments, trends and forecasts (3.9.2): the marketers and the analysts.
SEGMENT_READERS = frozenset({Role.ADMIN, Role.ANALYST, Role.MARKETING})

METRICS: tuple[str, ...] = ("revenue", "usage", "contacts")
FORECAST_METRICS: tuple[str, ...] = ("revenue", "usage")
UNITS = {"revenue": "EUR", "usage": "GB", "contacts": "contacts"}
PLACES = {"revenue": Decimal("0.01"), "usage": Decimal("0.001"), "contacts": Decimal(1)}
# A change is judged against at least this many earlier month-over-month changes.
MIN_CHANGES = 3
# The robust standard deviation of a perfectly steady history is zero; a change is
# then measured against 1 % of the series' mean level instead (so that a flat series'
# rounding never stands out, and a real jump on it does).
FLOOR_SHARE = 0.01
# MAD x 1.4826 estimates the standard deviation of normally distributed changes.
MAD_TO_SD = 1.4826
MEAN_AD_TO_SD = 1.2533
# The forecast fits the last this many months at most (older ones describe another
# market); its intervals are 95 % prediction intervals.
FIT_MONTHS = 24
LEVEL = 0.95
MAX_HORIZON = 12
MAX_PAGE = 200


def _quantize(value: Decimal | float, metric: str) -> str:
    return str(Decimal(str(value)).quantize(PLACES[metric], ROUND_HALF_UP))


def _check_segment(session: Session, segment: str | None) -> None:
    if segment is None:
        return
    if session.get(AnSegment, segment) is None:
        raise NotFound(f"no customer is in the segment {segment!r}")


def _check_metric(metric: str | None, allowed: tuple[str, ...]) -> None:
    if metric is not None and metric not in allowed:
        raise InvalidRequest(f"metric is one of {', '.join(allowed)}, not {metric!r}")


# ----- segments and their members ---------------------------------------------------


@dataclass(frozen=True)
class SegmentFigures:
    """A segment (or one customer) over the window: per-month figures."""

    key: str
    customers: int
    revenue_per_month: Decimal
    usage_per_month: Decimal
    contacts_per_month: Decimal
    tickets_per_month: Decimal
    dunning_cases: int

    def as_row(self) -> dict[str, Any]:
        return {
            "segment": self.key,
            "customers": self.customers,
            "revenuePerMonth": _quantize(self.revenue_per_month, "revenue"),
            "usagePerMonth": _quantize(self.usage_per_month, "usage"),
            "contactsPerMonth": str(self.contacts_per_month.quantize(Decimal("0.01"))),
            "ticketsPerMonth": str(self.tickets_per_month.quantize(Decimal("0.01"))),
            "dunningCases": self.dunning_cases,
        }


def _per_month(key: str, figures: Sequence[segmentation.Figures], months: int) -> SegmentFigures:
    m = Decimal(months)
    return SegmentFigures(
        key=key,
        customers=len(figures),
        revenue_per_month=sum((f.revenue for f in figures), Decimal(0)) / m,
        usage_per_month=sum((f.usage for f in figures), Decimal(0)) / m,
        contacts_per_month=Decimal(sum(f.contacts for f in figures)) / m,
        tickets_per_month=Decimal(sum(f.tickets for f in figures)) / m,
        dunning_cases=sum(f.dunning_cases for f in figures),
    )


@dataclass(frozen=True)
class SegmentOverview:
    first_month: str
    last_month: str
    rule: SegmentRule
    segments: list[SegmentFigures]


def segment_overview(session: Session, today: date | None = None) -> SegmentOverview:
    """3.9.2 Understand customers and trends: every segment with its number of
    customers and their billed revenue, traffic, contacts, tickets per month and dunning
    cases over the window the segments are computed on. Six queries, each summed by
    segment in the database."""
    rule = SegmentRule.from_settings()
    day = today or clock_today()
    first, last = rule.window(day)
    start = date.fromisoformat(f"{first}-01")
    end = date.fromisoformat(f"{add_months(last, 1)}-01")
    segment = AnCustomer.segment

    def by_segment(fact: Any, value: Any, *conditions: Any) -> dict[str, Any]:
        stmt = (
            select(segment, value)
            .select_from(fact)
            .join(AnCustomer, AnCustomer.customer_id == fact.customer_id)
            .where(*conditions)
            .group_by(segment)
        )
        return dict(((k, v) for k, v in session.execute(stmt)))

    customers = dict(
        ((k, n) for k, n in session.execute(select(segment, func.count()).group_by(segment)))
    )
    revenue = by_segment(
        AnRevenueFact,
        func.sum(AnRevenueFact.amount),
        AnRevenueFact.month >= first,
        AnRevenueFact.month <= last,
        AnRevenueFact.rate_type.not_in(NOT_REVENUE),
    )
    usage = by_segment(
        AnUsageFact,
        func.sum(AnUsageFact.volume),
        AnUsageFact.day >= start,
        AnUsageFact.day < end,
        AnUsageFact.usage_type == TRAFFIC,
    )
    contacts = by_segment(
        AnContactFact,
        func.count(),
        AnContactFact.day >= start,
        AnContactFact.day < end,
        AnContactFact.direction == "inbound",
    )
    tickets = by_segment(
        AnTicketFact, func.count(), AnTicketFact.month >= first, AnTicketFact.month <= last
    )
    dunning = by_segment(
        AnDunningFact, func.count(), AnDunningFact.month >= first, AnDunningFact.month <= last
    )
    months = Decimal(rule.months)
    rows = [
        SegmentFigures(
            key=key,
            customers=int(count),
            revenue_per_month=Decimal(revenue.get(key) or 0) / months,
            usage_per_month=Decimal(usage.get(key) or 0) / months,
            contacts_per_month=Decimal(int(contacts.get(key) or 0)) / months,
            tickets_per_month=Decimal(int(tickets.get(key) or 0)) / months,
            dunning_cases=int(dunning.get(key) or 0),
        )
        for key, count in customers.items()
    ]
    return SegmentOverview(
        first_month=first,
        last_month=last,
        rule=rule,
        segments=sorted(rows, key=lambda r: (-r.revenue_per_month, r.key)),
    )


@dataclass(frozen=True)
class Member:
    customer_id: str
    name: str | None
    status: str | None
    figures: SegmentFigures

    def as_row(self) -> dict[str, Any]:
        row = self.figures.as_row()
        del row["segment"], row["customers"]
        return {"id": self.customer_id, "name": self.name, "status": self.status, **row}


@dataclass(frozen=True)
class MembersPage:
    segment: str
    total: int
    offset: int
    limit: int
    members: list[Member]


def segment_members(
    session: Session, segment: str, *, offset: int = 0, limit: int = 50, today: date | None = None
) -> MembersPage:
    """The customers of one segment, by name, a page at a time, each with its figures
    over the window (the drill-down behind a segment's figures). Nine queries whatever
    the size of the page or of the segment."""
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"offset is 0 or more and limit from 1 to {MAX_PAGE}")
    _check_segment(session, segment)
    rule = SegmentRule.from_settings()
    in_segment = AnCustomer.segment == segment
    total = int(session.scalar(select(func.count()).where(in_segment)) or 0)
    page = session.execute(
        select(AnCustomer.customer_id, AnCustomer.name, AnCustomer.status)
        .where(in_segment)
        .order_by(AnCustomer.name, AnCustomer.customer_id)
        .offset(offset)
        .limit(limit)
    ).all()
    ids = [row.customer_id for row in page]
    figures = segmentation.figures_of(session, ids, today or clock_today(), rule)
    members = [
        Member(
            customer_id=row.customer_id,
            name=row.name,
            status=row.status,
            figures=_per_month(row.customer_id, [figures[row.customer_id]], rule.months),
        )
        for row in page
    ]
    return MembersPage(segment=segment, total=total, offset=offset, limit=limit, members=members)


# ----- trends and the months that stand out -----------------------------------------


@dataclass(frozen=True)
class Point:
    """One month of a series: its figure, the change from the month before and, where
    the history is long enough to judge, how many robust standard deviations of the
    earlier changes that change lies from their median."""

    month: str
    value: float
    change: float | None
    score: float | None
    standout: bool


def standouts(values: Sequence[float], k: float) -> list[tuple[float | None, bool]]:
    """For each month: (score, stands out). A month's change stands out when it lies
    more than ``k`` robust standard deviations (1.4826 x the median absolute deviation)
    from the median of the series' earlier month-over-month changes (1.2533 x their mean
    absolute deviation when more than half of them are alike); at least
    ``MIN_CHANGES`` earlier changes are needed, and the deviation is at least 1 % of the
    series' mean level so far. Steady growth does not stand out: its changes are alike."""
    out: list[tuple[float | None, bool]] = [(None, False)]
    changes = [values[i] - values[i - 1] for i in range(1, len(values))]
    for i in range(1, len(values)):
        earlier = changes[: i - 1]
        if len(earlier) < MIN_CHANGES:
            out.append((None, False))
            continue
        history = np.array(earlier, dtype=float)
        median = float(np.median(history))
        robust_sd = MAD_TO_SD * float(np.median(np.abs(history - median)))
        if robust_sd == 0:
            # More than half the changes alike: the mean absolute deviation instead
            # (x 1.2533 for a normal standard deviation), as the modified z-score does.
            robust_sd = MEAN_AD_TO_SD * float(np.mean(np.abs(history - median)))
        floor = FLOOR_SHARE * float(np.mean(np.abs(np.array(values[:i], dtype=float))))
        scale = max(robust_sd, floor, 1e-9)
        score = (changes[i - 1] - median) / scale
        out.append((round(score, 2), abs(score) > k))
    return out


@dataclass(frozen=True)
class Series:
    segment: str
    metric: str
    points: list[Point]

    @property
    def unit(self) -> str:
        return UNITS[self.metric]

    def as_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "metric": self.metric,
            "unit": self.unit,
            "months": [
                {
                    "month": p.month,
                    "value": _quantize(p.value, self.metric),
                    "change": None if p.change is None else _quantize(p.change, self.metric),
                    "score": p.score,
                    "standout": p.standout,
                }
                for p in self.points
            ],
            "standouts": [
                {
                    "month": p.month,
                    "value": _quantize(p.value, self.metric),
                    "change": _quantize(p.change or 0, self.metric),
                    "score": p.score,
                    "direction": "up" if (p.change or 0) > 0 else "down",
                }
                for p in self.points
                if p.standout
            ],
        }


def _monthly(session: Session, metric: str, last: str) -> dict[tuple[str, str], float]:
    """(segment, month) → the metric, by today's segment of each customer; one query."""
    stmt: Any
    if metric == "revenue":
        stmt = (
            select(AnCustomer.segment, AnRevenueFact.month, func.sum(AnRevenueFact.amount))
            .select_from(AnRevenueFact)
            .join(AnCustomer, AnCustomer.customer_id == AnRevenueFact.customer_id)
            .where(AnRevenueFact.rate_type.not_in(NOT_REVENUE), AnRevenueFact.month <= last)
            .group_by(AnCustomer.segment, AnRevenueFact.month)
        )
    elif metric == "usage":
        stmt = (
            select(AnCustomer.segment, AnDay.month, func.sum(AnUsageFact.volume))
            .select_from(AnUsageFact)
            .join(AnCustomer, AnCustomer.customer_id == AnUsageFact.customer_id)
            .join(AnDay, AnDay.day == AnUsageFact.day)
            .where(AnUsageFact.usage_type == TRAFFIC, AnDay.month <= last)
            .group_by(AnCustomer.segment, AnDay.month)
        )
    else:
        stmt = (
            select(AnCustomer.segment, AnDay.month, func.count())
            .select_from(AnContactFact)
            .join(AnCustomer, AnCustomer.customer_id == AnContactFact.customer_id)
            .join(AnDay, AnDay.day == AnContactFact.day)
            .where(AnContactFact.direction == "inbound", AnDay.month <= last)
            .group_by(AnCustomer.segment, AnDay.month)
        )
    return {(segment, month): float(value) for segment, month, value in session.execute(stmt)}


def _series(
    session: Session, metrics: Sequence[str], segment: str | None, last: str
) -> dict[tuple[str, str], list[tuple[str, float]]]:
    """(segment, metric) → its months from the first with data to ``last``, a month
    without data counted as zero."""
    out: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for metric in metrics:
        cells = _monthly(session, metric, last)
        firsts: dict[str, str] = {}
        for seg, month in cells:
            if segment is None or seg == segment:
                firsts[seg] = min(month, firsts.get(seg, month))
        for seg, first in sorted(firsts.items()):
            out[(seg, metric)] = [
                (month, cells.get((seg, month), 0.0)) for month in months_between(first, last)
            ]
    return out


@dataclass(frozen=True)
class TrendReport:
    last_month: str
    k: float
    series: list[Series]

    def rows(self) -> list[dict[str, Any]]:
        """One row per segment, metric and month (the CSV)."""
        return [
            {"segment": s["segment"], "metric": s["metric"], "unit": s["unit"], **month}
            for s in (series.as_dict() for series in self.series)
            for month in s["months"]
        ]


def segment_trends(
    session: Session,
    *,
    segment: str | None = None,
    metric: str | None = None,
    today: date | None = None,
) -> TrendReport:
    """3.9.2 Understand customers and trends: billed revenue, traffic and inbound
    contacts per complete month and segment, each month's change from the one before,
    and the changes that stand out (:func:`standouts`: beyond ``k`` robust standard
    deviations of the segment's earlier changes). One query per metric."""
    _check_metric(metric, METRICS)
    _check_segment(session, segment)
    k = get_settings().analytics_trend_standout_k
    last = last_complete_month(today or clock_today())
    series: list[Series] = []
    for (seg, name), months in sorted(
        _series(session, [metric] if metric else METRICS, segment, last).items()
    ):
        values = [v for _, v in months]
        judged = standouts(values, k)
        points = [
            Point(
                month=month,
                value=value,
                change=None if i == 0 else value - values[i - 1],
                score=judged[i][0],
                standout=judged[i][1],
            )
            for i, (month, value) in enumerate(months)
        ]
        series.append(Series(seg, name, points))
    return TrendReport(last_month=last, k=k, series=series)


# ----- forecasts ----------------------------------------------------------------------


@dataclass(frozen=True)
class Predicted:
    month: str
    value: float
    lower: float
    upper: float


@dataclass(frozen=True)
class LinearFit:
    intercept: float
    slope: float
    residual_sd: float
    n: int
    points: list[tuple[int, float, float, float]]  # months ahead, value, lower, upper


def linear_forecast(values: Sequence[float], horizon: int, level: float = LEVEL) -> LinearFit:
    """A straight line fitted by least squares to the months (x = 0, 1, ...), extended
    ``horizon`` months, with the prediction interval of a new month at x0:
    ŷ ± t(1 - (1 - level)/2, n - 2) · s · √(1 + 1/n + (x0 - x̄)² / Σ(x - x̄)²),
    s the residuals' standard deviation (n - 2 degrees of freedom). The interval
    widens with the horizon, as (x0 - x̄)² grows."""
    y = np.array(values, dtype=float)
    n = len(y)
    x = np.arange(n, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - (intercept + slope * x)
    s = math.sqrt(float(np.sum(residuals**2)) / (n - 2))
    x_mean = float(np.mean(x))
    sxx = float(np.sum((x - x_mean) ** 2))
    t = float(stats.t.ppf(1 - (1 - level) / 2, n - 2))
    points = []
    for h in range(1, horizon + 1):
        x0 = n - 1 + h
        mean = float(intercept + slope * x0)
        half = t * s * math.sqrt(1 + 1 / n + (x0 - x_mean) ** 2 / sxx)
        points.append((h, mean, mean - half, mean + half))
    return LinearFit(float(intercept), float(slope), s, n, points)


@dataclass(frozen=True)
class Forecast:
    segment: str
    metric: str
    history: list[tuple[str, float]]
    months_used: int
    refused: str | None  # why no forecast, when the history is too short
    slope: float | None
    residual_sd: float | None
    predicted: list[Predicted]

    def as_dict(self) -> dict[str, Any]:
        def q(value: float | None) -> str | None:
            return None if value is None else _quantize(value, self.metric)

        return {
            "segment": self.segment,
            "metric": self.metric,
            "unit": UNITS[self.metric],
            "status": "insufficientHistory" if self.refused else "forecast",
            "reason": self.refused,
            "monthsUsed": self.months_used,
            "slopePerMonth": q(self.slope),
            "residualStandardDeviation": q(self.residual_sd),
            "history": [{"month": m, "value": q(v)} for m, v in self.history],
            "forecast": [
                {"month": p.month, "value": q(p.value), "lower": q(p.lower), "upper": q(p.upper)}
                for p in self.predicted
            ],
        }


@dataclass(frozen=True)
class ForecastReport:
    last_month: str
    horizon: int
    level: float
    min_months: int
    method: str
    forecasts: list[Forecast]

    def rows(self) -> list[dict[str, Any]]:
        """One row per segment, metric and month ahead (the CSV); one row with the
        reason for a segment without a forecast."""
        empty = {"month": None, "value": None, "lower": None, "upper": None}
        return [
            {
                "segment": f["segment"],
                "metric": f["metric"],
                "unit": f["unit"],
                "status": f["status"],
                "reason": f["reason"],
                **(point or empty),
            }
            for f in (forecast.as_dict() for forecast in self.forecasts)
            for point in (f["forecast"] or [None])
        ]


METHOD = (
    "linear trend by least squares over the last complete months (at most 24), "
    "95 % prediction intervals from the residuals (Student's t); never below zero"
)


def segment_forecasts(
    session: Session,
    *,
    segment: str | None = None,
    metric: str | None = None,
    horizon: int = 3,
    today: date | None = None,
) -> ForecastReport:
    """Predict (seed 5.3): billed revenue and traffic of each segment for the next
    ``horizon`` months, from a straight line through its complete months
    (:func:`linear_forecast`) with 95 % prediction intervals; revenue and traffic are
    never negative, so a bound below zero is shown as zero. A segment with fewer than
    ``analytics_forecast_min_months`` months gets no forecast, and says why."""
    _check_metric(metric, FORECAST_METRICS)
    if not 1 <= horizon <= MAX_HORIZON:
        raise InvalidRequest(f"months ahead is from 1 to {MAX_HORIZON}, not {horizon}")
    _check_segment(session, segment)
    min_months = max(3, get_settings().analytics_forecast_min_months)
    last = last_complete_month(today or clock_today())
    forecasts: list[Forecast] = []
    for (seg, name), months in sorted(
        _series(session, [metric] if metric else FORECAST_METRICS, segment, last).items()
    ):
        used = months[-FIT_MONTHS:]
        if len(used) < min_months:
            refused = f"{len(used)} complete month(s) of history; a forecast needs {min_months}"
            forecasts.append(Forecast(seg, name, months, len(used), refused, None, None, []))
            continue
        fit = linear_forecast([v for _, v in used], horizon)
        predicted = [
            Predicted(add_months(last, h), max(0.0, v), max(0.0, lo), max(0.0, hi))
            for h, v, lo, hi in fit.points
        ]
        forecasts.append(
            Forecast(seg, name, months, fit.n, None, fit.slope, fit.residual_sd, predicted)
        )
    return ForecastReport(
        last_month=last,
        horizon=horizon,
        level=LEVEL,
        min_months=min_months,
        method=METHOD,
        forecasts=forecasts,
    )
