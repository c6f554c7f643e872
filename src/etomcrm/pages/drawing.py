"""Geometry for the SVG the pages draw on the server: the topology as rings (backbone,
points of presence, sites) and traffic as paired bars. Only numbers here; the
templates write the SVG elements (escaped like any other text)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from etomcrm.core.tmf_schemas import JsonDict

# Room each site needs on the outer ring (its circle and a gap), in SVG units.
SITE_SPACING = 30
MARGIN = 40


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # backbone, pop, site, headquarters
    label: str
    status: str
    x: float
    y: float
    # An open ticket is about this site.
    problem: bool = False


@dataclass(frozen=True)
class Edge:
    id: str
    status: str
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class TopologyDrawing:
    size: float
    nodes: list[Node]
    edges: list[Edge]


def _at(centre: float, radius: float, angle: float) -> tuple[float, float]:
    return (
        round(centre + radius * math.cos(angle), 1),
        round(centre + radius * math.sin(angle), 1),
    )


def topology(sites: list[JsonDict], links: list[JsonDict], pops: list[JsonDict]) -> TopologyDrawing:
    """The provider's backbone in the middle, the PoPs the customer's links end at on an
    inner ring, the sites on the outer ring beside their PoP; a line per link, in its
    status. Sites are ordered by PoP so no line crosses the ring."""
    first_pop: dict[str, str] = {}
    for link in links:
        first_pop.setdefault(link["siteId"], link["popId"])
    pop_order = {pop["id"]: n for n, pop in enumerate(pops)}
    ordered = sorted(
        sites,
        key=lambda s: (pop_order.get(first_pop.get(s["id"], ""), -1), str(s.get("name") or "")),
    )
    outer = max(160.0, len(ordered) * SITE_SPACING / (2 * math.pi))
    inner = outer * 0.6
    centre = outer + MARGIN + 60
    size = 2 * centre
    nodes = [Node("backbone", "backbone", "Backbone", "up", centre, centre)]
    placed: dict[str, tuple[float, float]] = {}
    angles: dict[str, list[float]] = {}
    for n, site in enumerate(ordered):
        angle = 2 * math.pi * n / max(1, len(ordered)) - math.pi / 2
        x, y = _at(centre, outer, angle)
        placed[site["id"]] = (x, y)
        angles.setdefault(first_pop.get(site["id"], ""), []).append(angle)
        nodes.append(
            Node(
                site["id"],
                "headquarters" if site.get("headquarters") else "site",
                str(site.get("name") or site["id"]),
                str(site.get("status") or "up"),
                x,
                y,
                bool(site.get("problem")),
            )
        )
    edges: list[Edge] = []
    for pop_id, angle in _spread(pops, angles).items():
        pop = next(p for p in pops if p["id"] == pop_id)
        x, y = _at(centre, inner, angle)
        placed[pop_id] = (x, y)
        nodes.append(Node(pop_id, "pop", str(pop.get("name") or pop_id), pop["status"], x, y))
        edges.append(Edge(f"core-{pop_id}", pop["status"], centre, centre, x, y))
    for link in links:
        if link["siteId"] in placed and link["popId"] in placed:
            (x1, y1), (x2, y2) = placed[link["siteId"]], placed[link["popId"]]
            edges.append(Edge(link["id"], link["status"], x1, y1, x2, y2))
    return TopologyDrawing(size=round(size, 1), nodes=nodes, edges=edges)


def _spread(pops: list[JsonDict], angles: dict[str, list[float]]) -> dict[str, float]:
    """Each PoP's angle on the inner ring: evenly spaced in the order of their sites'
    arcs, the whole ring turned to lie closest to those arcs (PoPs with one site each
    would otherwise pile up and hide each other's names)."""
    wanted = []
    for n, pop in enumerate(pops):
        own = angles.get(pop["id"])
        default = 2 * math.pi * n / max(1, len(pops)) - math.pi / 2
        wanted.append(((own[0] + own[-1]) / 2 if own else default, pop["id"]))
    wanted.sort()
    step = 2 * math.pi / max(1, len(wanted))
    # The turn: the circular mean of how far each PoP is from its even place.
    offsets = [angle - k * step for k, (angle, _) in enumerate(wanted)]
    turn = math.atan2(sum(map(math.sin, offsets)), sum(map(math.cos, offsets)))
    return {pop_id: turn + k * step for k, (_, pop_id) in enumerate(wanted)}


@dataclass(frozen=True)
class Bar:
    period: str
    bytes_in: int
    bytes_out: int
    x: float
    height_in: float
    height_out: float
    labelled: bool


@dataclass(frozen=True)
class BarChart:
    granularity: str
    width: float
    height: float
    bar_width: float
    peak: int
    bars: list[Bar]

    @property
    def total_in(self) -> int:
        return sum(bar.bytes_in for bar in self.bars)

    @property
    def total_out(self) -> int:
        return sum(bar.bytes_out for bar in self.bars)


def periods(granularity: str, start: datetime, end: datetime) -> list[str]:
    """Every bucket from ``start`` to ``end`` (exclusive), named as the traffic service
    names them, so a period without traffic still gets its (empty) place."""
    names: list[str] = []
    if granularity == "hour":
        moment = start.replace(minute=0, second=0, microsecond=0)
        while moment < end:
            names.append(moment.strftime("%Y-%m-%dT%H:00:00Z"))
            moment += timedelta(hours=1)
    elif granularity == "day":
        moment = start.replace(hour=0, minute=0, second=0, microsecond=0)
        while moment < end:
            names.append(moment.strftime("%Y-%m-%d"))
            moment += timedelta(days=1)
    else:
        year, month = start.year, start.month
        while (year, month) <= (end.year, end.month):
            names.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return names


CHART_WIDTH = 720.0
CHART_HEIGHT = 180.0
# At most this many labels under a chart, so they never overlap.
MAX_LABELS = 12


def bars(names: list[str], series: list[JsonDict], granularity: str) -> BarChart:
    """Bytes in and out per period as pairs of bars scaled to the busiest period."""
    by_period = {str(point["period"]): point for point in series}
    peak = max([max(int(p["bytesIn"]), int(p["bytesOut"])) for p in by_period.values()] + [1])
    slot = CHART_WIDTH / max(1, len(names))
    every = max(1, math.ceil(len(names) / MAX_LABELS))
    drawn: list[Bar] = []
    for n, name in enumerate(names):
        point = by_period.get(name, {})
        bytes_in, bytes_out = int(point.get("bytesIn", 0)), int(point.get("bytesOut", 0))
        drawn.append(
            Bar(
                period=name,
                bytes_in=bytes_in,
                bytes_out=bytes_out,
                x=round(n * slot, 2),
                height_in=round(CHART_HEIGHT * bytes_in / peak, 2),
                height_out=round(CHART_HEIGHT * bytes_out / peak, 2),
                labelled=n % every == 0,
            )
        )
    return BarChart(
        granularity=granularity,
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        bar_width=round(max(1.0, slot * 0.4), 2),
        peak=peak,
        bars=drawn,
    )


@dataclass(frozen=True)
class HBar:
    """One group's row of a horizontal bar chart: a bar per series, side by side."""

    label: str
    values: tuple[str, ...]  # as shown in the bars' titles
    widths: tuple[float, ...]
    y: float


@dataclass(frozen=True)
class HBarChart:
    width: float
    height: float
    label_width: float
    row_height: float
    bar_height: float
    series: tuple[str, ...]
    rows: list[HBar]


HBAR_WIDTH = 720.0
HBAR_LABEL = 200.0
HBAR_ROW = 26.0
HBAR_LABEL_CHARACTERS = 30


def hbars(series: tuple[str, ...], rows: list[tuple[str, tuple[Any, ...]]]) -> HBarChart:
    """Groups (a channel, a customer, a month) as rows of bars, one per series (their
    names are the template's to translate), all scaled to the largest value; a negative
    value draws no bar (its title still says it). Long labels are shortened."""
    peak = max([float(v) for _, values in rows for v in values] + [1e-9])
    room = HBAR_WIDTH - HBAR_LABEL - 10
    bar = round((HBAR_ROW - 6) / max(1, len(series)), 2)
    drawn = []
    for n, (label, values) in enumerate(rows):
        short = label if len(label) <= HBAR_LABEL_CHARACTERS else label[: HBAR_LABEL_CHARACTERS - 1]
        drawn.append(
            HBar(
                label=short + ("…" if short != label else ""),
                values=tuple(str(v) for v in values),
                widths=tuple(round(room * max(0.0, float(v)) / peak, 2) for v in values),
                y=round(n * HBAR_ROW, 2),
            )
        )
    return HBarChart(
        width=HBAR_WIDTH,
        height=round(max(1, len(rows)) * HBAR_ROW, 2),
        label_width=HBAR_LABEL,
        row_height=HBAR_ROW,
        bar_height=bar,
        series=series,
        rows=drawn,
    )


@dataclass(frozen=True)
class Marker:
    month: str
    value: float
    x: float
    y: float
    standout: bool


@dataclass(frozen=True)
class BandPoint:
    month: str
    value: float
    lower: float
    upper: float
    x: float
    y: float


@dataclass(frozen=True)
class LineChart:
    """A monthly series as a line, the months that stand out marked, and where there is
    a forecast its line and its interval as a band (3.9.2)."""

    width: float
    height: float
    peak: float
    line: str  # SVG polyline points of the history
    markers: list[Marker]
    forecast_line: str  # from the last month of history through the forecast
    band: str  # SVG polygon points of the interval, empty without a forecast
    forecast: list[BandPoint]
    labels: list[tuple[float, str]]


LINE_WIDTH = 360.0
LINE_HEIGHT = 120.0


def line_chart(
    history: list[tuple[str, float, bool]],
    forecast: list[tuple[str, float, float, float]] | None = None,
) -> LineChart:
    """History (month, value, stands out) and forecast (month, value, lower, upper) on
    one time axis, scaled from zero to the highest value or upper bound."""
    ahead = forecast or []
    months = [m for m, _, _ in history] + [m for m, _, _, _ in ahead]
    peak = max([v for _, v, _ in history] + [hi for _, _, _, hi in ahead] + [0.0]) or 1.0
    step = LINE_WIDTH / max(1, len(months) - 1)

    def y(value: float) -> float:
        return round(LINE_HEIGHT - LINE_HEIGHT * value / peak, 2)

    markers = [
        Marker(month, value, round(n * step, 2), y(value), standout)
        for n, (month, value, standout) in enumerate(history)
    ]
    band_points = [
        BandPoint(month, value, lower, upper, round((len(history) + n) * step, 2), y(value))
        for n, (month, value, lower, upper) in enumerate(ahead)
    ]
    line = " ".join(f"{m.x},{m.y}" for m in markers)
    forecast_line = ""
    band = ""
    if band_points and markers:
        start = markers[-1]
        forecast_line = " ".join([f"{start.x},{start.y}"] + [f"{p.x},{p.y}" for p in band_points])
        upper = [f"{start.x},{start.y}"] + [f"{p.x},{y(p.upper)}" for p in band_points]
        lower = [f"{p.x},{y(p.lower)}" for p in reversed(band_points)]
        band = " ".join(upper + lower)
    every = max(1, math.ceil(len(months) / 8))
    labels = [
        (round(n * step, 2), f"{month[5:7]}/{month[2:4]}")
        for n, month in enumerate(months)
        if n % every == 0
    ]
    return LineChart(
        width=LINE_WIDTH,
        height=LINE_HEIGHT,
        peak=peak,
        line=line,
        markers=markers,
        forecast_line=forecast_line,
        band=band,
        forecast=band_points,
        labels=labels,
    )
