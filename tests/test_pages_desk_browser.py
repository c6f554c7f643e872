"""The staff ticket desk in a real browser (Playwright driving Debian's Chromium against
etomcrm served by Uvicorn): support follows the home page's work list to the desk,
takes a ticket up, sends the resolution form without a resolution (the reason comes
back beside the field) and resolves it. Screenshots in ``test-artifacts/screenshots``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from tests.test_pages_browser import SCREENSHOTS, _sign_in, browser, served
from tests.test_pages_portal import network, user
from tests.test_pages_tickets_bills import _ticket_for

pytestmark = pytest.mark.xdist_group("browser")
__all__ = ["browser", "served"]  # the fixtures this module uses


def test_support_resolves_a_ticket_from_the_desk(
    client: TestClient, admin: dict[str, str], served: str, browser: Browser, db_url: str
) -> None:
    # given a customer's ticket about a site that is down, and support signed in
    bmw = network(client, admin, 2)
    ticket_id = _ticket_for(client, admin, bmw.customer_id, bmw.site_ids[0])
    user("sabine.support", role="support")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    database = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    page = browser.new_page(locale="en-GB")
    _sign_in(page, served, "sabine.support")
    # when she follows her work list of tickets to the desk and opens the ticket
    page.locator("#work-ticketsBySlaClock a").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ticket desk")
    expect(page.locator("table.desk tbody tr")).to_have_count(1)
    page.screenshot(path=str(SCREENSHOTS / f"desk-{database}.png"), full_page=True)
    page.locator(f'table.desk a[href$="/desk/tickets/{ticket_id}"]').click()
    # then she sees its SLA clock and its service problem
    expect(page.locator("#clock")).to_contain_text("min")
    expect(page.locator("#problems li")).to_have_count(1)
    # when she takes it up and sends the resolution form with nothing said
    page.get_by_role("button", name="Take the ticket up").click()
    page.get_by_label("What was done").fill("   ")
    page.get_by_role("button", name="Resolve the ticket").click()
    # then the form comes back with the reason beside the field
    expect(page.locator("#resolution-error")).to_have_text("Say what was done to resolve it.")
    # when she says what was done
    page.get_by_label("What was done").fill("Line card replaced at the PoP")
    page.get_by_role("button", name="Resolve the ticket").click()
    # then the ticket is resolved and its clock stands still, waiting for the customer
    expect(page.locator("#clock")).to_have_text("clock stopped: waiting for the customer")
    expect(page.locator("#history")).to_contain_text("Line card replaced at the PoP")
    page.screenshot(path=str(SCREENSHOTS / f"desk-ticket-{database}.png"), full_page=True)
