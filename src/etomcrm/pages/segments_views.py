"""What the segment pages show (3.9.2 Understand customers and trends; the seed's
"predict"): the computed segments with their figures, each segment's revenue, traffic
and contacts by month as charts with the months that stand out, its forecast with the
interval drawn as a band, and the customers of a segment (the drill-down), through the
same service functions as the API's (:mod:`etomcrm.analytics.trends`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from etomcrm.analytics.export import csv_text
from etomcrm.analytics.trends import (
    METHOD,
    SEGMENT_READERS,
    Forecast,
    MembersPage,
    SegmentFigures,
    SegmentOverview,
    Series,
    segment_forecasts,
    segment_members,
    segment_overview,
    segment_trends,
)
from etomcrm.core.errors import Forbidden, InvalidRequest
from etomcrm.pages.drawing import LineChart, line_chart
from etomcrm.security.service import Principal

PAGE_SIZE = 50
REPORTS = ("segments", "trends", "forecast")


def _reader(principal: Principal) -> None:
    if principal.is_customer or principal.role not in SEGMENT_READERS:
        raise Forbidden("the segments are for the roles admin, analyst and marketing")


@dataclass(frozen=True)
class Chart:
    metric: str
    unit: str
    drawing: LineChart
    standouts: list[dict[str, Any]]
    forecast: Forecast | None


@dataclass(frozen=True)
class SegmentCard:
    figures: SegmentFigures
    charts: list[Chart]


@dataclass(frozen=True)
class SegmentsPage:
    overview: SegmentOverview
    cards: list[SegmentCard]
    last_month: str
    k: float
    method: str


def _chart(series: Series, forecast: Forecast | None) -> Chart:
    history = [(p.month, p.value, p.standout) for p in series.points]
    ahead = (
        [(p.month, p.value, p.lower, p.upper) for p in forecast.predicted]
        if forecast is not None
        else None
    )
    return Chart(
        metric=series.metric,
        unit=series.unit,
        drawing=line_chart(history, ahead),
        standouts=series.as_dict()["standouts"],
        forecast=forecast,
    )


def segments_page(session: Session, principal: Principal, today: date) -> SegmentsPage:
    """Every segment with its figures and its charts: a bounded number of queries (the
    overview's seven, one per metric for the trends, one per forecast metric)."""
    _reader(principal)
    overview = segment_overview(session, today)
    trends = segment_trends(session, today=today)
    forecasts = segment_forecasts(session, today=today)
    by_key = {(f.segment, f.metric): f for f in forecasts.forecasts}
    charts: dict[str, list[Chart]] = {}
    for series in trends.series:
        charts.setdefault(series.segment, []).append(
            _chart(series, by_key.get((series.segment, series.metric)))
        )
    cards = [SegmentCard(figures, charts.get(figures.key, [])) for figures in overview.segments]
    return SegmentsPage(overview, cards, trends.last_month, trends.k, METHOD)


@dataclass(frozen=True)
class MembersView:
    members: MembersPage
    page: int
    pages: int


def segment_page(
    session: Session, principal: Principal, segment: str, page: int, today: date
) -> MembersView:
    """The customers of one segment, fifty to a page, by name."""
    _reader(principal)
    if page < 1:
        raise InvalidRequest("there is no such page of the list")
    members = segment_members(
        session, segment, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, today=today
    )
    pages = max(1, -(-members.total // PAGE_SIZE))
    return MembersView(members, page, pages)


def segments_csv(
    session: Session, principal: Principal, report: str, segment: str | None, today: date
) -> tuple[str, str]:
    """(file name, CSV) of the segments, their trends or forecasts, or one segment's
    customers (all of them)."""
    _reader(principal)
    if segment is not None:
        first = segment_members(session, segment, offset=0, limit=1, today=today)
        rows: list[dict[str, Any]] = []
        for offset in range(0, first.total, 200):
            part = segment_members(session, segment, offset=offset, limit=200, today=today)
            rows += [m.as_row() for m in part.members]
        return "segment-customers", csv_text(rows)
    if report not in REPORTS:
        raise InvalidRequest(f"the export is one of {', '.join(REPORTS)}, not {report!r}")
    if report == "segments":
        rows = [s.as_row() for s in segment_overview(session, today).segments]
    elif report == "trends":
        rows = segment_trends(session, today=today).rows()
    else:
        rows = segment_forecasts(session, today=today).rows()
    return f"segment-{report}", csv_text(rows)
