"""The Customer 360 in a real browser (issue 11): a staff user searches BMW from the
landing page and opens its 360 (Playwright on Debian's Chromium, as the portal's test)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from tests import factories
from tests.test_pages_browser import SCREENSHOTS, _sign_in
from tests.test_pages_browser import browser as browser  # the fixtures, shared
from tests.test_pages_browser import served as served
from tests.test_pages_portal import network, user

pytestmark = pytest.mark.xdist_group("browser")


def test_staff_search_bmw_and_open_its_360(
    client: TestClient, admin: dict[str, str], served: str, browser: Browser, db_url: str
) -> None:
    # given BMW with two sites and a phone call on record, and Olaf of order management
    bmw = network(client, admin, 2, "B")
    factories.interaction(client, admin, bmw.customer_id)
    user("olaf.berger", role="order_manager")
    olaf = browser.new_page(locale="en-GB")
    _sign_in(olaf, served, "olaf.berger")
    # when he searches for BMW on the landing page
    expect(olaf).to_have_url(f"{served}/ui/")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    database = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    olaf.screenshot(path=SCREENSHOTS / f"staff-home-{database}.png", full_page=True)
    olaf.get_by_label(
        "Search customers, sites, quotes, orders, tickets and bills by name or id"
    ).fill("BMW")
    olaf.get_by_role("button", name="Search").click()
    # and opens the customer found
    olaf.get_by_role("link", name="BMW AG", exact=True).click()
    # then he is on BMW's 360 with its sites and contact history
    expect(olaf).to_have_url(f"{served}/ui/customers/{bmw.customer_id}")
    expect(olaf.get_by_role("heading", level=1)).to_have_text("BMW AG")
    expect(olaf.locator("#section-site h2")).to_have_text("Sites (2)")
    expect(olaf.locator("#section-interaction h2")).to_have_text("Contact history (1)")
    olaf.screenshot(path=SCREENSHOTS / f"customer360-{database}.png", full_page=True)
    # and a site leads on to its page
    olaf.locator("#section-site").get_by_role("link").first.click()
    expect(olaf).to_have_url(re.compile(f"/ui/customers/{bmw.customer_id}/sites/"))
    expect(olaf.get_by_role("heading", level=1)).to_have_text(re.compile("Dealer Ort B"))
