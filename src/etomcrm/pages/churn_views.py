"""The analyst's churn page (seed 5.3, predict): the model's out-of-fold evaluation with
its reliability chart, and the customers ranked by churn score with their reasons.
Staff of the roles analyst, marketing and admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from etomcrm.analytics import churn
from etomcrm.core.errors import Forbidden
from etomcrm.security.service import Principal, Role

CHURN_PAGE_ROLES = frozenset({Role.ANALYST, Role.MARKETING, Role.ADMIN})
PAGE_SIZE = 50
# The reliability chart: a square plot of this many pixels inside a margin.
PLOT, MARGIN = 240, 36


def _allowed(principal: Principal) -> None:
    if principal.role not in CHURN_PAGE_ROLES:
        raise Forbidden(
            f"the churn page is for the roles analyst, marketing and admin, not {principal.role}"
        )


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    r: float
    title: str


@dataclass(frozen=True)
class ChurnPage:
    model: dict[str, Any] | None
    points: list[Point]
    rows: list[dict[str, Any]]
    total: int
    offset: int
    size: int
    plot: int = PLOT
    margin: int = MARGIN


def _points(bins: list[dict[str, Any]]) -> list[Point]:
    """Each reliability bin as a dot: mean predicted across, observed rate up; its area
    grows with the bin's customers."""
    biggest = max((b["customers"] for b in bins), default=1)
    return [
        Point(
            x=round(MARGIN + b["meanPredicted"] * PLOT, 1),
            y=round(MARGIN + (1 - b["observedRate"]) * PLOT, 1),
            r=round(3 + 7 * (b["customers"] / biggest) ** 0.5, 1),
            title=(
                f"{b['from']:.1f}-{b['to']:.1f}: {b['customers']} customers, predicted "
                f"{b['meanPredicted']:.2f}, observed {b['observedRate']:.2f}"
            ),
        )
        for b in bins
    ]


def churn_page(session: Session, principal: Principal, now: datetime, offset: int) -> ChurnPage:
    """The model's figures and one page of the ranking (a bounded number of queries)."""
    _allowed(principal)
    model = churn.current_model(session)
    if model is None:
        return ChurnPage(None, [], [], 0, 0, PAGE_SIZE)
    ranked = churn.ranking(session, now, offset=max(0, offset), limit=PAGE_SIZE)
    summary = churn.model_summary(model)
    return ChurnPage(
        summary,
        _points(summary["evaluation"].get("reliability", [])),
        [r.as_row() for r in ranked.rows],
        ranked.total,
        ranked.offset,
        PAGE_SIZE,
    )


def churn_csv(session: Session, principal: Principal, now: datetime) -> list[dict[str, Any]]:
    """The whole ranking as CSV rows (customers not ended, highest score first)."""
    _allowed(principal)
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        ranked = churn.ranking(session, now, offset=offset, limit=churn.MAX_PAGE)
        rows.extend(r.as_csv_row() for r in ranked.rows)
        offset += churn.MAX_PAGE
        if offset >= ranked.total:
            return rows
