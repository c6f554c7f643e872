"""The pages in the browser, over plain HTTP: sign-in and out, CSRF, the customer
network portal (seed 5.1) with its scoping, the language, and the query count."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from etomcrm.config import get_settings
from etomcrm.db import session_scope, utcnow
from etomcrm.network.models import NetworkLinkRow, NetworkMeasurementRow, NetworkPopRow
from etomcrm.order_handling.models import ProductRow
from etomcrm.qos_sla.models import QosAssessmentRow
from etomcrm.security.service import create_user, unlock_user
from tests import factories
from tests.conftest import TokenFactory

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@dataclass(frozen=True)
class Network:
    customer_id: str
    customer_name: str
    site_ids: list[str]
    site_names: list[str]


def network(client: TestClient, admin: dict[str, str], sites: int, tag: str = "") -> Network:
    """A customer with ``sites`` sites, each on its access link to one PoP (the first
    one down), with the last 24 hours measured (the current one included): site n sends
    n MB in, 2n MB out an hour; the first site's product has this month's availability
    assessed (missed)."""
    customer = factories.customer(client, admin)
    made = [factories.site(client, admin, customer["id"], f"Ort {tag}{n}") for n in range(sites)]
    site_ids, names = [s["id"] for s in made], [s["name"] for s in made]
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    with session_scope() as session:
        if session.get(NetworkPopRow, "pop-by-1") is None:
            session.add(NetworkPopRow(id="pop-by-1", name="PoP München", region="BY", status="up"))
        rows = []
        for n, site_id in enumerate(site_ids, start=1):
            product_id = f"{customer['id']}-p{n}"[:64]
            session.add(
                ProductRow(
                    id=product_id,
                    at_type="Product",
                    status="active",
                    owner_customer_id=customer["id"],
                    body={"id": product_id, "@type": "Product", "status": "active"},
                )
            )
            link_id = f"{customer['id']}-l{n}"[:64]
            session.add(
                NetworkLinkRow(
                    id=link_id,
                    customer_id=customer["id"],
                    site_id=site_id,
                    pop_id="pop-by-1",
                    product_id=product_id,
                    bandwidth_mbits=100,
                    status="down" if n == 1 else "up",
                )
            )
            rows += [
                {
                    "link_id": link_id,
                    "site_id": site_id,
                    "at": now - timedelta(hours=hour),
                    "interval_seconds": 3600,
                    "availability": 1.0,
                    "latency_ms": 12.0,
                    "loss_percent": 0.0,
                    "bytes_in": n * 1_000_000,
                    "bytes_out": 2 * n * 1_000_000,
                }
                for hour in range(24)
            ]
        session.flush()
        session.execute(insert(NetworkMeasurementRow), rows)
        session.add(
            QosAssessmentRow(
                product_id=f"{customer['id']}-p1"[:64],
                period=utcnow().strftime("%Y-%m"),
                metric="availability",
                measured=Decimal("99.8500"),
                target=Decimal("99.9000"),
                met=False,
                final=False,
            )
        )
    return Network(customer["id"], customer["name"], site_ids, names)


def user(username: str, role: str = "customer", customer_id: str | None = None) -> str:
    with session_scope() as session:
        create_user(session, username, PASSWORD, role, customer_id)
    return username


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    form = client.get("/ui/sign-in")
    return client.post(
        "/ui/sign-in",
        data={"username": username, "password": password, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )


def test_an_unsigned_request_to_a_page_goes_to_the_sign_in_page(client: TestClient) -> None:
    # when someone not signed in opens a page
    response = client.get("/ui/customers/anything/network", follow_redirects=False)
    # then it is sent to the sign-in page, which brings it back afterwards
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/sign-in?next=/ui/customers/anything/network"
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert 'name="next" value="/ui/customers/anything/network"' in page.text
    assert 'for="username"' in page.text and 'for="password"' in page.text


def test_a_customer_user_signs_in_and_sees_its_network_and_a_site(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer with three sites, an open ticket about the second, its portal user
    bmw = network(client, admin, 3)
    ticket = client.post(
        "/tmf-api/troubleTicket/v4/troubleTicket",
        json={
            "name": "Slow access at the second site",
            "description": "Throughput far below the booked bandwidth",
            "severity": "minor",
            "ticketType": "network",
            "relatedParty": [
                {"id": bmw.customer_id, "@referredType": "Customer", "role": "customer"}
            ],
            "relatedEntity": [
                {
                    "id": f"{bmw.customer_id}-p2",
                    "@referredType": "Product",
                    "role": "affectedProduct",
                }
            ],
        },
        headers=admin,
    )
    assert ticket.status_code == 201, ticket.text
    user("katrin.weber", customer_id=bmw.customer_id)
    # when the user signs in
    signed = sign_in(client, "katrin.weber")
    # then it has a session cookie a script cannot read and no other site sends along
    assert signed.status_code == 303, signed.text
    cookie = signed.headers["set-cookie"]
    assert "etomcrm_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # the public base URL is http here
    # and lands on its network page with every site and its status
    home = client.get(signed.headers["location"])
    assert home.status_code == 200
    assert home.url.path == f"/ui/customers/{bmw.customer_id}/network"
    assert home.headers["content-security-policy"].startswith("default-src 'self'")
    for site_id, name in zip(bmw.site_ids, bmw.site_names, strict=True):
        assert name in home.text
        assert f"/ui/customers/{bmw.customer_id}/sites/{site_id}" in home.text
    assert "<svg" in home.text and 'class="node site down"' in home.text
    assert "3 sites" in home.text
    # and the open problem, on the map and beside it, with the site it is about
    assert home.text.count('class="problem-ring"') == 1
    problems = home.text.split('class="problems"')[1].split("</section>")[0]
    assert "Slow access at the second site" in problems
    assert f'/sites/{bmw.site_ids[1]}">{bmw.site_names[1]}</a>' in problems
    # and the map refreshes by itself while the page is open
    assert f'hx-get="/ui/customers/{bmw.customer_id}/network/map"' in home.text
    fragment = client.get(f"/ui/customers/{bmw.customer_id}/network/map")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert bmw.site_names[2] in fragment.text
    # when it opens the first site's page
    site = client.get(f"/ui/customers/{bmw.customer_id}/sites/{bmw.site_ids[0]}")
    # then it sees the traffic by hour, day and month, and its availability against the SLA
    assert site.status_code == 200
    for granularity in ("hour", "day", "month"):
        assert f'id="traffic-{granularity}"' in site.text
    hourly = site.text.split('id="traffic-hour"')[1].split("</section>")[0]
    assert "In: 24.0 MB · Out: 48.0 MB" in hourly  # 24 hours of 1 MB in, 2 MB out
    assert "99.85 %" in site.text and "99.90 %" in site.text and "missed" in site.text


def test_another_customers_user_gets_404_even_typing_the_urls(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given BMW's network and a user of another customer
    bmw = network(client, admin, 2, "B")
    other = network(client, admin, 1, "O")
    user("someone.else", customer_id=other.customer_id)
    assert sign_in(client, "someone.else").status_code == 303
    # when that user types BMW's addresses
    for path in (
        f"/ui/customers/{bmw.customer_id}/network",
        f"/ui/customers/{bmw.customer_id}/network/map",
        f"/ui/customers/{bmw.customer_id}/sites/{bmw.site_ids[0]}",
        # BMW's site under its own customer: no more than under BMW's
        f"/ui/customers/{other.customer_id}/sites/{bmw.site_ids[0]}",
    ):
        response = client.get(path)
        # then each is a plain 404 page that tells nothing of BMW
        assert response.status_code == 404, path
        assert bmw.site_names[0] not in response.text
        assert "Not found" in response.text
    # while its own pages work
    assert client.get(f"/ui/customers/{other.customer_id}/network").status_code == 200


def test_staff_see_a_customers_network_as_the_api_lets_them(
    client: TestClient, admin: dict[str, str]
) -> None:
    bmw = network(client, admin, 2)
    user("olaf.berger", role="support")
    response = sign_in(client, "olaf.berger")
    assert response.status_code == 303
    home = client.get("/ui/")
    assert home.status_code == 200 and "olaf.berger" in home.text
    page = client.get(f"/ui/customers/{bmw.customer_id}/network")
    assert page.status_code == 200 and bmw.site_names[1] in page.text


def test_a_post_without_the_sessions_csrf_token_is_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    bmw = network(client, admin, 1)
    user("katrin.weber", customer_id=bmw.customer_id)
    # a sign-in form posted from elsewhere (no token of this browser) signs no one in
    forged = client.post(
        "/ui/sign-in",
        data={"username": "katrin.weber", "password": PASSWORD, "csrf_token": "0" * 64},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert "etomcrm_session" not in forged.headers.get("set-cookie", "")
    assert sign_in(client, "katrin.weber").status_code == 303
    # signed in, a sign-out or a language switch without the token does nothing
    assert client.post("/ui/sign-out", data={}, follow_redirects=False).status_code == 403
    switched = client.post(
        "/ui/language", data={"language": "de", "csrf_token": "x"}, follow_redirects=False
    )
    assert switched.status_code == 403
    assert client.get(f"/ui/customers/{bmw.customer_id}/network").status_code == 200
    # and with the token of the page, sign-out ends the session
    page = client.get(f"/ui/customers/{bmw.customer_id}/network")
    out = client.post(
        "/ui/sign-out", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert out.status_code == 303 and out.headers["location"] == "/ui/sign-in"
    after = client.get(f"/ui/customers/{bmw.customer_id}/network", follow_redirects=False)
    assert after.status_code == 303


def test_a_wrong_password_shows_the_form_again_with_the_username_kept(
    client: TestClient,
) -> None:
    user("olaf.berger", role="order_manager")
    response = sign_in(client, "olaf.berger", "not the password")
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    assert 'value="olaf.berger"' in response.text
    assert "etomcrm_session" not in response.headers.get("set-cookie", "")


def test_sign_in_is_throttled_as_the_api_is(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETOMCRM_LOGIN_ATTEMPTS_PER_USER_PER_MINUTE", "2")
    get_settings.cache_clear()
    user("olaf.berger", role="order_manager")
    assert sign_in(client, "olaf.berger", "wrong one").status_code == 401
    assert sign_in(client, "olaf.berger", "wrong two").status_code == 401
    third = sign_in(client, "olaf.berger")
    assert third.status_code == 429
    assert int(third.headers["retry-after"]) >= 1
    assert "Too many sign-in attempts" in third.text


def test_a_sign_in_after_a_lock_shows_the_lock_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a user whose password someone guessed at until the account locked, and the
    # lock since lifted
    monkeypatch.setattr(get_settings(), "login_lockout_failures", 2)
    user("olaf.berger", role="order_manager")
    assert sign_in(client, "olaf.berger", "wrong one").status_code == 401
    assert sign_in(client, "olaf.berger", "wrong two").status_code == 429
    with session_scope() as session:
        unlock_user(session, "olaf.berger")
    # when the user signs in
    assert sign_in(client, "olaf.berger").status_code == 303
    home = client.get("/ui/")
    # then the first page tells of the lock, and the next one no longer does
    assert 'id="lock-notice"' in home.text and "wrong passwords" in home.text
    assert 'id="lock-notice"' not in client.get("/ui/").text


def test_the_session_cookie_is_secure_behind_tls(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETOMCRM_PUBLIC_BASE_URL", "https://crm.example.net")
    get_settings.cache_clear()
    # A browser keeps a Secure cookie for https only: so does the test client.
    client.base_url = client.base_url.copy_with(scheme="https")
    user("olaf.berger", role="order_manager")
    signed = sign_in(client, "olaf.berger")
    assert signed.status_code == 303
    assert "Secure" in signed.headers["set-cookie"]


def test_the_language_follows_the_browser_then_the_users_choice(
    client: TestClient, admin: dict[str, str]
) -> None:
    bmw = network(client, admin, 1)
    user("katrin.weber", customer_id=bmw.customer_id)
    # a browser asking for German gets the German sign-in page
    german = client.get("/ui/sign-in", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert german.headers["content-language"] == "de"
    assert "Benutzername" in german.text and '<html lang="de">' in german.text
    # any other gets English
    french = client.get("/ui/sign-in", headers={"Accept-Language": "fr-FR"})
    assert french.headers["content-language"] == "en" and "Username" in french.text
    # when the signed-in user switches to German, every page is German from then on
    assert sign_in(client, "katrin.weber").status_code == 303
    path = f"/ui/customers/{bmw.customer_id}/network"
    page = client.get(path, headers={"Accept-Language": "en"})
    switched = client.post(
        "/ui/language",
        data={"language": "de", "next": path, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert switched.status_code == 303 and switched.headers["location"] == path
    after = client.get(path, headers={"Accept-Language": "en"})
    assert after.headers["content-language"] == "de"
    assert "Netz von" in after.text and "Offene Störungen" in after.text
    # an unknown language or a page elsewhere is refused, not followed
    assert (
        client.post(
            "/ui/language",
            data={"language": "xx", "csrf_token": csrf_of(after.text)},
            follow_redirects=False,
        ).status_code
        == 404
    )
    away = client.post(
        "/ui/language",
        data={"language": "en", "next": "//evil.example/ui/", "csrf_token": csrf_of(after.text)},
        follow_redirects=False,
    )
    assert away.headers["location"] == "/ui/"


def test_the_network_page_needs_as_many_queries_for_thirty_sites_as_for_three(
    client: TestClient, auth: TokenFactory, count_queries: Callable[[], Any]
) -> None:
    admin = auth("admin")
    small = network(client, admin, 3, "S")
    large = network(client, admin, 30, "L")
    user("staff.analyst", role="analyst")
    assert sign_in(client, "staff.analyst").status_code == 303

    def queries(customer_id: str) -> int:
        with count_queries() as counter:
            page = client.get(f"/ui/customers/{customer_id}/network")
        assert page.status_code == 200
        return int(counter.count)

    queries(small.customer_id)  # the session's user is looked up once, then cached
    # the customer (twice: its name, and the view's own scope check), the links, PoPs
    # and sites, open problems, the SLA standing, the site documents and the tickets'
    # products: nine, for three sites or thirty
    assert queries(small.customer_id) == queries(large.customer_id) <= 9


def test_the_assets_ship_in_the_package(client: TestClient) -> None:
    htmx = client.get("/ui/static/htmx.min.js")
    assert htmx.status_code == 200 and htmx.headers["content-type"].startswith("text/javascript")
    assert "htmx" in htmx.text
    assert client.get("/ui/static/style.css").status_code == 200
    assert client.get("/ui/static/htmx.LICENSE").status_code == 404
    assert client.get("/ui/static/..%2Fviews.py").status_code == 404


def test_the_shipped_german_catalog_is_compiled_from_its_po_file() -> None:
    # given the .po file translators edit and the .mo file the pages load
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    from etomcrm.pages.i18n import LOCALES_DIR

    folder = LOCALES_DIR / "de" / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as po, (folder / "messages.mo").open("rb") as mo:
        source, compiled = read_po(po), read_mo(mo)

    # then every translation is in both, the same (pybabel compile after each edit)
    def pairs(catalog: Any) -> dict[Any, Any]:
        # A plural's id and translations are sequences (lists in one reader, tuples in
        # the other).
        def same(value: Any) -> Any:
            return value if isinstance(value, str) else tuple(value)

        return {same(m.id): same(m.string) for m in catalog if m.id}

    assert pairs(source) == pairs(compiled)
    assert all(m.string for m in source if m.id)


def test_staff_search_by_name_or_id_as_their_role_may_read(
    client: TestClient, admin: dict[str, str], count_queries: Callable[[], Any]
) -> None:
    # given BMW with two sites, another customer, and staff of two roles
    bmw = network(client, admin, 2, "S")
    factories.customer(client, admin, "Audi AG")
    user("olaf.berger", role="order_manager")
    user("mia.wagner", role="marketing")
    assert sign_in(client, "olaf.berger").status_code == 303
    client.get("/ui/")  # the session's user is looked up once, then cached
    # when Olaf searches a name
    with count_queries() as counter:
        by_name = client.get("/ui/search", params={"q": "bmw"})
    # then he finds the customer (linked to its 360 and its network), nothing of the other
    assert by_name.status_code == 200
    assert f'href="/ui/customers/{bmw.customer_id}">BMW AG</a>' in by_name.text
    assert f'href="/ui/customers/{bmw.customer_id}/network"' in by_name.text
    assert "Audi" not in by_name.text
    assert counter.count <= 7  # one query per kind searched
    # and a site by its id, linked to its page
    by_id = client.get("/ui/search", params={"q": bmw.site_ids[1]})
    assert f"/ui/customers/{bmw.customer_id}/sites/{bmw.site_ids[1]}" in by_id.text
    # a wildcard is an ordinary character, not "everything"
    assert "BMW AG" not in client.get("/ui/search", params={"q": "%%"}).text
    # too short a search is refused with the reason beside the field, the text kept
    short = client.get("/ui/search", params={"q": "x"})
    assert short.status_code == 400
    assert 'aria-invalid="true"' in short.text and 'value="x"' in short.text
    # a role that may not read tickets is told they were not searched
    page = client.get("/ui/")
    client.post("/ui/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert sign_in(client, "mia.wagner").status_code == 303
    marketing = client.get("/ui/search", params={"q": "bmw"})
    assert marketing.status_code == 200
    assert "Not searched (your role may not read them): Tickets" in marketing.text


def test_bad_addresses_and_bodies_get_a_4xx_page_not_json(client: TestClient) -> None:
    missing = client.get("/ui/no/such/page")
    assert missing.status_code == 404 and "Not found" in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    form = client.get("/ui/sign-in")
    crowded = client.post(
        "/ui/sign-in",
        content="&".join(f"f{n}=x" for n in range(50)) + f"&csrf_token={csrf_of(form.text)}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert crowded.status_code == 400 and crowded.headers["content-type"].startswith("text/html")
    as_json = client.post("/ui/sign-in", json={"username": "a", "password": "b"})
    assert as_json.status_code == 403  # no form token: refused before anything is read


def test_a_refreshing_map_without_a_session_sends_the_whole_page_to_sign_in(
    client: TestClient,
) -> None:
    # htmx swaps a fragment; a redirect would put the sign-in page inside the map
    answer = client.get(
        "/ui/customers/anything/network/map",
        headers={"HX-Request": "true"},
        follow_redirects=False,
    )
    assert answer.status_code == 204
    assert answer.headers["hx-redirect"] == "/ui/sign-in"
