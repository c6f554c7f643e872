"""Screenshots of the main pages on the demo data, for the README (``docs/screenshots``).

Builds the demo (``etomcrm demo``: the BMW extranet story through the services) in a
temporary SQLite database, serves it (``etomcrm serve --no-flows`` on a free local
port), signs in through the sign-in page as the demo's people with Playwright driving
Debian's Chromium (``/usr/bin/chromium``; nothing downloads a browser) and saves:

- ``staff-home.png``: the work lists of Paula Richter (billing),
- ``customer-360.png``: BMW's Customer 360 as Anna Schmidt (sales) sees it,
- ``network.png``: BMW's topology with its 66 sites, as Katrin Weber (BMW) sees it,
- ``site.png``: one of BMW's sites, its traffic and availability,
- ``bill.png``: one of BMW's bills with its lines.

    PYTHONPATH=src .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, ViewportSize, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
# The page benchmark's way of starting a server, so the two stay one.
sys.path.insert(0, str(ROOT / "bench"))
from pages import serve  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
# The size of a laptop's browser window; a shot is the window, not the whole page, so
# the pictures stay small.
VIEWPORT: ViewportSize = {"width": 1280, "height": 860}


def _environment(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ETOMCRM_DATABASE_URL": f"sqlite:///{folder / 'demo.db'}",
        "ETOMCRM_MESSAGE_DIR": str(folder / "messages"),
        "PYTHONPATH": str(ROOT / "src"),
    }


def _passwords(folder: Path) -> dict[str, str]:
    """The demo sign-ins' passwords (derived from this installation's secret)."""
    os.environ.update(_environment(folder))
    from etomcrm.config import get_settings

    get_settings.cache_clear()
    from etomcrm.db import session_scope
    from etomcrm.demo.sign_ins import ensure_sign_ins

    with session_scope() as session:
        return {person.username: person.password for person in ensure_sign_ins(session)}


def _sign_in(page: Page, base: str, username: str, password: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/ui/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    page.wait_for_load_state("networkidle")


def _shot(page: Page, out: Path, name: str) -> None:
    page.wait_for_load_state("networkidle")
    path = out / name
    # A page is a few flat colours: 128 of them, undithered, keep it sharp at a third of
    # the bytes, which is what a README in a repository should carry.
    picture = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    picture.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="etomcrm-screenshots-") as temporary:
        folder = Path(temporary)
        print("building the demo (etomcrm demo) ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "etomcrm", "demo"],
            env=_environment(folder),
            cwd=folder,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        passwords = _passwords(folder)
        with serve(_environment(folder), cwd=folder) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
            page = browser.new_page(viewport=VIEWPORT, locale="en-GB")
            _sign_in(page, base, "paula.richter", passwords["paula.richter"])
            _shot(page, out, "staff-home.png")
            _sign_in(page, base, "anna.schmidt", passwords["anna.schmidt"])
            page.goto(f"{base}/ui/search?q=BMW")
            page.get_by_role("link", name="BMW AG", exact=True).first.click()
            _shot(page, out, "customer-360.png")
            _sign_in(page, base, "katrin.weber", passwords["katrin.weber"])
            network = page.url  # Katrin lands on BMW's network page
            _shot(page, out, "network.png")
            page.locator("table.sites a").nth(1).click()
            _shot(page, out, "site.png")
            page.goto(network.replace("/network", "/bills"))
            page.locator("main table a").first.click()
            _shot(page, out, "bill.png")
            browser.close()


if __name__ == "__main__":
    main()
