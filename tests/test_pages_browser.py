"""The customer network portal in a real browser: Playwright for Python driving
Debian's Chromium (``make test`` installs it) against etomcrm served by Uvicorn.
Screenshots of the pages land in ``test-artifacts/screenshots`` (the tests' artifacts,
ignored by git; ``scripts/screenshots.py`` makes the README's on the demo data)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect, sync_playwright

from etomcrm.bootstrap import create_app
from tests.polling import until
from tests.test_pages_portal import PASSWORD, network, user

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"

pytestmark = pytest.mark.xdist_group("browser")


@pytest.fixture
def served(db_url: str) -> Iterator[str]:
    """etomcrm on a free local port, on the test's database; its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(deliver_events=False, run_flows=False), log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    assert until(lambda: server.started, seconds=30), "the server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
    listener.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: 'make test' installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


def _sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/ui/")
    # Unsigned, every page leads to the sign-in form; by keyboard, as a person would.
    expect(page).to_have_url(f"{base}/ui/sign-in?next=/ui/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")


def test_a_customer_sees_its_sites_and_another_customer_gets_404(
    client: TestClient, admin: dict[str, str], served: str, browser: Browser, db_url: str
) -> None:
    # given BMW with four sites and Katrin, its portal user, and a user of another customer
    bmw = network(client, admin, 4, "B")
    other = network(client, admin, 1, "O")
    user("katrin.weber", customer_id=bmw.customer_id)
    user("someone.else", customer_id=other.customer_id)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    database = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    katrin = browser.new_page(locale="en-GB")
    # when Katrin signs in
    _sign_in(katrin, served, "katrin.weber")
    # then she is on BMW's network page with every site drawn and listed
    expect(katrin).to_have_url(f"{served}/ui/customers/{bmw.customer_id}/network")
    expect(katrin.get_by_role("heading", level=1)).to_have_text("Network of BMW AG")
    sites = katrin.get_by_role("table").get_by_role("link")
    expect(sites).to_have_count(4)
    for name in bmw.site_names:
        expect(katrin.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(katrin.locator("svg circle.node.site")).to_have_count(4)
    expect(katrin.locator("svg circle.node.site.down")).to_have_count(1)
    katrin.screenshot(path=SCREENSHOTS / f"network-{database}.png", full_page=True)
    # when she opens a site
    katrin.get_by_role("link", name=bmw.site_names[1], exact=True).click()
    # then its traffic and its availability are shown
    site_url = f"{served}/ui/customers/{bmw.customer_id}/sites/{bmw.site_ids[1]}"
    expect(katrin).to_have_url(site_url)
    expect(katrin.get_by_role("heading", level=1)).to_have_text(bmw.site_names[1])
    for granularity in ("hour", "day", "month"):
        expect(katrin.locator(f"#traffic-{granularity} svg rect.in")).not_to_have_count(0)
    expect(katrin.locator("#traffic-hour")).to_contain_text("In: 48.0 MB")
    katrin.screenshot(path=SCREENSHOTS / f"site-{database}.png", full_page=True)
    # and with the language switched to German the page speaks German
    katrin.get_by_label("Language").select_option("de")
    katrin.get_by_role("button", name="Switch").click()
    expect(katrin).to_have_url(site_url)
    expect(katrin.locator("#traffic-hour h2")).to_have_text(
        "Datenvolumen je Stunde, letzte 24 Stunden"
    )
    # when a user of another customer types the same address
    stranger = browser.new_page(locale="en-GB")
    _sign_in(stranger, served, "someone.else")
    expect(stranger).to_have_url(f"{served}/ui/customers/{other.customer_id}/network")
    answer = stranger.goto(site_url)
    # then it is refused with a 404 that shows nothing of BMW
    assert answer is not None and answer.status == 404
    expect(stranger.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(stranger.locator("body")).not_to_contain_text(bmw.site_names[1])
    stranger.goto(f"{served}/ui/customers/{bmw.customer_id}/network")
    expect(stranger.get_by_role("heading", level=1)).to_have_text("Not found")
