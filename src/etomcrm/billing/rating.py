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
usage records: their count, first and last ``usage_id#version`` and the digest of all,
violation, period), its tax category (S or AE) and the list price. Every rate is
written once: ``source_key`` is unique.

Rating is set-based (:func:`rate_accounts`, a bill run's chunk of accounts at once):
the accounts, customers and products are read by a query each, the prices computed
in Python, the usage records summed per product and billing month and marked rated by
the database (no record is read into Python), the rates written by one statement.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Row, bindparam, func, or_, select, text
from sqlalchemy.orm import Session

from etomcrm.billing import charges
from etomcrm.billing.charges import ZERO, Tax, Tier
from etomcrm.billing.models import AppliedRateRow, UsageRecordRow
from etomcrm.catalog.models import ProductOfferingRow
from etomcrm.config import get_settings
from etomcrm.core.clock import ServiceClock
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.db import UTCDateTime, among, new_id, session_scope, utcnow
from etomcrm.order_handling.models import ProductRow
from etomcrm.qos_sla.events import SlaCreditOwed
from etomcrm.selling.models import BillingAccountRow

LOCAL = ZoneInfo("Europe/Berlin")
USAGE_RECEIVED = "received"
USAGE_RATED = "rated"
CREDIT = "credit"
CARRIED = "carriedCredit"
INCLUDED_VOLUME = "includedVolumeGB"
# The clock the SLA credit handler dates a credit by (tests set it).
CLOCK = ServiceClock("rating")


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


@dataclass(slots=True)
class _Product:
    """A product as rating reads it: its columns, and its body read once."""

    id: str
    name: str
    status: str | None
    owner_customer_id: str
    body: JsonDict
    prices: list[PriceLine]
    site: str | None
    order_items: list[Any]

    @classmethod
    def of(cls, row: Row[Any]) -> _Product:
        body = row.body or {}
        return cls(
            id=row.id,
            name=row.name,
            status=row.status,
            owner_customer_id=str(row.owner_customer_id),
            body=body,
            prices=price_lines(body),
            site=_site(body),
            order_items=body.get("productOrderItem") or [],
        )

    @property
    def usage_price(self) -> PriceLine | None:
        return next((p for p in self.prices if p.price_type == "usage"), None)


@dataclass
class _Account:
    id: str
    customer_id: str
    currency: str
    tax: Tax
    products: list[_Product] = field(default_factory=list)


@dataclass
class _Batch:
    """The rates one rating writes (the values of their columns), keyed by source key
    (written once)."""

    rates: dict[str, dict[str, Any]] = field(default_factory=dict)

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
    ) -> dict[str, Any]:
        rate = _rate_values(
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


def _rate_values(
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
) -> dict[str, Any]:
    """The columns of one rate (an :class:`AppliedRateRow`'s attributes)."""
    net = charges.cents(amount)
    tax_value = charges.tax_amount(net, tax.rate)
    return {
        "id": new_id(),
        "source_key": key,
        "billing_account_id": account_id,
        "customer_id": customer_id,
        "bill_id": None,
        "product_id": product_id,
        "rate_type": rate_type,
        "name": name[:200],
        "description": description,
        "period_start": start,
        "period_end": end,
        "quantity": quantity,
        "unit_price": unit_price,
        "tax_excluded": net,
        "tax_rate": tax.rate,
        "tax_amount": tax_value,
        "tax_included": net + tax_value,
        "currency": currency,
        "characteristic": {**trace, "taxCategory": tax.category},
        "rated_at": utcnow(),
    }


def _rate_row(
    account_id: str, customer_id: str, currency: str, tax: Tax, key: str, **more: Any
) -> AppliedRateRow:
    return AppliedRateRow(**_rate_values(account_id, customer_id, currency, tax, key, **more))


def _reverse_charge(characteristics: Any) -> bool:
    """Whether a customer (its ``characteristic`` list) pays no German VAT."""
    vat_id = _characteristic({"characteristic": characteristics}, "vatId", "characteristic")
    return charges.is_reverse_charge(
        str(vat_id) if vat_id else None, get_settings().provider_country
    )


def _tax(customer: CustomerRow | None) -> Tax:
    return _tax_of(customer.body.get("characteristic") if customer is not None else None)


def _tax_of(characteristics: Any) -> Tax:
    return charges.tax_for(_reverse_charge(characteristics), get_settings().vat_rate_percent)


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _json(values: Any) -> str:
    return orjson.dumps(values).decode()


def _load_accounts(session: Session, account_ids: Collection[str]) -> dict[str, _Account]:
    """The accounts with their tax treatment and products (four queries)."""
    account, customer, product = BillingAccountRow, CustomerRow, ProductRow
    rows = session.execute(
        select(account.id, account.owner_customer_id, account.currency).where(
            among(session, account.id, account_ids)
        )
    ).all()
    customer_ids = {str(r.owner_customer_id) for r in rows if r.owner_customer_id}
    if not customer_ids:
        return {}
    # Of a customer only its characteristics are read (the VAT id), not the document.
    taxes = {
        str(customer_id): _tax_of(characteristics)
        for customer_id, characteristics in session.execute(
            select(customer.id, customer.body["characteristic"]).where(
                among(session, customer.id, customer_ids)
            )
        )
    }
    no_customer = _tax_of(None)
    # A product without a billing account is charged to the customer's oldest one.
    defaults: dict[str, str] = {}
    for owner, account_id in session.execute(
        select(account.owner_customer_id, account.id)
        .where(among(session, account.owner_customer_id, customer_ids))
        .order_by(account.created_at.desc(), account.id.desc())
    ):
        defaults[str(owner)] = account_id
    accounts = {
        r.id: _Account(
            r.id,
            str(r.owner_customer_id),
            r.currency,
            taxes.get(str(r.owner_customer_id), no_customer),
        )
        for r in rows
        if r.owner_customer_id
    }
    for row in session.execute(
        select(product.id, product.name, product.status, product.owner_customer_id, product.body)
        .where(among(session, product.owner_customer_id, customer_ids))
        .order_by(product.created_at, product.id)
    ):
        named = ((row.body or {}).get("billingAccount") or {}).get("id")
        payer = str(named) if named else defaults.get(str(row.owner_customer_id))
        if payer is not None and payer in accounts:
            accounts[payer].products.append(_Product.of(row))
    return accounts


def _charged_days(
    session: Session, product_ids: Collection[str], since: date
) -> dict[tuple[str, str], list[tuple[date, date]]]:
    """The days already charged per (product, price key), from rates reaching ``since``."""
    charged: dict[tuple[str, str], list[tuple[date, date]]] = defaultdict(list)
    if not product_ids:
        return charged
    rate = AppliedRateRow
    for product_id, price_key, start, end in session.execute(
        select(
            rate.product_id,
            rate.characteristic["priceKey"].as_string(),
            rate.period_start,
            rate.period_end,
        ).where(
            among(session, rate.product_id, product_ids),
            rate.rate_type == "recurring",
            rate.period_end >= since,
        )
    ):
        charged[(str(product_id), str(price_key))].append((start, end))
    return charged


def _uncharged(
    first: date, last: date, charged: Sequence[tuple[date, date]]
) -> list[tuple[date, date]]:
    """The runs of days in ``first``..``last`` no earlier rate charged."""
    if not charged:
        return [(first, last)]
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


def _trace(product: _Product, price: PriceLine, **more: Any) -> JsonDict:
    trace: JsonDict = {
        "product": {"id": product.id, "name": product.name},
        "productOfferingPrice": {"id": price.offering_price_id, "name": price.name},
        "priceKey": price.key,
        "listPrice": str(price.list_amount),
    }
    if product.order_items:
        trace["productOrderItem"] = product.order_items
    trace.update(more)
    return trace


def _rate_prices(
    batch: _Batch,
    account: _Account,
    product: _Product,
    cycles: Sequence[charges.Cycle],
    period_end: date,
    today: date,
    charged: dict[tuple[str, str], list[tuple[date, date]]],
) -> None:
    started = local_day(product.body.get("startDate"))
    if started is None or started > today or started > period_end:
        return
    terminated = local_day(product.body.get("terminationDate"))
    for price in product.prices:
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
        for cycle in cycles:
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
    product: _Product,
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
            amount=charges.discount(rate["tax_excluded"], price.discount_percent),
            product_id=product.id,
            start=start,
            end=end,
            trace=_trace(
                product,
                price,
                discountPercent=str(price.discount_percent),
                discountOf={"sourceKey": key, "id": rate["id"]},
                **extra,
            ),
            description=f"{price.discount_percent} % of {rate['tax_excluded']}",
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
    if offering_ids:
        for offering in session.scalars(
            select(ProductOfferingRow).where(among(session, ProductOfferingRow.id, offering_ids))
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
            site = product.site
            if site is None or product.status == "terminated":
                continue
            value = _characteristic(product.body, INCLUDED_VOLUME)
            if value is None:
                offering_id = str((product.body.get("productOffering") or {}).get("id"))
                value = defaults.get(offering_id)
            if value is not None:
                included[(account.customer_id, site)] += Decimal(str(value))
    return included


@dataclass(frozen=True)
class _UsageGroup:
    """The received records of one usage product in one billing month (``month``, the
    number of months after the rated period's), summed by the database."""

    product_id: str
    month: int
    volume: Decimal  # sum of volume - billed_volume
    already: Decimal  # billed_volume of the product's records of the month, any status
    count: int
    digest: str  # of the records' "usage_id#version", sorted, one a line
    first: str
    last: str


def _rate_usage(
    session: Session,
    batch: _Batch,
    accounts: dict[str, _Account],
    period_start: date,
    period_end: date,
) -> None:
    """Usage of the accounts' usage-priced products up to ``period_end``, per billing
    month. The records are summed per product and month by the database and marked
    rated there (``billed_volume`` the volume now charged; a record named by its site
    takes the usage product that charged it): no record travels to Python."""
    usage_products: dict[str, tuple[_Account, _Product, PriceLine]] = {}
    by_site: dict[tuple[str, str], str] = {}
    for account in accounts.values():
        for product in account.products:
            usage = product.usage_price
            if usage is None:
                continue
            usage_products[product.id] = (account, product, usage)
            if product.site is not None:
                by_site[(account.customer_id, product.site)] = product.id
    if not usage_products:
        return
    customers = {a.customer_id for a, _, _ in usage_products.values()}
    sites = [[c, s, p] for (c, s), p in by_site.items()]
    reader = _usage_groups_pg if _postgres(session) else _usage_groups_sqlite
    groups = reader(session, customers, list(usage_products), sites, period_start, period_end)
    # Any of the records loaded as objects in the session are read again.
    for row in list(session.identity_map.values()):
        if isinstance(row, UsageRecordRow):
            session.expire(row)
    included: dict[tuple[str, str], Decimal] | None = None
    for group in sorted(groups, key=lambda g: (g.product_id, g.month)):
        account, product, price = usage_products[group.product_id]
        month = charges.add_months(period_start, group.month)
        free = price.included
        if free is None:
            if included is None:
                included = _included_volumes(session, accounts.values()) if by_site else {}
            site = product.site
            free = included.get((account.customer_id, site), ZERO) if site else ZERO
        prior = ZERO + group.already
        volume = group.volume
        month_end = charges.add_months(month, 1) - timedelta(days=1)
        for number, line in enumerate(
            charges.rate_usage(volume, free, price.tiers, already=prior), start=1
        ):
            batch.add(
                account,
                f"usage/{group.product_id}/{month}/{group.digest}/{number}",
                rate_type="usage",
                name=price.name,
                amount=line.amount,
                product_id=group.product_id,
                start=month,
                end=month_end,
                quantity=line.quantity,
                unit_price=line.unit_price,
                description=f"{line.quantity} beyond {free} included",
                trace=_trace(
                    product,
                    price,
                    usage={
                        "count": group.count,
                        "first": group.first,
                        "last": group.last,
                        "digest": group.digest,
                    },
                    volume=str(volume),
                    alreadyCharged=str(prior),
                    includedVolume=str(free),
                    period={"startDate": month.isoformat(), "endDate": month_end.isoformat()},
                ),
            )


def _midnight(day: date) -> datetime:
    """The first instant of a Berlin day."""
    return datetime.combine(day, datetime.min.time(), LOCAL)


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


# The billing month of a record, as the number of months after the rated period's: its
# Berlin day's month, one less when the day lies before that month's cycle day (the
# period's day, or the month's last when shorter), as _cycle_of counts.
_MONTH_PG = """(
    (extract(year FROM {day})::int * 12 + extract(month FROM {day})::int - :base_month)
    - CASE WHEN extract(day FROM {day})::int < least(:cycle_day, extract(day FROM
        date_trunc('month', {day}::timestamp) + interval '1 month' - interval '1 day')::int)
      THEN 1 ELSE 0 END
)"""

_USAGE_PG = text(
    f"""
WITH sites AS (
    SELECT x ->> 0 AS customer, x ->> 1 AS site, x ->> 2 AS product
    FROM json_array_elements(CAST(:sites AS json)) AS x
), scanned AS (
    SELECT u.id, u.status, u.product_id, u.start_at, u.billed_volume,
        CASE WHEN u.product_id = ANY(:products) THEN u.product_id ELSE s.product END
            AS charged
    FROM usage_record u
    LEFT JOIN sites s ON s.customer = u.customer_id AND s.site = u.site_id
    WHERE u.customer_id = ANY(:customers) AND u.start_at < :months_end
), marked AS (
    UPDATE usage_record AS u SET status = :rated, billed_volume = u.volume,
        product_id = coalesce(u.product_id, p.charged)
    FROM scanned p
    WHERE u.id = p.id AND p.status = :received AND p.start_at < :end_at
        AND p.charged IS NOT NULL AND u.status = :received
    RETURNING p.charged, u.usage_id || '#' || u.version AS record,
        (u.start_at AT TIME ZONE 'Europe/Berlin')::date AS day,
        u.volume - coalesce(p.billed_volume, 0) AS volume
), grouped AS (
    SELECT charged, {_MONTH_PG.format(day="day")} AS month, sum(volume) AS volume,
        count(*) AS records,
        encode(sha256(convert_to(string_agg(record, E'\\n' ORDER BY record COLLATE "C"),
            'UTF8')), 'hex') AS digest,
        min(record COLLATE "C") AS first, max(record COLLATE "C") AS last
    FROM marked GROUP BY 1, 2
), already AS (
    SELECT product_id,
        {_MONTH_PG.format(day="(start_at AT TIME ZONE 'Europe/Berlin')::date")} AS month,
        sum(billed_volume) AS volume
    FROM scanned
    WHERE billed_volume IS NOT NULL AND product_id = ANY(:products)
    GROUP BY 1, 2
)
SELECT g.charged, g.month, g.volume, a.volume, g.records, g.digest, g.first, g.last
FROM grouped g LEFT JOIN already a ON a.product_id = g.charged AND a.month = g.month
"""
)


def _usage_groups_pg(
    session: Session,
    customers: Collection[str],
    products: list[str],
    sites: list[list[str]],
    period_start: date,
    period_end: date,
) -> list[_UsageGroup]:
    """On PostgreSQL one statement reads the records (locking them: a correction sent
    meanwhile waits and reopens its record for the next rating), marks them rated and
    sums them per product and billing month, beside what the month charged before."""
    rows = session.execute(
        _USAGE_PG.bindparams(
            bindparam("end_at", type_=UTCDateTime), bindparam("months_end", type_=UTCDateTime)
        ),
        {
            "sites": _json(sites),
            "products": products,
            "customers": sorted(customers),
            "received": USAGE_RECEIVED,
            "rated": USAGE_RATED,
            "end_at": _midnight(period_end + timedelta(days=1)),
            # The end of the last billing month rated: what those months charged before.
            "months_end": _midnight(
                charges.add_months(period_start, len(charges.cycles(period_start, period_end)))
            ),
            "base_month": period_start.year * 12 + period_start.month,
            "cycle_day": period_start.day,
        },
    )
    return [
        _UsageGroup(
            product_id=product_id,
            month=month,
            volume=volume,
            already=already if already is not None else ZERO,
            count=count,
            digest=digest[:24],
            first=first,
            last=last,
        )
        for product_id, month, volume, already, count, digest, first, last in rows
    ]


# SQLite keeps volumes as floats: they are summed as integers of millionths (the
# column's scale), exactly while volumes stay below a billion GB (2**53 millionths
# and more are summed record by record).
_MICRO = Decimal("0.000001")
_EXACT_BELOW = 1_000_000_000


def _usage_groups_sqlite(
    session: Session,
    customers: Collection[str],
    products: list[str],
    sites: list[list[str]],
    period_start: date,
    period_end: date,
) -> list[_UsageGroup]:
    """On SQLite (one writer: the transaction holds the write lock) the records are
    summed per product and billing month by one query, what the months charged before
    by another, and marked rated by one UPDATE."""
    end_at = _midnight(period_end + timedelta(days=1))
    params: dict[str, Any] = {
        "sites": _json(sites),
        "products": _json(products),
        "customers": _json(sorted(customers)),
        "received": USAGE_RECEIVED,
        "end_at": _sqlite_moment(end_at),
    }
    # The received records a usage product charges: those naming it, and those of its
    # site naming no usage product (found from the sites, an index look-up each).
    charged = """WITH sites AS MATERIALIZED (
        SELECT json_extract(value, '$[0]') AS customer, json_extract(value, '$[1]') AS site,
            json_extract(value, '$[2]') AS product
        FROM json_each(:sites)
    ), charged AS (
        SELECT u.id, u.usage_id, u.version, u.start_at, u.volume, u.billed_volume,
            u.product_id AS product
        FROM usage_record u
        WHERE u.customer_id IN (SELECT value FROM json_each(:customers))
            AND u.status = :received AND u.start_at < :end_at
            AND u.product_id IN (SELECT value FROM json_each(:products))
        UNION ALL
        SELECT u.id, u.usage_id, u.version, u.start_at, u.volume, u.billed_volume, s.product
        FROM sites s JOIN usage_record u ON u.customer_id = s.customer AND u.site_id = s.site
        WHERE u.status = :received AND u.start_at < :end_at
            AND (u.product_id IS NULL
                OR u.product_id NOT IN (SELECT value FROM json_each(:products)))
    ) """
    connection = session.connection()
    earliest = connection.execute(text(f"{charged} SELECT min(start_at) FROM charged"), params)
    first = earliest.scalar()
    if first is None:
        return []
    # The billing months from the earliest record's to the period's, as their first
    # instants; a record's month is the last one it does not precede.
    first_month = _cycle_of(_local(_sqlite_instant(first)), period_start)
    number = (first_month.year - period_start.year) * 12 + first_month.month - period_start.month
    bounds: list[tuple[int, str]] = []
    while True:
        moment = _midnight(charges.add_months(period_start, number))
        bounds.append((number, _sqlite_moment(moment)))
        if moment >= end_at:
            break
        number += 1
    month_of = (
        f"CASE WHEN start_at >= :b{len(bounds) - 1} THEN NULL "
        + " ".join(
            f"WHEN start_at >= :b{i} THEN {n}"
            for i, (n, _) in reversed(list(enumerate(bounds[:-1])))
        )
        + " END"
    )
    params.update({f"b{i}": moment for i, (_, moment) in enumerate(bounds)})
    micro = "CAST(round({} * 1000000) AS INTEGER)"
    rows = connection.execute(
        text(
            f"{charged} SELECT product, {month_of}, "
            f"sum({micro.format('volume')} - {micro.format('coalesce(billed_volume, 0)')}),"
            " count(*), json_group_array(usage_id || '#' || version),"
            " max(abs(volume)), max(abs(coalesce(billed_volume, 0)))"
            " FROM charged GROUP BY 1, 2"
        ),
        params,
    ).all()
    already: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    for product_id, month, billed in connection.execute(
        text(
            f"SELECT product_id, {month_of}, billed_volume FROM usage_record"
            " WHERE customer_id IN (SELECT value FROM json_each(:customers))"
            " AND product_id IN (SELECT value FROM json_each(:products))"
            " AND start_at >= :b0 AND billed_volume IS NOT NULL"
        ),
        params,
    ):
        if month is not None:
            already[(product_id, month)] += _sqlite_decimal(billed)
    groups = []
    for product_id, month, micros, count, ids_json, top, billed_top in rows:
        if max(top, billed_top) < _EXACT_BELOW:
            volume = (Decimal(micros) * _MICRO).quantize(_MICRO)
        else:
            volume = ZERO
            for record_volume, billed in connection.execute(
                text(
                    f"{charged} SELECT volume, billed_volume FROM charged"
                    f" WHERE product = :charged_product AND ({month_of}) = :charged_month"
                ),
                {**params, "charged_product": product_id, "charged_month": month},
            ):
                volume += _sqlite_decimal(record_volume)
                volume -= _sqlite_decimal(billed) if billed is not None else ZERO
        ids = sorted(orjson.loads(ids_json))
        groups.append(
            _UsageGroup(
                product_id=product_id,
                month=month,
                volume=volume,
                already=already.get((product_id, month), ZERO),
                count=count,
                digest=hashlib.sha256("\n".join(ids).encode()).hexdigest()[:24],
                first=ids[0],
                last=ids[-1],
            )
        )
    connection.execute(
        text(
            f"{charged} UPDATE usage_record SET status = :rated,"
            " billed_volume = usage_record.volume,"
            " product_id = coalesce(usage_record.product_id, p.product)"
            " FROM charged AS p WHERE usage_record.id = p.id"
        ),
        {**params, "rated": USAGE_RATED},
    )
    return groups


def _sqlite_moment(moment: datetime) -> str:
    """An instant as SQLite keeps it (UTC, naive text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_instant(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _sqlite_decimal(value: Any) -> Decimal:
    """A volume SQLite holds as a float, as the column reads it (six places)."""
    return Decimal(f"{value:.6f}")


_COLUMNS = (
    "id",
    "source_key",
    "billing_account_id",
    "customer_id",
    "bill_id",
    "product_id",
    "rate_type",
    "name",
    "description",
    "period_start",
    "period_end",
    "quantity",
    "unit_price",
    "tax_excluded",
    "tax_rate",
    "tax_amount",
    "tax_included",
    "currency",
    "characteristic",
    "rated_at",
)
_INSERT_PG = text(
    f"INSERT INTO applied_rate ({', '.join(_COLUMNS)}) SELECT {', '.join(_COLUMNS)}"
    " FROM json_populate_recordset(NULL::applied_rate, CAST(:rates AS json))"
    " ON CONFLICT (source_key) DO NOTHING"
)
_INSERT_SQLITE = (
    f"INSERT INTO applied_rate ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
    " ON CONFLICT (source_key) DO NOTHING"
)


def _plain(value: Any) -> str:
    """What orjson does not write itself: a Decimal, as its text."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _store(session: Session, batch: _Batch, bills: Mapping[str, str], period_end: date) -> None:
    """Write the batch's rates whose source key is new (the others were rated before),
    in one statement: on PostgreSQL the rates go as one JSON array the database unpacks,
    on SQLite as one executemany of the values as SQLite keeps them. A rate due by
    ``period_end`` of an account in ``bills`` is written on that (planned) bill."""
    if not batch.rates:
        return
    if bills:
        for rate in batch.rates.values():
            start = rate["period_start"]
            if start is None or start <= period_end:
                rate["bill_id"] = bills.get(rate["billing_account_id"])
    if _postgres(session):
        rows = orjson.dumps(list(batch.rates.values()), default=_plain).decode()
        session.execute(_INSERT_PG, {"rates": rows})
        return
    values = []
    for rate in batch.rates.values():
        cells = [rate[k] for k in _COLUMNS[:-2]]
        for at in (11, 12, 13, 14, 15, 16):  # quantity .. tax_included: floats, as Numeric
            if cells[at] is not None:
                cells[at] = float(cells[at])
        for at in (9, 10):  # period_start, period_end
            if cells[at] is not None:
                cells[at] = cells[at].isoformat()
        cells.append(_json(rate["characteristic"]))
        cells.append(_sqlite_moment(rate["rated_at"]))
        values.append(tuple(cells))
    session.connection().exec_driver_sql(_INSERT_SQLITE, values)


def _carry_excess_credit(
    session: Session, account_ids: Collection[str], period_end: date, planned: Collection[str]
) -> None:
    """An account whose unbilled rates up to ``period_end`` sum below zero keeps the
    excess credit unbilled: its credits are taken oldest first as far as the charges
    reach, the remainder of the last one split off as a ``carriedCredit`` rate dated
    the day after ``period_end`` (so the next period's bill takes it). Rates on a
    ``planned`` bill (not made yet) count as unbilled."""
    if not account_ids:
        return
    unbilled = (
        or_(AppliedRateRow.bill_id.is_(None), among(session, AppliedRateRow.bill_id, planned))
        if planned
        else AppliedRateRow.bill_id.is_(None)
    )
    # Only an unbilled negative rate (a credit; a discount of a charge rated apart) can
    # make an account's sum negative: a discount on a planned bill is no larger than its
    # charge on the same bill. Those accounts are found first, through the (account,
    # bill) index, and only theirs are summed.
    candidates = set(
        session.scalars(
            select(AppliedRateRow.billing_account_id).where(
                among(session, AppliedRateRow.billing_account_id, account_ids),
                AppliedRateRow.bill_id.is_(None),
                AppliedRateRow.tax_excluded < 0,
                _due_by(period_end),
            )
        )
    )
    if not candidates:
        return
    # Summed in cents by the database (SQLite holds amounts as floats).
    negative = list(
        session.scalars(
            select(AppliedRateRow.billing_account_id)
            .where(
                among(session, AppliedRateRow.billing_account_id, candidates),
                unbilled,
                _due_by(period_end),
            )
            .group_by(AppliedRateRow.billing_account_id)
            .having(func.sum(func.round(AppliedRateRow.tax_excluded * 100)) < 0)
        )
    )
    if not negative:
        return
    for account_id in negative:
        rates = list(
            session.scalars(
                select(AppliedRateRow)
                .where(
                    AppliedRateRow.billing_account_id == account_id,
                    unbilled,
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
    bills: Mapping[str, str] | None = None,
) -> None:
    """3.8.2 Apply pricing, discounting, adjustments & rebates for many accounts at
    once: the same rates as :func:`rate_account` for each, in a bounded number of
    queries (about ten), whatever the number of accounts.

    ``bills``: the id of the bill each account's rates due by ``period_end`` are to go
    on, made by the caller in the same transaction (a bill run writes each rate once
    instead of writing it and then giving it its bill); the caller makes those bills
    or takes the rates off them again (:func:`etomcrm.billing.bills.bill_accounts`)."""
    if period_end < period_start:
        raise ValueError(f"period ends {period_end} before it starts {period_start}")
    planned = bills or {}
    if not _postgres(session):
        _rate_accounts(session, account_ids, period_start, period_end, today, planned)
        return
    # The statements take arrays of any length: PostgreSQL plans each call for its
    # arrays, not once for all (a plan made for one account's arrays, reused for a
    # chunk of thousands, searched every array row by row). Back as it was after.
    previous = session.execute(_CUSTOM_PLANS).scalar()
    _rate_accounts(session, account_ids, period_start, period_end, today, planned)
    session.execute(_PLAN_CACHE_MODE, {"mode": previous})


_CUSTOM_PLANS = text(
    "SELECT previous, set_config('plan_cache_mode', 'force_custom_plan', true)"
    " FROM (SELECT current_setting('plan_cache_mode') AS previous OFFSET 0) AS setting"
)
_PLAN_CACHE_MODE = text("SELECT set_config('plan_cache_mode', :mode, true)")


def _rate_accounts(
    session: Session,
    account_ids: Collection[str],
    period_start: date,
    period_end: date,
    today: date,
    planned: Mapping[str, str],
) -> None:
    accounts = _load_accounts(session, account_ids)
    batch = _Batch()
    product_ids = [p.id for a in accounts.values() for p in a.products]
    charged = _charged_days(session, product_ids, period_start)
    cycles = charges.cycles(period_start, period_end)
    for account in accounts.values():
        for product in account.products:
            _rate_prices(batch, account, product, cycles, period_end, today, charged)
    # Usage is charged now (its records marked): a correction later charges the
    # difference to this volume.
    _rate_usage(session, batch, accounts, period_start, period_end)
    _store(session, batch, planned, period_end)
    _carry_excess_credit(session, list(accounts), period_end, list(planned.values()))
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
