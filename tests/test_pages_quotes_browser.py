"""The quote builder and the portal's acceptance in a real browser (seed 5.2): sales
quotes BMW's 66 sites from the builder, Katrin accepts it with the education
acknowledged. Screenshots land in ``test-artifacts/screenshots``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from tests.conftest import TokenFactory
from tests.quote_helpers import load_bmw
from tests.test_fulfillment_flow import complete_contract_data
from tests.test_pages_browser import SCREENSHOTS, _sign_in
from tests.test_pages_browser import browser as browser  # the fixtures, shared
from tests.test_pages_browser import served as served
from tests.test_pages_portal import user

pytestmark = pytest.mark.xdist_group("browser")


def test_sales_quotes_every_bmw_site_and_katrin_accepts_it(
    client: TestClient, auth: TokenFactory, served: str, browser: Browser, db_url: str
) -> None:
    # given BMW with its 66 sites and complete contract data, Anna of sales and Katrin
    bmw = load_bmw()
    complete_contract_data(client, auth("admin"), bmw.customer_id)
    user("anna.sales", role="sales")
    user("katrin.weber", customer_id=bmw.customer_id)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    database = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    anna = browser.new_page(locale="en-GB")
    _sign_in(anna, served, "anna.sales")
    # when Anna opens BMW's quotes and builds one: access and SLA Gold at every site
    anna.goto(f"{served}/ui/customers/{bmw.customer_id}/quotes")
    anna.get_by_role("link", name="New quote").click()
    anna.get_by_label("Every site: Site access 100 Mbit/s").check()
    anna.get_by_label("Every site: SLA level").select_option(label="SLA Gold")
    anna.get_by_role("button", name="Apply to every site").click()
    expect(anna.locator("input[type=checkbox]:checked")).to_have_count(66 + 1)
    anna.get_by_label("Discount (%)").fill("5")
    anna.screenshot(path=SCREENSHOTS / f"quote-builder-{database}.png")
    anna.get_by_role("button", name="Draft the quote").click()
    # then the quote shows every site with its SLA level, prices, costs and margin
    expect(anna.get_by_role("heading", level=1)).to_contain_text("version 1")
    expect(anna.locator("tr.site")).to_have_count(66)
    expect(anna.locator("#margin")).to_contain_text("EUR")
    anna.screenshot(path=SCREENSHOTS / f"quote-{database}.png", full_page=True)
    # when she marks it ready (5 % needs no second person)
    anna.get_by_role("button", name="Mark ready for the customer").click()
    expect(anna.locator("dl.facts .status")).to_have_text("approved")
    quote_url = anna.url
    # and Katrin opens it in the portal, reads the brief and accepts by keyboard
    katrin = browser.new_page(locale="en-GB")
    _sign_in(katrin, served, "katrin.weber")
    katrin.get_by_role("link", name="Quotes", exact=True).click()
    katrin.get_by_role("table").get_by_role("link").first.click()
    expect(katrin).to_have_url(quote_url)
    expect(katrin.locator("#costs")).to_have_count(0)
    katrin.get_by_label("I have read the lead times").focus()
    katrin.keyboard.press("Space")
    katrin.screenshot(path=SCREENSHOTS / f"quote-portal-{database}.png", full_page=True)
    katrin.get_by_role("button", name="Accept the quote").press("Enter")
    # then the quote is accepted
    expect(katrin.locator("dl.facts .status")).to_have_text("accepted")
