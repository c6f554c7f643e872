"""The order tracker in a real browser (issue 11): the order manager follows the work
list "orders in jeopardy" to the late order and on to its flow trace; the customer's
user follows the same order in the portal (Playwright on Debian's Chromium, as the
portal's test)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from tests.test_pages_browser import SCREENSHOTS, _sign_in
from tests.test_pages_browser import browser as browser  # the fixtures, shared
from tests.test_pages_browser import served as served
from tests.test_pages_orders import placed
from tests.test_pages_portal import user

pytestmark = pytest.mark.xdist_group("browser")


def test_the_order_manager_and_the_customer_follow_a_late_order(
    client: TestClient,
    admin: dict[str, str],
    network: dict[str, Any],
    served: str,
    browser: Browser,
    db_url: str,
) -> None:
    # given BMW's order for three sites, the second late, and Olaf of order management
    order = placed(client, admin, network, 3, late=(1,))
    user("olaf.berger", role="order_manager")
    user("katrin.weber", customer_id=order.customer_id)
    database = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    olaf = browser.new_page(locale="en-GB")
    _sign_in(olaf, served, "olaf.berger")
    # when he follows his work list of orders in jeopardy to the order
    olaf.get_by_role("link", name="Orders in jeopardy").click()
    expect(olaf).to_have_url(f"{served}/ui/orders?jeopardy=true")
    olaf.get_by_role("link", name="Extranet access").click()
    # then the order shows the late site first, in jeopardy, with the network's answers
    expect(olaf).to_have_url(f"{served}/ui/orders/{order.order_id}")
    late = olaf.locator(".site-track").first
    expect(late).to_have_id(f"site-{order.site_ids[1]}")
    expect(late).to_contain_text("Jeopardy raised")
    expect(late).to_contain_text("Service order, attempt 1")
    olaf.screenshot(path=SCREENSHOTS / f"order-{database}.png", full_page=True)
    # and the trace of its flow, with the seed numbers
    olaf.get_by_role("link", name="Flow trace").last.click()
    expect(olaf).to_have_url(re.compile(r"/ui/trace\?case="))
    expect(olaf.locator("td.seed").first).to_have_text("3.4.4")
    expect(olaf.locator("table.trace")).to_contain_text("Track order and handle delays")
    olaf.screenshot(path=SCREENSHOTS / f"trace-{database}.png", full_page=True)
    # when Katrin of BMW opens her orders from the portal
    katrin = browser.new_page(locale="en-GB")
    _sign_in(katrin, served, "katrin.weber")
    katrin.get_by_role("link", name="Orders", exact=True).click()
    katrin.get_by_role("link", name="Extranet access").click()
    # then she sees the delay in her words
    expect(katrin).to_have_url(f"{served}/ui/customers/{order.customer_id}/orders/{order.order_id}")
    expect(katrin.locator(f"#site-{order.site_ids[1]}")).to_contain_text("Delay announced")
    expect(katrin.locator("body")).not_to_contain_text("Service order")
    katrin.screenshot(path=SCREENSHOTS / f"portal-order-{database}.png", full_page=True)
