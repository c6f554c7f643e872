"""The churn model on the largest history at hand (issue 13, "Predict").

Generates a provider's history of ``--customers`` rows (100,000 by default) in the
documented CSV format (README "Import of history", ``examples/history.csv``) with a
plausible signal: month-to-month contracts churn far more than one- and two-year ones,
churn falls with tenure, rises with the monthly charges and with payment by bank
transfer or "other", falls with the number of services taken. The file is imported as
the CLI does (``etomcrm.analytics.history.import_history``), then the model is fitted
with its out-of-fold evaluation (``etomcrm.analytics.churn.fit``) and every customer is
scored (``churn.probabilities``) and explained (``churn.explain``: a page of 50, and
all). Times: import, fit (with its 5-fold evaluation), scoring, reasons; figures: the
evaluation. The AUC the generator's own probabilities reach (the best any model can do
on this history) is given beside the model's.

Usage: .venv/bin/python bench/churn_model.py [--db sqlite|postgresql] [--customers N]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_DB = "etomcrm_bench_churn"
HEADER = (
    "customer_id,name,segment,tenure_months,contract_type,payment_method,"
    "monthly_charges,total_charges,services,churned,observed_on\n"
)
CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENTS = ("direct-debit", "bank-transfer", "credit-card", "other")
SERVICES = ("access", "router", "sla-silver", "sla-gold", "traffic", "voice")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def history(rows: int, seed: int = 2026) -> tuple[str, list[tuple[int, float]]]:
    """The CSV text and, per row, the outcome and the generator's true probability."""
    rng = random.Random(seed)
    out = io.StringIO()
    out.write(HEADER)
    truth: list[tuple[int, float]] = []
    for n in range(rows):
        contract = rng.choices(CONTRACTS, weights=(0.55, 0.25, 0.20))[0]
        payment = rng.choices(PAYMENTS, weights=(0.45, 0.25, 0.20, 0.10))[0]
        tenure = min(72, int(rng.expovariate(1 / 24)))
        taken = rng.sample(SERVICES, rng.randint(1, 5))
        monthly = round(rng.uniform(25, 120) + 15 * len(taken), 2)
        logit = (
            -2.2
            + 1.6 * (contract == "month-to-month")
            + 0.4 * (contract == "one-year")
            - 0.035 * tenure
            + 0.012 * (monthly - 90)
            + 0.5 * (payment in ("bank-transfer", "other"))
            - 0.15 * len(taken)
        )
        p = 1 / (1 + math.exp(-logit))
        churned = int(rng.random() < p)
        truth.append((churned, p))
        out.write(
            f"B-{n:07d},Kunde {n},{('dealer', 'enterprise', 'public')[n % 3]},{tenure},"
            f"{contract},{payment},{monthly:.2f},{monthly * tenure:.2f},"
            f"{';'.join(sorted(taken))},{'yes' if churned else 'no'},2026-06-30\n"
        )
    return out.getvalue(), truth


def database(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'churn.db'}"
    with psycopg.connect(PG_SERVER + "/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DB}")
    return f"{PG_SERVER}/{PG_DB}".replace("postgresql://", "postgresql+psycopg://")


def run(kind: str, customers: int) -> dict[str, Any]:
    import numpy as np

    from etomcrm.analytics import churn
    from etomcrm.analytics.history import import_history
    from etomcrm.db import session_scope
    from etomcrm.migrate import upgrade

    with tempfile.TemporaryDirectory() as folder:
        url = database(kind, Path(folder))
        upgrade(url)
        text, truth = history(customers)
        best_auc = roc_auc_score([c for c, _ in truth], [p for _, p in truth])
        log(
            f"{customers} rows generated ({len(text) / 1e6:.1f} MB); "
            f"best possible AUC {best_auc:.4f}"
        )
        began = time.perf_counter()
        with session_scope(url) as session:
            import_history(session, io.StringIO(text), file_name="bench.csv", imported_by="bench")
        imported = time.perf_counter() - began
        log(f"imported in {imported:.1f} s")
        now = datetime.now(UTC)
        began = time.perf_counter()
        with session_scope(url) as session:
            model = churn.fit(session, now, trained_by="bench")
            evaluation = dict(model.evaluation)
            session.expunge(model)
        fitted = time.perf_counter() - began
        log(f"fitted with 5-fold evaluation in {fitted:.1f} s: AUC {evaluation['auc']}")
        with session_scope(url) as session:
            data = churn.build_dataset(session, now)
        began = time.perf_counter()
        probabilities = churn.probabilities(model, data.x)
        scored = time.perf_counter() - began
        top = np.argsort(-probabilities, kind="stable")[:50]
        began = time.perf_counter()
        page = churn.explain(model, data.x[top])
        paged = time.perf_counter() - began
        began = time.perf_counter()
        explained = churn.explain(model, data.x)
        every = time.perf_counter() - began
        reasons = [e.reason() for e in page[:3]]
        log(
            f"scored {len(probabilities)} customers in {scored:.3f} s; reasons of the top 50 "
            f"in {paged * 1000:.1f} ms, of all {len(explained)} in {every:.2f} s"
        )
    return {
        "database": kind,
        "customers": customers,
        "bestPossibleAuc": round(float(best_auc), 4),
        "importSeconds": round(imported, 2),
        "fitSeconds": round(fitted, 2),
        "scoreSeconds": round(scored, 3),
        "reasonsOfTop50Milliseconds": round(paged * 1000, 1),
        "reasonsOfAllSeconds": round(every, 2),
        "meanProbability": round(float(probabilities.mean()), 4),
        "evaluation": evaluation,
        "coefficients": dict(zip(model.features, model.coefficients, strict=True)),
        "calibration": model.calibration,
        "exampleReasons": reasons,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args(argv)
    result = run(args.db, args.customers)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"churn_model-{stamp}-{args.db}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    log(f"written to {path.relative_to(ROOT)}")
    ev = result["evaluation"]
    print(
        json.dumps(
            {k: ev[k] for k in ("auc", "brier", "ece", "topDecileLift", "calibration")}
            | {
                k: result[k]
                for k in (
                    "bestPossibleAuc",
                    "importSeconds",
                    "fitSeconds",
                    "scoreSeconds",
                    "reasonsOfTop50Milliseconds",
                    "reasonsOfAllSeconds",
                )
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
