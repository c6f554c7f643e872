"""What the portal's survey pages show and do (seed 5.1, "Surveys answered"; 3.9.5
Validate customer satisfaction): a customer's satisfaction surveys, open ones first,
and the answer to one of them through
:func:`etomcrm.retention.satisfaction.answer_survey`, the service the API's
``satisfactionSurvey/{id}/answer`` calls.

Scoped as the API: the customer is read first (another customer's user gets 404), then
only its own surveys; a survey of another customer typed under this one is a 404 too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from etomcrm.core.errors import NotFound
from etomcrm.core.resources import READ
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import PartyInteractionRow
from etomcrm.customer_interface.service import PARTY_INTERACTION_KIND
from etomcrm.pages.portal_views import Paging, page_of, paged, scoped_customer, when
from etomcrm.retention import satisfaction
from etomcrm.security.service import Principal

CSAT_CHOICES = list(range(satisfaction.CSAT_RANGE[0], satisfaction.CSAT_RANGE[1] + 1))
NPS_CHOICES = list(range(satisfaction.NPS_RANGE[0], satisfaction.NPS_RANGE[1] + 1))
OPEN = "open"


@dataclass(frozen=True)
class SurveyLine:
    id: str
    subject: str
    about: str
    sent: str
    status: str


@dataclass(frozen=True)
class SurveysPage:
    customer_id: str
    customer_name: str
    surveys: list[SurveyLine]
    # The customer's surveys still waiting for an answer, on every page of the list.
    open_count: int
    paging: Paging


def _about(body: JsonDict) -> str:
    """What a survey asks about: "ProductOrder 123" (the order or ticket it follows)."""
    for item in body.get("interactionItem") or []:
        if isinstance(item, dict) and isinstance(item.get("item"), dict):
            about = item["item"]
            return f"{about.get('@referredType') or ''} {about.get('name') or about.get('id')}"
    return ""


def _line(body: JsonDict, created: str) -> SurveyLine:
    return SurveyLine(
        id=str(body["id"]),
        subject=str(body.get("description") or body.get("reason") or body["id"]),
        about=_about(body).strip(),
        sent=created,
        status=str(body.get("status") or ""),
    )


def surveys_page(
    session: Session, principal: Principal, customer_id: str, *, number: int = 1
) -> SurveysPage:
    """One page of the customer's surveys, open ones first (newest first within): two
    queries whatever their number (the count of open ones rides along each row)."""
    name = scoped_customer(session, principal, customer_id)
    PARTY_INTERACTION_KIND.authorize(principal, READ)
    row = PartyInteractionRow
    answered = case((row.status == OPEN, 0), else_=1)
    found = session.execute(
        PARTY_INTERACTION_KIND.scoped(
            principal,
            paged(
                select(row.body, row.created_at, func.sum(1 - answered).over().label("open"))
                .where(
                    row.owner_customer_id == customer_id,
                    row.at_type == satisfaction.SURVEY_TYPE,
                )
                .order_by(answered, row.created_at.desc(), row.id),
                number,
            ),
        )
    ).all()
    shown, paging = page_of(found, number)
    return SurveysPage(
        customer_id,
        name,
        [_line(body, when(created.isoformat())) for body, created, _ in shown],
        int(found[0][2] or 0) if found else 0,
        paging,
    )


@dataclass
class SurveyForm:
    """A survey with its questions, or its answer once given; after a refused post,
    what was typed and what is wrong with it (field → reason)."""

    customer_id: str
    customer_name: str
    survey: SurveyLine
    answer: JsonDict | None
    csat: str = ""
    nps: str = ""
    comment: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    csat_choices: list[int] = field(default_factory=lambda: CSAT_CHOICES)
    nps_choices: list[int] = field(default_factory=lambda: NPS_CHOICES)
    comment_max: int = satisfaction.MAX_COMMENT
    when = staticmethod(when)

    @property
    def can_answer(self) -> bool:
        return self.survey.status == OPEN


def survey_form(
    session: Session, principal: Principal, customer_id: str, survey_id: str
) -> SurveyForm:
    """The survey's page: its questions while open, its answer once given (two
    queries)."""
    name = scoped_customer(session, principal, customer_id)
    PARTY_INTERACTION_KIND.authorize(principal, READ)
    row = PartyInteractionRow
    found = session.execute(
        PARTY_INTERACTION_KIND.scoped(
            principal,
            select(row.body, row.created_at).where(
                row.id == survey_id,
                row.owner_customer_id == customer_id,
                row.at_type == satisfaction.SURVEY_TYPE,
            ),
        )
    ).first()
    if found is None:
        raise NotFound(f"no satisfaction survey with id {survey_id}")
    body, created = found
    answer = body.get("surveyAnswer")
    return SurveyForm(
        customer_id,
        name,
        _line(body, when(created.isoformat())),
        answer if isinstance(answer, dict) else None,
    )


def _score(text: str, choices: list[int]) -> int | None:
    """A score as typed or chosen; None unless it is one of the choices."""
    return int(text) if text.isdigit() and int(text) in choices else None


def answer_survey(
    session: Session,
    principal: Principal,
    customer_id: str,
    survey_id: str,
    form: dict[str, str],
) -> SurveyForm | None:
    """The customer's answer, stored through the survey service (as the API's
    ``answer``): None when stored, else the form again with what was typed and the
    reason beside each bad field."""
    page = survey_form(session, principal, customer_id, survey_id)
    page.csat = form.get("csat", "").strip()
    page.nps = form.get("nps", "").strip()
    page.comment = form.get("comment", "").strip()
    csat, nps = _score(page.csat, CSAT_CHOICES), _score(page.nps, NPS_CHOICES)
    if csat is None:
        page.errors["csat"] = "range"
    if nps is None:
        page.errors["nps"] = "range"
    if len(page.comment) > satisfaction.MAX_COMMENT:
        page.errors["comment"] = "long"
    if page.errors or csat is None or nps is None:
        return page
    satisfaction.answer_survey(
        session, principal, survey_id, csat=csat, nps=nps, comment=page.comment
    )
    return None
