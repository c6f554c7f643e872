"""The portal's tickets and bills in a real browser (Playwright driving Debian's
Chromium against etomcrm served by Uvicorn): a customer opens a ticket for a site by
keyboard, a bad form shows the reason beside the field and keeps what was typed, and
a bill's lines and documents are a click away. Screenshots in
``test-artifacts/screenshots``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from tests.test_pages_browser import SCREENSHOTS, _sign_in, browser, served
from tests.test_pages_portal import network, user
from tests.test_pages_tickets_bills import billed

pytestmark = pytest.mark.xdist_group("browser")
__all__ = ["browser", "served"]  # the fixtures this module uses


def test_a_customer_opens_a_ticket_for_a_site_by_keyboard(
    client: TestClient, admin: dict[str, str], served: str, browser: Browser, db_url: str
) -> None:
    # given BMW with two sites and Katrin, its portal user, signed in
    bmw = network(client, admin, 2)
    user("katrin.weber", customer_id=bmw.customer_id)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    database = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    page = browser.new_page(locale="en-GB")
    _sign_in(page, served, "katrin.weber")
    expect(page).to_have_url(f"{served}/ui/customers/{bmw.customer_id}/network")
    # when she goes to the second site's page and follows "Open a ticket for this site"
    page.goto(f"{served}/ui/customers/{bmw.customer_id}/sites/{bmw.site_ids[1]}")
    page.get_by_role("link", name="Open a ticket for this site").click()
    # then the form has the site chosen already
    expect(page.get_by_label("Site")).to_have_value(bmw.site_ids[1])
    # when she picks a severity and sends the form without saying what is wrong
    page.get_by_label("Severity").select_option("Minor")
    page.get_by_label("What is wrong?").fill("   ")
    page.get_by_label("What is wrong?").press("Tab")
    page.keyboard.press("Enter")
    # then the form comes back with the reason beside the field, her choices kept
    expect(page.locator("#description-error")).to_have_text("Describe the problem.")
    expect(page.get_by_label("Site")).to_have_value(bmw.site_ids[1])
    expect(page.get_by_label("Severity")).to_have_value("Minor")
    page.screenshot(path=str(SCREENSHOTS / f"ticket-form-error-{database}.png"), full_page=True)
    # when she describes the problem and sends it by keyboard
    page.get_by_label("What is wrong?").fill("Slow since the morning")
    page.get_by_label("What is wrong?").press("Tab")
    page.keyboard.press("Enter")
    # then she is on the new ticket's page, about her site, and it is in her list
    expect(page.get_by_role("heading", level=1)).to_contain_text("Slow since the morning")
    expect(page.get_by_role("link", name=bmw.site_names[1])).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / f"ticket-{database}.png"), full_page=True)
    page.get_by_role("link", name="Tickets", exact=True).first.click()
    expect(page.locator("table.tickets tbody tr")).to_have_count(1)
    page.screenshot(path=str(SCREENSHOTS / f"tickets-{database}.png"), full_page=True)


def test_a_customer_reads_a_bill_and_its_lines(served: str, browser: Browser, db_url: str) -> None:
    # given a customer with an issued bill of three lines and its portal user
    bank = billed(1, 3, "BMW Bank")
    user("lena.bank", customer_id=bank.customer_id)
    database = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(locale="en-GB")
    _sign_in(page, served, "lena.bank")
    # when she opens her bills and the bill
    page.goto(f"{served}/ui/customers/{bank.customer_id}/bills")
    page.locator("table.bills tbody a").first.click()
    # then she sees its lines and the links to its PDF and XML
    expect(page.locator("table.lines tbody tr")).to_have_count(3)
    expect(page.get_by_role("link", name="Download the PDF")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the PDF").click()
    assert download.value.suggested_filename.endswith(".pdf")
    page.screenshot(path=str(SCREENSHOTS / f"bill-{database}.png"), full_page=True)
