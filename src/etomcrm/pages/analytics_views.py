"""What the analyst workspace's pages show and do (seed 5.3, "Where people see it":
dashboards with charts, drill-down to the customers behind a figure, and CSV export;
"the same figures through the API"), through the same service functions as the API:

- contact statistics (3.2.3) are :func:`etomcrm.analytics.contacts.contact_statistics`;
- customer profitability is :func:`etomcrm.analytics.profitability.customer_profitability`;
- the CSV downloads are :func:`etomcrm.analytics.export.csv_text` of the same rows the
  API's ``format=csv`` writes;
- the import of history is :func:`etomcrm.analytics.history.import_history_text`, whole
  or not at all, each bad row named by its line number.

The dashboards are the analyst's and marketing's (:data:`analytics_nav.ANALYSTS`); the
import is the analyst's and the administrator's, as the API's. Every page reads a
bounded number of queries whatever the size of the store: the reports read each fact
table once, the names of the customers shown are read in one query, a drill-down lists
at most :data:`LIST_LIMIT` contacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.analytics.contacts import GROUPINGS as CONTACT_GROUPINGS
from etomcrm.analytics.contacts import ContactFigures, ContactReport, contact_statistics
from etomcrm.analytics.export import csv_text
from etomcrm.analytics.history import (
    CONTRACT_TYPES,
    OPTIONAL,
    PAYMENT_METHODS,
    REQUIRED,
    HistoryRefused,
    import_history_text,
)
from etomcrm.analytics.models import (
    AnContactFact,
    AnCustomer,
    AnHistoryCustomer,
    AnHistoryImport,
)
from etomcrm.analytics.profitability import GROUPINGS as PROFIT_GROUPINGS
from etomcrm.analytics.profitability import Profit, ProfitabilityReport, customer_profitability
from etomcrm.config import get_settings
from etomcrm.core.errors import Forbidden, InvalidRequest
from etomcrm.pages import drawing
from etomcrm.pages.analytics_nav import ANALYSTS, DASHBOARDS, WORKSPACE, Dashboard
from etomcrm.pages.portal_views import Download
from etomcrm.security.service import Principal, Role

# The import writes history: the analyst's and the administrator's, as the API's.
IMPORTERS = frozenset({Role.ADMIN, Role.ANALYST})
# Rows of a table on a page (the CSV has them all) and groups drawn in a chart.
LIST_LIMIT = 200
CHART_GROUPS = 20
# Refusals of an import shown on the page (the count says how many there were).
SHOWN_REFUSALS = 500
RECENT_IMPORTS = 10
CONTACTS = WORKSPACE + "/contacts"
PROFITABILITY = WORKSPACE + "/profitability"
HISTORY = WORKSPACE + "/history"


def analysts_only(principal: Principal) -> None:
    """The dashboards are the analyst's, marketing's and the administrator's."""
    if principal.is_customer or principal.role not in ANALYSTS:
        raise Forbidden(
            "the analytical dashboards are for the roles admin, analyst and marketing, "
            f"not {principal.role}"
        )


def _names(session: Session, ids: set[str]) -> dict[str, str]:
    """The shown customers' names from the customer dimension (one query)."""
    if not ids:
        return {}
    return {
        str(cid): str(name or cid)
        for cid, name in session.execute(
            select(AnCustomer.customer_id, AnCustomer.name).where(
                AnCustomer.customer_id.in_(sorted(ids))
            )
        )
    }


def _query(values: dict[str, str]) -> str:
    kept = {k: v for k, v in values.items() if v}
    return "?" + urlencode(kept) if kept else ""


def _day(raw: str, name: str, errors: dict[str, str]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = raw
        return None


def _month(raw: str, name: str, errors: dict[str, str]) -> date | None:
    if not raw:
        return None
    try:
        if len(raw) != 7:
            raise ValueError(raw)
        return date.fromisoformat(raw + "-01")
    except ValueError:
        errors[name] = raw
        return None


def _chosen(raw: str, allowed: tuple[str, ...], name: str, errors: dict[str, str]) -> str:
    if raw in allowed:
        return raw
    errors[name] = raw
    return allowed[0]


# ----- the workspace's index ----------------------------------------------------------


@dataclass(frozen=True)
class Headline:
    """This month's figures the index greets with."""

    month: str
    contacts: ContactFigures
    response_target_minutes: int
    handling_target_minutes: int
    profit: Profit
    currency: str
    imports: int
    history_rows: int


@dataclass(frozen=True)
class IndexPage:
    dashboards: tuple[Dashboard, ...]
    headline: Headline


def index_page(session: Session, principal: Principal, *, today: date) -> IndexPage:
    """The workspace's entry: every dashboard, and this month's contacts, profitability
    and the history imported so far (eight queries whatever the size of the store)."""
    analysts_only(principal)
    first = today.replace(day=1)
    contacts = contact_statistics(session, by="total", start=first, end=today)
    profit = customer_profitability(session, by="month", start=first, end=first)
    imports, rows = session.execute(
        select(func.count(), func.coalesce(func.sum(AnHistoryImport.row_count), 0))
    ).one()
    return IndexPage(
        DASHBOARDS,
        Headline(
            month=f"{first.year:04d}-{first.month:02d}",
            contacts=contacts.total,
            response_target_minutes=contacts.response_target_minutes,
            handling_target_minutes=contacts.handling_target_minutes,
            profit=profit.total,
            currency=profit.currency,
            imports=int(imports),
            history_rows=int(rows),
        ),
    )


# ----- 3.2.3 contact statistics ---------------------------------------------------------


@dataclass(frozen=True)
class ContactLine:
    """One group's figures with what its name links to."""

    figures: ContactFigures
    label: str
    drill: str  # the contacts behind the figures
    customer_id: str | None  # a customer's group links to the customer too


@dataclass(frozen=True)
class ContactItem:
    """One contact behind a figure."""

    interaction_id: str
    customer_id: str
    customer_name: str
    received_at: datetime
    channel: str
    reason: str
    direction: str
    status: str | None
    response_minutes: Decimal | None
    handling_minutes: Decimal | None
    first_contact_resolved: bool
    ended: bool


@dataclass(frozen=True)
class ContactDrill:
    key: str
    label: str
    count: int
    items: list[ContactItem]


@dataclass(frozen=True)
class ContactsPage:
    values: dict[str, str]  # the filter as asked
    errors: dict[str, str]
    groupings: tuple[str, ...]
    customer_name: str | None
    report: ContactReport | None
    lines: list[ContactLine] = field(default_factory=list)
    chart: drawing.HBarChart | None = None
    drill: ContactDrill | None = None

    @property
    def csv_href(self) -> str:
        return CONTACTS + ".csv" + _query({k: v for k, v in self.values.items() if k != "drill"})

    @property
    def shown(self) -> int:
        return len(self.lines)

    @property
    def groups(self) -> int:
        return len(self.report.groups) if self.report else 0


def _contact_filter(params: dict[str, str]) -> tuple[dict[str, str], dict[str, str], Any]:
    values = {
        "by": params.get("by", "") or "channel",
        "from": params.get("from", "").strip(),
        "to": params.get("to", "").strip(),
        "customer": params.get("customer", "").strip(),
        "drill": params.get("drill", ""),
    }
    errors: dict[str, str] = {}
    by = _chosen(values["by"], CONTACT_GROUPINGS, "by", errors)
    start, end = _day(values["from"], "from", errors), _day(values["to"], "to", errors)
    if start and end and end < start:
        errors["to"] = values["to"]
    return values, errors, (by, start, end, values["customer"] or None)


def _minutes(seconds: int | None) -> Decimal | None:
    return None if seconds is None else (Decimal(seconds) / 60).quantize(Decimal("0.1"))


def _contact_drill(
    session: Session, by: str, key: str, start: date | None, end: date | None, customer: str | None
) -> ContactDrill:
    """The contacts behind one group's figures, newest first (two queries: the count
    and at most :data:`LIST_LIMIT` of them with their customers' names)."""
    fact = AnContactFact
    where = []
    if by in ("channel", "reason", "customer"):
        column = {"channel": fact.channel, "reason": fact.reason, "customer": fact.customer_id}
        where.append(column[by] == key)
    if start is not None:
        where.append(fact.received_at >= datetime.combine(start, time(), UTC))
    if end is not None:
        where.append(fact.received_at < datetime.combine(end + timedelta(days=1), time(), UTC))
    if customer is not None:
        where.append(fact.customer_id == customer)
    count = int(session.scalar(select(func.count()).select_from(fact).where(*where)) or 0)
    rows = session.execute(
        select(fact, AnCustomer.name)
        .outerjoin(AnCustomer, AnCustomer.customer_id == fact.customer_id)
        .where(*where)
        .order_by(fact.received_at.desc(), fact.interaction_id)
        .limit(LIST_LIMIT)
    ).all()
    items = [
        ContactItem(
            interaction_id=c.interaction_id,
            customer_id=c.customer_id,
            customer_name=str(name or c.customer_id),
            received_at=c.received_at,
            channel=c.channel,
            reason=c.reason,
            direction=c.direction,
            status=c.status,
            response_minutes=_minutes(c.response_seconds),
            handling_minutes=_minutes(c.handling_seconds),
            first_contact_resolved=c.first_contact_resolved,
            ended=c.ended,
        )
        for c, name in rows
    ]
    label = key
    if by == "customer":
        label = next((i.customer_name for i in items), key)
    return ContactDrill(key=key, label=label, count=count, items=items)


def contacts_page(session: Session, principal: Principal, params: dict[str, str]) -> ContactsPage:
    """3.2.3 on a page: the contact figures per channel, reason or customer (or in
    total) for a period, the targets they are held against, a chart of the volumes, and
    the contacts behind a group's figures (``drill``); a bad filter is shown on the form
    (400), never a 500."""
    analysts_only(principal)
    values, errors, (by, start, end, customer) = _contact_filter(params)
    names = _names(session, {customer} if customer else set())
    customer_name = names.get(customer, customer) if customer else None
    if errors:
        return ContactsPage(values, errors, CONTACT_GROUPINGS, customer_name, None)
    report = contact_statistics(session, by=by, start=start, end=end, customer_id=customer)
    shown = report.groups[:LIST_LIMIT]
    if by == "customer":
        names |= _names(session, {g.key for g in shown})
    base = {k: v for k, v in values.items() if k != "drill"}
    lines = [
        ContactLine(
            figures=g,
            label=names.get(g.key, g.key) if by == "customer" else g.key,
            drill=CONTACTS + _query({**base, "drill": g.key}) + "#drill",
            customer_id=g.key if by == "customer" else None,
        )
        for g in shown
    ]
    chart = drawing.hbars(
        ("inbound", "outbound"),
        [
            (line.label, (line.figures.inbound, line.figures.outbound))
            for line in lines[:CHART_GROUPS]
        ],
    )
    drill = None
    if values["drill"]:
        drill = _contact_drill(session, by, values["drill"], start, end, customer)
    return ContactsPage(
        values, errors, CONTACT_GROUPINGS, customer_name, report, lines, chart, drill
    )


def contacts_download(session: Session, principal: Principal, params: dict[str, str]) -> Download:
    """The page's figures as the API's CSV (the groups, then the total)."""
    analysts_only(principal)
    _values, errors, (by, start, end, customer) = _contact_filter(params)
    if errors:
        raise InvalidRequest(f"the filter is not understood: {', '.join(sorted(errors))}")
    report = contact_statistics(session, by=by, start=start, end=end, customer_id=customer)
    rows = [g.as_row() for g in report.groups] + [report.total.as_row()]
    return Download(
        csv_text(rows).encode("utf-8"), f"contacts-by-{report.grouping}.csv", "text/csv"
    )


# ----- customer profitability -----------------------------------------------------------


@dataclass(frozen=True)
class ProfitLine:
    profit: Profit
    label: str
    drill: str | None  # a narrower view of the same figures
    customer_id: str | None  # a customer's line links to the customer too


@dataclass(frozen=True)
class ProfitabilityPage:
    values: dict[str, str]
    errors: dict[str, str]
    groupings: tuple[str, ...]
    customer_name: str | None
    report: ProfitabilityReport | None
    lines: list[ProfitLine] = field(default_factory=list)
    chart: drawing.HBarChart | None = None

    @property
    def csv_href(self) -> str:
        return PROFITABILITY + ".csv" + _query(self.values)

    @property
    def shown(self) -> int:
        return len(self.lines)

    @property
    def groups(self) -> int:
        return len(self.report.groups) if self.report else 0


def _profit_filter(params: dict[str, str]) -> tuple[dict[str, str], dict[str, str], Any]:
    values = {
        "by": params.get("by", "") or "customer",
        "from": params.get("from", "").strip(),
        "to": params.get("to", "").strip(),
        "customer": params.get("customer", "").strip(),
        "segment": params.get("segment", "").strip(),
    }
    errors: dict[str, str] = {}
    by = _chosen(values["by"], PROFIT_GROUPINGS, "by", errors)
    start, end = _month(values["from"], "from", errors), _month(values["to"], "to", errors)
    if start and end and end < start:
        errors["to"] = values["to"]
    return values, errors, (by, start, end, values["customer"] or None, values["segment"] or None)


def _profit_line(by: str, p: Profit, names: dict[str, str], values: dict[str, str]) -> ProfitLine:
    """A group and where its drill-down leads: a customer to its months, a segment to
    its customers, a month to its customers; a customer's month to the customer."""
    keep = {"from": values["from"], "to": values["to"]}
    if by == "customer":
        query = _query({**keep, "by": "month", "customer": p.key})
        return ProfitLine(p, names.get(p.key, p.key), PROFITABILITY + query, p.key)
    if by == "segment":
        query = _query({**keep, "by": "customer", "segment": p.key})
        return ProfitLine(p, p.key, PROFITABILITY + query, None)
    if by == "month":
        query = _query(
            {
                "by": "customer",
                "from": p.key,
                "to": p.key,
                "customer": values["customer"],
                "segment": values["segment"],
            }
        )
        return ProfitLine(p, p.key, PROFITABILITY + query, None)
    customer, _, month = p.key.rpartition(" ")
    return ProfitLine(p, f"{names.get(customer, customer)} {month}", None, customer)


def profitability_page(
    session: Session, principal: Principal, params: dict[str, str]
) -> ProfitabilityPage:
    """Customer profitability on a page: revenue, each part of the cost to serve and the
    profit per customer, segment, month, or customer and month, a chart of revenue
    against cost to serve, and the drill-down from a customer to its months (and from a
    segment or a month to its customers)."""
    analysts_only(principal)
    values, errors, (by, start, end, customer, segment) = _profit_filter(params)
    names = _names(session, {customer} if customer else set())
    customer_name = names.get(customer, customer) if customer else None
    if errors:
        return ProfitabilityPage(values, errors, PROFIT_GROUPINGS, customer_name, None)
    report = customer_profitability(
        session, by=by, start=start, end=end, customer_id=customer, segment=segment
    )
    shown = report.groups[:LIST_LIMIT]
    if by in ("customer", "customerMonth"):
        names |= _names(session, {g.key.rpartition(" ")[0] or g.key for g in shown})
    lines = [_profit_line(by, g, names, values) for g in shown]
    chart = drawing.hbars(
        ("revenue", "cost to serve"),
        [
            (line.label, (line.profit.revenue, line.profit.cost_to_serve))
            for line in lines[:CHART_GROUPS]
        ],
    )
    return ProfitabilityPage(values, errors, PROFIT_GROUPINGS, customer_name, report, lines, chart)


def profitability_download(
    session: Session, principal: Principal, params: dict[str, str]
) -> Download:
    """The page's figures as the API's CSV (the groups, then the total)."""
    analysts_only(principal)
    _values, errors, (by, start, end, customer, segment) = _profit_filter(params)
    if errors:
        raise InvalidRequest(f"the filter is not understood: {', '.join(sorted(errors))}")
    report = customer_profitability(
        session, by=by, start=start, end=end, customer_id=customer, segment=segment
    )
    rows = [g.as_row() for g in report.groups] + [report.total.as_row()]
    return Download(
        csv_text(rows).encode("utf-8"), f"profitability-by-{report.grouping}.csv", "text/csv"
    )


# ----- the import of history ------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    required: bool


@dataclass(frozen=True)
class PastImport:
    import_id: str
    file_name: str
    imported_at: datetime
    rows: int
    imported_by: str


@dataclass(frozen=True)
class HistoryPage:
    may_import: bool
    columns: list[Column]
    contract_types: list[str]
    payment_methods: list[str]
    max_bytes: int
    imports: list[PastImport]
    file_name: str = ""
    refusals: list[tuple[int, str]] = field(default_factory=list)
    refused: int = 0
    problem: str | None = None  # "empty" or "encoding" (at ``byte``)
    byte: int | None = None
    imported: PastImport | None = None
    linked: int | None = None


def _history(session: Session, principal: Principal, **outcome: Any) -> HistoryPage:
    imports = [
        PastImport(r.import_id, r.file_name, r.imported_at, r.row_count, r.imported_by)
        for r in session.scalars(
            select(AnHistoryImport)
            .order_by(AnHistoryImport.imported_at.desc(), AnHistoryImport.import_id)
            .limit(RECENT_IMPORTS)
        )
    ]
    return HistoryPage(
        may_import=principal.role in IMPORTERS,
        columns=[Column(c, True) for c in REQUIRED] + [Column(c, False) for c in OPTIONAL],
        contract_types=sorted(CONTRACT_TYPES),
        payment_methods=sorted(PAYMENT_METHODS),
        max_bytes=get_settings().analytics_history_max_bytes,
        imports=imports,
        **outcome,
    )


def history_page(session: Session, principal: Principal, imported: str = "") -> HistoryPage:
    """The import's form, its documented format and the latest imports; after an import
    (``imported``, the id it answered) what it imported."""
    analysts_only(principal)
    page = _history(session, principal)
    done = next((i for i in page.imports if i.import_id == imported), None)
    if imported and done is None:
        row = session.get(AnHistoryImport, imported)
        if row is not None:
            done = PastImport(
                row.import_id, row.file_name, row.imported_at, row.row_count, row.imported_by
            )
    if done is None:
        return page
    linked = session.scalar(
        select(func.count())
        .select_from(AnHistoryCustomer)
        .where(
            AnHistoryCustomer.import_id == done.import_id,
            AnHistoryCustomer.customer_id.is_not(None),
        )
    )
    return HistoryPage(**{**page.__dict__, "imported": done, "linked": int(linked or 0)})


def import_history(
    session: Session, principal: Principal, file_name: str, content: bytes
) -> str | HistoryPage:
    """The uploaded file imported whole (its import id), or the page again naming each
    bad row by its line number — nothing imported then (the refusal leaves the
    transaction before anything is written)."""
    analysts_only(principal)
    if principal.role not in IMPORTERS:
        raise Forbidden(
            f"the import of history is for the roles admin and analyst, not {principal.role}"
        )
    name = file_name or "upload.csv"
    if not content:
        return _history(session, principal, file_name=name, problem="empty")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return _history(session, principal, file_name=name, problem="encoding", byte=error.start)
    try:
        result = import_history_text(session, text, file_name=name, imported_by=principal.name)
    except HistoryRefused as refused:
        return _history(
            session,
            principal,
            file_name=name,
            refusals=refused.errors[:SHOWN_REFUSALS],
            refused=len(refused.errors),
        )
    return result.import_id
