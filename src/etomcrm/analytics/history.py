"""Import of the history a provider brings along: customers, contracts and outcomes.

The format (README, "Import of history"; an example in ``examples/history.csv``) is CSV
with a header line, UTF-8, comma-separated, in these columns (any order; extra columns
refused so that a misspelt one is not silently lost):

``customer_id`` (required, the provider's id), ``name``, ``segment``, ``tenure_months``
(whole months ≥ 0), ``contract_type`` (month-to-month, one-year, two-year),
``payment_method`` (direct-debit, bank-transfer, credit-card, other),
``monthly_charges`` and ``total_charges`` (EUR, ≥ 0, at most two decimals),
``services`` (taken services separated by ``;``, may be empty), ``churned`` (yes/no,
true/false, 1/0), ``observed_on`` (the date the outcome was known, YYYY-MM-DD, optional).

Every row is checked before anything is stored; one bad row refuses the whole file, and
the refusal names each bad row by its line number (the header is line 1).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from etomcrm.analytics.models import AnHistoryCustomer, AnHistoryImport
from etomcrm.core.errors import InvalidRequest
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.db import new_id, utcnow

REQUIRED = (
    "customer_id",
    "tenure_months",
    "contract_type",
    "payment_method",
    "monthly_charges",
    "total_charges",
    "churned",
)
OPTIONAL = ("name", "segment", "services", "observed_on")
CONTRACT_TYPES = frozenset({"month-to-month", "one-year", "two-year"})
PAYMENT_METHODS = frozenset({"direct-debit", "bank-transfer", "credit-card", "other"})
YES = frozenset({"yes", "true", "1"})
NO = frozenset({"no", "false", "0"})
MAX_TENURE_MONTHS = 1200
MAX_MONEY = Decimal("999999999999.99")
SHOWN_ERRORS = 20
BATCH = 2_000


class HistoryRefused(InvalidRequest):
    """The file was refused whole; ``errors`` are (line number, message)."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.errors = errors
        shown = "; ".join(f"line {line}: {message}" for line, message in errors[:SHOWN_ERRORS])
        more = len(errors) - SHOWN_ERRORS
        super().__init__(
            f"{len(errors)} bad row(s), nothing imported: {shown}"
            + (f"; and {more} more" if more > 0 else ""),
            reason="History refused",
        )


@dataclass(frozen=True)
class ImportResult:
    import_id: str
    rows: int
    linked: int  # rows whose customer_id is a live customer's

    def as_dict(self) -> dict[str, Any]:
        return {"importId": self.import_id, "rows": self.rows, "linkedToCustomers": self.linked}


def _money(value: str, column: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{column} must be an amount such as 29.90, not {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_MONEY:
        raise ValueError(f"{column} must be an amount from 0 to {MAX_MONEY}, not {value!r}")
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError(f"{column} has at most two decimals (cents), not {value!r}")
    return amount


def _row(line: int, raw: dict[str, str]) -> dict[str, Any]:
    """One row as stored; raises ValueError naming every fault of the row."""
    faults: list[str] = []
    value = {k: (v or "").strip() for k, v in raw.items()}
    row: dict[str, Any] = {}
    for column in REQUIRED:
        if not value.get(column):
            faults.append(f"{column} is missing")
    external = value.get("customer_id", "")
    if len(external) > 100:
        faults.append("customer_id is longer than 100 characters")
    row["external_id"] = external
    row["name"] = value.get("name") or None
    row["segment"] = value.get("segment") or None
    for column, limit in (("name", 200), ("segment", 100)):
        if row[column] and len(row[column]) > limit:
            faults.append(f"{column} is longer than {limit} characters")
    tenure = value.get("tenure_months", "")
    if tenure:
        if not tenure.isdigit() or int(tenure) > MAX_TENURE_MONTHS:
            faults.append(
                f"tenure_months must be whole months from 0 to {MAX_TENURE_MONTHS}, not {tenure!r}"
            )
        else:
            row["tenure_months"] = int(tenure)
    contract = value.get("contract_type", "").lower()
    if contract and contract not in CONTRACT_TYPES:
        faults.append(
            f"contract_type must be one of {', '.join(sorted(CONTRACT_TYPES))}, not {contract!r}"
        )
    row["contract_type"] = contract
    payment = value.get("payment_method", "").lower()
    if payment and payment not in PAYMENT_METHODS:
        faults.append(
            f"payment_method must be one of {', '.join(sorted(PAYMENT_METHODS))}, not {payment!r}"
        )
    row["payment_method"] = payment
    for column in ("monthly_charges", "total_charges"):
        if value.get(column):
            try:
                row[column] = _money(value[column], column)
            except ValueError as exc:
                faults.append(str(exc))
    services = sorted({s.strip() for s in value.get("services", "").split(";") if s.strip()})
    row["services"] = ";".join(services)
    if len(row["services"]) > 500:
        faults.append("services are longer than 500 characters together")
    churned = value.get("churned", "").lower()
    if churned:
        if churned in YES:
            row["churned"] = True
        elif churned in NO:
            row["churned"] = False
        else:
            faults.append(f"churned must be yes or no, not {churned!r}")
    observed = value.get("observed_on", "")
    row["observed_on"] = None
    if observed:
        try:
            row["observed_on"] = date.fromisoformat(observed)
        except ValueError:
            faults.append(f"observed_on must be a date such as 2026-01-31, not {observed!r}")
    if faults:
        raise ValueError("; ".join(faults))
    return row


def read_rows(text: Iterable[str]) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    """(line number, the row's cells, or None and what is wrong with the line)."""
    reader = csv.DictReader(text, strict=True)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise HistoryRefused([(1, f"the header is not CSV: {exc}")]) from None
    if not header:
        raise HistoryRefused([(1, "the file is empty; the header line is missing")])
    columns = [h.strip() for h in header]
    missing = [c for c in REQUIRED if c not in columns]
    unknown = [c for c in columns if c not in REQUIRED + OPTIONAL]
    duplicate = sorted({c for c in columns if columns.count(c) > 1})
    faults = []
    if missing:
        faults.append(f"columns missing: {', '.join(missing)}")
    if unknown:
        faults.append(f"columns unknown: {', '.join(unknown)}")
    if duplicate:
        faults.append(f"columns twice: {', '.join(duplicate)}")
    if faults:
        raise HistoryRefused([(1, "; ".join(faults))])
    reader.fieldnames = columns
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, None, f"not CSV: {exc}"
            continue
        if None in raw or any(v is None for v in raw.values()):
            yield reader.line_num, None, f"has {len(columns)} columns in the header, not these"
            continue
        if not any((v or "").strip() for v in raw.values()):
            continue  # a blank line
        yield reader.line_num, raw, None


def import_history(
    session: Session,
    text: Iterable[str],
    *,
    file_name: str,
    imported_by: str,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import a history CSV whole or not at all: every row is checked first, and any bad
    row refuses the file (:class:`HistoryRefused`, each bad row by its line number).
    ``progress`` is told the number of each row read. A customer id already imported is
    refused too: history is imported once, not overwritten by a second file."""
    errors: list[tuple[int, str]] = []
    rows: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    for line, raw, fault in read_rows(text):
        if progress:
            progress(line)
        if fault is not None or raw is None:
            errors.append((line, fault or "unreadable"))
            continue
        try:
            row = _row(line, raw)
        except ValueError as exc:
            errors.append((line, str(exc)))
            continue
        external = row["external_id"]
        if external in first_line:
            errors.append((line, f"customer_id {external!r} is on line {first_line[external]} too"))
            continue
        first_line[external] = line
        rows.append(row)
    ids = list(first_line)
    known: set[str] = set()
    live: set[str] = set()
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        known |= set(
            session.scalars(
                select(AnHistoryCustomer.external_id).where(AnHistoryCustomer.external_id.in_(part))
            )
        )
        live |= set(session.scalars(select(CustomerRow.id).where(CustomerRow.id.in_(part))))
    for external in sorted(known, key=first_line.__getitem__):
        errors.append((first_line[external], f"customer_id {external!r} was imported before"))
    if errors:
        raise HistoryRefused(sorted(errors))
    if not rows:
        raise HistoryRefused([(2, "the file has a header but no rows")])
    import_id = new_id()
    session.add(
        AnHistoryImport(
            import_id=import_id,
            file_name=file_name[:300],
            imported_at=utcnow(),
            row_count=len(rows),
            imported_by=imported_by[:200],
        )
    )
    session.flush()
    for row in rows:
        row["import_id"] = import_id
        row["customer_id"] = row["external_id"] if row["external_id"] in live else None
    for i in range(0, len(rows), BATCH):
        session.execute(insert(AnHistoryCustomer), rows[i : i + BATCH])
    return ImportResult(import_id, len(rows), sum(1 for r in rows if r["customer_id"]))


def import_history_text(
    session: Session, content: str, *, file_name: str, imported_by: str
) -> ImportResult:
    return import_history(
        session, io.StringIO(content, newline=""), file_name=file_name, imported_by=imported_by
    )
