"""3.8.2 Apply pricing, discounting, adjustments & rebates: products and usage become
rated charges (TMF678 ``appliedCustomerBillingRate``, :class:`AppliedRateRow`).

What is charged, for a billing account and a period (``period_start`` is a cycle
day, ``period_end`` the day before the next one, or earlier for a final bill):

- the account's products: TMF637 products whose ``billingAccount`` is the account, or
  without one, of a customer whose default (oldest) billing account it is;
- recurring prices (``productPrice`` copied from the order item) for the days of the
  period they are active, prorated by day (:mod:`etomcrm.billing.charges`): from the
  product's ``startDate`` (or the price's ``validFor.startDateTime``, set when a
  modify order changes the price) to its ``terminationDate`` (or the price's
  ``validFor.endDateTime``), days in Europe/Berlin, the end day not charged. Days
  already charged for the same product and price are never charged again, so a final
  bill's short period and the regular run after it do not overlap;
- one-time prices once, on the first rating after the product started;
- the quote's contract discount (``priceAlteration`` percentage on the item price) as
  its own negative line beside each list price line;
- usage (:class:`UsageRecordRow`, status ``received``) of the product, or of its site
  when the record names only the site, priced by the product's usage price: the
  volume beyond the included volume (the site access's ``includedVolumeGB``) per
  billing month, tiers when the price lists them (``tier``: ``[{"upTo": n,
  "price": p}]``); a late or corrected record charges only the difference to what the
  month was charged before. Rated records become ``rated`` with ``billed_volume``;
- SLA credits (:func:`record_sla_credit`), written when owed.

Every rate's ``characteristic`` names what it is traceable to (product, price,
usage records, violation, period), its tax category (S or AE) and the list price.
Every rate is written once: ``source_key`` is unique.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Row, Table, bindparam, or_, select, text, update
from sqlalchemy.orm import Session

from etomcrm.billing import charges
from etomcrm.billing.charges import ZERO, Tax, Tier
from etomcrm.billing.models import AppliedRateRow, UsageRecordRow
from etomcrm.catalog.models import ProductOfferingRow
from etomcrm.config import get_settings
from etomcrm.core.clock import ServiceClock
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.db import new_id, session_scope
from etomcrm.order_handling.models import ProductRow
from etomcrm.qos_sla.events import SlaCreditOwed
from etomcrm.selling.models import BillingAccountRow

LOCAL = ZoneInfo("Europe/Berlin")
# Bound on the ids in one IN list: every select is one query per this many ids.
CHUNK = 2000
USAGE_RECEIVED = "received"
USAGE_RATED = "rated"
CREDIT = "credit"
CARRIED = "carriedCredit"
INCLUDED_VOLUME = "includedVolumeGB"
# The clock the SLA credit handler dates a credit by (tests set it).
CLOCK = ServiceClock("rating")

T = TypeVar("T")


def _chunks(values: Iterable[T]) -> Iterable[list[T]]:
    items = list(dict.fromkeys(values))
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def local_day(value: Any) -> date | None:
    """The Berlin calendar day of an ISO date-time (or date) string."""
    if not value:
        return None
    text = str(value)
    if len(text) == 10:
        return date.fromisoformat(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(LOCAL).date()


def _amount(price: JsonDict | None) -> Decimal | None:
    price = price or {}
    value = price.get("dutyFreeAmount") or price.get("taxIncludedAmount")
    if isinstance(value, dict) and value.get("value") is not None:
        return Decimal(str(value["value"]))
    return None


@dataclass(frozen=True)
class PriceLine:
    """One entry of a product's ``productPrice``, read for rating."""

    key: str
    name: str
    price_type: str  # recurring, oneTime, usage
    list_amount: Decimal  # before the discount
    discount_percent: Decimal
    offering_price_id: str | None
    valid_from: date | None
    valid_until: date | None
    tiers: tuple[Tier, ...] = ()
    included: Decimal | None = None


def price_lines(body: JsonDict) -> list[PriceLine]:
    """The prices of a product: the list amount is the net plus the discount taken off
    (the quote wrote net = list - discount, both rounded to the cent)."""
    lines = []
    for number, price in enumerate(body.get("productPrice") or [], start=1):
        if not isinstance(price, dict):
            continue
        net = _amount(price.get("price"))
        if net is None:
            continue
        percent, off = ZERO, ZERO
        for alteration in price.get("priceAlteration") or []:
            altered = alteration.get("price") or {}
            if altered.get("percentage") is not None:
                percent += Decimal(str(altered["percentage"]))
            off += -(_amount(altered) or ZERO)
        reference = price.get("productOfferingPrice") or {}
        valid = price.get("validFor") or {}
        valid_from = local_day(valid.get("startDateTime"))
        price_type = str(price.get("priceType", "recurring"))
        tiers = tuple(
            Tier(
                Decimal(str(t["upTo"])) if t.get("upTo") is not None else None,
                Decimal(str(t["price"])),
            )
            for t in price.get("tier") or []
        )
        if price_type == "usage" and not tiers:
            tiers = (Tier(None, net),)
        included = price.get("includedVolume")
        lines.append(
            PriceLine(
                key=f"{reference.get('id') or number}"
                + (f"@{valid_from.isoformat()}" if valid_from else ""),
                name=str(price.get("name") or reference.get("name") or price_type),
                price_type=price_type,
                list_amount=net + off,
                discount_percent=percent,
                offering_price_id=reference.get("id"),
                valid_from=valid_from,
                valid_until=local_day(valid.get("endDateTime")),
                tiers=tiers,
                included=Decimal(str(included)) if included is not None else None,
            )
        )
    return lines


def _site(body: JsonDict) -> str | None:
    for place in body.get("place") or []:
        if isinstance(place, dict) and place.get("id"):
            return str(place["id"])
    return None


def _characteristic(body: JsonDict, name: str, key: str = "productCharacteristic") -> Any:
    for item in body.get(key) or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get("value")
    return None


@dataclass
class _Account:
    id: str
    customer_id: str
    currency: str
    tax: Tax
    products: list[ProductRow] = field(default_factory=list)


@dataclass
class _Batch:
    """The rates one rating writes, keyed by source key (written once)."""

    rates: dict[str, AppliedRateRow] = field(default_factory=dict)

    def add(
        self,
        account: _Account,
        key: str,
        *,
        rate_type: str,
        name: str,
        amount: Decimal,
        product_id: str | None,
        start: date | None,
        end: date | None,
        trace: JsonDict,
        quantity: Decimal = Decimal(1),
        unit_price: Decimal | None = None,
        description: str | None = None,
    ) -> AppliedRateRow:
        rate = _rate_row(
            account.id,
            account.customer_id,
            account.currency,
            account.tax,
            key,
            rate_type=rate_type,
            name=name,
            amount=amount,
            product_id=product_id,
            start=start,
            end=end,
            trace=trace,
            quantity=quantity,
            unit_price=unit_price,
            description=description,
        )
        self.rates[key] = rate
        return rate


def _rate_row(
    account_id: str,
    customer_id: str,
    currency: str,
    tax: Tax,
    key: str,
    *,
    rate_type: str,
    name: str,
    amount: Decimal,
    product_id: str | None,
    start: date | None,
    end: date | None,
    trace: JsonDict,
    quantity: Decimal = Decimal(1),
    unit_price: Decimal | None = None,
    description: str | None = None,
) -> AppliedRateRow:
    net = charges.cents(amount)
    tax_value = charges.tax_amount(net, tax.rate)
    return AppliedRateRow(
        id=new_id(),
        source_key=key,
        billing_account_id=account_id,
        customer_id=customer_id,
        bill_id=None,
        product_id=product_id,
        rate_type=rate_type,
        name=name[:200],
        description=description,
        period_start=start,
        period_end=end,
        quantity=quantity,
        unit_price=unit_price,
        tax_excluded=net,
        tax_rate=tax.rate,
        tax_amount=tax_value,
        tax_included=net + tax_value,
        currency=currency,
        characteristic={**trace, "taxCategory": tax.category},
    )


def _reverse_charge(customer: CustomerRow | None) -> bool:
    if customer is None:
        return False
    vat_id = _characteristic(customer.body, "vatId", "characteristic")
    return charges.is_reverse_charge(
        str(vat_id) if vat_id else None, get_settings().provider_country
    )


def _tax(customer: CustomerRow | None) -> Tax:
    return charges.tax_for(_reverse_charge(customer), get_settings().vat_rate_percent)


def _load_accounts(session: Session, account_ids: Collection[str]) -> dict[str, _Account]:
    """The accounts with their tax treatment and products (a few queries per chunk)."""
    rows: list[BillingAccountRow] = []
    for chunk in _chunks(account_ids):
        rows += session.scalars(select(BillingAccountRow).where(BillingAccountRow.id.in_(chunk)))
    customer_ids = {r.owner_customer_id for r in rows if r.owner_customer_id}
    customers: dict[str, CustomerRow] = {}
    defaults: dict[str, str] = {}
    products: list[ProductRow] = []
    for chunk in _chunks(customer_ids):
        customers.update(
            (c.id, c) for c in session.scalars(select(CustomerRow).where(CustomerRow.id.in_(chunk)))
        )
        # A product without a billing account is charged to the customer's oldest one.
        for owner, account_id in session.execute(
            select(BillingAccountRow.owner_customer_id, BillingAccountRow.id)
            .where(BillingAccountRow.owner_customer_id.in_(chunk))
            .order_by(BillingAccountRow.created_at.desc(), BillingAccountRow.id.desc())
        ):
            defaults[str(owner)] = account_id
        products += session.scalars(
            select(ProductRow)
            .where(ProductRow.owner_customer_id.in_(chunk))
            .order_by(ProductRow.created_at, ProductRow.id)
        )
    accounts = {
        r.id: _Account(
            r.id,
            str(r.owner_customer_id),
            r.currency,
            _tax(customers.get(str(r.owner_customer_id))),
        )
        for r in rows
        if r.owner_customer_id
    }
    for product in products:
        named = (product.body.get("billingAccount") or {}).get("id")
        payer = str(named) if named else defaults.get(str(product.owner_customer_id))
        if payer is not None and payer in accounts:
            accounts[payer].products.append(product)
    return accounts


def _charged_days(
    session: Session, product_ids: Collection[str], since: date
) -> dict[tuple[str, str], list[tuple[date, date]]]:
    """The days already charged per (product, price key), from rates reaching ``since``."""
    charged: dict[tuple[str, str], list[tuple[date, date]]] = defaultdict(list)
    for chunk in _chunks(product_ids):
        for product_id, trace, start, end in session.execute(
            select(
                AppliedRateRow.product_id,
                AppliedRateRow.characteristic,
                AppliedRateRow.period_start,
                AppliedRateRow.period_end,
            ).where(
                AppliedRateRow.product_id.in_(chunk),
                AppliedRateRow.rate_type == "recurring",
                AppliedRateRow.period_end >= since,
            )
        ):
            charged[(str(product_id), str(trace.get("priceKey")))].append((start, end))
    return charged


def _uncharged(
    first: date, last: date, charged: Sequence[tuple[date, date]]
) -> list[tuple[date, date]]:
    """The runs of days in ``first``..``last`` no earlier rate charged."""
    runs, day = [], first
    run_start: date | None = None
    covered = sorted(charged)
    while day <= last:
        taken = any(s <= day <= e for s, e in covered)
        if not taken and run_start is None:
            run_start = day
        if taken and run_start is not None:
            runs.append((run_start, day - timedelta(days=1)))
            run_start = None
        day += timedelta(days=1)
    if run_start is not None:
        runs.append((run_start, last))
    return runs


def _trace(product: ProductRow, price: PriceLine, **more: Any) -> JsonDict:
    trace: JsonDict = {
        "product": {"id": product.id, "name": product.name},
        "productOfferingPrice": {"id": price.offering_price_id, "name": price.name},
        "priceKey": price.key,
        "listPrice": str(price.list_amount),
    }
    order_items = product.body.get("productOrderItem") or []
    if order_items:
        trace["productOrderItem"] = order_items
    trace.update(more)
    return trace


def _rate_prices(
    batch: _Batch,
    account: _Account,
    product: ProductRow,
    period_start: date,
    period_end: date,
    today: date,
    charged: dict[tuple[str, str], list[tuple[date, date]]],
) -> None:
    started = local_day(product.body.get("startDate"))
    if started is None or started > today or started > period_end:
        return
    terminated = local_day(product.body.get("terminationDate"))
    for price in price_lines(product.body):
        active_from = max(started, price.valid_from or started)
        until = min((d for d in (terminated, price.valid_until) if d is not None), default=None)
        if price.price_type == "oneTime":
            key = f"oneTime/{product.id}/{price.key}"
            _with_discount(
                batch, account, product, price, key, "oneTime", price.list_amount, started, started
            )
            continue
        if price.price_type != "recurring":
            continue
        for cycle in charges.cycles(period_start, period_end):
            days = charges.overlap(cycle.start, min(cycle.end, period_end), active_from, until)
            if days is None:
                continue
            done = charged.get((product.id, price.key), [])
            for first, last in _uncharged(days[0], days[1], done):
                count = (last - first).days + 1
                amount = charges.prorate(price.list_amount, count, cycle.days)
                key = f"recurring/{product.id}/{price.key}/{first}/{last}"
                _with_discount(
                    batch,
                    account,
                    product,
                    price,
                    key,
                    "recurring",
                    amount,
                    first,
                    last,
                    days=count,
                    month_days=cycle.days,
                )


def _with_discount(
    batch: _Batch,
    account: _Account,
    product: ProductRow,
    price: PriceLine,
    key: str,
    rate_type: str,
    amount: Decimal,
    start: date,
    end: date,
    *,
    days: int | None = None,
    month_days: int | None = None,
) -> None:
    """The list price line and, under a contract discount, its negative discount line."""
    extra: JsonDict = {"period": {"startDate": start.isoformat(), "endDate": end.isoformat()}}
    description = None
    quantity = Decimal(1)
    if days is not None and month_days is not None:
        extra["days"] = days
        extra["daysOfMonth"] = month_days
        if days != month_days:
            description = f"{days} of {month_days} days"
            quantity = Decimal(days) / Decimal(month_days)
    rate = batch.add(
        account,
        key,
        rate_type=rate_type,
        name=price.name,
        amount=amount,
        product_id=product.id,
        start=start,
        end=end,
        trace=_trace(product, price, **extra),
        quantity=quantity.quantize(Decimal("0.000001")),
        unit_price=price.list_amount,
        description=description,
    )
    if price.discount_percent:
        batch.add(
            account,
            f"discount/{key}",
            rate_type="discount",
            name=f"Contract discount {price.discount_percent} % on {price.name}",
            amount=charges.discount(rate.tax_excluded, price.discount_percent),
            product_id=product.id,
            start=start,
            end=end,
            trace=_trace(
                product,
                price,
                discountPercent=str(price.discount_percent),
                discountOf={"sourceKey": key, "id": rate.id},
                **extra,
            ),
            description=f"{price.discount_percent} % of {rate.tax_excluded}",
        )


def _included_volumes(
    session: Session, accounts: Iterable[_Account]
) -> dict[tuple[str, str], Decimal]:
    """Included volume per (customer, site): the site access's ``includedVolumeGB``
    (the product's characteristic, else its offering's default)."""
    offering_ids = {
        str((p.body.get("productOffering") or {}).get("id"))
        for a in accounts
        for p in a.products
        if (p.body.get("productOffering") or {}).get("id")
    }
    defaults: dict[str, Decimal] = {}
    for chunk in _chunks(offering_ids):
        for offering in session.scalars(
            select(ProductOfferingRow).where(ProductOfferingRow.id.in_(chunk))
        ):
            for use in offering.body.get("prodSpecCharValueUse") or []:
                if use.get("name") != INCLUDED_VOLUME:
                    continue
                values = use.get("productSpecCharacteristicValue") or []
                chosen = next(
                    (v for v in values if v.get("isDefault")), values[0] if values else None
                )
                if chosen is not None:
                    defaults[offering.id] = Decimal(str(chosen.get("value")))
    included: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for account in accounts:
        for product in account.products:
            site = _site(product.body)
            if site is None or product.status == "terminated":
                continue
            value = _characteristic(product.body, INCLUDED_VOLUME)
            if value is None:
                offering_id = str((product.body.get("productOffering") or {}).get("id"))
                value = defaults.get(offering_id)
            if value is not None:
                included[(account.customer_id, site)] += Decimal(str(value))
    return included


def _rate_usage(
    session: Session,
    batch: _Batch,
    accounts: dict[str, _Account],
    period_start: date,
    period_end: date,
) -> list[tuple[int, Decimal, str]]:
    """Usage of the accounts' usage-priced products up to ``period_end``, per billing
    month; returns the records rated: (record id, the volume now charged, the usage
    product charged)."""
    usage_products: dict[str, tuple[_Account, ProductRow, PriceLine]] = {}
    by_site: dict[tuple[str, str], str] = {}
    for account in accounts.values():
        for product in account.products:
            usage = next((p for p in price_lines(product.body) if p.price_type == "usage"), None)
            if usage is None:
                continue
            usage_products[product.id] = (account, product, usage)
            site = _site(product.body)
            if site is not None:
                by_site[(account.customer_id, site)] = product.id
    if not usage_products:
        return []
    customers = {a.customer_id for a, _, _ in usage_products.values()}
    end_at = datetime.combine(period_end + timedelta(days=1), datetime.min.time(), LOCAL)
    # Plain rows, not ORM objects: a bill run reads millions of records (the rated ones
    # are marked by one executemany in rate_accounts, not by the unit of work).
    received: list[Row[Any]] = []
    for chunk in _chunks(customers):
        received += session.execute(
            select(
                UsageRecordRow.id,
                UsageRecordRow.usage_id,
                UsageRecordRow.version,
                UsageRecordRow.customer_id,
                UsageRecordRow.product_id,
                UsageRecordRow.site_id,
                UsageRecordRow.start_at,
                UsageRecordRow.volume,
                UsageRecordRow.billed_volume,
            )
            .where(
                UsageRecordRow.customer_id.in_(chunk),
                UsageRecordRow.status == USAGE_RECEIVED,
                UsageRecordRow.start_at < end_at,
            )
            .order_by(UsageRecordRow.id)
        )
    groups: dict[tuple[str, date], list[Row[Any]]] = defaultdict(list)
    for record in received:
        product_id = record.product_id if record.product_id in usage_products else None
        if product_id is None and record.site_id:
            product_id = by_site.get((record.customer_id, record.site_id))
        if product_id is None:
            continue  # no usage price of these accounts: left for whoever charges it
        groups[(product_id, _cycle_of(_local(record.start_at), period_start))].append(record)
    if not groups:
        return []
    earliest = min(month for _, month in groups)
    since = datetime.combine(earliest, datetime.min.time(), LOCAL)
    already: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for chunk in _chunks({p for p, _ in groups}):
        # The products' records are their customers' (ingest checks it): naming the
        # customers lets the (customer, start) index find them, not a scan of all usage.
        owners = {usage_products[p][0].customer_id for p in chunk}
        for product_id, start_at, billed_volume in session.execute(
            select(
                UsageRecordRow.product_id, UsageRecordRow.start_at, UsageRecordRow.billed_volume
            ).where(
                UsageRecordRow.customer_id.in_(owners),
                UsageRecordRow.product_id.in_(chunk),
                UsageRecordRow.start_at >= since,
                UsageRecordRow.billed_volume.is_not(None),
            )
        ):
            month = _cycle_of(_local(start_at), period_start)
            already[(str(product_id), month)] += billed_volume or ZERO
    sites = {s for (_, s) in by_site}
    rated: list[tuple[int, Decimal, str]] = []
    included = _included_volumes(session, accounts.values()) if sites else {}
    for (product_id, month), records in sorted(groups.items()):
        account, product, price = usage_products[product_id]
        # Records named by site that were billed before count under the site's product.
        prior = already[(product_id, month)]
        volume = sum((r.volume - (r.billed_volume or ZERO) for r in records), ZERO)
        site = _site(product.body)
        free = price.included
        if free is None:
            free = included.get((account.customer_id, site), ZERO) if site else ZERO
        ids = sorted(f"{r.usage_id}#{r.version}" for r in records)
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:24]
        month_end = charges.add_months(month, 1) - timedelta(days=1)
        for number, line in enumerate(
            charges.rate_usage(volume, free, price.tiers, already=prior), start=1
        ):
            batch.add(
                account,
                f"usage/{product_id}/{month}/{digest}/{number}",
                rate_type="usage",
                name=price.name,
                amount=line.amount,
                product_id=product_id,
                start=month,
                end=month_end,
                quantity=line.quantity,
                unit_price=line.unit_price,
                description=f"{line.quantity} beyond {free} included",
                trace=_trace(
                    product,
                    price,
                    usage={"count": len(records), "ids": ids[:100], "digest": digest},
                    volume=str(volume),
                    alreadyCharged=str(prior),
                    includedVolume=str(free),
                    period={"startDate": month.isoformat(), "endDate": month_end.isoformat()},
                ),
            )
        for record in records:
            # A record named by its site is the site's usage product's from now on, so
            # a later correction finds what was charged for it.
            rated.append((record.id, record.volume, record.product_id or product_id))
    return rated


_MARK_RATED_PG = text(
    "UPDATE usage_record AS u SET status = :status, billed_volume = r.charged, "
    "product_id = r.product FROM unnest(CAST(:ids AS bigint[]), CAST(:charged AS numeric[]), "
    "CAST(:products AS varchar[])) AS r(id, charged, product) WHERE u.id = r.id"
)


def _mark_rated(session: Session, rated: list[tuple[int, Decimal, str]]) -> None:
    """The rated records become ``rated`` with the volume charged (and the usage product
    that charged a record named by its site): on PostgreSQL one UPDATE joined to the
    values as arrays, elsewhere one executemany; any of them loaded as objects in the
    session is expired so it is read again."""
    if not rated:
        return
    if session.get_bind().dialect.name == "postgresql":
        for begin in range(0, len(rated), 50_000):
            chunk = rated[begin : begin + 50_000]
            session.execute(
                _MARK_RATED_PG,
                {
                    "status": USAGE_RATED,
                    "ids": [i for i, _, _ in chunk],
                    "charged": [v for _, v, _ in chunk],
                    "products": [p for _, _, p in chunk],
                },
            )
    else:
        table = cast(Table, UsageRecordRow.__table__)
        session.execute(
            update(table)
            .where(table.c.id == bindparam("record_id"))
            .values(
                status=USAGE_RATED,
                billed_volume=bindparam("charged"),
                product_id=bindparam("charged_product"),
            ),
            [{"record_id": i, "charged": v, "charged_product": p} for i, v, p in rated],
        )
    ids = {i for i, _, _ in rated}
    for row in list(session.identity_map.values()):
        if isinstance(row, UsageRecordRow) and row.id in ids:
            session.expire(row)


def _local(moment: datetime) -> date:
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(LOCAL).date()


def _cycle_of(day: date, period_start: date) -> date:
    """The start of the billing month (of ``period_start``'s cycle day) holding ``day``."""
    months = (day.year - period_start.year) * 12 + day.month - period_start.month
    start = charges.add_months(period_start, months)
    while start > day:
        months -= 1
        start = charges.add_months(period_start, months)
    return start


def _store(session: Session, batch: _Batch) -> list[AppliedRateRow]:
    """Write the batch's rates whose source key is new; the others were rated before."""
    existing: set[str] = set()
    for chunk in _chunks(batch.rates):
        existing.update(
            session.scalars(
                select(AppliedRateRow.source_key).where(AppliedRateRow.source_key.in_(chunk))
            )
        )
    new = [rate for key, rate in batch.rates.items() if key not in existing]
    session.add_all(new)
    session.flush()
    return new


def _carry_excess_credit(session: Session, account_ids: Collection[str], period_end: date) -> None:
    """An account whose unbilled rates up to ``period_end`` sum below zero keeps the
    excess credit unbilled: its credits are taken oldest first as far as the charges
    reach, the remainder of the last one split off as a ``carriedCredit`` rate dated
    the day after ``period_end`` (so the next period's bill takes it)."""
    negative: list[str] = []
    for chunk in _chunks(account_ids):
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for account_id, amount in session.execute(
            select(AppliedRateRow.billing_account_id, AppliedRateRow.tax_excluded).where(
                AppliedRateRow.billing_account_id.in_(chunk),
                AppliedRateRow.bill_id.is_(None),
                _due_by(period_end),
            )
        ):
            totals[account_id] += amount
        negative += [a for a, total in totals.items() if total < 0]
    if not negative:
        return
    for account_id in negative:
        rates = list(
            session.scalars(
                select(AppliedRateRow)
                .where(
                    AppliedRateRow.billing_account_id == account_id,
                    AppliedRateRow.bill_id.is_(None),
                    _due_by(period_end),
                )
                .order_by(AppliedRateRow.rated_at, AppliedRateRow.id)
            )
        )
        room = sum((r.tax_excluded for r in rates if r.tax_excluded > 0), ZERO)
        # Discounts belong to their charge; credits are applied oldest first after them.
        negatives = sorted(
            (r for r in rates if r.tax_excluded < 0),
            key=lambda r: (r.rate_type in (CREDIT, CARRIED), r.rated_at, r.id),
        )
        for rate in negatives:
            take = min(-rate.tax_excluded, room)
            room -= take
            rest = -rate.tax_excluded - take
            if rest == 0 or rate.rate_type not in (CREDIT, CARRIED):
                continue
            tax = Tax(rate.tax_rate, str(rate.characteristic.get("taxCategory", "S")))
            carried = _rate_row(
                rate.billing_account_id,
                rate.customer_id,
                rate.currency,
                tax,
                f"carried/{rate.id}/{period_end.isoformat()}",
                rate_type=CARRIED,
                name=f"Credit carried forward: {rate.name}"[:200],
                amount=-rest,
                product_id=rate.product_id,
                start=period_end + timedelta(days=1),
                end=period_end + timedelta(days=1),
                trace={
                    **rate.characteristic,
                    "carriedFrom": {"id": rate.id, "sourceKey": rate.source_key},
                },
                description=f"{rest} of {-rate.tax_excluded} {rate.currency} not yet applied",
            )
            net = -take
            rate.tax_excluded = net
            rate.tax_amount = charges.tax_amount(net, rate.tax_rate)
            rate.tax_included = net + rate.tax_amount
            rate.characteristic = {
                **rate.characteristic,
                "carriedForward": {"id": carried.id, "amount": str(rest)},
            }
            session.add(carried)
    session.flush()


def _due_by(period_end: date) -> Any:
    return or_(AppliedRateRow.period_end.is_(None), AppliedRateRow.period_end <= period_end)


def rate_accounts(
    session: Session,
    account_ids: Collection[str],
    period_start: date,
    period_end: date,
    *,
    today: date,
) -> None:
    """3.8.2 Apply pricing, discounting, adjustments & rebates for many accounts at
    once: the same rates as :func:`rate_account` for each, in a bounded number of
    queries (a few per 2,000 accounts), whatever the number of accounts."""
    if period_end < period_start:
        raise ValueError(f"period ends {period_end} before it starts {period_start}")
    accounts = _load_accounts(session, account_ids)
    batch = _Batch()
    product_ids = [p.id for a in accounts.values() for p in a.products]
    charged = _charged_days(session, product_ids, period_start)
    for account in accounts.values():
        for product in account.products:
            _rate_prices(batch, account, product, period_start, period_end, today, charged)
    rated_usage = _rate_usage(session, batch, accounts, period_start, period_end)
    _store(session, batch)
    # Usage is charged now: a correction later charges the difference to this volume.
    _mark_rated(session, rated_usage)
    _carry_excess_credit(session, list(accounts), period_end)
    session.flush()


def rate_account(
    session: Session, account_id: str, period_start: date, period_end: date, *, today: date
) -> list[AppliedRateRow]:
    """3.8.2 Apply pricing, discounting, adjustments & rebates: rate the account's
    products and usage for ``period_start``..``period_end`` (idempotent: every charge
    has its unique ``source_key``, a rerun writes nothing twice) and return every
    unbilled rate (``bill_id`` NULL) of the account up to ``period_end`` (recurring,
    one-time, usage, discount, SLA credits owed, credit carried from before), oldest
    first.

    For bills: the unbilled rates returned sum to >= 0 for a bill; any excess credit
    stays unbilled for the next period (the credit that does not fit is split: the
    returned credit is reduced to what the charges cover and the remainder is a
    ``carriedCredit`` rate dated ``period_end`` + 1 day, returned by the next
    period's rating). A bill takes the returned rates by setting their ``bill_id``.
    """
    rate_accounts(session, [account_id], period_start, period_end, today=today)
    return list(
        session.scalars(
            select(AppliedRateRow)
            .where(
                AppliedRateRow.billing_account_id == account_id,
                AppliedRateRow.bill_id.is_(None),
                _due_by(period_end),
            )
            .order_by(AppliedRateRow.period_start, AppliedRateRow.rated_at, AppliedRateRow.id)
        )
    )


def credit_rate(session: Session, event: SlaCreditOwed, owed_on: date) -> AppliedRateRow | None:
    """The credit rate of an owed SLA credit (written once per violation), charged to
    the product's billing account (else the customer's default one); None when it was
    written before or nobody pays for the product."""
    key = f"sla-credit/{event.violation_id}"
    if session.scalar(select(AppliedRateRow.id).where(AppliedRateRow.source_key == key)):
        return None
    product = session.get(ProductRow, event.product_id)
    customer_id = event.customer_id or (product.owner_customer_id if product else None)
    if customer_id is None:
        return None
    account_id = ((product.body if product else {}).get("billingAccount") or {}).get("id")
    if account_id is None:
        account_id = session.scalar(
            select(BillingAccountRow.id)
            .where(BillingAccountRow.owner_customer_id == customer_id)
            .order_by(BillingAccountRow.created_at, BillingAccountRow.id)
            .limit(1)
        )
    if account_id is None:
        return None
    amount = Decimal(event.amount)
    rate = _rate_row(
        account_id,
        customer_id,
        event.currency,
        _tax(session.get(CustomerRow, customer_id)),
        key,
        rate_type=CREDIT,
        name=f"SLA credit {event.metric} {event.period}",
        amount=-amount,
        product_id=event.product_id,
        start=owed_on,
        end=owed_on,
        trace={
            "slaViolation": {"id": event.violation_id},
            "product": {"id": event.product_id, "name": product.name if product else None},
            "metric": event.metric,
            "period": event.period,
        },
        description=f"Credit for the {event.metric} SLA violation {event.violation_id}",
    )
    session.add(rate)
    session.flush()
    return rate


def record_sla_credit(event: SlaCreditOwed) -> None:
    """3.8.2 Apply pricing, discounting, adjustments & rebates: an owed SLA credit
    becomes a credit rate (once per violation, whatever the redeliveries), applied on
    the account's next bill."""
    with session_scope() as session:
        credit_rate(session, event, owed_on(event))


def owed_on(event: SlaCreditOwed) -> date:
    """The day a credit is owed from: the day after its SLA period (a month, "2026-10")
    ends, so the bill of the month after the violation carries it (a bill issued
    before the credit was known leaves it unbilled for the next one); the clock's day
    when the period is not a month."""
    try:
        month = date.fromisoformat(f"{event.period}-01")
    except ValueError:
        return CLOCK.now().astimezone(LOCAL).date()
    return charges.add_months(month, 1)
