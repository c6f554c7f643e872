"""3.8.2 rating: charges of a month computed by hand, to the cent.

Prices are net of VAT; lines are rounded half up to the cent. November 2026 has 30
days, so a day of a 429.00 monthly charge is 14.30.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.billing import bills
from etomcrm.billing.charges import add_months
from etomcrm.billing.models import AppliedRateRow, CustomerBillRow, UsageRecordRow
from etomcrm.billing.rating import (
    credit_rate,
    local_day,
    rate_account,
    rate_accounts,
    record_sla_credit,
)
from etomcrm.core import resources
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.db import new_id, session_scope
from etomcrm.order_handling.service import PRODUCT_KIND
from etomcrm.qos_sla.events import SlaCreditOwed
from etomcrm.security.service import SYSTEM
from etomcrm.selling.models import BillingAccountRow
from tests import factories
from tests.polling import until
from tests.quote_helpers import draft, load_bmw

NOV = (date(2026, 11, 1), date(2026, 11, 30))
DEC = (date(2026, 12, 1), date(2026, 12, 31))
TODAY = date(2026, 12, 1)
RATES = "/tmf-api/customerBillManagement/v4/appliedCustomerBillingRate"


def _customer(client: TestClient, admin: dict[str, str], vat_id: str | None = None) -> str:
    customer_id = str(factories.customer(client, admin)["id"])
    if vat_id:
        with session_scope() as session:
            row = session.get(CustomerRow, customer_id)
            assert row is not None
            row.body = {**row.body, "characteristic": [{"name": "vatId", "value": vat_id}]}
    return customer_id


def _account(customer_id: str) -> str:
    from etomcrm.selling.models import BillingAccountRow

    with session_scope() as session:
        row = BillingAccountRow(
            id=new_id(),
            at_type="BillingAccount",
            name="Invoices",
            owner_customer_id=customer_id,
            body={
                "name": "Invoices",
                "@type": "BillingAccount",
                "currency": "EUR",
                "billCycleDay": 1,
                "billStructure": {"presentationMedia": [{"name": "portal"}]},
                "relatedParty": [
                    {
                        "id": customer_id,
                        "@referredType": "Customer",
                        "role": "customer",
                        "name": "customer",
                    }
                ],
            },
            bill_cycle_day=1,
            currency="EUR",
        )
        session.add(row)
        return row.id


def _price(name: str, amount: str, price_type: str = "recurring", **more: Any) -> dict[str, Any]:
    price: dict[str, Any] = {
        "name": name,
        "priceType": price_type,
        "productOfferingPrice": {"id": f"pop-{name}", "name": name},
        "price": {"dutyFreeAmount": {"unit": "EUR", "value": float(amount)}},
    }
    if price_type == "recurring":
        price["recurringChargePeriod"] = "month"
    price.update(more)
    return price


def _product(
    customer_id: str,
    prices: list[dict[str, Any]],
    start: str,
    *,
    account_id: str | None = None,
    terminated: str | None = None,
    site: str | None = None,
) -> str:
    payload: dict[str, Any] = {
        "name": prices[0]["name"],
        "status": "terminated" if terminated else "active",
        "startDate": start,
        "productPrice": prices,
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
    }
    if terminated:
        payload["terminationDate"] = terminated
    if account_id:
        payload["billingAccount"] = {"id": account_id, "@referredType": "BillingAccount"}
    if site:
        payload["place"] = [
            {"id": site, "@referredType": "GeographicSite", "role": "installationAddress"}
        ]
    with session_scope() as session:
        body, _, _ = resources.create(session, PRODUCT_KIND, SYSTEM, payload)
        return str(body["id"])


def _rate(account_id: str, period: tuple[date, date] = NOV) -> list[AppliedRateRow]:
    with session_scope() as session:
        rates = rate_account(session, account_id, *period, today=TODAY)
        session.expunge_all()
        return rates


def _lines(rates: list[AppliedRateRow]) -> list[tuple[str, str, Decimal]]:
    return sorted((r.rate_type, r.name, r.tax_excluded) for r in rates)


def _bill(rates: list[AppliedRateRow]) -> None:
    """What a bill does with the rates it takes (helper 'bills' owns the real one)."""
    with session_scope() as session:
        for rate in rates:
            row = session.get(AppliedRateRow, rate.id)
            assert row is not None
            row.bill_id = "bill-1"


def test_a_part_month_with_the_contract_discount_from_the_quote(
    client: TestClient, admin: dict[str, str]
) -> None:
    # Given BMW's accepted quote with 15 % off, activated at one site on 12 November
    bmw = load_bmw()
    quote = draft(bmw, sites=1, discount="15")
    account = _account(bmw.customer_id)
    for item in quote["quoteItem"]:
        _product(
            bmw.customer_id,
            item["quoteItemPrice"],
            "2026-11-12T09:00:00Z",
            account_id=account,
        )
    # When November is rated
    rates = _rate(account)
    # Then each price has its list line and its own 15 % discount line: 19 of 30 days
    # of the monthly charges, the one-time charges whole
    assert _lines(rates) == sorted(
        [
            ("recurring", "Site access 100 Mbit/s: monthly charge", Decimal("271.70")),
            (
                "discount",
                "Contract discount 15 % on Site access 100 Mbit/s: monthly charge",
                Decimal("-40.76"),
            ),
            ("recurring", "SLA Gold: monthly charge", Decimal("94.37")),
            ("discount", "Contract discount 15 % on SLA Gold: monthly charge", Decimal("-14.16")),
            ("oneTime", "Managed router: purchase", Decimal("690.00")),
            ("discount", "Contract discount 15 % on Managed router: purchase", Decimal("-103.50")),
            ("oneTime", "Installation: per site", Decimal("950.00")),
            ("discount", "Contract discount 15 % on Installation: per site", Decimal("-142.50")),
        ]
    )
    assert sum(r.tax_excluded for r in rates) == Decimal("1705.15")
    access = next(r for r in rates if r.name == "Site access 100 Mbit/s: monthly charge")
    assert (access.tax_rate, access.tax_amount, access.tax_included) == (
        Decimal("19.00"),
        Decimal("51.62"),
        Decimal("323.32"),
    )
    assert access.characteristic["days"] == 19 and access.characteristic["daysOfMonth"] == 30
    assert access.characteristic["product"]["id"] == access.product_id
    # And December charges the whole month, the one-time charges not again
    december = [r for r in _rate(account, DEC) if r.period_start and r.period_start >= DEC[0]]
    assert _lines(december) == sorted(
        [
            ("recurring", "Site access 100 Mbit/s: monthly charge", Decimal("429.00")),
            (
                "discount",
                "Contract discount 15 % on Site access 100 Mbit/s: monthly charge",
                Decimal("-64.35"),
            ),
            ("recurring", "SLA Gold: monthly charge", Decimal("149.00")),
            ("discount", "Contract discount 15 % on SLA Gold: monthly charge", Decimal("-22.35")),
        ]
    )


def test_a_mid_month_upgrade_ends_the_old_price_on_the_day_and_starts_the_new(
    client: TestClient, admin: dict[str, str]
) -> None:
    # Given an access upgraded from 100 to 1000 Mbit/s on 16 November (Berlin time)
    customer_id = _customer(client, admin)
    account = _account(customer_id)
    change = "2026-11-16T08:00:00Z"
    _product(
        customer_id,
        [
            _price("Site access 100 Mbit/s", "429", validFor={"endDateTime": change}),
            _price("Site access 1000 Mbit/s", "1190", validFor={"startDateTime": change}),
        ],
        "2026-10-01T00:00:00+02:00",
    )
    # When November is rated (twice: a rerun writes nothing more)
    first = _rate(account)
    again = _rate(account)
    # Then 1-15 November at 429.00 (15/30) and 16-30 November at 1190.00 (15/30)
    assert _lines(first) == [
        ("recurring", "Site access 100 Mbit/s", Decimal("214.50")),
        ("recurring", "Site access 1000 Mbit/s", Decimal("595.00")),
    ]
    assert {r.id for r in again} == {r.id for r in first}


def test_a_termination_charges_up_to_the_day_before_and_the_final_bill_is_not_charged_again(
    client: TestClient, admin: dict[str, str]
) -> None:
    # Given a 189.00 access terminated on 20 November, charged to the customer's
    # default account (the product names none)
    customer_id = _customer(client, admin)
    account = _account(customer_id)
    _product(
        customer_id,
        [_price("Site access 10 Mbit/s", "189")],
        "2026-09-15T10:00:00Z",
        terminated="2026-11-20T10:00:00Z",
    )
    # When the final bill rates 1-20 November, and the regular run the whole month
    final = _rate(account, (date(2026, 11, 1), date(2026, 11, 20)))
    _bill(final)
    regular = _rate(account)
    # Then 19 of 30 days are charged once: 189.00 * 19 / 30 = 119.70
    assert _lines(final) == [("recurring", "Site access 10 Mbit/s", Decimal("119.70"))]
    assert final[0].period_end == date(2026, 11, 19)
    assert regular == []


def test_a_reverse_charge_customer_pays_no_german_vat(
    client: TestClient, admin: dict[str, str]
) -> None:
    # Given an Austrian customer with a valid VAT id, and a German one
    austrian = _customer(client, admin, vat_id="ATU13585627")
    german = _customer(client, admin, vat_id="DE136695976")
    accounts = {c: _account(c) for c in (austrian, german)}
    for customer_id in accounts:
        _product(customer_id, [_price("SLA Silver", "69")], "2026-10-01T00:00:00Z")
    # When November is rated for both at once
    with session_scope() as session:
        rate_accounts(session, list(accounts.values()), *NOV, today=TODAY)
    # Then the Austrian line has 0 % (category AE), the German 19 % (13.11)
    at, de = _rate(accounts[austrian])[0], _rate(accounts[german])[0]
    assert (at.tax_excluded, at.tax_rate, at.tax_amount, at.tax_included) == (
        Decimal("69.00"),
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("69.00"),
    )
    assert at.characteristic["taxCategory"] == "AE"
    assert (de.tax_amount, de.tax_included, de.characteristic["taxCategory"]) == (
        Decimal("13.11"),
        Decimal("82.11"),
        "S",
    )


def _credit(violation: str, product_id: str, customer_id: str, amount: str) -> SlaCreditOwed:
    return SlaCreditOwed(
        violation_id=violation,
        customer_id=customer_id,
        product_id=product_id,
        period="2026-10",
        metric="availability",
        amount=amount,
        currency="EUR",
    )


def test_a_credit_larger_than_the_month_is_carried_to_the_next_bill(
    client: TestClient, admin: dict[str, str]
) -> None:
    # Given a 69.00 monthly charge and a 100.00 SLA credit owed on 10 November,
    # delivered three times
    customer_id = _customer(client, admin)
    account = _account(customer_id)
    product = _product(customer_id, [_price("SLA Silver", "69")], "2026-10-01T00:00:00Z")
    event = _credit("violation-1", product, customer_id, "100.00")
    with session_scope() as session:
        assert credit_rate(session, event, date(2026, 11, 10)) is not None
    record_sla_credit(event)
    record_sla_credit(event)
    # When November is rated and billed
    november = _rate(account)
    _bill(november)
    # Then November's bill is 0.00: 69.00 charged, 69.00 of the credit applied
    assert _lines(november) == [
        ("credit", "SLA credit availability 2026-10", Decimal("-69.00")),
        ("recurring", "SLA Silver", Decimal("69.00")),
    ]
    # And December's bill carries the other 31.00: 69.00 - 31.00 = 38.00
    december = _rate(account, DEC)
    assert _lines(december) == [
        (
            "carriedCredit",
            "Credit carried forward: SLA credit availability 2026-10",
            Decimal("-31.00"),
        ),
        ("recurring", "SLA Silver", Decimal("69.00")),
    ]
    assert sum(r.tax_excluded for r in december) == Decimal("38.00")
    assert sum(r.tax_amount for r in december) == Decimal("7.22")
    with session_scope() as session:
        credits = session.scalars(
            select(AppliedRateRow).where(AppliedRateRow.rate_type.in_(["credit", "carriedCredit"]))
        ).all()
        assert sum(c.tax_excluded for c in credits) == Decimal("-100.00")


def _usage(customer_id: str, site: str, usage_id: str, volume: str, day: int) -> None:
    with session_scope() as session:
        session.add(
            UsageRecordRow(
                usage_id=usage_id,
                customer_id=customer_id,
                site_id=site,
                usage_type="traffic",
                start_at=datetime(2026, 11, day, 10, tzinfo=UTC),
                end_at=datetime(2026, 11, day, 11, tzinfo=UTC),
                volume=Decimal(volume),
                unit="GB",
            )
        )


def test_usage_beyond_the_included_volume_and_a_late_correction_charge_the_difference(
    client: TestClient, admin: dict[str, str]
) -> None:
    # Given a site with 500 GB included and traffic at 0.09 per GB, 520 GB used
    customer_id = _customer(client, admin)
    account = _account(customer_id)
    site = str(factories.site(client, admin, customer_id)["id"])
    _product(
        customer_id,
        [_price("Site access 10 Mbit/s", "189")],
        "2026-10-01T00:00:00Z",
        site=site,
    )
    with session_scope() as session:
        # The access's included volume, as the catalog's characteristic states it
        for row in session.scalars(select(resources_row())):
            if row.name == "Site access 10 Mbit/s":
                row.body = {
                    **row.body,
                    "productCharacteristic": [{"name": "includedVolumeGB", "value": 500}],
                }
    _product(
        customer_id,
        [_price("Traffic", "0.09", "usage", unitOfMeasure="GB")],
        "2026-10-01T00:00:00Z",
        site=site,
    )
    _usage(customer_id, site, "u-1", "300", 3)
    _usage(customer_id, site, "u-2", "220.5", 20)
    # When November is rated: 20.5 GB beyond 500 at 0.09 = 1.845 -> 1.85
    november = [r for r in _rate(account) if r.rate_type == "usage"]
    assert [(r.quantity, r.tax_excluded) for r in november] == [
        (Decimal("20.500000"), Decimal("1.85"))
    ]
    assert november[0].characteristic["usage"]["count"] == 2
    _bill(_rate(account))
    # And a correction of u-2 to 250.5 GB arrives late: only 30 GB more are charged
    with session_scope() as session:
        record = session.scalars(
            select(UsageRecordRow).where(UsageRecordRow.usage_id == "u-2")
        ).one()
        record.volume, record.version, record.status = Decimal("250.5"), 2, "received"
    late = [r for r in _rate(account, DEC) if r.rate_type == "usage"]
    assert [(r.quantity, r.tax_excluded) for r in late] == [(Decimal("30.000000"), Decimal("2.70"))]


def resources_row() -> Any:
    from etomcrm.order_handling.models import ProductRow

    return ProductRow


def test_the_rates_api_shows_a_customer_only_its_own_in_bounded_queries(
    client: TestClient,
    admin: dict[str, str],
    auth: Callable[..., dict[str, str]],
    count_queries: Callable[[], Any],
) -> None:
    # Given two customers with rated charges
    mine, other = _customer(client, admin), _customer(client, admin, vat_id="ATU13585627")
    for customer_id in (mine, other):
        account = _account(customer_id)
        for n in range(3):
            _product(customer_id, [_price(f"SLA {n}", "69")], "2026-10-01T00:00:00Z")
        _rate(account)
    # When the first customer lists its rates
    headers = auth("customer", customer_id=mine)
    with count_queries() as counter:
        response = client.get(RATES, params={"limit": 2}, headers=headers)
    page = response.json()
    # Then it sees a page of its own, with the TMF attributes, in a few queries
    assert response.status_code == 206 and response.headers["X-Total-Count"] == "3"
    assert len(page) == 2 and counter.count <= 6
    assert page[0]["@type"] == "AppliedCustomerBillingRate"
    assert page[0]["taxExcludedAmount"] == {"unit": "EUR", "value": 69.0}
    assert page[0]["isBilled"] is False and page[0]["product"]["id"]
    assert page[0]["periodCoverage"]["startDateTime"] == "2026-11-01T00:00:00Z"
    # And filters by product and type; another customer's rate is not found for it
    product_id = page[0]["product"]["id"]
    by_product = client.get(RATES, params={"product.id": product_id}, headers=headers).json()
    assert [r["id"] for r in by_product] == [page[0]["id"]]
    everyone = client.get(RATES, params={"type": "recurring"}, headers=admin)
    assert everyone.headers["X-Total-Count"] == "6"
    others = [r for r in everyone.json() if r["id"] not in {p["id"] for p in by_product}]
    foreign = next(r for r in others if r["appliedTax"][0]["taxCategory"] == "AE")
    assert client.get(f"{RATES}/{foreign['id']}", headers=headers).status_code == 404
    assert client.get(f"{RATES}/{foreign['id']}", headers=admin).json()["id"] == foreign["id"]
    assert client.get(RATES, params={"colour": "red"}, headers=admin).status_code == 400
    assert client.delete(f"{RATES}/{foreign['id']}", headers=admin).status_code == 405


@pytest.mark.parametrize("count", [1, 40])
def test_rating_many_accounts_takes_a_bounded_number_of_queries(
    client: TestClient, admin: dict[str, str], count_queries: Callable[[], Any], count: int
) -> None:
    # Given accounts with a product each
    accounts = []
    for _ in range(count):
        customer_id = _customer(client, admin)
        accounts.append(_account(customer_id))
        _product(customer_id, [_price("SLA Silver", "69")], "2026-10-01T00:00:00Z")
    # When they are rated at once
    with count_queries() as counter, session_scope() as session:
        rate_accounts(session, accounts, *NOV, today=TODAY)
    # Then the queries do not grow with the accounts
    assert counter.count <= 12
    with session_scope() as session:
        assert len(session.scalars(select(AppliedRateRow)).all()) == count


def test_rated_usage_is_marked_even_when_the_session_holds_the_records(
    client: TestClient, admin: dict[str, str]
) -> None:
    # Given a site's traffic priced by its usage product, the records named by site only
    customer_id = _customer(client, admin)
    account = _account(customer_id)
    site = str(factories.site(client, admin, customer_id)["id"])
    product_id = _product(
        customer_id,
        [_price("Traffic", "0.09", "usage", unitOfMeasure="GB")],
        "2026-10-01T00:00:00Z",
        site=site,
    )
    _usage(customer_id, site, "m-1", "12.5", 3)
    _usage(customer_id, site, "m-2", "7.5", 4)
    with session_scope() as session:
        # And the records already loaded as objects in the rating's session
        held = session.scalars(select(UsageRecordRow).order_by(UsageRecordRow.usage_id)).all()
        assert [r.status for r in held] == ["received", "received"]
        # When the account is rated
        rates = rate_account(session, account, *NOV, today=TODAY)
        # Then the session sees them rated, with the volume charged and the product
        assert [(r.status, r.billed_volume, r.product_id) for r in held] == [
            ("rated", Decimal("12.5"), product_id),
            ("rated", Decimal("7.5"), product_id),
        ]
        assert [r.tax_excluded for r in rates if r.rate_type == "usage"] == [Decimal("1.80")]


def test_an_upgrade_ordered_as_delete_and_add_changes_the_price_on_the_day(
    client: TestClient, admin: dict[str, str]
) -> None:
    # Given a 429.00 access ended on 16 November and its 1190.00 successor started then
    # (an order changes a product as a delete of the old and an add of the new one)
    customer_id = _customer(client, admin)
    account = _account(customer_id)
    change = "2026-11-16T08:00:00Z"
    _product(
        customer_id,
        [_price("Site access 100 Mbit/s", "429")],
        "2026-10-01T00:00:00Z",
        account_id=account,
        terminated=change,
    )
    _product(customer_id, [_price("Site access 1000 Mbit/s", "1190")], change, account_id=account)
    # When November is rated
    rates = _rate(account)
    # Then 15 days of each: 214.50 and 595.00
    assert _lines(rates) == [
        ("recurring", "Site access 100 Mbit/s", Decimal("214.50")),
        ("recurring", "Site access 1000 Mbit/s", Decimal("595.00")),
    ]


def test_a_completed_order_charges_its_products_to_the_orders_billing_account(
    client: TestClient, auth: Callable[..., dict[str, str]], flows: None, network: Any
) -> None:
    from tests.test_fulfillment_flow import contractable_customer
    from tests.test_order_completion import catalog, order_for, place_and_complete

    # Given a customer with two billing accounts and an order naming the second
    admin, manager = auth("admin"), auth("order_manager")
    offerings = catalog(client, admin, routers=5, minimum=1, reorder=5)
    customer = contractable_customer(client, admin)
    site = factories.site(client, admin, customer["id"])
    _account(customer["id"])
    second = _account(customer["id"])
    body = order_for(customer["id"], offerings, [site["id"]])
    body["billingAccount"] = {"id": second, "@referredType": "BillingAccount"}
    order = place_and_complete(client, manager, body)
    # When the month of the activation is rated
    with session_scope() as session:
        products = session.scalars(
            select(resources_row()).where(resources_row().owner_customer_id == customer["id"])
        ).all()
        assert {p.body["billingAccount"]["id"] for p in products} == {second}
        started = local_day(products[0].body["startDate"])
        assert started is not None
        start = started.replace(day=1)
        end = add_months(start, 1) - timedelta(days=1)
        rates = rate_account(session, second, start, end, today=end)
    # Then the access is prorated from the day of activation, router and installation
    # charged whole, each traceable to the order item
    month_days = (end - start).days + 1
    days = month_days - started.day + 1
    expected = (Decimal(429) * days / month_days).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert _lines(rates) == sorted(
        [
            ("recurring", "access charge", expected),
            ("oneTime", "router charge", Decimal("690.00")),
            ("oneTime", "installation charge", Decimal("950.00")),
        ]
    )
    traced = rates[0].characteristic["productOrderItem"][0]
    assert traced["productOrderId"] == order["id"]
    # (the customer accepts the delivery, so the order's flow ends)
    factories.accept_delivery(client, manager, order["id"])
    assert until(
        lambda: (
            {
                f["state"]
                for f in client.get(
                    "/tmf-api/processFlowManagement/v4/processFlow", headers=admin
                ).json()
            }
            == {"completed"}
        ),
        seconds=120,
    )


def _chunk_accounts(client: TestClient, admin: dict[str, str]) -> list[str]:
    """Three accounts as a bill run meets them: one whose SLA credit (100.00) is larger
    than its month (69.00), one with a plain month (120.00), one with nothing to bill."""
    accounts = []
    for price, credit in (("69", "100.00"), ("120", None), (None, None)):
        customer_id = _customer(client, admin)
        accounts.append(_account(customer_id))
        if price is None:
            continue
        product = _product(customer_id, [_price("Access", price)], "2026-10-01T00:00:00Z")
        if credit is not None:
            record_sla_credit(_credit(f"violation-{customer_id}", product, customer_id, credit))
    return accounts


def _billed(accounts: list[str]) -> list[Any]:
    """Per account: its bill (state, number given, net, gross) and its charges (type, net,
    on that bill or unbilled)."""
    out: list[Any] = []
    with session_scope() as session:
        bills_made = {
            b.billing_account_id: b
            for b in session.scalars(
                select(CustomerBillRow).where(CustomerBillRow.billing_account_id.in_(accounts))
            )
        }
        for account_id in accounts:
            bill = bills_made.get(account_id)
            charges = session.scalars(
                select(AppliedRateRow).where(AppliedRateRow.billing_account_id == account_id)
            ).all()
            for charge in charges:
                # a charge is on a bill that exists, or on none
                assert charge.bill_id is None or (bill is not None and charge.bill_id == bill.id)
            out.append(
                (
                    None
                    if bill is None
                    else (
                        bill.status,
                        bill.bill_no is not None,
                        bill.body["taxExcludedAmount"],
                        bill.amount_due,
                    ),
                    sorted((c.rate_type, c.tax_excluded, c.bill_id is not None) for c in charges),
                )
            )
    return out


def test_a_bill_run_chunk_writes_each_charge_on_its_bill_as_rating_then_billing_would(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given two like sets of accounts: a credit larger than the month, a plain month,
    # nothing to bill
    first, second = _chunk_accounts(client, admin), _chunk_accounts(client, admin)

    # when the first is rated, billed and issued step by step, and the second as a bill
    # run's chunk does it (each charge written on the bill planned for its account)
    with session_scope() as session:
        rate_accounts(session, first, *NOV, today=TODAY)
        made = bills.bill_accounts(session, first, *NOV, today=TODAY)
        bills.issue_bills(session, [b for b in made.values() if b], today=TODAY)
    with session_scope() as session:
        chunk, earlier = bills.rate_bill_and_issue(session, second, *NOV, today=TODAY)

    # then both end alike: the credit's account billed 0.00 with 31.00 carried unbilled,
    # the plain month billed, nothing for the third, every charge on its bill or on none
    assert earlier == {}
    assert _billed(second) == _billed(first)
    credit, plain, empty = _billed(second)
    assert credit[0] == ("validated", True, {"unit": "EUR", "value": 0.0}, Decimal("0.00"))
    assert credit[1] == [
        ("carriedCredit", Decimal("-31.00"), False),
        ("credit", Decimal("-69.00"), True),
        ("recurring", Decimal("69.00"), True),
    ]
    assert plain[0] == ("validated", True, {"unit": "EUR", "value": 120.0}, Decimal("142.80"))
    assert empty == (None, [])
    assert chunk[second[2]] is None


def test_a_bill_run_chunk_run_again_leaves_the_bills_made_before_and_new_charges_unbilled(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a chunk billed for November
    accounts = _chunk_accounts(client, admin)
    with session_scope() as session:
        first, _ = bills.rate_bill_and_issue(session, accounts, *NOV, today=TODAY)
    # and a product started on 15 November for the plain month's customer after that
    with session_scope() as session:
        owner = session.get(BillingAccountRow, accounts[1])
        assert owner is not None
        customer_id = str(owner.owner_customer_id)
    _product(customer_id, [_price("Router", "30")], "2026-11-15T00:00:00+01:00")

    # when the chunk is run again for November
    with session_scope() as session:
        again, earlier = bills.rate_bill_and_issue(session, accounts, *NOV, today=TODAY)

    # then the same bills come back, as made before (numbered), and the new product's
    # November days (16 of 30 of 30.00 = 16.00) wait unbilled for the next bill
    assert again == first
    assert set(earlier) == {b for b in first.values() if b} and all(earlier.values())
    _, plain, _ = _billed(accounts)
    assert plain[0][3] == Decimal("142.80")
    assert ("recurring", Decimal("16.00"), False) in plain[1]
