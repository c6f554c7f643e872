"""The portal's main tasks by keyboard alone (issue 11, "the portal's main tasks can be
done by keyboard"): Playwright driving Debian's Chromium, every step a key press (Tab
to the next control, Enter to follow or send, arrows to choose), no click and no fill.
Screenshots in ``test-artifacts/screenshots``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Locator, Page, expect

from tests.test_pages_browser import SCREENSHOTS, browser, served
from tests.test_pages_portal import PASSWORD, network, user
from tests.test_pages_reports_surveys import survey

pytestmark = pytest.mark.xdist_group("browser")
__all__ = ["browser", "served"]  # the fixtures this module uses
# More Tab presses than any page has controls before its main content's end.
MOST_TABS = 60


def tab_to(page: Page, target: Locator) -> None:
    """Press Tab until ``target`` has the focus (as a person moving through the page)."""
    for _ in range(MOST_TABS):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{target} never got the focus by Tab")


def _sign_in_by_keyboard(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/ui/")
    tab_to(page, page.get_by_label("Username"))
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def test_a_customer_opens_a_ticket_and_answers_a_survey_by_keyboard_alone(
    client: TestClient, admin: dict[str, str], served: str, browser: Browser, db_url: str
) -> None:
    # given BMW with two sites and a survey after an order, and Katrin, its portal user
    bmw = network(client, admin, 2)
    survey_id = survey(bmw.customer_id, "keyboard-1")
    user("katrin.weber", customer_id=bmw.customer_id)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    database = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    page = browser.new_page(locale="en-GB")
    # when she signs in by keyboard
    _sign_in_by_keyboard(page, served, "katrin.weber")
    base = f"{served}/ui/customers/{bmw.customer_id}"
    expect(page).to_have_url(f"{base}/network")
    # and moves to Tickets, then "Open a ticket", by Tab and Enter
    tab_to(page, page.get_by_role("link", name="Tickets", exact=True))
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/tickets")
    tab_to(page, page.get_by_role("link", name="Open a ticket"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/tickets/new")
    # and chooses the first site and a severity with the arrow keys, describes the problem
    tab_to(page, page.get_by_label("Site"))
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Site")).not_to_have_value("")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Severity")).to_be_focused()
    # the form proposes Major; one down is the mildest
    expect(page.get_by_label("Severity")).to_have_value("Major")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Severity")).to_have_value("Minor")
    page.keyboard.press("Tab")
    expect(page.get_by_label("What is wrong?")).to_be_focused()
    page.keyboard.type("Packet loss since noon")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Open the ticket")).to_be_focused()
    page.keyboard.press("Enter")
    # then the ticket is open, about her site
    expect(page.get_by_role("heading", level=1)).to_contain_text("Packet loss since noon")
    expect(page.locator("main")).to_contain_text("Minor")
    page.screenshot(path=str(SCREENSHOTS / f"keyboard-ticket-{database}.png"), full_page=True)
    # when she moves to Surveys and opens the one waiting for her
    tab_to(page, page.get_by_role("navigation", name="Portal").get_by_role("link", name="Surveys"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/surveys")
    tab_to(page, page.locator(f'a[href$="/surveys/{survey_id}"]'))
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/surveys/{survey_id}")
    # and answers it: the arrows move through each scale, Tab to the next question
    tab_to(page, page.get_by_label("1", exact=True).first)
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    expect(page.locator("#csat-5")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.locator("#nps-0")).to_be_focused()
    for _ in range(9):
        page.keyboard.press("ArrowRight")
    expect(page.locator("#nps-9")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_label("What should we do better?")).to_be_focused()
    page.keyboard.type("Quicker installation dates")
    page.screenshot(path=str(SCREENSHOTS / f"keyboard-survey-{database}.png"), full_page=True)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send the answer")).to_be_focused()
    page.keyboard.press("Enter")
    # then her answer is taken, and shown back
    expect(page.locator("main")).to_contain_text("Thank you for your answer.")
    expect(page.locator("main")).to_contain_text("5 / 5")
    expect(page.locator("main")).to_contain_text("9 / 10")
    expect(page.locator("main")).to_contain_text("Quicker installation dates")
