"""TMF635 usage (3.8.2's input): measured volumes per product, site and interval.

Usage enters from the network side (the API, ``POST /tmf-api/usageManagement/v4/usage``
and ``.../usage/bulk``, and :func:`usage_from_measurements`, the hourly traffic of every
site from the performance data) and leaves to rating (:func:`usage_for_billing`,
:func:`mark_usage_billed`). Every record carries its sender's id (``usage_id``):

- sent again with the same volume: stored once, counted ``unchanged``;
- sent again with another volume: a correction, ``version`` + 1. A record not yet
  billed simply takes the new volume; a billed record becomes ``received`` again and
  keeps ``billed_volume`` (what its bill charged), so the next bill charges only the
  difference (negative: a credit). Customer, product and site stay those of the first
  record: a usage id names one product's usage;
- late usage (an interval of a period already billed) is ``received`` like any other
  and charged on the next bill.

Ingest is set-based: the records are checked whole first (a refused batch writes
nothing), references are checked with one query per kind, and rows are written by
``INSERT ... ON CONFLICT (usage_id) DO UPDATE`` in chunks. On PostgreSQL a large batch
is split by one look-up of its ids: the new records COPYed straight into the table, the
changed ones corrected by one UPDATE (and when another session stores the same ids at
the same time, the batch is COPYed into a temporary table and upserted from there).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from etomcrm.billing.events import UsageIngested
from etomcrm.billing.models import UsageRecordRow
from etomcrm.core.bus import record as record_event
from etomcrm.core.errors import RefusedRows
from etomcrm.core.tmf_schemas import USAGE, schema_errors
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.db import utcnow
from etomcrm.network.models import NetworkLinkRow, NetworkMeasurementRow
from etomcrm.order_handling.models import ProductRow

MAX_ERRORS = 10  # refused records named in one answer
CHUNK = 1_000  # rows per INSERT statement and ids per IN list
COPY_FROM = 5_000  # on PostgreSQL, batches from this size go through COPY
VOLUME_PLACES = Decimal("0.000001")  # the column's scale
MAX_VOLUME = Decimal("99999999999999")  # what Numeric(20, 6) holds
UNIT = "GB"
# Units a sender may use, in GB (decimal units, as traffic is billed).
UNITS: dict[str, Decimal] = {
    "B": Decimal("1E-9"),
    "KB": Decimal("1E-6"),
    "MB": Decimal("1E-3"),
    "GB": Decimal(1),
    "TB": Decimal(1000),
}
TRAFFIC = "traffic"
HOUR = timedelta(hours=1)
BERLIN = ZoneInfo("Europe/Berlin")
USAGE_BODY = USAGE.validator("Usage")
COLUMNS = (
    "usage_id",
    "customer_id",
    "product_id",
    "site_id",
    "usage_type",
    "start_at",
    "end_at",
    "volume",
    "unit",
)


@dataclass(frozen=True, slots=True)
class Usage:
    """One usage record as ingest takes it: the volume in GB."""

    usage_id: str
    customer_id: str
    product_id: str | None
    site_id: str | None
    usage_type: str
    start_at: datetime
    end_at: datetime
    volume: Decimal


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did: records new, sent before unchanged, and corrected."""

    received: int
    new: int
    unchanged: int
    corrected: int

    def answer(self) -> dict[str, Any]:
        return {
            "@type": "UsageIngestResult",
            "received": self.received,
            "new": self.new,
            "unchanged": self.unchanged,
            "corrected": self.corrected,
        }


@dataclass(frozen=True)
class UsageToBill:
    """A product's usage a bill is to charge, in GB.

    ``volume`` is the sum over its ``received`` records of ``volume - billed_volume``
    (a record never billed counts whole; a corrected billed one its difference, which
    may be negative). ``late_volume`` is the part of it from records whose interval
    began before the period (late usage and corrections of billed periods).
    ``record_ids`` are what :func:`mark_usage_billed` takes once the bill holds them.
    """

    product_id: str
    customer_id: str
    volume: Decimal
    late_volume: Decimal
    record_ids: tuple[int, ...]
    unit: str = UNIT


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. year 1 at +14:00: no instant a database holds
        return None


def _text(value: Any, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _characteristics(item: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for entry in item.get("usageCharacteristic") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            found[entry["name"]] = entry.get("value")
    return found


def _product_id(item: dict[str, Any], named: dict[str, Any]) -> Any:
    for rated in item.get("ratedProductUsage") or []:
        if isinstance(rated, dict) and isinstance(rated.get("productRef"), dict):
            return rated["productRef"].get("id")
    return named.get("productId")


def _customer_id(item: dict[str, Any]) -> Any:
    for party in item.get("relatedParty") or []:
        if isinstance(party, dict) and (
            party.get("role") == "customer" or party.get("@referredType") == "Customer"
        ):
            return party.get("id")
    return None


def parse_usage(items: Sequence[Any]) -> list[Usage]:
    """TMF635 Usage bodies as records, each checked; the first ten problems named by
    index (``usage[3]: ...``) in one 400, nothing taken.

    A body: ``id`` (the sender's, up to 128 characters), ``usageDate``, ``usageType``,
    ``relatedParty`` with the customer (role ``customer`` or ``@referredType``
    ``Customer``), the product in ``ratedProductUsage[0].productRef.id`` (or a
    characteristic ``productId``), and ``usageCharacteristic`` entries ``volume`` (a
    number >= 0), ``unit`` (B, KB, MB, GB, TB; GB if absent), ``siteId``, and the
    interval ``startDateTime``/``endDateTime`` (or ``validFor``; ``usageDate`` alone
    is an instant).
    """
    problems = RefusedRows("usage", "usage record(s)", shown=MAX_ERRORS)
    records: list[Usage] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            problems.add(index, "must be a JSON object (a TMF635 Usage)")
            continue
        invalid = schema_errors(USAGE_BODY, item, limit=1)
        if invalid:
            problems.add(index, f"not a TMF635 Usage: {invalid[0]}")
            continue
        named = _characteristics(item)
        usage_id = _text(item.get("id"), 128)
        if usage_id is None:
            problems.add(index, "id (the sender's usage id, 1 to 128 characters) is missing")
            continue
        if usage_id in seen:
            problems.add(index, f"id {usage_id!r} repeats usage[{seen[usage_id]}]")
            continue
        seen[usage_id] = index
        usage_type = _text(item.get("usageType"), 50)
        if usage_type is None:
            problems.add(index, "usageType (1 to 50 characters) is missing")
            continue
        usage_date = _instant(item.get("usageDate"))
        if usage_date is None:
            problems.add(index, "usageDate must be a date-time with a zone, e.g. ...T10:00:00Z")
            continue
        valid_for: dict[str, Any] = (
            item["validFor"] if isinstance(item.get("validFor"), dict) else {}
        )
        start_text = named.get("startDateTime", valid_for.get("startDateTime"))
        end_text = named.get("endDateTime", valid_for.get("endDateTime"))
        start = usage_date if start_text is None else _instant(start_text)
        end = start if end_text is None else _instant(end_text)
        if start is None or end is None:
            problems.add(index, "startDateTime/endDateTime must be date-times with a zone")
            continue
        if end < start:
            problems.add(index, "endDateTime lies before startDateTime")
            continue
        raw_volume = named.get("volume")
        if isinstance(raw_volume, bool) or not isinstance(raw_volume, int | float | str):
            problems.add(index, "a usageCharacteristic 'volume' with a number is needed")
            continue
        try:
            volume = Decimal(str(raw_volume))
        except InvalidOperation:
            problems.add(index, f"volume {raw_volume!r} is not a number")
            continue
        unit = named.get("unit", UNIT)
        factor = UNITS.get(unit.upper()) if isinstance(unit, str) else None
        if factor is None:
            problems.add(index, f"unit {unit!r} is not one of {', '.join(UNITS)}")
            continue
        customer_id = _text(_customer_id(item), 64)
        if customer_id is None:
            problems.add(index, "relatedParty needs the customer (role 'customer')")
            continue
        product_id = _product_id(item, named)
        site_id = named.get("siteId")
        if product_id is not None and _text(product_id, 64) is None:
            problems.add(index, "the product id must be text of 1 to 64 characters")
            continue
        if site_id is not None and _text(site_id, 64) is None:
            problems.add(index, "siteId must be text of 1 to 64 characters")
            continue
        if not volume.is_finite():
            problems.add(index, "volume must be a finite number")
            continue
        records.append(
            Usage(
                usage_id=usage_id,
                customer_id=customer_id,
                product_id=product_id,
                site_id=site_id,
                usage_type=usage_type,
                start_at=start,
                end_at=end,
                volume=volume * factor,
            )
        )
    problems.raise_any()
    return records


def check_records(records: Sequence[Usage]) -> None:
    """The sense of each record (volume in range, interval in order, ids unique)."""
    problems = RefusedRows("usage", "usage record(s)", shown=MAX_ERRORS)
    seen: set[str] = set()
    for index, record in enumerate(records):
        if not record.usage_id or len(record.usage_id) > 128:
            problems.add(index, "the usage id must have 1 to 128 characters")
        elif record.usage_id in seen:
            problems.add(index, f"id {record.usage_id!r} is sent twice in this batch")
        seen.add(record.usage_id)
        if not record.volume.is_finite() or record.volume < 0:
            problems.add(index, f"volume must be >= 0, not {record.volume}")
        elif record.volume > MAX_VOLUME:
            problems.add(index, f"volume {record.volume} GB is beyond any line's traffic")
        if record.start_at.tzinfo is None or record.end_at.tzinfo is None:
            problems.add(index, "the interval must be in UTC (zone-aware)")
        elif record.end_at < record.start_at:
            problems.add(index, "the interval ends before it starts")
    problems.raise_any()


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for begin in range(0, len(values), size):
        yield values[begin : begin + size]


def check_references(session: Session, records: Sequence[Usage]) -> None:
    """Customers and products exist, each product is its customer's: one query per
    thousand distinct ids (a feed names few), no query per record."""
    customers = sorted({r.customer_id for r in records})
    products = sorted({r.product_id for r in records if r.product_id is not None})
    known_customers: set[str] = set()
    for part in _chunks(customers):
        known_customers.update(
            session.scalars(select(CustomerRow.id).where(CustomerRow.id.in_(part)))
        )
    owners: dict[str, str | None] = {}
    for part in _chunks(products):
        owners.update(
            (product_id, owner)
            for product_id, owner in session.execute(
                select(ProductRow.id, ProductRow.owner_customer_id).where(ProductRow.id.in_(part))
            )
        )
    problems = RefusedRows("usage", "usage record(s)", shown=MAX_ERRORS)
    for index, record in enumerate(records):
        if record.customer_id not in known_customers:
            problems.add(index, f"customer {record.customer_id!r} is unknown", unknown=True)
        elif record.product_id is not None:
            if record.product_id not in owners:
                problems.add(index, f"product {record.product_id!r} is unknown", unknown=True)
            elif owners[record.product_id] != record.customer_id:
                problems.add(
                    index,
                    f"product {record.product_id!r} is not customer {record.customer_id!r}'s",
                    unknown=True,
                )
        if len(problems.messages) > MAX_ERRORS:
            break
    problems.raise_any()


def ingest_usage(
    session: Session, records: Sequence[Usage], *, now: datetime | None = None
) -> IngestResult:
    """Store usage records: new ones inserted, repeats left alone, changed volumes
    corrected (see the module). Checked whole first; refused → nothing written."""
    check_records(records)
    check_references(session, records)
    if not records:
        return IngestResult(0, 0, 0, 0)
    received_at = now or utcnow()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and len(records) >= COPY_FROM:
        new, corrected = _upsert_by_copy(session, records, received_at)
    else:
        new, corrected = _upsert_by_values(session, records, received_at, dialect)
    if new or corrected:
        days = {(r.customer_id, r.start_at.astimezone(UTC).date().isoformat()) for r in records}
        record_event(session, UsageIngested(tuple(sorted(days))))
    return IngestResult(len(records), new, len(records) - new - corrected, corrected)


def _quantised(volume: Decimal) -> Decimal:
    return volume.quantize(VOLUME_PLACES)


def _upsert_statement(dialect: str) -> Any:
    """One ``INSERT ... ON CONFLICT (usage_id) DO UPDATE ... RETURNING version`` per
    dialect, built once: executed with many parameter sets, SQLAlchemy sends it as
    multi-row statements ("insertmanyvalues") without compiling it again."""
    statement = _UPSERTS.get(dialect)
    if statement is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table: Any = UsageRecordRow.__table__
        stmt: Any = insert(table)
        statement = stmt.on_conflict_do_update(
            index_elements=[table.c.usage_id],
            set_={
                "volume": stmt.excluded.volume,
                "start_at": stmt.excluded.start_at,
                "end_at": stmt.excluded.end_at,
                "version": table.c.version + 1,
                "status": "received",
                "received_at": stmt.excluded.received_at,
            },
            # An unchanged repeat writes nothing (and returns no row).
            where=table.c.volume != stmt.excluded.volume,
        ).returning(table.c.version)
        _UPSERTS[dialect] = statement
    return statement


_UPSERTS: dict[str, Any] = {}


def _upsert_by_values(
    session: Session, records: Sequence[Usage], received_at: datetime, dialect: str
) -> tuple[int, int]:
    statement = _upsert_statement(dialect)
    new = corrected = 0
    for part in _chunks(records, 10 * CHUNK):
        parameters = [
            {
                "usage_id": r.usage_id,
                "customer_id": r.customer_id,
                "product_id": r.product_id,
                "site_id": r.site_id,
                "usage_type": r.usage_type,
                "start_at": r.start_at,
                "end_at": r.end_at,
                "volume": _quantised(r.volume),
                "unit": UNIT,
                "status": "received",
                "version": 1,
                "received_at": received_at,
            }
            for r in part
        ]
        for version in session.scalars(statement, parameters):
            if version == 1:
                new += 1
            else:
                corrected += 1
    return new, corrected


_STAGE = "usage_in"
_UPSERT_FROM_STAGE = f"""
WITH written AS (
    INSERT INTO usage_record ({", ".join(COLUMNS)}, status, version, received_at)
    SELECT {", ".join(COLUMNS)}, 'received', 1, %(received_at)s FROM {_STAGE}
    ORDER BY usage_id
    ON CONFLICT (usage_id) DO UPDATE SET
        volume = excluded.volume,
        start_at = excluded.start_at,
        end_at = excluded.end_at,
        version = usage_record.version + 1,
        status = 'received',
        received_at = excluded.received_at
    WHERE usage_record.volume <> excluded.volume
    RETURNING version
)
SELECT count(*) FILTER (WHERE version = 1), count(*) FILTER (WHERE version > 1) FROM written
"""
# The stored volumes of a batch's ids: which records are new, which sent before. The
# arrays go in binary (%b): psycopg quotes a text array element by element, which took
# a second per 100,000 ids. A join, not ``usage_id = ANY(...)``: planned for a table
# thought empty (just truncated, or new) that was a scan testing every row against
# the whole array, minutes for a batch.
_STORED = """
SELECT u.usage_id, u.volume FROM unnest(%b::text[]) AS i (usage_id)
JOIN usage_record AS u ON u.usage_id = i.usage_id
"""
# Corrections in one statement; ``volume <>`` again, as a concurrent writer may have
# stored the same volume meanwhile (then the record is unchanged, not corrected).
_CORRECT = """
UPDATE usage_record AS u SET
    volume = c.volume,
    start_at = c.start_at,
    end_at = c.end_at,
    version = u.version + 1,
    status = 'received',
    received_at = %s
FROM unnest(%b::text[], %b::numeric[], %b::timestamptz[], %b::timestamptz[])
    AS c (usage_id, volume, start_at, end_at)
WHERE u.usage_id = c.usage_id AND u.volume <> c.volume
"""


def _copy_text(records: Iterable[Usage], tail: str = "") -> Iterator[bytes]:
    """The records in COPY's text format (columns ``COLUMNS``, then ``tail``, e.g.
    further constant columns), in blocks (cheaper than a call per row)."""
    # Usage comes hour by hour: few distinct instants, each written out once.
    instants: dict[datetime, str] = {}
    lines: list[str] = []
    end_of_line = f"\t{UNIT}{tail}\n"
    for r in records:
        start = instants.get(r.start_at)
        if start is None:
            start = instants[r.start_at] = r.start_at.isoformat()
        end = instants.get(r.end_at)
        if end is None:
            end = instants[r.end_at] = r.end_at.isoformat()
        product, site = r.product_id, r.site_id
        # One test of all the texts (nearly always plain) instead of one per field.
        if product is not None and site is not None:
            texts = f"{r.usage_id}{r.customer_id}{product}{site}{r.usage_type}"
            if texts.isprintable() and "\\" not in texts:
                lines.append(
                    f"{r.usage_id}\t{r.customer_id}\t{product}\t{site}\t{r.usage_type}\t"
                    f"{start}\t{end}\t{r.volume}{end_of_line}"
                )
                if len(lines) == 10_000:
                    yield "".join(lines).encode()
                    lines.clear()
                continue
        lines.append(
            f"{_escape(r.usage_id)}\t{_escape(r.customer_id)}\t{_escape(product)}\t"
            f"{_escape(site)}\t{_escape(r.usage_type)}\t{start}\t{end}\t{r.volume}{end_of_line}"
        )
        if len(lines) == 10_000:
            yield "".join(lines).encode()
            lines.clear()
    yield "".join(lines).encode()


def _escape(value: str | None) -> str:
    if value is None:
        return "\\N"
    if value.isprintable() and "\\" not in value:
        return value
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


def copy_rows(session: Session, table: str, records: Iterable[Usage]) -> None:
    """COPY the records into ``table`` (its columns ``COLUMNS``), in the session's
    transaction: the staging path below and the benchmark's baseline."""
    connection: Any = session.connection().connection.driver_connection
    sql = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for block in _copy_text(records):
            copy.write(block)


def _upsert_by_copy(
    session: Session, records: Sequence[Usage], received_at: datetime
) -> tuple[int, int]:
    """A large batch on PostgreSQL. Mostly new records (a feed sends each once): one
    query finds the ids stored before, the new records are COPYed straight into the
    table, the changed ones corrected by one UPDATE. A concurrent writer storing one
    of the new ids first makes the COPY fail on the unique index: then, back at a
    savepoint, the whole batch goes the upsert way (exact whatever the race)."""
    import psycopg.errors  # only PostgreSQL comes here

    connection: Any = session.connection().connection.driver_connection
    with connection.cursor() as cursor:
        # Not prepared: a plan for the batch at hand, never a generic one kept.
        cursor.execute(_STORED, ([r.usage_id for r in records],), prepare=False)
        stored: dict[str, Decimal] = dict(cursor.fetchall())
    fresh = [r for r in records if r.usage_id not in stored]
    changed = [
        r for r in records if r.usage_id in stored and _as_stored(r.volume) != stored[r.usage_id]
    ]
    if fresh:
        # In id order: two sessions COPYing overlapping ids then wait for each other in
        # one order, never in a cycle (a deadlock).
        fresh.sort(key=_usage_id)
        with connection.cursor() as cursor:
            cursor.execute("SAVEPOINT usage_copy")
        try:
            _copy_new(connection, fresh, received_at)
        except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK TO SAVEPOINT usage_copy")
            return _upsert_by_stage(session, records, received_at)
        with connection.cursor() as cursor:
            cursor.execute("RELEASE SAVEPOINT usage_copy")
    corrected = 0
    if changed:
        with connection.cursor() as cursor:
            cursor.execute(
                _CORRECT,
                (
                    received_at,
                    [r.usage_id for r in changed],
                    [r.volume for r in changed],
                    [r.start_at for r in changed],
                    [r.end_at for r in changed],
                ),
                prepare=False,
            )
            corrected = cursor.rowcount
    return len(fresh), corrected


def _usage_id(record: Usage) -> str:
    return record.usage_id


def _as_stored(volume: Decimal) -> Decimal:
    """The volume as the column keeps it (PostgreSQL rounds numeric input half away
    from zero; volumes are >= 0)."""
    return volume.quantize(VOLUME_PLACES, rounding=ROUND_HALF_UP)


def _copy_new(connection: Any, records: Sequence[Usage], received_at: datetime) -> None:
    sql = f"COPY usage_record ({', '.join(COLUMNS)}, status, version, received_at) FROM STDIN"
    tail = f"\treceived\t1\t{received_at.isoformat()}"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for block in _copy_text(records, tail):
            copy.write(block)


def _upsert_by_stage(
    session: Session, records: Sequence[Usage], received_at: datetime
) -> tuple[int, int]:
    """The batch COPYed into a temporary table and upserted from it in one statement:
    exact when other sessions write the same ids at the same time."""
    connection: Any = session.connection().connection.driver_connection
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ON COMMIT DROP AS "
            f"SELECT {', '.join(COLUMNS)} FROM usage_record WITH NO DATA"
        )
        cursor.execute(f"TRUNCATE {_STAGE}")
    copy_rows(session, _STAGE, records)
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT_FROM_STAGE, {"received_at": received_at})
        row = cursor.fetchone()
    return int(row[0]), int(row[1])


def _moment(value: date | datetime) -> datetime:
    """A date is its midnight in Berlin (bill periods are local calendar days)."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(), BERLIN).astimezone(UTC)


def usage_for_billing(
    session: Session,
    product_ids: Collection[str],
    start: date | datetime,
    end: date | datetime,
) -> dict[str, UsageToBill]:
    """Per product, the usage a bill for ``[start, end)`` charges (see
    :class:`UsageToBill`): every ``received`` record whose interval begins before
    ``end``, late ones included. Products with nothing to charge are left out.

    ``end`` is exclusive: for a bill period of dates 1 to 30 November pass
    ``date(2026, 12, 1)``. Dates are midnights in Europe/Berlin.

    Call it and :func:`mark_usage_billed` in the bill's transaction: on PostgreSQL the
    records read are locked, so a correction arriving meanwhile waits for the bill and
    then reopens the record for the next one.
    """
    start, end = _moment(start), _moment(end)
    table = UsageRecordRow
    found: dict[str, list[tuple[int, str, datetime, Decimal, Decimal | None]]] = {}
    for part in _chunks(sorted(set(product_ids))):
        stmt = (
            select(
                table.id,
                table.product_id,
                table.customer_id,
                table.start_at,
                table.volume,
                table.billed_volume,
            )
            .where(
                and_(
                    table.product_id.in_(part),
                    table.status == "received",
                    table.start_at < end,
                )
            )
            .order_by(table.id)
            .with_for_update()
        )
        for record_id, product_id, customer_id, start_at, volume, billed in session.execute(stmt):
            found.setdefault(str(product_id), []).append(
                (record_id, customer_id, start_at, volume, billed)
            )
    result: dict[str, UsageToBill] = {}
    for product_id, rows in found.items():
        volume = late = Decimal(0)
        for _, _, start_at, record_volume, billed in rows:
            charge = record_volume - (billed or Decimal(0))
            volume += charge
            if start_at < start:
                late += charge
        result[product_id] = UsageToBill(
            product_id=product_id,
            customer_id=rows[0][1],
            volume=volume,
            late_volume=late,
            record_ids=tuple(r[0] for r in rows),
        )
    return result


def mark_usage_billed(session: Session, record_ids: Collection[int], bill_id: str) -> int:
    """The records a bill charged: ``billed``, ``billed_volume`` = the volume charged up
    to now, the bill's id. Records no longer ``received`` are left; returns how many
    were marked."""
    table: Any = UsageRecordRow.__table__
    marked = 0
    for part in _chunks(sorted(set(record_ids))):
        result: Any = session.execute(
            update(table)
            .where(and_(table.c.id.in_(part), table.c.status == "received"))
            .values(status="billed", billed_volume=table.c.volume, bill_id=bill_id)
        )
        marked += int(result.rowcount or 0)
    return marked


def traffic_usage_id(site_id: str, product_id: str, hour_start: datetime) -> str:
    """The id of a site's traffic in one hour: the same hour gives the same id, so a
    rerun (late measurements) corrects rather than adds."""
    return f"{TRAFFIC}/{site_id}/{product_id}/{hour_start:%Y-%m-%dT%H}Z"


def usage_from_measurements(session: Session, hour_start: datetime) -> IngestResult:
    """The traffic volume (in + out) of every site's access product in one hour, from
    the performance data (``NetworkMeasurementRow``, bytes per link and interval, an
    interval counted in the hour it starts), in GB, ingested as usage. Links without a
    product are not billable and left out. Run again for the same hour: unchanged, or
    corrected when measurements arrived late."""
    hour = hour_start.replace(minute=0, second=0, microsecond=0)
    end = hour + HOUR
    measurement, link = NetworkMeasurementRow, NetworkLinkRow
    rows = session.execute(
        select(
            link.customer_id,
            link.product_id,
            link.site_id,
            func.sum(measurement.bytes_in + measurement.bytes_out),
        )
        .join(link, link.id == measurement.link_id)
        .where(and_(measurement.at >= hour, measurement.at < end, link.product_id.is_not(None)))
        .group_by(link.customer_id, link.product_id, link.site_id)
        .order_by(link.site_id, link.product_id)
    )
    records = [
        Usage(
            usage_id=traffic_usage_id(site_id, str(product_id), hour),
            customer_id=customer_id,
            product_id=product_id,
            site_id=site_id,
            usage_type=TRAFFIC,
            start_at=hour,
            end_at=end,
            volume=_quantised(Decimal(int(total or 0)) * UNITS["B"]),
        )
        for customer_id, product_id, site_id, total in rows
    ]
    return ingest_usage(session, records)
