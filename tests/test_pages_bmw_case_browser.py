"""Issue 11: the BMW case from the customer request to the paid bill, through the pages
(Playwright on Debian's Chromium, as the portal's test). Every step a person does is
done in the browser: Katrin Weber of BMW asks for an offer in the portal, sales sees it
in its work list and builds the quote for BMW's three sites with 15 % off, a second
sales person approves the discount, sales records the education, Katrin accepts the
quote, the order manager follows the order per site to completion, billing and Katrin
find the bill, and after the payment it shows as settled. What machines do runs as the
system runs it: the flows in this process (the Pre-Sale flow places the order from the
accepted quote, the Ordering flow drives the simulated network, answering at once), the
bill run of this month started as the scheduler starts it, and the bank transfer booked
through the API with billing's key. Screenshots land in ``test-artifacts/screenshots``.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from etomcrm.db import utcnow
from etomcrm.flows import billing
from tests.conftest import TokenFactory
from tests.polling import until
from tests.test_one_system_end_to_end import build_catalog, new_customer
from tests.test_pages_browser import SCREENSHOTS, _sign_in
from tests.test_pages_browser import browser as browser  # the fixtures, shared
from tests.test_pages_browser import served as served
from tests.test_pages_portal import user

pytestmark = pytest.mark.xdist_group("browser")

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
BILLS = "/tmf-api/customerBillManagement/v4/customerBill"
PAYMENTS = "/tmf-api/paymentManagement/v4/payment"
# Generous: the flows run beside the browser and the server, on a loaded machine too.
WAIT_MS = 60_000


@pytest.fixture(autouse=True)
def _patient_expectations() -> Iterator[None]:
    """Every expectation of this test waits up to WAIT_MS (the default is 5 s), then the
    default again for the tests after it in this worker."""
    expect.set_options(timeout=WAIT_MS)
    yield
    expect.set_options(timeout=5_000)


def _this_month() -> str:
    """The period the bill run names this month (a Berlin month)."""
    return f"{utcnow().astimezone(ZoneInfo('Europe/Berlin')):%Y-%m}"


def _bill_run(period: str) -> dict[str, Any]:
    return billing.wait_for_bill_run(billing.start_bill_run(period), period)


def _order_of(client: TestClient, admin: dict[str, str], quote_id: str) -> dict[str, Any] | None:
    for order in client.get(ORDERS, headers=admin).json():
        if any(ref.get("id") == quote_id for ref in order.get("quote") or []):
            return order  # type: ignore[no-any-return]
    return None


def _reloaded_until_completed(page: Page) -> bool:
    page.reload()
    return page.locator("dl.facts .status").first.inner_text() == "completed"


def test_the_bmw_case_from_the_request_to_the_paid_bill(
    client: TestClient,
    auth: TokenFactory,
    flows: None,
    network: dict[str, Any],
    served: str,
    browser: Browser,
    db_url: str,
) -> None:
    # given a catalog (access, router, installation, SLA Gold), BMW AG with complete
    # contract data and three sites, Katrin of BMW, two sales people, the order manager
    # and billing
    admin, billing_key = auth("admin"), auth("billing")
    build_catalog(client, admin)
    bmw, sites = new_customer(client, auth("sales"))
    customer = bmw["id"]
    user("katrin.weber", customer_id=customer)
    for name, role in (
        ("anna.sales", "sales"),
        ("bernd.sales", "sales"),
        ("olaf.berger", "order_manager"),
        ("bea.billing", "billing"),
    ):
        user(name, role=role)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    database = "postgresql" if db_url.startswith("postgresql") else "sqlite"

    def shot(page: Page, step: str) -> None:
        page.screenshot(path=SCREENSHOTS / f"bmw-case-{step}-{database}.png", full_page=True)

    # when Katrin asks for an offer in the portal
    katrin = browser.new_page(locale="en-GB")
    _sign_in(katrin, served, "katrin.weber")
    katrin.get_by_role("link", name="Send a request", exact=True).click()
    katrin.get_by_label("What do you need?").fill("Offer for extranet access at our dealers")
    katrin.get_by_label("Details").fill("Access, router and installation at three dealers")
    katrin.get_by_role("button", name="Send the request").click()
    # then it is logged
    expect(katrin.locator("#request-sent")).to_contain_text("Your request was logged")
    shot(katrin, "1-request")

    # when Anna of sales signs in, her work list holds the request; she follows it to BMW
    anna = browser.new_page(locale="en-GB")
    _sign_in(anna, served, "anna.sales")
    requests = anna.locator("#work-requests")
    expect(requests.locator(".count")).to_have_text("1")
    shot(anna, "2-work-list")
    requests.get_by_role("link", name="handle them").click()
    expect(anna).to_have_url(f"{served}/ui/requests")
    expect(anna.locator("tr.request")).to_have_count(1)
    shot(anna, "2-requests")
    # and takes it up, which leads her to BMW
    anna.get_by_role("button", name="Take it up: Offer for extranet access at our dealers").click()
    expect(anna).to_have_url(f"{served}/ui/customers/{customer}")
    anna.get_by_role("link", name="All quotes, and a new one").click()
    anna.get_by_role("link", name="New quote").click()
    # and builds the quote: access, router, installation and SLA Gold at each site, 15 % off
    for offering in ("Site access 100 Mbit/s", "Managed router", "Installation"):
        anna.get_by_label(f"Every site: {offering}", exact=True).check()
    anna.get_by_label("Every site: SLA level").select_option(label="SLA Gold")
    anna.get_by_role("button", name="Apply to every site").click()
    anna.get_by_label("Discount (%)").fill("15")
    anna.get_by_label("Description").fill("Dealer extranet: site access with SLA Gold")
    shot(anna, "3-quote-builder")
    anna.get_by_role("button", name="Draft the quote").click()
    expect(anna.get_by_role("heading", level=1)).to_contain_text("version 1")
    expect(anna.locator("tr.site")).to_have_count(len(sites))
    quote_url = anna.url
    quote_id = quote_url.rsplit("/", 1)[1]
    # and submits the 15 % for approval: a second person must approve it
    anna.get_by_role("button", name="Submit for discount approval").click()
    expect(anna.locator("#approval")).to_contain_text("Waiting for approval.")
    expect(anna.get_by_role("button", name="Approve the discount")).to_have_count(0)
    shot(anna, "4-quote-submitted")

    # when Bernd of sales follows his work list to the quote and approves the discount
    bernd = browser.new_page(locale="en-GB")
    _sign_in(bernd, served, "bernd.sales")
    approvals = bernd.locator("#work-quoteApprovals")
    expect(approvals.locator(".count")).to_have_text("1")
    approvals.get_by_role("link", name="Quote discounts awaiting approval").click()
    bernd.get_by_role("link", name=quote_id).click()
    bernd.get_by_role("button", name="Approve the discount").click()
    # then the quote is ready for BMW
    expect(bernd.locator("dl.facts .status")).to_have_text("approved")
    shot(bernd, "5-quote-approved")

    # when Anna records that she presented the quote to Katrin (3.4.2)
    anna.goto(quote_url)
    anna.get_by_label("Presented to").fill("Katrin Weber")
    anna.get_by_role("button", name="Record the education").click()
    expect(anna.locator("#educated")).to_have_text(
        "The customer has been informed of this version."
    )

    # and Katrin opens it in the portal, acknowledges the brief and accepts it
    katrin.get_by_role("link", name="Quotes", exact=True).click()
    katrin.get_by_role("link", name=quote_id).click()
    expect(katrin).to_have_url(f"{served}{quote_url.removeprefix(served)}")
    expect(katrin.locator("#costs")).to_have_count(0)
    katrin.get_by_label("I have read the lead times").check()
    shot(katrin, "6-quote-portal")
    katrin.get_by_role("button", name="Accept the quote").click()
    # then the quote is accepted
    expect(katrin.locator("dl.facts .status")).to_have_text("accepted")

    # and the Pre-Sale flow places the order from the accepted quote (a machine's step)
    order = until(lambda: _order_of(client, admin, quote_id))
    assert order is not None, "the accepted quote did not become an order"

    # when Olaf, the order manager, opens the order from the list of orders
    olaf = browser.new_page(locale="en-GB")
    _sign_in(olaf, served, "olaf.berger")
    olaf.goto(f"{served}/ui/orders?customer={customer}")
    olaf.locator(f'a[href="/ui/orders/{order["id"]}"]').first.click()
    expect(olaf).to_have_url(f"{served}/ui/orders/{order['id']}")
    # then each site is tracked with its milestones, until the network has activated all
    expect(olaf.locator(".site-track")).to_have_count(len(sites))
    assert until(lambda: _reloaded_until_completed(olaf), seconds=WAIT_MS / 1000 * 3)
    for site in sites:
        track = olaf.locator(f"#site-{site['id']}")
        expect(track.locator("ol.milestones li").first).to_be_visible()
        expect(track.locator(".status").first).to_have_text("completed")
    shot(olaf, "7-order-completed")
    # and Katrin follows the same order in the portal
    katrin.get_by_role("link", name="Orders", exact=True).click()
    katrin.locator(f'a[href="/ui/customers/{customer}/orders/{order["id"]}"]').first.click()
    for site in sites:
        expect(katrin.locator(f"#site-{site['id']}")).to_be_visible()
    shot(katrin, "8-order-portal")
    # and accepts what was delivered (3.5.5), which ends the post-ordering flow
    expect(katrin.locator("#acceptance")).to_have_text("awaited")
    katrin.get_by_label("Note").fill("Online at all three dealers, thank you.")
    katrin.get_by_role("button", name="Accept the delivery").click()
    expect(katrin.locator("#acceptance")).to_have_text("given")

    # when the bill run of this month runs (the scheduler's step at the month's start)
    period = _this_month()
    # (off this thread: Playwright's event loop runs here, and DBOS refuses to block one)
    with ThreadPoolExecutor(1) as machine:
        summary = machine.submit(_bill_run, period).result()
    assert summary["bills"] == 1, summary
    (bill,) = [
        b
        for b in client.get(BILLS, headers=billing_key).json()
        if b.get("category", "normal") != "creditNote"
    ]
    number = bill["billNo"]

    # then Bea of billing finds BMW and its bill, with its lines and the amount open
    bea = browser.new_page(locale="en-GB")
    _sign_in(bea, served, "bea.billing")
    bea.get_by_label(
        "Search customers, sites, quotes, orders, tickets and bills by name or id"
    ).fill("BMW")
    bea.get_by_role("button", name="Search").click()
    bea.get_by_role("link", name="BMW AG", exact=True).first.click()
    expect(bea).to_have_url(f"{served}/ui/customers/{customer}")
    bea.locator(f'#section-bill a[href="/ui/billing/bills/{bill["id"]}"]').click()
    expect(bea).to_have_url(f"{served}/ui/billing/bills/{bill['id']}")
    expect(bea.get_by_role("heading", level=1)).to_have_text(f"Bill {number}")
    expect(bea.locator("table.lines tbody tr")).not_to_have_count(0)
    expect(bea.locator("#open-amount")).not_to_have_text("0.00 EUR")
    shot(bea, "9-staff-bill")
    # and Katrin sees it in the portal
    katrin.get_by_role("link", name="Bills", exact=True).click()
    expect(katrin.locator("tr.bill")).to_have_count(1)
    katrin.get_by_role("link", name=number).click()
    expect(katrin.locator("dl.facts .status")).to_have_text("sent")
    shot(katrin, "10-portal-bill")

    # when BMW's bank transfer of the amount due arrives, booked naming the bill
    paid = client.post(
        PAYMENTS,
        json={
            "account": {"id": bill["billingAccount"]["id"], "@referredType": "BillingAccount"},
            "paymentMethod": {"@type": "BankAccountTransfer", "name": "bank transfer"},
            "totalAmount": {
                "unit": "EUR",
                "value": float(bill["amountDue"]["value"]),
            },
            "paymentDate": utcnow().date().isoformat(),
            "reference": number,
        },
        headers=billing_key,
    )
    assert paid.status_code == 201, paid.text

    # then the bill shows as settled, nothing open, to billing and to Katrin
    bea.reload()
    expect(bea.locator("dl.facts .status")).to_have_text("settled")
    expect(bea.locator("#open-amount")).to_have_text("0.00 EUR")
    shot(bea, "11-staff-bill-paid")
    katrin.reload()
    expect(katrin.locator("dl.facts .status")).to_have_text("settled")
    shot(katrin, "12-portal-bill-paid")
