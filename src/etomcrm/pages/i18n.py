"""German and English: the Jinja2 environment per language, the catalogs (gettext .mo
files shipped in the package, compiled from the .po beside them) and the choice of
language: the signed-in user's own (kept on their account by the switch), else the
language cookie (the switch sets it, signed in or not), else the browser's
``Accept-Language``, else English."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path

from babel import Locale
from babel.core import negotiate_locale
from babel.numbers import NumberPattern, format_decimal, parse_pattern
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

from etomcrm.pages.analytics_nav import DASHBOARDS, may_analyse

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
LOCALES_DIR = HERE / "locale"
LANGUAGES = ("en", "de")
DEFAULT_LANGUAGE = "en"
LANGUAGE_COOKIE = "etomcrm_lang"


def _accepted(header: str) -> list[str]:
    """The languages of an ``Accept-Language`` header, most wanted first."""
    weighted: list[tuple[float, int, str]] = []
    for n, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and weight > 0:
            weighted.append((-weight, n, tag.strip().replace("_", "-")))
    return [tag for _, _, tag in sorted(weighted)]


def choose(cookie: str | None, accept_language: str | None, user: str | None = None) -> str:
    """The language to answer in: the user's setting, the cookie, the browser's."""
    if user in LANGUAGES:
        return str(user)
    if cookie in LANGUAGES:
        return str(cookie)
    preferred = _accepted(accept_language or "")
    # "de-DE" is German: compare the language part too.
    chosen = negotiate_locale(
        preferred + [tag.split("-")[0] for tag in preferred], list(LANGUAGES), sep="-"
    )
    return chosen or DEFAULT_LANGUAGE


def human_bytes(value: int, language: str) -> str:
    """1234567 → "1.2 MB" (or "1,2 MB"), decimal units as providers bill them."""
    amount = Decimal(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(amount) < 1000 or unit == "TB":
            pattern = "#,##0" if unit == "B" else "#,##0.0"
            return f"{format_decimal(amount, format=pattern, locale=language)} {unit}"
        amount /= 1000
    raise AssertionError("unreachable")


@cache
def _number_format(pattern: str, language: str) -> tuple[NumberPattern, Locale]:
    return parse_pattern(pattern), Locale.parse(language)


def number(value: object, language: str, pattern: str = "#,##0.00") -> str:
    """As babel's ``format_decimal``, with the pattern and locale parsed once: a
    dashboard's table formats thousands of figures, and parsing them each time took
    most of its rendering."""
    parsed, locale = _number_format(pattern, language)
    return str(parsed.apply(Decimal(str(value)), locale))


@cache
def environment(language: str) -> Environment:
    """One environment per language, so rendering needs no per-request state and the
    handlers' threads share nothing mutable."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "svg"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    translations = Translations.load(str(LOCALES_DIR), [language], domain="messages")
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    env.globals["language"] = language
    # The staff bar links the analyst workspace for the roles that may open it.
    env.globals["may_analyse"] = may_analyse
    env.globals["analytics_dashboards"] = DASHBOARDS
    env.globals["languages"] = {
        code: Locale.parse(code).get_display_name(code) for code in LANGUAGES
    }
    env.filters["bytes"] = lambda value: human_bytes(int(value), language)
    env.filters["number"] = lambda value, pattern="#,##0.00": number(value, language, pattern)
    return env
