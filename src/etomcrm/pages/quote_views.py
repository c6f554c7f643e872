"""What the quote pages show and do (seed 5.2, issue 11), through the selling services
the API uses:

- staff build a quote as sites by offerings with an SLA level per site
  (:func:`etomcrm.selling.quotes.draft_quote`, ``revise_quote``), see the materials
  each site needs with stock, lead time and ready-by date, the prices and the internal
  cost estimate with its margin (:func:`etomcrm.selling.quote_costs.cost_estimate`),
  submit it, approve another person's discount (four eyes, ``approve_quote``), cancel
  it, record the customer's education (3.4.2) and compare its versions side by side;
- a customer's user reads its quotes, the education brief of one, and accepts it with
  the brief acknowledged (:func:`etomcrm.selling.education.accept_with_education`) or
  rejects it with a reason;
- either downloads the quote's PDF (:func:`etomcrm.selling.quote_print.quote_document`).

Every read is scoped as in the API: the customer is read first (another customer's
user gets 404), and a quote of another customer under this one's address is a 404 too.
Each page issues a fixed number of queries whatever the number of sites and items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.catalog.models import ProductOfferingRow, ProductSpecificationRow
from etomcrm.catalog.service import SLA_TYPE
from etomcrm.config import get_settings
from etomcrm.core import resources
from etomcrm.core.errors import Forbidden, InvalidRequest, NotFound
from etomcrm.core.resources import READ
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.service import customer_of
from etomcrm.pages.portal_views import scoped_customer, sites_of, when
from etomcrm.security.service import Principal
from etomcrm.selling import education, quote_print, quotes
from etomcrm.selling.models import QuoteRow
from etomcrm.selling.quote_costs import CostEstimate, cost_estimate
from etomcrm.selling.quotes import (
    APPROVER_ROLES,
    DECIDED_STATES,
    QUOTE_KIND,
    QUOTE_WRITERS,
    QuoteLine,
    discount_needs_approval,
    education_recorded,
    quote_totals,
)

QUOTE_LIMIT = 200
DESCRIPTION_MAX = 2000
NOTE_MAX = 2000
OPEN_STATES = ("inProgress", "pending", "approved")
DASH = "\N{EN DASH}"  # a version without the site


def _is_staff_writer(principal: Principal) -> bool:
    return not principal.is_customer and principal.role in QUOTE_WRITERS


def _own_quote(session: Session, principal: Principal, customer_id: str, quote_id: str) -> JsonDict:
    body, _ = resources.get(session, QUOTE_KIND, principal, quote_id)
    if customer_of(body) != customer_id:
        # A quote of another customer typed under this one's address: nothing here.
        raise NotFound(f"no quote with id {quote_id}")
    return body


def _characteristic(item: JsonDict, name: str) -> Any:
    for ch in (item.get("product") or {}).get("productCharacteristic", []) or []:
        if isinstance(ch, dict) and ch.get("name") == name:
            return ch.get("value")
    return None


def _amount(item: JsonDict, price_type: str) -> Decimal | None:
    found = [
        Decimal(str(p["price"]["dutyFreeAmount"]["value"]))
        for p in item.get("quoteItemPrice", []) or []
        if isinstance(p, dict) and p.get("priceType") == price_type
    ]
    return sum(found, Decimal(0)) if found else None


def _usage_rate(item: JsonDict) -> str:
    for price in item.get("quoteItemPrice", []) or []:
        if isinstance(price, dict) and price.get("priceType") == "usage":
            value = price["price"]["dutyFreeAmount"]["value"]
            return f"{value} EUR / {price.get('unitOfMeasure') or 'unit'}"
    return ""


# ----- the list -----------------------------------------------------------------------------


@dataclass(frozen=True)
class QuoteSummary:
    id: str
    customer_id: str
    customer_name: str
    version: str
    state: str
    date: str
    valid_until: str
    sites: int
    one_time: Decimal
    monthly: Decimal
    discount: Decimal


def _summary(body: JsonDict, customer_name: str = "") -> QuoteSummary:
    totals = quote_totals(body)
    sites = {
        str(((i.get("product") or {}).get("place") or [{}])[0].get("id"))
        for i in body.get("quoteItem", []) or []
        if isinstance(i, dict)
    }
    return QuoteSummary(
        id=str(body["id"]),
        customer_id=str(customer_of(body) or ""),
        customer_name=customer_name,
        version=str(body.get("version") or "1"),
        state=str(body.get("state") or ""),
        date=when(body.get("quoteDate")),
        valid_until=str((body.get("validFor") or {}).get("endDateTime") or "")[:10],
        sites=len(sites),
        one_time=totals.get("oneTime", Decimal(0)),
        monthly=totals.get("recurring", Decimal(0)),
        discount=Decimal(str(body.get("discountPercent") or 0)),
    )


@dataclass(frozen=True)
class QuotesPage:
    customer_id: str
    customer_name: str
    quotes: list[QuoteSummary]
    can_draft: bool


def _current_quotes(principal: Principal, *conditions: Any) -> Any:
    """The current versions (a superseded version is kept as a quote of its own)."""
    return QUOTE_KIND.scoped(
        principal,
        select(QuoteRow.body)
        .where(QuoteRow.body["supersededBy"].as_string().is_(None), *conditions)
        .order_by(QuoteRow.created_at.desc(), QuoteRow.id)
        .limit(QUOTE_LIMIT),
    )


def quotes_page(session: Session, principal: Principal, customer_id: str) -> QuotesPage:
    """The customer's quotes, newest first: two queries whatever their number."""
    name = scoped_customer(session, principal, customer_id)
    QUOTE_KIND.authorize(principal, READ)
    bodies = session.scalars(
        _current_quotes(principal, QuoteRow.owner_customer_id == customer_id)
    ).all()
    return QuotesPage(
        customer_id, name, [_summary(b, name) for b in bodies], _is_staff_writer(principal)
    )


def approvals_page(session: Session, principal: Principal) -> list[QuoteSummary]:
    """Staff: the quotes whose discount waits for a second person's approval, oldest
    first, across customers (the home page's work list leads here): one query."""
    if principal.is_customer or principal.role not in APPROVER_ROLES:
        raise Forbidden("a discount is approved by a sales manager (role sales or admin)")
    bodies = session.scalars(
        select(QuoteRow.body)
        .where(QuoteRow.status == "pending", QuoteRow.body["supersededBy"].as_string().is_(None))
        .order_by(QuoteRow.updated_at, QuoteRow.id)
        .limit(QUOTE_LIMIT)
    ).all()
    return [_summary(b) for b in bodies]


# ----- one quote ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemView:
    id: str
    offering: str
    quantity: int
    is_sla: bool
    one_time: Decimal | None
    monthly: Decimal | None
    usage: str
    # The material's answer from the stock: inStock or replenishment, with its dates.
    material: str | None
    lead_time_days: int | None
    ready_by: str
    # Staff: what the line costs the provider, once and each month.
    cost_one_time: Decimal | None = None
    cost_monthly: Decimal | None = None


@dataclass
class SiteView:
    id: str
    name: str
    sla: str
    items: list[ItemView] = field(default_factory=list)
    revenue: Decimal | None = None  # staff: over the contract term
    cost: Decimal | None = None

    @property
    def one_time(self) -> Decimal:
        return sum((i.one_time or Decimal(0) for i in self.items), Decimal(0))

    @property
    def monthly(self) -> Decimal:
        return sum((i.monthly or Decimal(0) for i in self.items), Decimal(0))

    @property
    def ready_by(self) -> str:
        return max((i.ready_by for i in self.items if i.ready_by), default="")


@dataclass(frozen=True)
class Approval:
    state: str
    requested_by: str
    requested_at: str
    approver: str
    given_at: str


@dataclass
class QuotePage:
    customer_id: str
    customer_name: str
    quote: JsonDict
    summary: QuoteSummary
    sites: list[SiteView]
    approval: Approval | None
    threshold: Decimal
    versions: list[str]  # earlier versions' ids, oldest first
    current_id: str  # the current version's id (itself unless this is an old version)
    is_archived: bool
    brief: JsonDict
    educated: bool
    staff: bool
    costs: CostEstimate | None = None
    can_submit: bool = False
    can_approve: bool = False
    approve_refusal: str = ""  # why this person may not approve (four eyes)
    can_cancel: bool = False
    can_revise: bool = False
    can_educate: bool = False
    can_decide: bool = False  # the customer's accept or reject
    notes: list[JsonDict] = field(default_factory=list)
    # The forms' state after a refused post: what was typed, what is wrong.
    form: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    channels: tuple[str, ...] = tuple(sorted(education.CHANNELS))
    when = staticmethod(when)


def _sites(body: JsonDict, costs: CostEstimate | None) -> list[SiteView]:
    cost_of = {line.item_id: line for line in costs.lines} if costs else {}
    per_site = costs.per_site() if costs else {}
    sites: dict[str, SiteView] = {}
    for item in body.get("quoteItem", []) or []:
        if not isinstance(item, dict):
            continue
        place = ((item.get("product") or {}).get("place") or [{}])[0]
        site_id = str(place.get("id"))
        sla = str(_characteristic(item, "slaLevel") or "none")
        site = sites.setdefault(site_id, SiteView(site_id, str(place.get("name") or site_id), sla))
        material = _characteristic(item, "materialAvailability")
        lead = _characteristic(item, "materialLeadTimeDays")
        line = cost_of.get(str(item.get("id")))
        site.items.append(
            ItemView(
                id=str(item.get("id")),
                offering=str((item.get("productOffering") or {}).get("name") or ""),
                quantity=int(item.get("quantity", 1)),
                is_sla=str((item.get("productOffering") or {}).get("name") or "") == sla,
                one_time=_amount(item, "oneTime"),
                monthly=_amount(item, "recurring"),
                usage=_usage_rate(item),
                material=str(material) if material is not None else None,
                lead_time_days=int(lead) if lead is not None else None,
                ready_by=str(_characteristic(item, "materialReadyBy") or ""),
                cost_one_time=line.one_time_cost if line else None,
                cost_monthly=line.monthly_cost if line else None,
            )
        )
    for site_id, (revenue, cost) in per_site.items():
        if site_id in sites:
            sites[site_id].revenue, sites[site_id].cost = revenue, cost
    return list(sites.values())


def _approval(body: JsonDict) -> Approval | None:
    for entry in body.get("authorization", []) or []:
        if isinstance(entry, dict) and entry.get("@type") == quotes.DISCOUNT_APPROVAL_TYPE:
            approver = (entry.get("approver") or [{}])[0]
            return Approval(
                state=str(entry.get("state") or ""),
                requested_by=str((entry.get("requestedBy") or {}).get("name") or ""),
                requested_at=when(entry.get("requestedDate")),
                approver=str(approver.get("name") or ""),
                given_at=when(entry.get("givenDate")) if entry.get("givenDate") else "",
            )
    return None


def quote_page(
    session: Session,
    principal: Principal,
    customer_id: str,
    quote_id: str,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> QuotePage:
    """One quote (any version) per site, with the brief of 3.4.2 and, for staff, the
    cost estimate and the actions the person may take: a fixed number of queries."""
    name = scoped_customer(session, principal, customer_id)
    body = _own_quote(session, principal, customer_id, quote_id)
    staff = not principal.is_customer
    costs = cost_estimate(session, body) if staff else None
    state = str(body.get("state"))
    archived = bool(body.get("supersededBy"))
    approval = _approval(body)
    writer = _is_staff_writer(principal) and not archived
    page = QuotePage(
        customer_id=customer_id,
        customer_name=name,
        quote=body,
        summary=_summary(body, name),
        sites=_sites(body, costs),
        approval=approval,
        threshold=Decimal(str(get_settings().quote_discount_approval_percent)),
        versions=[
            str(v.get("id")) for v in body.get("previousVersion") or [] if isinstance(v, dict)
        ],
        current_id=str((body.get("supersededBy") or {}).get("id") or body["id"]),
        is_archived=archived,
        brief=education.education_brief(session, str(body["id"]), principal=principal),
        educated=education_recorded(session, body),
        staff=staff,
        costs=costs,
        notes=[n for n in body.get("note") or [] if isinstance(n, dict)],
        form=form or {},
        errors=errors or {},
    )
    if writer:
        page.can_submit = state == "inProgress"
        page.can_cancel = state in OPEN_STATES
        page.can_revise = state in OPEN_STATES
        page.can_educate = state in OPEN_STATES
    if writer and state == "pending" and approval is not None:
        requester = next(
            (
                a.get("requestedBy", {}).get("id")
                for a in body.get("authorization") or []
                if isinstance(a, dict)
            ),
            None,
        )
        if principal.role not in APPROVER_ROLES:
            page.approve_refusal = "role"
        elif requester == principal.id:
            page.approve_refusal = "own"
        else:
            page.can_approve = True
    page.can_decide = principal.is_customer and state == "approved" and not archived
    return page


def quote_action(
    session: Session, principal: Principal, customer_id: str, quote_id: str, action: str
) -> None:
    """Staff: submit, approve (another person's discount) or cancel the quote, through
    the API's process functions."""
    scoped_customer(session, principal, customer_id)
    _own_quote(session, principal, customer_id, quote_id)
    steps = {
        "submit": quotes.submit_quote,
        "approve": quotes.approve_quote,
        "cancel": quotes.cancel_quote,
    }
    if action not in steps:
        raise InvalidRequest(f"action is one of {', '.join(steps)}, not {action!r}")
    steps[action](session, principal, quote_id)


def record_education(
    session: Session,
    principal: Principal,
    customer_id: str,
    quote_id: str,
    form: dict[str, str],
) -> QuotePage | None:
    """Staff: record that the brief was presented (3.4.2); None when recorded, else the
    page again with the reason beside each bad field."""
    presented_to = form.get("presented_to", "").strip()
    channel = form.get("channel", "").strip()
    note = form.get("note", "").strip()
    errors: dict[str, str] = {}
    if not presented_to:
        errors["presented_to"] = "empty"
    elif len(presented_to) > 200:
        errors["presented_to"] = "long"
    if channel not in education.CHANNELS:
        errors["channel"] = "channel"
    if len(note) > NOTE_MAX:
        errors["note"] = "long"
    if errors:
        return quote_page(
            session,
            principal,
            customer_id,
            quote_id,
            form={"presented_to": presented_to, "channel": channel, "note": note},
            errors=errors,
        )
    scoped_customer(session, principal, customer_id)
    _own_quote(session, principal, customer_id, quote_id)
    education.record_education(
        session, principal, quote_id, presented_to=presented_to, channel=channel, note=note
    )
    return None


def decide(
    session: Session,
    principal: Principal,
    customer_id: str,
    quote_id: str,
    form: dict[str, str],
) -> QuotePage | None:
    """The customer accepts the quote with the brief acknowledged, or rejects it with a
    reason; None when done, else the page again with the reason beside the field."""
    answer = form.get("answer", "")
    reason = form.get("reason", "").strip()
    acknowledged = form.get("acknowledged") == "yes"
    if answer not in ("accept", "reject"):
        # The page's two buttons say which; anything else was not sent by the page.
        raise InvalidRequest(f"answer is accept or reject, not {answer!r}")
    errors: dict[str, str] = {}
    if answer == "accept" and not acknowledged:
        errors["acknowledged"] = "missing"
    elif answer == "reject" and not reason:
        errors["reason"] = "empty"
    elif len(reason) > NOTE_MAX:
        errors["reason"] = "long"
    if errors:
        return quote_page(
            session, principal, customer_id, quote_id, form={"reason": reason}, errors=errors
        )
    scoped_customer(session, principal, customer_id)
    _own_quote(session, principal, customer_id, quote_id)
    if answer == "accept":
        education.accept_with_education(session, principal, quote_id, acknowledged=True)
    else:
        quotes.reject_quote(session, principal, quote_id, reason)
    return None


# ----- the builder --------------------------------------------------------------------------


@dataclass
class QuoteForm:
    """The quote builder: the customer's sites by the sellable offerings, an SLA level per
    site, discount and term; what was chosen or typed, and what is wrong with it."""

    customer_id: str
    customer_name: str
    sites: dict[str, str]  # id → name
    offerings: dict[str, str]  # id → name, the ones sold per site (no SLA levels)
    sla_levels: dict[str, str]  # id → name
    quote_id: str = ""  # set when revising
    version: str = ""
    chosen: dict[str, set[str]] = field(default_factory=dict)  # site → offering ids
    sla: dict[str, str] = field(default_factory=dict)  # site → SLA offering id
    all_offerings: set[str] = field(default_factory=set)  # the "every site" row
    all_sla: str = ""
    discount: str = "0"
    months: str = "36"
    description: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    threshold: Decimal = Decimal(0)


def _catalog(session: Session) -> tuple[dict[str, str], dict[str, str]]:
    """The sellable offerings (id → name) and the SLA levels among them: two queries."""
    rows = session.execute(
        select(ProductOfferingRow.id, ProductOfferingRow.name, ProductOfferingRow.body).order_by(
            ProductOfferingRow.name, ProductOfferingRow.id
        )
    ).all()
    sla_specs = set(
        session.scalars(
            select(ProductSpecificationRow.id).where(ProductSpecificationRow.at_type == SLA_TYPE)
        )
    )
    offerings: dict[str, str] = {}
    levels: dict[str, str] = {}
    for offering_id, name, body in rows:
        status = str(body.get("lifecycleStatus", "Active")).lower()
        if body.get("isSellable") is False or status in ("retired", "obsolete"):
            continue
        spec = body.get("productSpecification")
        if isinstance(spec, dict) and spec.get("id") in sla_specs:
            levels[offering_id] = str(name or offering_id)
        else:
            offerings[offering_id] = str(name or offering_id)
    return offerings, levels


def quote_form(
    session: Session, principal: Principal, customer_id: str, quote_id: str = ""
) -> QuoteForm:
    """The builder, empty for a new quote or filled from the quote being revised."""
    name = scoped_customer(session, principal, customer_id)
    if not _is_staff_writer(principal):
        raise Forbidden("quotes are drafted by sales (role sales or admin)")
    offerings, levels = _catalog(session)
    form = QuoteForm(
        customer_id,
        name,
        sites_of(session, customer_id),
        offerings,
        levels,
        threshold=Decimal(str(get_settings().quote_discount_approval_percent)),
    )
    if quote_id:
        body = _own_quote(session, principal, customer_id, quote_id)
        if body.get("supersededBy") or body.get("state") in DECIDED_STATES:
            raise InvalidRequest(
                f"quote {quote_id} is {body.get('state')}"
                + (" and an old version" if body.get("supersededBy") else "")
                + "; only an open current quote is revised"
            )
        form.quote_id, form.version = quote_id, str(body.get("version") or "")
        for item in body.get("quoteItem", []) or []:
            site = str(item["product"]["place"][0]["id"])
            offering = str(item["productOffering"]["id"])
            if offering in levels:
                form.sla[site] = offering
            else:
                form.chosen.setdefault(site, set()).add(offering)
        form.discount = str(body.get("discountPercent") or 0)
        form.months = str(body.get("contractDurationMonths") or 36)
        form.description = str(body.get("description") or "")
    return form


def _read_builder(form: QuoteForm, data: Mapping[str, Sequence[str]]) -> None:
    """Fill the builder from the posted fields: ``o-{site}`` (checked offering ids),
    ``sla-{site}``, the "every site" row ``o-all`` / ``sla-all``, discount and term."""

    def one(key: str) -> str:
        values = data.get(key) or [""]
        return values[0].strip()

    form.chosen = {
        site: {o for o in data.get(f"o-{site}", []) if o in form.offerings} for site in form.sites
    }
    form.chosen = {site: chosen for site, chosen in form.chosen.items() if chosen}
    form.sla = {site: one(f"sla-{site}") for site in form.sites if one(f"sla-{site}")}
    form.all_offerings = {o for o in data.get("o-all", []) if o in form.offerings}
    form.all_sla = one("sla-all")
    form.discount, form.months, form.description = (
        one("discount"),
        one("months"),
        one("description"),
    )


def _apply_to_every_site(form: QuoteForm) -> None:
    """The "every site" row's choice, copied to each site (the person then adjusts)."""
    for site in form.sites:
        if form.all_offerings:
            form.chosen[site] = set(form.all_offerings)
        if form.all_sla in form.sla_levels:
            form.sla[site] = form.all_sla
        elif form.all_sla == "none":
            form.sla.pop(site, None)


def _validated(form: QuoteForm) -> tuple[list[QuoteLine], dict[str, str | None], Decimal, int]:
    lines = [
        QuoteLine(site, offering)
        for site in form.sites
        for offering in form.offerings
        if offering in form.chosen.get(site, set())
    ]
    if not lines:
        form.errors["lines"] = "empty"
    for site, level in form.sla.items():
        if level not in form.sla_levels:
            form.errors[f"sla-{site}"] = "unknown"
        elif not form.chosen.get(site):
            form.errors[f"sla-{site}"] = "alone"
    discount = Decimal(0)
    try:
        discount = Decimal(form.discount.replace(",", ".") or "0")
        if not discount.is_finite() or not Decimal(0) <= discount <= Decimal(100):
            form.errors["discount"] = "range"
    except InvalidOperation:
        form.errors["discount"] = "number"
    months = 0
    if form.months.isdigit() and 1 <= int(form.months) <= 120:
        months = int(form.months)
    else:
        form.errors["months"] = "range"
    if len(form.description) > DESCRIPTION_MAX:
        form.errors["description"] = "long"
    sla: dict[str, str | None] = {site: form.sla.get(site) for site in form.chosen}
    return lines, sla, discount, months


def save_quote(
    session: Session,
    principal: Principal,
    customer_id: str,
    data: Mapping[str, Sequence[str]],
    quote_id: str = "",
) -> QuoteForm | str:
    """Draft a quote (or revise ``quote_id``) from the builder: the quote's id, or the
    builder again — with the "every site" row applied when that was asked for, or with
    the reason beside each bad field."""
    form = quote_form(session, principal, customer_id, quote_id)
    _read_builder(form, data)
    if (data.get("do") or [""])[0] == "apply":
        _apply_to_every_site(form)
        return form
    lines, sla, discount, months = _validated(form)
    if form.errors:
        return form
    if quote_id:
        body = quotes.revise_quote(
            session,
            principal,
            quote_id,
            items=lines,
            sla_offering_id=sla,
            discount_percent=discount,
            contract_months=months,
            description=form.description,
        )
    else:
        body = quotes.draft_quote(
            session,
            principal,
            customer_id=customer_id,
            items=lines,
            sla_offering_id=sla,
            discount_percent=discount,
            contract_months=months,
            description=form.description,
        )
    return str(body["id"])


def needs_approval(discount: str) -> bool:
    try:
        return discount_needs_approval(Decimal(discount))
    except InvalidOperation:
        return False


# ----- versions side by side ----------------------------------------------------------------


@dataclass(frozen=True)
class VersionsPage:
    customer_id: str
    customer_name: str
    quote_id: str
    versions: list[QuoteSummary]  # oldest first
    margins: list[Decimal | None]  # staff: margin percent per version
    # (site name, offering) → quantity per version, None where the version lacks it
    rows: list[tuple[str, str, list[int | None]]]
    slas: list[tuple[str, list[str]]]  # site name → SLA level per version
    staff: bool


def versions_page(
    session: Session, principal: Principal, customer_id: str, quote_id: str
) -> VersionsPage:
    """Every version of a quote side by side: what each sells per site, its SLA levels,
    discount and totals (and, for staff, margin). Two queries for the quote's versions
    plus, for staff, the cost estimate's four, whatever the number of versions."""
    name = scoped_customer(session, principal, customer_id)
    current = _own_quote(session, principal, customer_id, quote_id)
    if current.get("supersededBy"):
        current = _own_quote(
            session, principal, customer_id, str(current["supersededBy"].get("id"))
        )
    ids = [str(v.get("id")) for v in current.get("previousVersion") or [] if isinstance(v, dict)]
    stored = {
        str(b["id"]): b
        for b in session.scalars(
            QUOTE_KIND.scoped(principal, select(QuoteRow.body).where(QuoteRow.id.in_(ids)))
        )
    }
    bodies = [stored[i] for i in ids if i in stored] + [current]
    staff = not principal.is_customer
    margins: list[Decimal | None] = []
    if staff:
        # One estimate over all versions' items, split per version: the catalog and
        # stock are read once.
        merged = {
            "quoteItem": [
                {**item, "id": f"{n}:{item.get('id')}"}
                for n, body in enumerate(bodies)
                for item in body.get("quoteItem", []) or []
                if isinstance(item, dict)
            ],
            "contractDurationMonths": 1,
        }
        estimate = cost_estimate(session, merged)
        for n, body in enumerate(bodies):
            part = CostEstimate(
                months=int(body.get("contractDurationMonths") or 1),
                lines=[line for line in estimate.lines if line.item_id.startswith(f"{n}:")],
            )
            margins.append(part.margin_percent)
    cells: dict[tuple[str, str], list[int | None]] = {}
    slas: dict[str, list[str]] = {}
    for n, body in enumerate(bodies):
        for item in body.get("quoteItem", []) or []:
            place = item["product"]["place"][0]
            site = str(place.get("name") or place.get("id"))
            offering = str(item["productOffering"].get("name") or item["productOffering"]["id"])
            level = str(_characteristic(item, "slaLevel") or "none")
            slas.setdefault(site, [DASH] * len(bodies))[n] = level
            if offering == level:
                continue
            row = cells.setdefault((site, offering), [None] * len(bodies))
            row[n] = (row[n] or 0) + int(item.get("quantity", 1))
    return VersionsPage(
        customer_id=customer_id,
        customer_name=name,
        quote_id=str(current["id"]),
        versions=[_summary(b, name) for b in bodies],
        margins=margins,
        rows=[(site, offering, row) for (site, offering), row in sorted(cells.items())],
        slas=sorted(slas.items()),
        staff=staff,
    )


# ----- the document -------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    content: bytes
    filename: str
    media_type: str = "application/pdf"


def quote_download(
    session: Session, principal: Principal, customer_id: str, quote_id: str, language: str
) -> Download:
    """The quote's PDF, in the reader's language."""
    scoped_customer(session, principal, customer_id)
    _own_quote(session, principal, customer_id, quote_id)
    content, filename = quote_print.quote_document(session, principal, quote_id, language)
    return Download(content, filename)
