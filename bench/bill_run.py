"""The bill run (issue 10) against a floor measured in the same run: one SQL
``INSERT ... SELECT`` producing the same rated lines into a scratch copy of
``applied_rate``.

See bench/README.md ("Bill run (issue 10)") for the method.
Usage: .venv/bin/python bench/bill_run.py [--db postgresql|sqlite|both]
       [--accounts N] [--usage U] [--rounds R] [--sample S] [--profile P]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_DB = "etomcrm_bench_billrun"
PG_CHECK_DB = "etomcrm_bench_billrun_check"
BERLIN = ZoneInfo("Europe/Berlin")
PERIOD = (date(2026, 11, 1), date(2026, 11, 30))
TODAY = date(2026, 12, 1)
# The bill run's chunk: rating.CHUNK accounts a transaction (rate_accounts' IN lists).
RATE_CHUNK = 2000
SITE_ACCESS, ROUTER, TRAFFIC = "Site access 10 Mbit/s", "Router rental", "Traffic"
INCLUDED_GB = 500
BATCH = 5000

# Filled by main() once the path to src is set.
Session = Any


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# ----- the accounts --------------------------------------------------------------------


def _price(name: str, list_amount: str, price_type: str, discount: bool) -> dict[str, Any]:
    """A productPrice entry as an order item copies it onto the product (the quote's
    contract discount as a priceAlteration: net = list - discount, both in cents)."""
    amount = Decimal(list_amount)
    price: dict[str, Any] = {
        "name": name,
        "priceType": price_type,
        "productOfferingPrice": {"id": f"pop-{name.lower().replace(' ', '-')}", "name": name},
    }
    if price_type == "recurring":
        price["recurringChargePeriod"] = "month"
    if price_type == "usage":
        price["unitOfMeasure"] = "GB"
        price["includedVolume"] = INCLUDED_GB
    if discount and price_type == "recurring":
        off = cents(amount * Decimal("0.15"))
        price["price"] = {"dutyFreeAmount": {"unit": "EUR", "value": float(amount - off)}}
        price["priceAlteration"] = [
            {
                "name": "Contract discount",
                "priceType": "recurring",
                "price": {
                    "percentage": 15,
                    "dutyFreeAmount": {"unit": "EUR", "value": float(-off)},
                },
            }
        ]
    else:
        price["price"] = {"dutyFreeAmount": {"unit": "EUR", "value": float(amount)}}
    return price


def product_payloads(n: int, customer_id: str, account_id: str, site: str) -> list[dict[str, Any]]:
    """Account ``n``'s products: a site access (189 EUR a month and traffic at 0.09 EUR/GB
    beyond 500 GB included), every third account also a router (9.90 EUR a month);
    every tenth started on 12 November (a part month), every fifth with the 15 %
    contract discount."""
    discount = n % 5 == 0
    start = "2026-11-12T00:00:00+01:00" if n % 10 == 0 else "2026-10-01T00:00:00+02:00"
    common: dict[str, Any] = {
        "status": "active",
        "startDate": start,
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
        "billingAccount": {"id": account_id, "@referredType": "BillingAccount"},
        "place": [{"id": site, "@referredType": "GeographicSite", "role": "installationAddress"}],
    }
    out = [
        {
            **common,
            "name": SITE_ACCESS,
            "productPrice": [
                _price(SITE_ACCESS, "189.00", "recurring", discount),
                _price(TRAFFIC, "0.09", "usage", discount),
            ],
        }
    ]
    if n % 3 == 0:
        out.append(
            {
                **common,
                "name": ROUTER,
                "productPrice": [_price(ROUTER, "9.90", "recurring", discount)],
            }
        )
    return out


def customer_body(customer_id: str, n: int) -> dict[str, Any]:
    return {
        "id": customer_id,
        "@type": "Customer",
        "name": f"Bench customer {n}",
        "status": "active",
        "contactMedium": [
            {
                "mediumType": "email",
                "characteristic": {
                    "contactType": "billing",
                    "emailAddress": f"bill{n}@example.com",
                },
            },
            {
                "mediumType": "postalAddress",
                "characteristic": {
                    "contactType": "billing",
                    "street1": f"Hauptstraße {n % 200 + 1}",
                    "postCode": f"{10000 + n % 89999:05d}",
                    "city": "Berlin",
                    "country": "DE",
                },
            },
        ],
    }


def account_body(account_id: str, customer_id: str, n: int) -> dict[str, Any]:
    return {
        "id": account_id,
        "@type": "BillingAccount",
        "name": f"Invoices {n}",
        "state": "active",
        "billCycleDay": 1,
        "currency": "EUR",
        "billStructure": {"presentationMedia": [{"name": "email"}, {"name": "portal"}]},
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "owner"}],
    }


def usage_of(n: int, per_account: int, customer_id: str, product_id: str, site: str) -> list[Any]:
    """Account ``n``'s traffic in November: ``per_account`` records spread over the month
    (ids as the hourly tick makes them), 0-55 GB each, so most accounts use more than
    the 500 GB included."""
    from etomcrm.billing.usage import Usage, traffic_usage_id

    step = max(1, 29 * 24 // max(1, per_account))
    out = []
    for j in range(per_account):
        start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=j * step)
        out.append(
            Usage(
                usage_id=traffic_usage_id(site, product_id, start),
                customer_id=customer_id,
                product_id=product_id,
                site_id=site,
                usage_type="traffic",
                start_at=start,
                end_at=start + timedelta(hours=1),
                volume=Decimal((n * 7919 + j * 104729) % 55000) / 1000,
            )
        )
    return out


def ids(n: int, prefix: str = "b") -> tuple[str, str, str]:
    return f"{prefix}-cust-{n:06d}", f"{prefix}-acct-{n:06d}", f"{prefix}-site-{n:06d}"


def _resource(row_id: str, at_type: str, name: str, owner: str, body: dict[str, Any]) -> Any:
    now = datetime.now(UTC)
    return {
        "id": row_id,
        "at_type": at_type,
        "name": name,
        "status": "active",
        "owner_customer_id": owner,
        "body": body,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def load(url: str, accounts: range, per_account: int, prefix: str = "b") -> None:
    """Bulk load: customers, billing accounts and products with SQLAlchemy Core
    ``executemany`` of the rows the services write, usage by COPY on PostgreSQL (the
    usage service's own COPY text) and ``executemany`` on SQLite."""
    from sqlalchemy import insert

    from etomcrm.billing.models import UsageRecordRow
    from etomcrm.billing.usage import _copy_text
    from etomcrm.customer_interface.models import CustomerRow
    from etomcrm.db import session_scope
    from etomcrm.order_handling.models import ProductRow
    from etomcrm.selling.models import BillingAccountRow

    for begin in range(accounts.start, accounts.stop, BATCH):
        customers, billing, products, usage = [], [], [], []
        for n in range(begin, min(begin + BATCH, accounts.stop)):
            customer_id, account_id, site = ids(n, prefix)
            customers.append(
                _resource(
                    customer_id,
                    "Customer",
                    f"Bench customer {n}",
                    customer_id,
                    customer_body(customer_id, n),
                )
            )
            account = _resource(
                account_id,
                "BillingAccount",
                f"Invoices {n}",
                customer_id,
                account_body(account_id, customer_id, n),
            )
            billing.append({**account, "bill_cycle_day": 1, "currency": "EUR"})
            for k, payload in enumerate(product_payloads(n, customer_id, account_id, site)):
                product_id = f"{prefix}-prod-{n:06d}-{k}"
                body = {**payload, "id": product_id, "@type": "Product"}
                products.append(
                    _resource(product_id, "Product", payload["name"], customer_id, body)
                )
                if k == 0:
                    usage += usage_of(n, per_account, customer_id, product_id, site)
        with session_scope(url) as session:
            session.execute(insert(CustomerRow), customers)
            session.execute(insert(BillingAccountRow), billing)
            session.execute(insert(ProductRow), products)
            if url.startswith("postgresql"):
                received = datetime.now(UTC).isoformat()
                tail = f"\treceived\t1\t{received}\n".encode()
                from etomcrm.billing.usage import COLUMNS

                columns = ", ".join((*COLUMNS, "status", "version", "received_at"))
                connection: Any = session.connection().connection.driver_connection
                sql = f"COPY usage_record ({columns}) FROM STDIN"
                with connection.cursor() as cursor, cursor.copy(sql) as copy:
                    for block in _copy_text(usage):
                        copy.write(block.replace(b"\n", tail))
            elif usage:
                session.execute(
                    insert(UsageRecordRow),
                    [
                        {
                            "usage_id": u.usage_id,
                            "customer_id": u.customer_id,
                            "product_id": u.product_id,
                            "site_id": u.site_id,
                            "usage_type": u.usage_type,
                            "start_at": u.start_at,
                            "end_at": u.end_at,
                            "volume": u.volume,
                            "unit": "GB",
                            "status": "received",
                            "version": 1,
                        }
                        for u in usage
                    ],
                )
        if (begin - accounts.start) % 50_000 == 0:
            log(f"  loaded accounts {begin}..{min(begin + BATCH, accounts.stop) - 1}")


# ----- the set-up is faithful ----------------------------------------------------------


CHECKED = (0, 1, 2, 3, 5, 10, 12, 15, 30)


def check_faithful(url: str, per_account: int) -> dict[str, Any]:
    """A handful of accounts made twice: once by the bulk load, once through the services
    (products by ``resources.create`` with ``PRODUCT_KIND``, usage by ``ingest_usage``);
    both rated for the period by ``rate_account``: the same lines, to the cent."""
    from sqlalchemy import insert

    from etomcrm.billing.rating import rate_account
    from etomcrm.billing.usage import ingest_usage
    from etomcrm.core import resources
    from etomcrm.customer_interface.models import CustomerRow
    from etomcrm.db import session_scope
    from etomcrm.order_handling.service import PRODUCT_KIND
    from etomcrm.security.service import SYSTEM
    from etomcrm.selling.models import BillingAccountRow

    for n in CHECKED:
        load(url, range(n, n + 1), per_account)
        customer_id, account_id, site = ids(n, "s")
        with session_scope(url) as session:
            session.execute(
                insert(CustomerRow),
                [
                    _resource(
                        customer_id, "Customer", f"c{n}", customer_id, customer_body(customer_id, n)
                    )
                ],
            )
            account = _resource(
                account_id,
                "BillingAccount",
                f"Invoices {n}",
                customer_id,
                account_body(account_id, customer_id, n),
            )
            session.execute(
                insert(BillingAccountRow), [{**account, "bill_cycle_day": 1, "currency": "EUR"}]
            )
        with session_scope(url) as session:
            made = [
                str(resources.create(session, PRODUCT_KIND, SYSTEM, payload)[0]["id"])
                for payload in product_payloads(n, customer_id, account_id, site)
            ]
        with session_scope(url) as session:
            ingest_usage(session, usage_of(n, per_account, customer_id, made[0], site))

    def lines(account_id: str) -> list[tuple[Any, ...]]:
        with session_scope(url) as session:
            rates = rate_account(session, account_id, *PERIOD, today=TODAY)
            return sorted(
                (
                    r.rate_type,
                    r.name,
                    r.period_start,
                    r.period_end,
                    r.quantity,
                    r.unit_price,
                    r.tax_excluded,
                    r.tax_rate,
                    r.tax_amount,
                    r.tax_included,
                    r.characteristic.get("usage", {}).get("count"),
                )
                for r in rates
            )

    checked = []
    for n in CHECKED:
        bulk, service = lines(ids(n)[1]), lines(ids(n, "s")[1])
        if bulk != service:
            raise SystemExit(f"account {n}: bulk rows rate differently:\n{bulk}\n{service}")
        checked.append({"account": n, "lines": len(bulk), "net": str(sum(x[6] for x in bulk))})
    log(f"  faithful: {len(CHECKED)} accounts rate the same from bulk and service rows")
    return {"accounts": checked}


# ----- the floor -----------------------------------------------------------------------


def _floor_sql(dialect: str) -> str:
    """One INSERT ... SELECT: the recurring line of each price (prorated by day), its
    contract discount line, the usage line beyond the included volume, all with 19 %
    VAT rounded per line. It relies on the benchmark's data shape (the recurring price
    first, the usage price second) where the rating reads any shape."""
    pg = dialect == "postgresql"

    def j(column: str, path: str, text: bool = True) -> str:
        if pg:
            parts = path.split(".")
            head = "".join(f"->{p}" if p.isdigit() else f"->'{p}'" for p in parts[:-1])
            last = parts[-1]
            op = "->>" if text else "->"
            return f"{column}{head}{op}{last if last.isdigit() else repr(last)}"
        sqlite_path = "$" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path.split("."))
        return f"json_extract({column}, '{sqlite_path}')"

    num = "::numeric" if pg else ""

    def d(value: str) -> str:
        # SQLite keeps dates as ISO text (a CAST AS date would make a number of it).
        return f"CAST({value} AS date)" if pg else value

    day = "::date" if pg else ""
    days = f"({d(':pe')} - first_day + 1)" if pg else "(julianday(:pe) - julianday(first_day) + 1)"
    greatest = "greatest" if pg else "max"
    trace = "json_build_object" if pg else "json_object"
    ident = "md5(key)" if pg else "lower(hex(randomblob(16)))"
    now = "now()" if pg else "CURRENT_TIMESTAMP"
    cat = "||"
    off = "productPrice.0.priceAlteration.0.price.dutyFreeAmount.value"
    return f"""
INSERT INTO applied_rate_floor (id, source_key, billing_account_id, customer_id, bill_id,
    product_id, rate_type, name, description, period_start, period_end, quantity,
    unit_price, tax_excluded, tax_rate, tax_amount, tax_included, currency, characteristic,
    rated_at)
WITH p AS (
    SELECT pr.id AS pid, ba.id AS aid, ba.owner_customer_id AS cid,
        {greatest}(substr({j("pr.body", "startDate")}, 1, 10){day}, {d(":ps")}) AS first_day,
        {j("pr.body", "productPrice.0.name")} AS rname,
        ({j("pr.body", "productPrice.0.price.dutyFreeAmount.value")}){num}
          - coalesce(({j("pr.body", off)}){num}, 0)
          AS list_amount,
        ({j("pr.body", "productPrice.0.priceAlteration.0.price.percentage")}){num} AS pct,
        {j("pr.body", "productPrice.1.name")} AS uname,
        ({j("pr.body", "productPrice.1.price.dutyFreeAmount.value")}){num} AS uprice,
        ({j("pr.body", "productPrice.1.includedVolume")}){num} AS included
    FROM billing_account ba
    JOIN product pr ON pr.owner_customer_id = ba.owner_customer_id
    WHERE ba.status = 'active' AND substr({j("pr.body", "startDate")}, 1, 10) <= :pe
), r AS (
    SELECT p.*, {days} AS days, round(list_amount * {days} / :month_days, 2) AS net FROM p
), u AS (
    SELECT p.pid, p.aid, p.cid, p.uname, p.uprice, sum(ur.volume) - p.included AS beyond,
        count(*) AS records
    FROM p JOIN usage_record ur ON ur.customer_id = p.cid AND ur.product_id = p.pid
    WHERE p.uname IS NOT NULL AND ur.status = 'received'
        AND ur.start_at >= :since AND ur.start_at < :until
    GROUP BY p.pid, p.aid, p.cid, p.uname, p.uprice, p.included
), lines AS (
    SELECT 'recurring/' {cat} pid {cat} '/' {cat} first_day AS key, aid, cid, pid,
        'recurring' AS rate_type, rname AS name, first_day AS ps,
        round(days / :month_days, 6) AS qty,
        list_amount AS unit_price, net, days AS n FROM r
    UNION ALL
    SELECT 'discount/recurring/' {cat} pid {cat} '/' {cat} first_day, aid, cid, pid, 'discount',
        'Contract discount ' {cat} pct {cat} ' % on ' {cat} rname, first_day, 1, NULL,
        -round(net * pct / 100, 2), days FROM r WHERE pct IS NOT NULL
    UNION ALL
    SELECT 'usage/' {cat} pid {cat} '/' {cat} :ps, aid, cid, pid, 'usage', uname, {d(":ps")},
        beyond, uprice, round(beyond * uprice, 2), records FROM u WHERE beyond > 0
)
SELECT {ident}, key, aid, cid, NULL, pid, rate_type, name, NULL, ps, {d(":pe")}, qty,
    unit_price, net, 19, round(net * 19 / 100, 2), net + round(net * 19 / 100, 2), 'EUR',
    {trace}('product', pid, 'rateType', rate_type, 'count', n, 'taxCategory', 'S'), {now}
FROM lines
"""


def floor(url: str, dialect: str) -> float:
    from sqlalchemy import bindparam, text

    from etomcrm.db import UTCDateTime, session_scope

    start, end = PERIOD
    since = datetime.combine(start, datetime.min.time(), BERLIN).astimezone(UTC)
    until = datetime.combine(end + timedelta(days=1), datetime.min.time(), BERLIN).astimezone(UTC)
    statement = text(_floor_sql(dialect)).bindparams(
        bindparam("ps", start.isoformat()),
        bindparam("pe", end.isoformat()),
        bindparam("month_days", (end - start).days + 1),
        bindparam("since", since, type_=UTCDateTime),
        bindparam("until", until, type_=UTCDateTime),
    )
    with session_scope(url) as session:
        session.execute(text("DELETE FROM applied_rate_floor"))
    _vacuum(url, "applied_rate_floor")
    started = time.perf_counter()
    with session_scope(url) as session:
        session.execute(statement)
    return time.perf_counter() - started


def make_floor_table(url: str, dialect: str) -> None:
    from sqlalchemy import text

    from etomcrm.db import session_scope

    with session_scope(url) as session:
        if dialect == "postgresql":
            session.execute(
                text("CREATE TABLE applied_rate_floor (LIKE applied_rate INCLUDING ALL)")
            )
        else:
            session.execute(
                text("CREATE TABLE applied_rate_floor AS SELECT * FROM applied_rate WHERE 0")
            )
            for index, columns, unique in (
                ("ux_floor_source_key", "source_key", "UNIQUE"),
                ("ix_floor_account_unbilled", "billing_account_id, bill_id", ""),
                ("ix_floor_bill", "bill_id", ""),
            ):
                session.execute(
                    text(f"CREATE {unique} INDEX {index} ON applied_rate_floor ({columns})")
                )


def compare_floor(url: str) -> dict[str, Any]:
    """The floor's lines against the rating's: per account and rate type, the count of
    lines and the sums of net and tax."""
    from sqlalchemy import text

    from etomcrm.db import session_scope

    sql = (
        "SELECT billing_account_id, rate_type, count(*), sum(tax_excluded), sum(tax_amount) "
        "FROM {} GROUP BY billing_account_id, rate_type"
    )
    with session_scope(url, readonly=True) as session:
        rated, floored = (
            {
                (a, t): (c, cents(Decimal(str(n))), cents(Decimal(str(x))))
                for a, t, c, n, x in session.execute(text(sql.format(table)))
            }
            for table in ("applied_rate", "applied_rate_floor")
        )
    differ = sorted(k for k in rated.keys() | floored.keys() if rated.get(k) != floored.get(k))
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for (_, kind), (count, net, _tax) in rated.items():
        totals[kind][0] += count
        totals[kind][1] += net
    return {
        "groups": len(rated),
        "differing_groups": len(differ),
        "differing_examples": [
            [str(x) for x in k] + [str(rated.get(k)), str(floored.get(k))] for k in differ[:5]
        ],
        "rated": {k: {"lines": int(v[0]), "net": str(v[1])} for k, v in totals.items()},
    }


# ----- rating and the bill run ---------------------------------------------------------


def _vacuum(url: str, *tables: str) -> None:
    if url.startswith("postgresql"):
        plain = url.replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(plain, autocommit=True) as conn:
            for table in tables:
                conn.execute(f"VACUUM ANALYZE {table}")


def reset(url: str, account_ids: list[str] | None = None) -> None:
    """Nothing rated: no rates, every usage record received (of the accounts given, or all)."""
    from sqlalchemy import delete, update

    from etomcrm.billing.models import AppliedRateRow, UsageRecordRow
    from etomcrm.db import session_scope

    with session_scope(url) as session:
        if account_ids is None:
            session.execute(delete(AppliedRateRow))
            session.execute(
                update(UsageRecordRow)
                .where(UsageRecordRow.status != "received")
                .values(status="received", billed_volume=None, bill_id=None)
            )
        else:
            customers = [a.replace("-acct-", "-cust-") for a in account_ids]
            for begin in range(0, len(account_ids), 2000):
                session.execute(
                    delete(AppliedRateRow).where(
                        AppliedRateRow.billing_account_id.in_(account_ids[begin : begin + 2000])
                    )
                )
                session.execute(
                    update(UsageRecordRow)
                    .where(UsageRecordRow.customer_id.in_(customers[begin : begin + 2000]))
                    .values(status="received", billed_volume=None, bill_id=None)
                )
    if account_ids is None:
        _vacuum(url, "applied_rate", "usage_record")


def rate_all(url: str, account_ids: list[str]) -> float:
    """``rate_accounts`` over every account, ``RATE_CHUNK`` accounts a transaction."""
    from etomcrm.billing.rating import rate_accounts
    from etomcrm.db import session_scope

    started = time.perf_counter()
    for begin in range(0, len(account_ids), RATE_CHUNK):
        with session_scope(url) as session:
            rate_accounts(session, account_ids[begin : begin + RATE_CHUNK], *PERIOD, today=TODAY)
    return time.perf_counter() - started


class Timer:
    """Seconds spent in a function (it is still called: nothing is skipped)."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function, self.seconds = function, 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def reset_bills(url: str) -> None:
    """No bill made: the bills, their documents, the number series and the messages that
    sent them deleted (the next round bills every account afresh)."""
    from sqlalchemy import delete, update

    from etomcrm.analytics.models import AnPending
    from etomcrm.billing.bill_models import BillDocumentRow
    from etomcrm.billing.models import AppliedRateRow, BillNumberSeries, CustomerBillRow
    from etomcrm.customer_interface.models import CommunicationMessageRow
    from etomcrm.db import session_scope

    with session_scope(url) as session:
        session.execute(update(AppliedRateRow).values(bill_id=None))
        # (and the analytical store's marks the last round's bills left)
        session.execute(delete(AnPending))
        session.execute(delete(BillDocumentRow))
        session.execute(delete(CustomerBillRow))
        session.execute(delete(BillNumberSeries))
        session.execute(delete(CommunicationMessageRow))
    _vacuum(url, "customer_bill", "bill_document")


def _rating_timer() -> Timer:
    """``rating.rate_accounts`` wrapped by a timer (once a process; the lanes of one
    process share it)."""
    from etomcrm.billing import rating

    with _TIMER_LOCK:
        if not isinstance(rating.rate_accounts, Timer):
            rating.rate_accounts = Timer(rating.rate_accounts)
        return rating.rate_accounts


_TIMER_LOCK = threading.Lock()


def _lane(url: str, account_ids: list[str]) -> dict[str, Any]:
    """One lane: its accounts ``CHUNK`` at a time, each chunk a transaction with the
    step's savepoint and the garbage collector paused, rated, billed and issued by the
    flow's own service call (``bills.rate_bill_and_issue``), then the step's query of
    the bills to deliver; each phase timed (rating apart from billing and issuing)."""
    from sqlalchemy import select

    from etomcrm.billing import bills
    from etomcrm.billing.models import CustomerBillRow
    from etomcrm.core.collection import collection_paused
    from etomcrm.db import among, session_scope
    from etomcrm.flows.billing import CHUNK

    phases = dict.fromkeys(("rate", "bill", "issue", "commit"), 0.0)
    made: list[str] = []
    start, end = PERIOD
    rated = _rating_timer()
    for begin in range(0, len(account_ids), CHUNK):
        chunk = account_ids[begin : begin + CHUNK]
        with session_scope(url) as session:
            # As the flow's chunk step: a savepoint, the garbage collector paused.
            with session.begin_nested(), collection_paused():
                mark, rating_before = time.perf_counter(), rated.seconds
                billed, _ = bills.rate_bill_and_issue(session, chunk, start, end, today=TODAY)
                rating_took = rated.seconds - rating_before
                phases["rate"] += rating_took
                phases["bill"] += time.perf_counter() - mark - rating_took
                mark = time.perf_counter()
                bill_ids = [b for b in billed.values() if b is not None]
                # As the flow's chunk step: the bills to deliver with their numbers (issued
                # as they were inserted).
                found = session.execute(
                    select(
                        CustomerBillRow.id, CustomerBillRow.bill_no, CustomerBillRow.status
                    ).where(among(session, CustomerBillRow.id, bill_ids))
                ).all()
                sorted((r for r in found if r[2] == "validated"), key=lambda r: str(r[1]))
                phases["issue"] += time.perf_counter() - mark
                made.extend(bill_ids)
            mark = time.perf_counter()
        phases["commit"] += time.perf_counter() - mark
    return {"bills": made, "phases": phases}


def _worker_ready() -> bool:
    """A lane's process, started and its modules imported before the clock starts (the
    flow's lanes run in DBOS workers that are up already)."""
    sys.path.insert(0, str(ROOT / "src"))
    from etomcrm.billing import bills, rating  # noqa: F401
    from etomcrm.flows import billing  # noqa: F401

    _wired()
    return True


def _wired() -> None:
    """The composition root's handlers wired in this process, as in a worker: what the
    bus does with a chunk's events (``BillIssued``: the accounts' balances and the
    analytical store's marks, in the chunk's transaction) is part of the bill run."""
    from etomcrm.bootstrap import bootstrap

    bootstrap()


def bill_run(
    url: str, account_ids: list[str], lanes: int = 1, threads: bool = False
) -> dict[str, Any]:
    """What the bill run's lanes do, plainly (not through DBOS, without the trace records
    of the steps), over every account: the accounts dealt into ``lanes`` lanes as the
    flow deals them, the lanes in parallel (one process each, as the flow's child
    workflows run in parallel; with ``threads``, threads of this process), each lane's
    accounts ``CHUNK`` a transaction, in it a
    savepoint, ``rating.rate_accounts``, ``bills.bill_accounts``, ``bills.issue_bills``
    (numbers, invoices, canonical JSON and hash; no rendering). Each phase timed (summed
    over the lanes)."""
    from etomcrm.flows.billing import CHUNK

    if lanes <= 1:
        started = time.perf_counter()
        run = _lane(url, account_ids)
        seconds = time.perf_counter() - started
        return {**run, "seconds": seconds, "chunk": CHUNK, "lanes": 1}
    dealt = [account_ids[n::lanes] for n in range(lanes)]
    if threads:
        # The lanes as threads of this one process (one worker running them all).
        with ThreadPoolExecutor(lanes) as pool:
            started = time.perf_counter()
            results = list(pool.map(_lane, [url] * lanes, dealt))
            seconds = time.perf_counter() - started
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(lanes) as pool:
            assert all(pool.map(_worker_ready_wrapper, range(lanes), chunksize=1))
            started = time.perf_counter()
            results = pool.starmap(_lane, [(url, lane) for lane in dealt], chunksize=1)
            seconds = time.perf_counter() - started
    phases = dict.fromkeys(("rate", "bill", "issue", "commit"), 0.0)
    made: list[str] = []
    for result in results:
        made.extend(result["bills"])
        for key, value in result["phases"].items():
            phases[key] += value
    return {"bills": made, "phases": phases, "seconds": seconds, "chunk": CHUNK, "lanes": lanes}


def _worker_ready_wrapper(_: int) -> bool:
    # Each worker of the pool imports once; a short pause keeps one worker from
    # taking every task, so that all of them are up before the clock starts.
    ready = _worker_ready()
    time.sleep(0.5)
    return ready


def deliver(url: str, bill_ids: list[str]) -> dict[str, Any]:
    """What a lane's ``deliver_bill_step`` does for each bill, plainly: in one
    transaction, ``render_document`` (the PDF/A-3 with the Factur-X XML, stored) and
    ``send_bill`` (the TMF681 message with the PDF attached). The rendering timed apart."""
    from etomcrm.billing import bills
    from etomcrm.db import session_scope

    render = Timer(bills._render)
    bills._render = render  # timed, still called
    try:
        started = time.perf_counter()
        cpu = time.process_time()
        for bill_id in bill_ids:
            with session_scope(url) as session:
                bills.render_document(session, bill_id)
                bills.send_bill(session, bill_id, today=TODAY)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu
    finally:
        bills._render = render.function
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "render_seconds": render.seconds}


def profile(url: str, account_ids: list[str], delivered: int) -> list[dict[str, Any]]:
    """cProfile of the bill run's chunk step on a few accounts and the delivery of a few
    of their bills: the functions by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    run = bill_run(url, account_ids)
    deliver(url, run["bills"][:delivered])
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    total = stats.total_tt  # type: ignore[attr-defined]
    wanted = (
        "_render",
        "render_invoice_pdf",
        "invoice_xml",
        "render_document",
        "rate_accounts",
        "bill_accounts",
        "issue_bills",
        "_build_invoices",
        "_lines_of",
        "send_bill",
        "write_message",
        "payer_terms",
        "canonical_json",
        "flush",
        "commit",
        "execute",
        "_load_accounts",
        "_rate_usage",
        "_store",
        "_carry_excess_credit",
        "_charged_days",
        "record",
    )
    out = []
    for (filename, _, function), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if function in wanted and ("etomcrm" in filename or "sqlalchemy/orm/session" in filename):
            out.append(
                {
                    "function": f"{Path(filename).stem}.{function}",
                    "seconds": round(cumulative, 3),
                    "share": round(cumulative / total, 3),
                }
            )
    return sorted(out, key=lambda x: -x["seconds"])


# ----- one database --------------------------------------------------------------------


def _database(db: str, name: str) -> str:
    if db == "sqlite":
        path = RESULTS / "tmp" / f"{name}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _drop(db: str, name: str) -> None:
    if db == "postgresql":
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _use(url: str) -> None:
    from etomcrm.config import get_settings
    from etomcrm.migrate import upgrade

    os.environ["ETOMCRM_DATABASE_URL"] = url
    get_settings.cache_clear()
    upgrade(url)


def bench(
    db: str,
    accounts: int,
    usage: int,
    rounds: int,
    sample: int,
    profiled: int,
    lanes: int,
    threads: bool = False,
) -> dict[str, Any]:
    per_account = max(1, usage // accounts)
    out: dict[str, Any] = {
        "db": db,
        "accounts": accounts,
        "usage_records": per_account * accounts,
        "period": [PERIOD[0].isoformat(), PERIOD[1].isoformat()],
        "rounds": [],
        "rate_chunk": RATE_CHUNK,
        "delivery_sample": sample,
        "lanes": lanes,
        "lanes_as": "threads" if threads else "processes",
    }
    check_url = _database(db, PG_CHECK_DB if db == "postgresql" else "billrun_check")
    _use(check_url)
    out["faithful"] = check_faithful(check_url, per_account)
    _drop(db, PG_CHECK_DB)

    url = _database(db, PG_DB if db == "postgresql" else "billrun")
    _use(url)
    _wired()
    started = time.perf_counter()
    load(url, range(accounts), per_account)
    _vacuum(url, "customer", "billing_account", "product", "usage_record")
    out["load_seconds"] = round(time.perf_counter() - started, 1)
    log(
        f"{db}: loaded {accounts} accounts, {per_account * accounts} usage records "
        f"in {out['load_seconds']} s"
    )
    make_floor_table(url, db)
    account_ids = [ids(n)[1] for n in range(accounts)]
    for number in range(rounds):
        reset_bills(url)
        reset(url)
        floor_seconds = floor(url, db)
        rate_seconds = rate_all(url, account_ids)
        if number == 0:
            out["floor_check"] = compare_floor(url)
            log(
                f"  floor vs rating: {out['floor_check']['differing_groups']} of "
                f"{out['floor_check']['groups']} (account, rate type) groups differ"
            )
        reset(url)
        run = bill_run(url, account_ids, lanes, threads)
        made = run["bills"]
        # The delivery on a sample of the bills, spread over all, another each round.
        stride = max(1, len(made) // sample)
        picked = made[number % stride :: stride][:sample]
        sent = deliver(url, picked)
        per_second = len(picked) / sent["seconds"]
        round_ = {
            "floor_seconds": round(floor_seconds, 3),
            "rate_accounts_seconds": round(rate_seconds, 3),
            "rate_ratio": round(rate_seconds / floor_seconds, 2),
            "bill_run_seconds": round(run["seconds"], 3),
            "bill_run_bills": len(made),
            "bill_run_accounts_per_second": round(accounts / run["seconds"], 1),
            "bill_run_phases_seconds": {k: round(v, 3) for k, v in run["phases"].items()},
            "bill_run_ratio": round(run["seconds"] / floor_seconds, 2),
            "delivery_sample_bills": len(picked),
            "delivery_sample_seconds": round(sent["seconds"], 3),
            "delivery_sample_cpu_seconds": round(sent["cpu_seconds"], 3),
            "delivery_render_seconds": round(sent["render_seconds"], 3),
            "delivery_pdfs_per_second_per_core": round(per_second, 2),
            "delivery_pdfs_per_cpu_second": round(len(picked) / sent["cpu_seconds"], 2),
            "delivery_all_bills_one_core_seconds": round(len(made) / per_second, 1),
        }
        log(
            f"  round {number + 1}: floor {floor_seconds:.2f} s; "
            f"rate_accounts {rate_seconds:.2f} s ({round_['rate_ratio']}x); "
            f"bill run (rate, bill, issue; chunks of {run['chunk']}, {lanes} lane(s)) "
            f"{run['seconds']:.2f} s "
            f"for {len(made)} bills ({round_['bill_run_ratio']}x); delivery (render + send) "
            f"{per_second:.2f} PDFs/s on one core ({round_['delivery_pdfs_per_cpu_second']} "
            f"per CPU second; rendering {sent['render_seconds']:.1f} of "
            f"{sent['seconds']:.1f} s)"
        )
        out["rounds"].append(round_)
    for key in out["rounds"][0]:
        if key != "bill_run_phases_seconds":
            out[f"median_{key}"] = statistics.median(r[key] for r in out["rounds"])
    if profiled:
        reset_bills(url)
        reset(url)
        picked = account_ids[:profiled]
        out["profile"] = profile(url, picked, 20)
        out["profile_accounts"] = len(picked)
        out["profile_bills_delivered"] = 20
    _drop(db, PG_DB)
    return out


def _machine() -> dict[str, Any]:
    import platform
    import sqlite3

    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="postgresql")
    parser.add_argument("--accounts", type=int, help="default 100,000 (PG), 20,000 (SQLite)")
    parser.add_argument("--usage", type=int, help="default 20 records an account")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sample", type=int, default=200, help="bills rendered and sent a round")
    parser.add_argument(
        "--profile", type=int, default=1000, help="accounts profiled, 20 bills sent (0: none)"
    )
    parser.add_argument(
        "--lanes",
        type=int,
        help="lanes billing in parallel, a process each (default: the flow's, "
        "flows.billing.lanes_for: as many as the cores on PostgreSQL, 1 on SQLite)",
    )
    parser.add_argument(
        "--threads",
        action="store_true",
        help="the lanes as threads of one process (one worker runs them all), not processes",
    )
    args = parser.parse_args()
    if args.db == "both":
        # Each database in a process of its own: the handlers wired for one run check
        # the references the next one's faithful check makes before it wires them.
        for db in ("postgresql", "sqlite"):
            at = sys.argv.index("--db")
            command = [*sys.argv[: at + 1], db, *sys.argv[at + 2 :]]
            subprocess.run([sys.executable, *command], check=True)
        return
    sys.path.insert(0, str(ROOT / "src"))
    for db in (args.db,):
        accounts = args.accounts or (100_000 if db == "postgresql" else 20_000)
        usage = args.usage or accounts * 20
        from etomcrm.flows.billing import lanes_for

        lanes = args.lanes or lanes_for(db)
        result = bench(
            db, accounts, usage, args.rounds, args.sample, args.profile, lanes, args.threads
        )
        result["machine"] = _machine()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%MZ")
        target = RESULTS / f"bill_run-{stamp}-{db}.json"
        target.write_text(json.dumps(result, indent=2, default=str))
        log(f"{db}: wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
