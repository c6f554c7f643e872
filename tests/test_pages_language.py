"""The language on the user's account (issue 11: "the language from the user's setting
or the browser"): the switch keeps it on the account when signed in, and after sign-in
it comes first, before the language cookie and the browser's Accept-Language."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.db import session_scope
from etomcrm.pages import i18n
from etomcrm.security.models import UserAccount
from tests.test_pages_portal import csrf_of, network, sign_in, user


def _language_of(username: str) -> str | None:
    with session_scope() as session:
        return session.scalar(select(UserAccount.language).where(UserAccount.username == username))


def test_the_language_chosen_signed_in_is_kept_on_the_account_and_comes_first(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given Katrin, who never chose a language, signed in on an English browser
    bmw = network(client, admin, 1)
    user("katrin.weber", customer_id=bmw.customer_id)
    assert _language_of("katrin.weber") is None
    assert sign_in(client, "katrin.weber").status_code == 303
    path = f"/ui/customers/{bmw.customer_id}/network"
    english = client.get(path, headers={"Accept-Language": "en"})
    assert english.headers["content-language"] == "en"
    # when she switches to German
    switched = client.post(
        "/ui/language",
        data={"language": "de", "next": path, "csrf_token": csrf_of(english.text)},
        follow_redirects=False,
    )
    # then the choice is kept on her account, and the page is German
    assert switched.status_code == 303
    assert _language_of("katrin.weber") == "de"
    assert client.get(path, headers={"Accept-Language": "en"}).headers["content-language"] == "de"
    # when she signs in on another browser (no cookie) that asks for English
    client.cookies.clear()
    signed = sign_in(client, "katrin.weber")
    # then the pages are German from the first one on, and the cookie follows her choice
    assert signed.status_code == 303
    assert any(
        c.startswith(f"{i18n.LANGUAGE_COOKIE}=de") for c in signed.headers.get_list("set-cookie")
    )
    client.cookies.set(i18n.LANGUAGE_COOKIE, "en")  # a cookie the browser kept from before
    page = client.get(path, headers={"Accept-Language": "en"})
    assert page.headers["content-language"] == "de" and "Netz von" in page.text
    # and switching back to English, signed in, changes the account again
    back = client.post(
        "/ui/language",
        data={"language": "en", "next": path, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert back.status_code == 303 and _language_of("katrin.weber") == "en"
    assert client.get(path, headers={"Accept-Language": "de"}).headers["content-language"] == "en"


def test_without_a_setting_the_cookie_then_the_browser_decide(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a user who never chose a language
    bmw = network(client, admin, 1)
    user("katrin.weber", customer_id=bmw.customer_id)
    # when nobody is signed in and the switch is used on the sign-in page
    form = client.get("/ui/sign-in", headers={"Accept-Language": "en"})
    switched = client.post(
        "/ui/language",
        data={"language": "de", "next": "/ui/sign-in", "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    # then only the cookie holds it (there is no account to keep it on)
    assert switched.status_code == 303
    german = client.get("/ui/sign-in", headers={"Accept-Language": "en"})
    assert german.headers["content-language"] == "de"
    assert _language_of("katrin.weber") is None
    # and after sign-in the cookie still decides, as she has no setting
    signed = sign_in(client, "katrin.weber")
    assert signed.status_code == 303
    assert not any(
        c.startswith(f"{i18n.LANGUAGE_COOKIE}=") for c in signed.headers.get_list("set-cookie")
    )
    path = f"/ui/customers/{bmw.customer_id}/network"
    assert client.get(path, headers={"Accept-Language": "en"}).headers["content-language"] == "de"
    # and without the cookie the browser's Accept-Language
    client.cookies.delete(i18n.LANGUAGE_COOKIE)
    assert client.get(path, headers={"Accept-Language": "de"}).headers["content-language"] == "de"
    assert client.get(path, headers={"Accept-Language": "fr"}).headers["content-language"] == "en"


def test_the_choice_of_language_puts_the_users_setting_first() -> None:
    assert i18n.choose("en", "en", "de") == "de"
    assert i18n.choose("en", "de", None) == "en"
    assert i18n.choose(None, "de-DE,de;q=0.9", None) == "de"
    # a setting the pages do not speak is passed over
    assert i18n.choose("de", "en", "fr") == "de"
