"""Campaign planning (seed 5.3, "plan"): a target list from a segment and a score, with
its expected response and the control group set aside, which can become a planned
campaign's targets.

It lives in retention because its churn score is 3.9.3's (the customer's latest TMF696
partyRoleRiskAssessment), and retention sits above the analytical store in the layers;
everything else it reads is the store's.

Scores (0-100), a customer is picked when its score is at or above the threshold:

- ``churn``: the churn score of the customer's latest partyRoleRiskAssessment; a
  customer never assessed has none and is not picked;
- ``upsell``: the trend of the customer's billed revenue — 50 x (revenue of the three
  complete months before today) / (revenue of the three months before those), kept
  within 0-100: 50 is flat, 100 doubled or more (or new revenue where there was none);
  a customer billed nothing in those six months has none and is not picked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.analytics.campaigns import ResponseRate, response_rate
from etomcrm.analytics.models import AnCustomer, AnRevenueFact, AnSegment
from etomcrm.analytics.profitability import NOT_REVENUE
from etomcrm.core.errors import InvalidRequest
from etomcrm.marketing.service import (
    MAX_CONTROL_SHARE,
    draw_control_group,
    set_campaign_targets,
)
from etomcrm.retention.models import PartyRoleRiskAssessmentRow
from etomcrm.retention.risk import CHURN
from etomcrm.security.service import Principal

SCORE_KINDS = ("churn", "upsell")
TREND_MONTHS = 3


@dataclass(frozen=True)
class PlannedTarget:
    customer_id: str
    name: str | None
    score: int
    group: str  # treated or control


@dataclass(frozen=True)
class CampaignPlan:
    segment: str
    score_kind: str
    threshold: int
    control_share: float
    seed: int
    candidates: int  # customers of the segment (not terminated)
    unscored: int  # of them, those without a score
    targets: list[PlannedTarget]
    response: ResponseRate
    campaign: dict[str, Any] | None = None

    @property
    def treated(self) -> int:
        return sum(1 for t in self.targets if t.group == "treated")

    @property
    def expected_responses(self) -> float | None:
        return None if self.response.rate is None else self.response.rate * self.treated

    def as_dict(self) -> dict[str, Any]:
        expected = self.expected_responses
        answer: dict[str, Any] = {
            "segment": self.segment,
            "scoreKind": self.score_kind,
            "threshold": self.threshold,
            "controlShare": self.control_share,
            "seed": self.seed,
            "candidates": self.candidates,
            "unscored": self.unscored,
            "targetCount": len(self.targets),
            "treatedCount": self.treated,
            "controlCount": len(self.targets) - self.treated,
            "responseRate": None if self.response.rate is None else round(self.response.rate, 4),
            "responseRateBasis": self.response.basis,
            "responseRateReached": self.response.reached,
            "expectedResponses": None if expected is None else round(expected, 2),
            "targets": [
                {"customerId": t.customer_id, "name": t.name, "score": t.score, "group": t.group}
                for t in self.targets
            ],
        }
        if self.campaign is not None:
            answer["campaign"] = {
                "id": self.campaign["id"],
                "name": self.campaign.get("name"),
                "targeting": self.campaign.get("targeting"),
            }
        return answer


def _month_back(today: date, count: int) -> str:
    number = today.year * 12 + today.month - 1 - count
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def _churn_scores(session: Session, customers: Any) -> dict[str, int]:
    """The churn score of each customer's latest assessment (one query, newest first)."""
    scores: dict[str, int] = {}
    for owner, body in session.execute(
        select(PartyRoleRiskAssessmentRow.owner_customer_id, PartyRoleRiskAssessmentRow.body)
        .where(PartyRoleRiskAssessmentRow.owner_customer_id.in_(customers))
        .order_by(
            PartyRoleRiskAssessmentRow.created_at.desc(), PartyRoleRiskAssessmentRow.id.desc()
        )
    ):
        if owner in scores or owner is None:
            continue
        for score in (body.get("riskAssessmentResult") or {}).get("score") or []:
            if isinstance(score, dict) and score.get("risk") == CHURN:
                value = score.get("score")
                if isinstance(value, int | float) and not isinstance(value, bool):
                    scores[str(owner)] = int(value)
                break
        scores.setdefault(str(owner), -1)  # the latest has no churn score: none
    return {c: s for c, s in scores.items() if s >= 0}


def _upsell_scores(session: Session, customers: Any, today: date) -> dict[str, int]:
    """The revenue-trend score of the module's rule (one query)."""
    recent_from = _month_back(today, TREND_MONTHS)
    before_from = _month_back(today, 2 * TREND_MONTHS)
    this_month = _month_back(today, 0)
    recent: dict[str, Decimal] = {}
    before: dict[str, Decimal] = {}
    for customer, month, rate_type, amount in session.execute(
        select(
            AnRevenueFact.customer_id,
            AnRevenueFact.month,
            AnRevenueFact.rate_type,
            AnRevenueFact.amount,
        ).where(
            AnRevenueFact.customer_id.in_(customers),
            AnRevenueFact.month >= before_from,
            AnRevenueFact.month < this_month,
        )
    ):
        if rate_type in NOT_REVENUE:
            continue
        bucket = recent if month >= recent_from else before
        bucket[customer] = bucket.get(customer, Decimal(0)) + Decimal(amount)
    scores: dict[str, int] = {}
    for customer in set(recent) | set(before):
        now, then = recent.get(customer, Decimal(0)), before.get(customer, Decimal(0))
        if then <= 0:
            scores[customer] = 100 if now > 0 else 0
        else:
            scores[customer] = max(0, min(100, int((50 * now / then).to_integral_value())))
    return scores


def plan_campaign(
    session: Session,
    principal: Principal | None,
    *,
    segment: str,
    score_kind: str,
    threshold: int,
    control_share: float = 0.0,
    seed: int | None = None,
    today: date,
    campaign_id: str | None = None,
) -> CampaignPlan:
    """Campaign planning (seed 5.3, "plan"): the customers of ``segment`` whose churn or
    upsell score is at or above ``threshold``, ``control_share`` of them set aside as
    control group (drawn as the marketing service draws it, from ``seed``), and the
    responses to expect from the treated ones at the response rate of past campaigns.
    With ``campaign_id`` the list becomes that planned campaign's targets."""
    if score_kind not in SCORE_KINDS:
        raise InvalidRequest(f"scoreKind is one of {', '.join(SCORE_KINDS)}, not {score_kind!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold <= 100:
        raise InvalidRequest(f"threshold must be a whole number from 0 to 100, not {threshold!r}")
    if isinstance(control_share, bool) or not isinstance(control_share, int | float):
        raise InvalidRequest(f"controlShare must be a number, not {control_share!r}")
    if not 0 <= control_share <= MAX_CONTROL_SHARE:
        raise InvalidRequest(
            f"controlShare must be between 0 and {MAX_CONTROL_SHARE}, not {control_share}"
        )
    if seed is None:
        seed = secrets.randbelow(2**31)
    if session.get(AnSegment, segment) is None:
        known = sorted(session.scalars(select(AnSegment.segment)))
        raise InvalidRequest(
            f"no segment {segment!r} in the analytical store; segments: {', '.join(known)}"
        )
    members = select(AnCustomer.customer_id).where(
        AnCustomer.segment == segment, AnCustomer.status != "terminated"
    )
    names = dict(
        session.execute(
            select(AnCustomer.customer_id, AnCustomer.name).where(
                AnCustomer.customer_id.in_(members)
            )
        ).all()
    )
    scores = (
        _churn_scores(session, members)
        if score_kind == "churn"
        else _upsell_scores(session, members, today)
    )
    picked = sorted(c for c, s in scores.items() if c in names and s >= threshold)
    control = draw_control_group(picked, control_share, seed) if picked else set()
    targets = sorted(
        (
            PlannedTarget(c, names[c], scores[c], "control" if c in control else "treated")
            for c in picked
        ),
        key=lambda t: (-t.score, t.customer_id),
    )
    campaign = None
    if campaign_id is not None:
        if principal is None:
            raise InvalidRequest("making a plan a campaign's targets needs a signed-in user")
        if not picked:
            raise InvalidRequest("the plan picks no customer; no targets to set")
        campaign = set_campaign_targets(
            session,
            principal,
            campaign_id,
            customer_ids=picked,
            control_share=control_share,
            seed=seed,
        )
    return CampaignPlan(
        segment=segment,
        score_kind=score_kind,
        threshold=threshold,
        control_share=float(control_share),
        seed=seed,
        candidates=len(names),
        unscored=len([c for c in names if c not in scores]),
        targets=targets,
        response=response_rate(session, segment),
        campaign=campaign,
    )
