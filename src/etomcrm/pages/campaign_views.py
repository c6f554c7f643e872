"""Analytical CRM's campaign page (seed 5.3): the success of every campaign with its
uplift drawn as an interval, the customers behind a figure, and campaign planning.
One service call per page; the interval chart's geometry is computed here, the
template writes the SVG."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.analytics.campaigns import FIGURES, campaign_success, figure_customers
from etomcrm.analytics.export import csv_text
from etomcrm.analytics.models import AnCampaign, AnSegment
from etomcrm.core.errors import Forbidden, InvalidRequest
from etomcrm.retention.campaign_plans import SCORE_KINDS, plan_campaign
from etomcrm.security.service import Principal, Role

CAMPAIGN_ROLES = frozenset({Role.ADMIN, Role.ANALYST, Role.MARKETING})
# The interval chart: uplift from -1 to 1 across this many SVG units, a row per campaign.
CHART_WIDTH = 400
CHART_MARGIN = 20
ROW_HEIGHT = 24


def allowed(principal: Principal) -> None:
    if principal.role not in CAMPAIGN_ROLES:
        raise Forbidden("the campaign analyses are for the analyst, marketing and admin roles")


@dataclass(frozen=True)
class Interval:
    """One campaign's uplift and 95 % interval as x positions on the chart."""

    name: str
    y: float
    low: float
    high: float
    mid: float
    text: str


@dataclass(frozen=True)
class CampaignsPage:
    rows: list[dict[str, Any]]
    intervals: list[Interval]
    chart_height: int
    zero_x: float
    segments: list[str]
    planned_campaigns: list[tuple[str, str]]
    score_kinds: tuple[str, ...]
    plan: dict[str, Any] | None = None
    form: dict[str, str] | None = None


def _x(value: float) -> float:
    """An uplift of -1 .. 1 on the chart's x axis."""
    return round(CHART_MARGIN + (max(-1.0, min(1.0, value)) + 1) / 2 * CHART_WIDTH, 1)


def campaigns_page(
    session: Session,
    principal: Principal,
    plan: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
) -> CampaignsPage:
    """Every campaign's figures, the uplift intervals of those that kept a control
    group, and what the planning form offers (segments, planned campaigns)."""
    allowed(principal)
    rows = [r.as_row() for r in campaign_success(session)]
    intervals: list[Interval] = []
    for row in rows:
        if row["uplift"] is None:
            continue
        y = ROW_HEIGHT * (len(intervals) + 1)
        intervals.append(
            Interval(
                name=str(row["name"] or row["campaignId"]),
                y=y,
                low=_x(float(row["upliftLower95"])),
                high=_x(float(row["upliftUpper95"])),
                mid=_x(float(row["uplift"])),
                text=f"{row['uplift']} [{row['upliftLower95']}, {row['upliftUpper95']}]",
            )
        )
    return CampaignsPage(
        rows=rows,
        intervals=intervals,
        chart_height=ROW_HEIGHT * (len(intervals) + 2),
        zero_x=_x(0.0),
        segments=list(session.scalars(select(AnSegment.segment).order_by(AnSegment.segment))),
        planned_campaigns=[
            (str(cid), str(name or cid))
            for cid, name in session.execute(
                select(AnCampaign.campaign_id, AnCampaign.name)
                .where(AnCampaign.status == "planned")
                .order_by(AnCampaign.name)
            )
        ],
        score_kinds=SCORE_KINDS,
        plan=plan,
        form=form,
    )


def campaigns_csv(session: Session, principal: Principal) -> str:
    allowed(principal)
    return csv_text([r.as_row() for r in campaign_success(session)])


@dataclass(frozen=True)
class FigurePage:
    campaign_id: str
    campaign_name: str
    figure: str
    figures: tuple[str, ...]
    customers: list[tuple[str, str | None, str]]


def figure_page(
    session: Session, principal: Principal, campaign_id: str, figure: str
) -> FigurePage:
    """The customers behind one figure of a campaign, each linked to its Customer 360."""
    allowed(principal)
    customers = figure_customers(session, campaign_id, figure)
    name = session.scalar(select(AnCampaign.name).where(AnCampaign.campaign_id == campaign_id))
    return FigurePage(campaign_id, str(name or campaign_id), figure, FIGURES, customers)


def _number(form: dict[str, str], name: str, kind: type[int] | type[float], default: str) -> Any:
    text = (form.get(name) or default).strip()
    try:
        return kind(text)
    except ValueError:
        raise InvalidRequest(f"{name} must be a number, not {text!r}") from None


def plan_from_form(
    session: Session, principal: Principal, form: dict[str, str], today: date
) -> CampaignsPage:
    """The planning form's target list (and, with a campaign chosen, its targets set),
    shown on the campaign page."""
    allowed(principal)
    seed_text = (form.get("seed") or "").strip()
    plan = plan_campaign(
        session,
        principal,
        segment=form.get("segment", ""),
        score_kind=form.get("scoreKind", ""),
        threshold=_number(form, "threshold", int, ""),
        control_share=_number(form, "controlShare", float, "0"),
        seed=_number(form, "seed", int, "") if seed_text else None,
        today=today,
        campaign_id=(form.get("campaignId") or "").strip() or None,
    )
    return campaigns_page(session, principal, plan=plan.as_dict(), form=form)
