"""Predict (seed 5.3): the churn model, trained on the provider's own history.

**Who it learns from.** Labelled customers of two kinds:

- imported history (``an_history_customer``, README "Import of history"): the outcome
  is in the file (``churned``);
- lived customers (``an_customer`` and the facts): a terminated customer churned; an
  active one that has been a customer for ``churn_stayed_after_months`` (12) stayed.
  Younger active customers (and prospects, suspended ones) are not labelled: they are
  the ones scored.

A history row linked to a live customer (the same id) is one customer: its contract
comes from the file, its tickets, contacts, credits and dunning from the facts, and the
live customer is not counted a second time.

**Features** (one row per customer): tenure in months, monthly charges, total charges,
number of services, trouble tickets, inbound contacts, SLA credits and dunning cases
(counts over the customer's life), and the contract type and payment method as
indicators (two-year and direct debit are the baseline). A live customer's contract
and payment method are not in the analytical store: they are ``unknown``, an indicator
of its own, so that the model does not take them for the baseline.

**The model** is a logistic regression on standardized features (each column minus its
mean, divided by its standard deviation). Its reasons are exact: the log-odds of a
customer are the intercept plus, per feature, coefficient * standardized value, so each
feature's contribution is that product and the reasons name the ones that pushed the
score up and down the most. The probability is calibrated by a Platt map
(``a`` * log-odds + ``b`` through the logistic function, as scikit-learn's
``CalibratedClassifierCV(method="sigmoid")``) fitted on the out-of-fold log-odds; it is
kept only when it lowers the out-of-fold Brier score. A monotone map does not change the
order of the contributions, so the reasons stay exact.

**Evaluation** is out of fold (stratified k-fold, 5 by default): AUC, Brier score,
expected calibration error over ten reliability bins (with the bins), and the lift of
the top decile (churn rate of the 10 % scored highest over the base rate). An AUC below
``churn_min_auc`` is reported as chance level, and such a model does not replace the
rule of 3.9.3.

**Storage**: ``an_churn_model``, one row per fit, as numbers and names (no pickle).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.analytics.models import (
    AnChurnModel,
    AnContactFact,
    AnCustomer,
    AnDunningFact,
    AnHistoryCustomer,
    AnProduct,
    AnRevenueFact,
    AnTicketFact,
)
from etomcrm.config import get_settings
from etomcrm.core.errors import InvalidRequest, NotFound

Matrix = NDArray[np.float64]

NUMERIC = (
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "services",
    "tickets",
    "contacts",
    "sla_credits",
    "dunning_cases",
)
CONTRACTS = ("month-to-month", "one-year", "unknown")  # baseline: two-year
PAYMENTS = ("bank-transfer", "credit-card", "other", "unknown")  # baseline: direct-debit
FEATURES = (
    *NUMERIC,
    *(f"contract:{c}" for c in CONTRACTS),
    *(f"payment:{p}" for p in PAYMENTS),
)
UNKNOWN = "unknown"
ENDED = frozenset({"terminated"})
ACTIVE = "active"
DEFAULT_FOLDS = 5
MAX_FOLDS = 10
BINS = 10
TOP_REASONS = 3
MAX_PAGE = 500
# The regularisation of the logistic regression: mild, so that a feature without
# signal gets a coefficient near zero and one with signal is hardly shrunk.
C = 1.0

WORDS = {
    "tenure_months": "tenure",
    "monthly_charges": "monthly charges",
    "total_charges": "total charges",
    "services": "services taken",
    "tickets": "trouble tickets",
    "contacts": "inbound contacts",
    "sla_credits": "SLA credits",
    "dunning_cases": "dunning cases",
}


def feature_words(name: str, value: float) -> str:
    """A feature and a customer's value of it, in words."""
    if name in ("contract:unknown", "payment:unknown"):
        what = "contract type" if name.startswith("contract") else "payment method"
        return f"{what} unknown" if value else f"{what} known"
    if name.startswith("contract:"):
        kind = name.split(":", 1)[1]
        return f"contract {kind}" if value else f"contract not {kind}"
    if name.startswith("payment:"):
        kind = name.split(":", 1)[1]
        return f"payment by {kind}" if value else f"payment not by {kind}"
    unit = {"tenure_months": " months", "monthly_charges": " EUR", "total_charges": " EUR"}
    shown = f"{value:.2f}" if name.endswith("charges") else f"{value:g}"
    return f"{WORDS[name]} {shown}{unit.get(name, '')}"


@dataclass
class Dataset:
    """The customers as feature rows; ``label`` 1 churned, 0 stayed, -1 not labelled."""

    keys: list[str]  # "history:<external id>" or the live customer id
    names: list[str | None]
    live_ids: list[str | None]
    x: Matrix
    label: NDArray[np.int64]


def _months_between(start: date | None, end: date) -> int:
    if start is None or start > end:
        return 0
    return (end.year - start.year) * 12 + end.month - start.month - int(end.day < start.day)


def _month_end(month: str) -> date:
    year, number = int(month[:4]), int(month[5:7])
    following = date(year + number // 12, number % 12 + 1, 1)
    return following - timedelta(days=1)


def _row(
    tenure: float,
    monthly: float,
    total: float,
    services: float,
    counts: Sequence[float],
    contract: str,
    payment: str,
) -> list[float]:
    return [
        tenure,
        monthly,
        total,
        services,
        *counts,
        *(float(contract == c) for c in CONTRACTS),
        *(float(payment == p) for p in PAYMENTS),
    ]


def _counts(session: Session, ids: Sequence[str] | None) -> dict[str, list[float]]:
    """Tickets, inbound contacts, SLA credits and dunning cases per customer: one grouped
    query per fact, however many customers."""
    found: dict[str, list[float]] = {}
    sources: list[Any] = [
        select(AnTicketFact.customer_id, func.count()).group_by(AnTicketFact.customer_id),
        select(AnContactFact.customer_id, func.count())
        .where(AnContactFact.direction == "inbound")
        .group_by(AnContactFact.customer_id),
        select(AnRevenueFact.customer_id, func.count())
        .where(AnRevenueFact.rate_type == "credit")
        .group_by(AnRevenueFact.customer_id),
        select(AnDunningFact.customer_id, func.count()).group_by(AnDunningFact.customer_id),
    ]
    columns: list[Any] = [
        AnTicketFact.customer_id,
        AnContactFact.customer_id,
        AnRevenueFact.customer_id,
        AnDunningFact.customer_id,
    ]
    for index, (stmt, column) in enumerate(zip(sources, columns, strict=True)):
        if ids is not None:
            stmt = stmt.where(column.in_(ids))
        for customer_id, count in session.execute(stmt):
            found.setdefault(customer_id, [0.0] * 4)[index] = float(count)
    return found


def _charges(session: Session, ids: Sequence[str] | None) -> dict[str, tuple[float, float, str]]:
    """Per customer: billed total (credits and discounts not taken off: what it was
    charged), the mean per billed month, and the last billed month."""
    stmt = (
        select(
            AnRevenueFact.customer_id,
            func.sum(AnRevenueFact.amount),
            func.count(func.distinct(AnRevenueFact.month)),
            func.max(AnRevenueFact.month),
        )
        .where(AnRevenueFact.rate_type.in_(("recurring", "oneTime", "usage")))
        .group_by(AnRevenueFact.customer_id)
    )
    if ids is not None:
        stmt = stmt.where(AnRevenueFact.customer_id.in_(ids))
    return {
        customer_id: (float(total or 0), float(total or 0) / max(months, 1), last)
        for customer_id, total, months, last in session.execute(stmt)
    }


def _services(session: Session, ids: Sequence[str] | None) -> dict[str, float]:
    stmt = (
        select(AnProduct.customer_id, func.count())
        .where(AnProduct.status.not_in(("terminated", "cancelled")))
        .group_by(AnProduct.customer_id)
    )
    if ids is not None:
        stmt = stmt.where(AnProduct.customer_id.in_(ids))
    return {customer_id: float(count) for customer_id, count in session.execute(stmt)}


def _live_rows(
    session: Session,
    customers: Sequence[tuple[str, str | None, str | None, date | None]],
    now: date,
) -> tuple[list[list[float]], list[int]]:
    """Feature rows and labels of live customers (id, name, status, created_on)."""
    ids = None if len(customers) > 1000 else [c[0] for c in customers]
    counts, charges, services = (
        _counts(session, ids),
        _charges(session, ids),
        _services(session, ids),
    )
    stayed_after = get_settings().churn_stayed_after_months
    rows, labels = [], []
    for customer_id, _name, status, created in customers:
        total, monthly, last = charges.get(customer_id, (0.0, 0.0, None))
        ended = status in ENDED
        until = min(_month_end(last), now) if ended and last else now
        tenure = _months_between(created, until)
        rows.append(
            _row(
                tenure,
                monthly,
                total,
                services.get(customer_id, 0.0),
                counts.get(customer_id, [0.0] * 4),
                UNKNOWN,
                UNKNOWN,
            )
        )
        if ended:
            labels.append(1)
        elif status == ACTIVE and tenure >= stayed_after:
            labels.append(0)
        else:
            labels.append(-1)
    return rows, labels


def build_dataset(session: Session, now: datetime) -> Dataset:
    """Every customer as a feature row, imported history and live customers, with its
    label. A bounded number of queries (one per table), whatever the number of rows."""
    counts = _counts(session, None)
    keys: list[str] = []
    names: list[str | None] = []
    live_ids: list[str | None] = []
    rows: list[list[float]] = []
    labels: list[int] = []
    linked: set[str] = set()
    history = session.execute(
        select(
            AnHistoryCustomer.external_id,
            AnHistoryCustomer.customer_id,
            AnHistoryCustomer.name,
            AnHistoryCustomer.tenure_months,
            AnHistoryCustomer.contract_type,
            AnHistoryCustomer.payment_method,
            AnHistoryCustomer.monthly_charges,
            AnHistoryCustomer.total_charges,
            AnHistoryCustomer.services,
            AnHistoryCustomer.churned,
        ).order_by(AnHistoryCustomer.id)
    )
    for external, live, name, tenure, contract, payment, monthly, total, taken, churned in history:
        if live:
            linked.add(live)
        keys.append(f"history:{external}")
        names.append(name)
        live_ids.append(live)
        services = float(len([s for s in (taken or "").split(";") if s]))
        rows.append(
            _row(
                float(tenure),
                float(monthly),
                float(total),
                services,
                counts.get(live, [0.0] * 4) if live else [0.0] * 4,
                contract,
                payment,
            )
        )
        labels.append(int(bool(churned)))
    customers = [
        c
        for c in session.execute(
            select(
                AnCustomer.customer_id, AnCustomer.name, AnCustomer.status, AnCustomer.created_on
            ).order_by(AnCustomer.customer_id)
        ).all()
        if c[0] not in linked
    ]
    live_rows, live_labels = _live_rows(session, customers, now.date())
    for (customer_id, name, _status, _created), row, label in zip(
        customers, live_rows, live_labels, strict=True
    ):
        keys.append(customer_id)
        names.append(name)
        live_ids.append(customer_id)
        rows.append(row)
        labels.append(label)
    x = np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))
    return Dataset(keys, names, live_ids, x, np.array(labels, dtype=np.int64))


# ----- evaluation -------------------------------------------------------------------


def _sigmoid(z: Matrix) -> Matrix:
    result: Matrix = 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))
    return result


def reliability(y: NDArray[np.int64], p: Matrix, bins: int = BINS) -> list[dict[str, Any]]:
    """Equal-width bins of the predicted probability: customers, mean predicted and
    observed churn rate per bin (empty bins left out)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    found = []
    for b in range(bins):
        mask = index == b
        n = int(mask.sum())
        if n:
            found.append(
                {
                    "from": round(float(edges[b]), 2),
                    "to": round(float(edges[b + 1]), 2),
                    "customers": n,
                    "meanPredicted": round(float(p[mask].mean()), 4),
                    "observedRate": round(float(y[mask].mean()), 4),
                }
            )
    return found


def expected_calibration_error(bins: list[dict[str, Any]], total: int) -> float:
    return float(
        sum(b["customers"] / total * abs(b["meanPredicted"] - b["observedRate"]) for b in bins)
    )


def top_decile_lift(y: NDArray[np.int64], p: Matrix) -> float:
    """Churn rate among the 10 % scored highest over the churn rate of all."""
    top = max(1, math.ceil(len(y) * 0.1))
    order = np.argsort(-p, kind="stable")[:top]
    base = float(y.mean())
    return float(y[order].mean()) / base if base else 0.0


def _platt(logits: Matrix, y: NDArray[np.int64]) -> tuple[float, float]:
    fitted = LogisticRegression(C=1e6).fit(logits.reshape(-1, 1), y)
    return float(fitted.coef_[0][0]), float(fitted.intercept_[0])


def _fold_logits(x: Matrix, y: NDArray[np.int64], folds: StratifiedKFold) -> Matrix:
    logits = np.zeros(len(y), dtype=np.float64)
    for train, test in folds.split(x, y):
        scaler = StandardScaler().fit(x[train])
        model = LogisticRegression(C=C, max_iter=2000).fit(scaler.transform(x[train]), y[train])
        logits[test] = model.decision_function(scaler.transform(x[test]))
    return logits


def _figures(y: NDArray[np.int64], p: Matrix) -> dict[str, Any]:
    bins = reliability(y, p)
    return {
        "auc": round(float(roc_auc_score(y, p)), 4),
        "brier": round(float(brier_score_loss(y, p)), 4),
        "ece": round(expected_calibration_error(bins, len(y)), 4),
        "topDecileLift": round(top_decile_lift(y, p), 3),
        "reliability": bins,
    }


def verdict(auc: float) -> str:
    minimum = get_settings().churn_min_auc
    if auc < minimum:
        return (
            f"chance level: out-of-fold AUC {auc:.3f} is below {minimum}; the features do "
            "not tell churners from stayers, and the rule of 3.9.3 stays in use"
        )
    return f"predictive: out-of-fold AUC {auc:.3f}"


# ----- fit ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HistorySize:
    churned: int
    stayed: int

    @property
    def customers(self) -> int:
        return self.churned + self.stayed

    def enough(self) -> bool:
        settings = get_settings()
        return (
            self.customers >= settings.churn_min_customers
            and min(self.churned, self.stayed) >= settings.churn_min_per_outcome
        )

    def too_little(self) -> str:
        settings = get_settings()
        return (
            f"too little history ({self.customers} labelled customers: {self.churned} "
            f"churned, {self.stayed} stayed; the model needs at least "
            f"{settings.churn_min_customers} with at least {settings.churn_min_per_outcome} "
            "of each outcome)"
        )


def history_size(session: Session, now: datetime) -> HistorySize:
    """How many labelled customers there are: three counting queries, no features."""
    churned = stayed = 0
    for outcome, count in session.execute(
        select(AnHistoryCustomer.churned, func.count()).group_by(AnHistoryCustomer.churned)
    ):
        churned, stayed = (churned + count, stayed) if outcome else (churned, stayed + count)
    linked = select(AnHistoryCustomer.customer_id).where(AnHistoryCustomer.customer_id.is_not(None))
    live = AnCustomer.customer_id.not_in(linked)
    churned += session.scalar(select(func.count()).where(AnCustomer.status.in_(ENDED), live)) or 0
    # The live customers' tenure in the fit is up to today; a customer created this
    # many months ago (or before) counts as stayed.
    months = get_settings().churn_stayed_after_months
    today = now.date()
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    try:
        cutoff = today.replace(year=year, month=month + 1)
    except ValueError:  # the 31st in a shorter month: its last day
        cutoff = _month_end(f"{year:04d}-{month + 1:02d}")
    stayed += (
        session.scalar(
            select(func.count()).where(
                AnCustomer.status == ACTIVE, AnCustomer.created_on <= cutoff, live
            )
        )
        or 0
    )
    return HistorySize(churned, stayed)


def fit(
    session: Session,
    now: datetime,
    *,
    trained_by: str,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> AnChurnModel:
    """Fit the churn model on every labelled customer, evaluate it out of fold and store
    it as the newest version. InvalidRequest for a bad number of folds or too little
    history (nothing stored)."""
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= MAX_FOLDS:
        raise InvalidRequest(f"folds must be a whole number from 2 to {MAX_FOLDS}, not {folds!r}")
    started = time.perf_counter()
    data = build_dataset(session, now)
    labelled = data.label >= 0
    x, y = data.x[labelled], data.label[labelled]
    size = HistorySize(int(y.sum()), int(len(y) - y.sum()))
    if not size.enough():
        raise InvalidRequest(f"cannot fit the churn model: {size.too_little()}")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    logits = _fold_logits(x, y, splitter)
    raw = _sigmoid(logits)
    # The Platt map's own out-of-fold test: fitted on the other folds' log-odds.
    calibrated = np.zeros(len(y), dtype=np.float64)
    for train, test in splitter.split(logits.reshape(-1, 1), y):
        a, b = _platt(logits[train], y[train])
        calibrated[test] = _sigmoid(a * logits[test] + b)
    raw_figures, platt_figures = _figures(y, raw), _figures(y, calibrated)
    use_platt = platt_figures["brier"] < raw_figures["brier"]
    a, b = _platt(logits, y) if use_platt else (1.0, 0.0)
    chosen = platt_figures if use_platt else raw_figures
    scaler = StandardScaler().fit(x)
    # A constant column (e.g. no customer with a dunning case) has scale 0: scikit-learn
    # keeps it at 1, so its standardized value is 0 and it never gives a reason.
    final = LogisticRegression(C=C, max_iter=2000).fit(scaler.transform(x), y)
    evaluation = {
        "folds": folds,
        "customers": len(y),
        "churned": size.churned,
        "stayed": size.stayed,
        "fromHistory": int(
            sum(
                1
                for k, ok in zip(data.keys, labelled, strict=True)
                if ok and k.startswith("history:")
            )
        ),
        "baseRate": round(float(y.mean()), 4),
        **chosen,
        "uncalibrated": {k: v for k, v in raw_figures.items() if k != "reliability"},
        "calibration": "platt" if use_platt else "none",
        "verdict": verdict(chosen["auc"]),
        "fitSeconds": round(time.perf_counter() - started, 3),
    }
    latest = session.scalar(select(func.max(AnChurnModel.version))) or 0
    row = AnChurnModel(
        version=latest + 1,
        trained_at=now,
        trained_by=trained_by,
        customers=len(y),
        churned=size.churned,
        features=list(FEATURES),
        means=[float(v) for v in scaler.mean_],
        scales=[float(v) for v in scaler.scale_],
        coefficients=[float(v) for v in final.coef_[0]],
        intercept=float(final.intercept_[0]),
        calibration={"method": "platt" if use_platt else "none", "a": a, "b": b},
        evaluation=evaluation,
    )
    session.add(row)
    session.flush()
    return row


def current_model(session: Session) -> AnChurnModel | None:
    found: AnChurnModel | None = session.scalar(
        select(AnChurnModel).order_by(AnChurnModel.version.desc()).limit(1)
    )
    return found


def usable(model: AnChurnModel | None) -> str | None:
    """Why the model may not replace the rule (None: it may)."""
    settings = get_settings()
    if model is None:
        return "no churn model fitted yet"
    churned, stayed = model.churned, model.customers - model.churned
    size = HistorySize(churned, stayed)
    if not size.enough():
        return f"the churn model v{model.version} was fitted on {size.too_little()}"
    auc = float(model.evaluation.get("auc", 0.0))
    if auc < settings.churn_min_auc:
        return f"the churn model v{model.version} is at chance level (out-of-fold AUC {auc:.3f})"
    if list(model.features) != list(FEATURES):
        return f"the churn model v{model.version} has other features than this version; refit it"
    return None


def refit_due(session: Session, now: datetime) -> bool:
    model = current_model(session)
    age = timedelta(days=get_settings().churn_refit_after_days)
    return model is None or model.trained_at <= now - age


def refit_if_due(session: Session, now: datetime) -> str:
    """The scheduled refit: fit when there is no model or it is older than
    ``churn_refit_after_days`` and there is enough history. Says what it did."""
    if not refit_due(session, now):
        model = current_model(session)
        assert model is not None
        return f"not due: model v{model.version} fitted {model.trained_at.isoformat()}"
    size = history_size(session, now)
    if not size.enough():
        return f"not fitted: {size.too_little()}"
    model = fit(session, now, trained_by="schedule")
    return f"fitted model v{model.version} on {model.customers} customers"


# ----- scoring -----------------------------------------------------------------------


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: float
    contribution: float  # log-odds: coefficient * standardized value

    def words(self) -> str:
        return f"{feature_words(self.feature, self.value)} ({self.contribution:+.2f})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "value": round(self.value, 4),
            "contribution": round(self.contribution, 4),
            "text": feature_words(self.feature, self.value),
        }


@dataclass(frozen=True)
class Explained:
    probability: float
    contributions: list[Contribution]  # largest effect first

    @property
    def score(self) -> int:
        return max(0, min(100, round(self.probability * 100)))

    def up(self) -> list[Contribution]:
        return [c for c in self.contributions if c.contribution > 0][:TOP_REASONS]

    def down(self) -> list[Contribution]:
        return [c for c in self.contributions if c.contribution < 0][:TOP_REASONS]

    def reason(self) -> str:
        up = "; ".join(c.words() for c in self.up()) or "nothing"
        down = "; ".join(c.words() for c in self.down()) or "nothing"
        return f"pushed up by {up}; pushed down by {down}"


def _contributions(model: AnChurnModel, rows: Matrix) -> tuple[Matrix, Matrix]:
    """Each feature's share of the log-odds (coefficient * standardized value) and the
    calibrated probability, for every row at once."""
    means, scales = np.array(model.means), np.array(model.scales)
    contributions: Matrix = (rows - means) / scales * np.array(model.coefficients)
    logits = contributions.sum(axis=1) + model.intercept
    a, b = float(model.calibration.get("a", 1.0)), float(model.calibration.get("b", 0.0))
    return contributions, _sigmoid(a * logits + b)


def probabilities(model: AnChurnModel, rows: Matrix) -> Matrix:
    """The calibrated churn probability of every row (vectorised: ranking many)."""
    return _contributions(model, rows)[1]


def explain(model: AnChurnModel, rows: Matrix) -> list[Explained]:
    """The calibrated probability and the exact contributions of each row's features."""
    contributions, chances = _contributions(model, rows)
    found = []
    for row, parts, p in zip(rows, contributions, chances, strict=True):
        order = np.argsort(-np.abs(parts), kind="stable")
        found.append(
            Explained(
                float(p),
                [
                    Contribution(model.features[i], float(row[i]), float(parts[i]))
                    for i in order
                    if parts[i] != 0
                ],
            )
        )
    return found


def customer_features(
    session: Session, customer_ids: Sequence[str], now: datetime
) -> dict[str, Matrix]:
    """The feature rows of live customers (a linked history row gives the contract).
    A bounded number of queries, whatever the number of customers."""
    ids = list(customer_ids)
    customers = list(
        session.execute(
            select(
                AnCustomer.customer_id, AnCustomer.name, AnCustomer.status, AnCustomer.created_on
            ).where(AnCustomer.customer_id.in_(ids))
        ).all()
    )
    rows, _ = _live_rows(session, customers, now.date())
    found = {c[0]: np.array(r, dtype=np.float64) for c, r in zip(customers, rows, strict=True)}
    contract = {
        live: (contract_type, payment, tenure, float(monthly), float(total), services)
        for live, contract_type, payment, tenure, monthly, total, services in session.execute(
            select(
                AnHistoryCustomer.customer_id,
                AnHistoryCustomer.contract_type,
                AnHistoryCustomer.payment_method,
                AnHistoryCustomer.tenure_months,
                AnHistoryCustomer.monthly_charges,
                AnHistoryCustomer.total_charges,
                AnHistoryCustomer.services,
            ).where(AnHistoryCustomer.customer_id.in_(ids))
        )
    }
    for customer_id, (kind, payment, tenure, monthly, total, taken) in contract.items():
        if customer_id in found:
            old = found[customer_id]
            count = float(len([s for s in (taken or "").split(";") if s]))
            found[customer_id] = np.array(
                _row(float(tenure), monthly, total, count, list(old[4:8]), kind, payment)
            )
    return found


def explain_customer(
    session: Session, model: AnChurnModel, customer_id: str, now: datetime
) -> Explained:
    rows = customer_features(session, [customer_id], now)
    if customer_id not in rows:
        raise NotFound(
            f"customer {customer_id} is not in the analytical store yet (etomcrm analytics rebuild)"
        )
    return explain(model, rows[customer_id].reshape(1, -1))[0]


@dataclass(frozen=True)
class Scored:
    customer_id: str
    name: str | None
    status: str | None
    explained: Explained

    def as_row(self) -> dict[str, Any]:
        return {
            "customerId": self.customer_id,
            "name": self.name,
            "status": self.status,
            "score": self.explained.score,
            "probability": round(self.explained.probability, 4),
            "pushedUp": [c.as_dict() for c in self.explained.up()],
            "pushedDown": [c.as_dict() for c in self.explained.down()],
            "reason": self.explained.reason(),
        }

    def as_csv_row(self) -> dict[str, Any]:
        return {
            "customerId": self.customer_id,
            "name": self.name or "",
            "score": self.explained.score,
            "probability": round(self.explained.probability, 4),
            "reason": self.explained.reason(),
        }


@dataclass(frozen=True)
class Ranking:
    model: AnChurnModel
    total: int
    offset: int
    rows: list[Scored]


def ranking(
    session: Session, now: datetime, *, offset: int = 0, limit: int = 50, everyone: bool = False
) -> Ranking:
    """The live customers not ended (or all, ``everyone``), ranked by their churn score,
    highest first; one page of them. NotFound without a model. A bounded number of
    queries: every customer is scored in one pass to rank them."""
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"offset must be 0 or more and limit 1 to {MAX_PAGE}")
    model = current_model(session)
    if model is None:
        raise NotFound("no churn model fitted yet: etomcrm analytics churn fit")
    stmt = select(
        AnCustomer.customer_id, AnCustomer.name, AnCustomer.status, AnCustomer.created_on
    ).order_by(AnCustomer.customer_id)
    if not everyone:
        stmt = stmt.where(AnCustomer.status.not_in(ENDED))
    customers = list(session.execute(stmt).all())
    if not customers:
        return Ranking(model, 0, offset, [])
    rows, _ = _live_rows(session, customers, now.date())
    matrix = np.array(rows, dtype=np.float64)
    chances = probabilities(model, matrix)
    # Highest first, ties by customer id (the rows are in id order: a stable sort).
    order = np.argsort(-chances, kind="stable")[offset : offset + limit]
    explained = explain(model, matrix[order])
    return Ranking(
        model,
        len(customers),
        offset,
        [
            Scored(customers[i][0], customers[i][1], customers[i][2], e)
            for i, e in zip(order, explained, strict=True)
        ],
    )


def model_summary(model: AnChurnModel) -> dict[str, Any]:
    """The model as the API shows it: what it learned and how well, in numbers."""
    return {
        "version": model.version,
        "trainedAt": model.trained_at.isoformat().replace("+00:00", "Z"),
        "trainedBy": model.trained_by,
        "customers": model.customers,
        "churned": model.churned,
        "usable": usable(model) is None,
        "notUsedBecause": usable(model),
        "features": [
            {
                "name": name,
                "mean": round(mean, 6),
                "scale": round(scale, 6),
                "coefficient": round(coefficient, 6),
            }
            for name, mean, scale, coefficient in zip(
                model.features, model.means, model.scales, model.coefficients, strict=True
            )
        ],
        "intercept": round(model.intercept, 6),
        "calibration": model.calibration,
        "evaluation": model.evaluation,
    }
