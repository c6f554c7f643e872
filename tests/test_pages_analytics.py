"""The analyst workspace's pages (seed 5.3, "Where people see it"): the same figures as
the API on hand-made data, drill-down, CSV export, the import of history with its
refusals by line, who may open them, labels, German, and a bounded number of queries."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import delete, func, insert, select

from etomcrm.analytics.models import (
    AnContactFact,
    AnCustomer,
    AnHistoryCustomer,
    AnRevenueFact,
)
from etomcrm.db import session_scope, utcnow
from etomcrm.pages.analytics_nav import DASHBOARDS
from tests import analytics_helpers as given
from tests.conftest import TokenFactory
from tests.test_analytics_contacts import contacts  # noqa: F401 (the hand-made contacts)
from tests.test_analytics_profitability import three_months  # noqa: F401 (and months)
from tests.test_pages_labels import Controls
from tests.test_pages_portal import csrf_of, sign_in, user

Counter = Callable[[], Any]
CONTACTS_API = "/etomcrm/v1/analytics/contactStatistics"
PROFIT_API = "/etomcrm/v1/analytics/customerProfitability"
# What the pages show for a figure without data (an en dash).
NONE = "\u2013"
JANUARY = {"from": "2026-01-01", "to": "2026-01-31"}
GOOD_HISTORY = (
    "customer_id,tenure_months,contract_type,payment_method,monthly_charges,"
    "total_charges,churned\n"
    "H-1,12,one-year,direct-debit,50.00,600.00,no\n"
    "H-2,3,month-to-month,other,20.00,60.00,yes\n"
)
BAD_HISTORY = (
    "customer_id,tenure_months,contract_type,payment_method,monthly_charges,"
    "total_charges,churned\n"
    "H-1,12,one-year,direct-debit,50.00,600.00,no\n"
    "H-2,twelve,one-year,direct-debit,50.00,600.00,no\n"
    "H-3,12,one-year,cheque,50.00,600.00,no\n"
    "H-1,1,one-year,direct-debit,50.00,600.00,maybe\n"
)


def _as(client: TestClient, role: str, customer_id: str | None = None) -> None:
    """Signed in afresh as a person of ``role``."""
    client.cookies.clear()
    name = f"page.{role}"
    with session_scope() as session:
        from etomcrm.security.models import UserAccount

        known = session.scalar(select(UserAccount).where(UserAccount.username == name))
    if known is None:
        user(name, role=role, customer_id=customer_id)
    assert sign_in(client, name).status_code == 303


def _text(cell: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split())


def _rows(page: str, table: str) -> dict[str, list[str]]:
    """A table's group rows and its total: key → the text of each figure cell."""
    body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    rows = {}
    for key, cells in re.findall(
        r'<tr class="(?:group|total)" data-key="([^"]*)">(.*?)</tr>', body, re.S
    ):
        rows[html.unescape(key)] = [
            _text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)
        ]
    return rows


def _figure(text: str) -> str:
    return text.replace(",", "")


def _share(value: str | None) -> str:
    return NONE if value is None else f"{Decimal(value) * 100:.1f} %"


def _minutes(value: str | None) -> str:
    return NONE if value is None else value


def _contact_cells(row: dict[str, Any]) -> list[str]:
    """An API row as the page writes its cells."""
    return [
        str(row["contacts"]),
        str(row["inbound"]),
        str(row["outbound"]),
        _minutes(row["meanResponseMinutes"]),
        _share(row["responseWithinTarget"]),
        _minutes(row["meanHandlingMinutes"]),
        _share(row["handlingWithinTarget"]),
        f"{_share(row['firstContactResolution'])} "
        f"({row['firstContactResolved']}/{row['inboundEnded']})",
    ]


PROFIT_FIELDS = (
    "revenue",
    "slaCredits",
    "sitesInstalled",
    "installationCost",
    "routerCost",
    "tickets",
    "repairHours",
    "ticketCost",
    "dunningCases",
    "dunningCost",
    "costToServe",
    "profit",
)


def _page_figures(rows: dict[str, list[str]]) -> dict[str, list[str]]:
    return {key: [_figure(c) for c in cells] for key, cells in rows.items()}


def test_the_workspace_is_the_analysts_marketings_and_the_administrators(
    client: TestClient, db_url: str
) -> None:
    # given nobody signed in
    # when the workspace is opened, then the sign-in page comes first
    first = client.get("/ui/analytics", follow_redirects=False)
    assert first.status_code == 303 and "/ui/sign-in" in first.headers["location"]
    # when an analyst, a marketing person and an administrator open each page
    for role in ("analyst", "marketing", "admin"):
        _as(client, role)
        home = client.get("/ui/")
        # then the staff bar links the workspace, and every page of it answers
        assert 'href="/ui/analytics"' in home.text, role
        for path in (
            "/ui/analytics",
            "/ui/analytics/contacts",
            "/ui/analytics/profitability",
            "/ui/analytics/history",
            "/ui/analytics/contacts.csv",
            "/ui/analytics/profitability.csv",
        ):
            assert client.get(path).status_code == 200, (role, path)
    # and the index links every dashboard of the one list
    index = client.get("/ui/analytics").text
    for dashboard in DASHBOARDS:
        assert f'href="{dashboard.path}"' in index
    # when support staff or a customer's user try them
    for role in ("support", "sales"):
        _as(client, role)
        # then the bar has no link and each page says no (403), the CSV too
        assert 'href="/ui/analytics"' not in client.get("/ui/").text
        for path in (
            "/ui/analytics",
            "/ui/analytics/contacts",
            "/ui/analytics/profitability.csv",
            "/ui/analytics/history",
        ):
            answer = client.get(path)
            assert answer.status_code == 403, (role, path)
    with session_scope() as session:
        customer_id = given.customer(session, "Kunde")
    _as(client, "customer", customer_id)
    assert client.get("/ui/analytics/contacts").status_code == 403


def test_the_contacts_page_shows_the_apis_figures_per_channel_reason_and_customer(
    contacts: dict[str, str],  # noqa: F811
    client: TestClient,
    auth: TokenFactory,
) -> None:
    # given January's hand-made contacts (tests/test_analytics_contacts.py) and an analyst
    api = auth("analyst")
    _as(client, "analyst")
    for by in ("channel", "reason", "customer", "total"):
        # when the page and the API are asked for the same report
        page = client.get("/ui/analytics/contacts", params={"by": by, **JANUARY})
        report = client.get(CONTACTS_API, params={"groupBy": by, **JANUARY}, headers=api).json()
        # then each group's and the total's figures are the API's, in its order
        assert page.status_code == 200, page.text
        shown = _page_figures(_rows(page.text, "contacts"))
        expected = {r["key"]: _contact_cells(r) for r in [*report["groups"], report["total"]]}
        assert shown == expected, by
        if by != "total":  # there the one group is the total
            assert list(shown)[:-1] == [r["key"] for r in report["groups"]]
    # and the targets come from the settings, as the API's
    assert "within 240 minutes, handled within 30 minutes" in page.text
    # and per customer the names are shown, linked to the customers
    by_customer = client.get("/ui/analytics/contacts", params={"by": "customer"}).text
    assert f'href="/ui/customers/{contacts["a"]}"' in by_customer
    assert ">A</a>" in by_customer and ">B</a>" in by_customer
    # and the volumes are drawn as bars, inbound and outbound per channel
    by_channel = client.get("/ui/analytics/contacts", params={"by": "channel", **JANUARY}).text
    assert by_channel.count('<rect class="s0"') == 3
    assert "<title>email, outbound: 1</title>" in by_channel


def test_a_figure_drills_down_to_the_contacts_and_customers_behind_it(
    contacts: dict[str, str],  # noqa: F811
    client: TestClient,
) -> None:
    # given January's contacts, and an analyst on the page per channel
    _as(client, "marketing")
    page = client.get("/ui/analytics/contacts", params={"by": "channel", **JANUARY}).text
    # when it follows the phone channel's link
    link = html.unescape(re.search(r'<a href="([^"]*drill=phone[^"]*)"', page).group(1))  # type: ignore[union-attr]
    drill = client.get(link).text
    # then the two phone contacts of customer A are listed, newest first, linked to A
    listed = drill.split('id="drill-contacts"', 1)[1]
    assert listed.count('<tr class="contact">') == 2
    assert listed.count(f'href="/ui/customers/{contacts["a"]}"') == 2
    assert listed.index("2026-01-08 10:00") < listed.index("2026-01-05 09:00")
    # and the total drills down to all five January contacts, customer B's among them
    total = re.search(r'<tr class="total"[^>]*><th scope="row"><a href="([^"]*)"', page)
    assert total is not None
    everything = client.get(html.unescape(total.group(1))).text.split('id="drill-contacts"')[1]
    assert everything.count('<tr class="contact">') == 5
    assert f'href="/ui/customers/{contacts["b"]}"' in everything


def test_the_csv_export_is_the_apis_csv(
    contacts: dict[str, str],  # noqa: F811
    three_months: str,  # noqa: F811
    client: TestClient,
    auth: TokenFactory,
) -> None:
    # given contacts and three months of profitability, an analyst and the API
    api = auth("analyst")
    _as(client, "analyst")
    page = client.get("/ui/analytics/contacts", params={"by": "reason", **JANUARY}).text
    link = html.unescape(re.search(r'href="(/ui/analytics/contacts\.csv[^"]*)"', page).group(1))  # type: ignore[union-attr]
    # when the page's CSV link and the API's CSV are downloaded
    from_page = client.get(link)
    from_api = client.get(
        CONTACTS_API, params={"groupBy": "reason", **JANUARY, "format": "csv"}, headers=api
    )
    # then they are the same file, named the same
    assert from_page.status_code == 200
    assert from_page.headers["content-type"].startswith("text/csv")
    assert from_page.text == from_api.text
    assert from_page.headers["content-disposition"] == from_api.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(from_page.text)))
    assert rows[-1]["key"] == "(all)" and rows[-1]["contacts"] == "5"
    # and the same for profitability per month of the dealer
    params = {"by": "month", "customer": three_months, "from": "2026-01", "to": "2026-03"}
    profit_page = client.get("/ui/analytics/profitability.csv", params=params)
    profit_api = client.get(
        PROFIT_API,
        params={
            "groupBy": "month",
            "customerId": three_months,
            "from": "2026-01",
            "to": "2026-03",
            "format": "csv",
        },
        headers=api,
    )
    assert profit_page.text == profit_api.text
    keys = [r["key"] for r in csv.DictReader(io.StringIO(profit_page.text))]
    assert sorted(keys) == ["(all)", "2026-01", "2026-02", "2026-03"]


def test_the_profitability_page_shows_the_apis_figures_and_drills_down_to_a_customers_months(
    three_months: str,  # noqa: F811
    client: TestClient,
    auth: TokenFactory,
) -> None:
    # given the dealer's three months and another customer, and an analyst
    api = auth("analyst")
    _as(client, "analyst")
    for by in ("customer", "segment", "month", "customerMonth"):
        # when the page and the API report the same grouping
        page = client.get("/ui/analytics/profitability", params={"by": by})
        report = client.get(PROFIT_API, params={"groupBy": by}, headers=api).json()
        # then every figure of the breakdown is the API's
        assert page.status_code == 200, page.text
        shown = _page_figures(_rows(page.text, "profitability"))
        expected = {
            r["key"]: [str(r[f]) for f in PROFIT_FIELDS]
            for r in [*report["groups"], report["total"]]
        }
        assert shown == expected, by
    # and the dealer's line (by hand: 615.00 + 100.00 + 112.50 revenue; 20.00 credit, 700.00
    # installation, 360.00 routers, 2 * 25.00 + 4.5 h * 60.00 tickets, 12.00 dunning) links to
    # its months
    text = client.get("/ui/analytics/profitability", params={"by": "customer"}).text
    dealer = _rows(text, "profitability")[three_months]
    assert (dealer[0], dealer[-2], dealer[-1]) == ("827.50", "1,412.00", "-584.50")
    assert "Autohaus Schmidt" in text and f'href="/ui/customers/{three_months}"' in text
    months_link = re.search(r'<a href="([^"]*by=month[^"]*customer=[^"]*)">Autohaus Schmidt', text)
    assert months_link is not None
    months = client.get(html.unescape(months_link.group(1))).text
    assert list(_rows(months, "profitability")) == [
        "2026-01",
        "2026-02",
        "2026-03",
        "(all)",
    ]  # -445.00, -215.00, 75.50
    assert "Customer profitability: Autohaus Schmidt" in months
    # and the chart draws revenue against cost to serve per customer
    assert "<title>Autohaus Schmidt, revenue: 827.50</title>" in text


def test_a_bad_filter_is_marked_on_the_form_and_the_csv_refuses_it(
    client: TestClient, db_url: str
) -> None:
    # given an analyst
    _as(client, "analyst")
    # when the period is not understood
    day = client.get("/ui/analytics/contacts", params={"from": "yesterday", "by": "mood"})
    month = client.get("/ui/analytics/profitability", params={"from": "2026-03", "to": "2026-01"})
    download = client.get("/ui/analytics/contacts.csv", params={"to": "31.1.2026"})
    # then the page says so on the marked fields (400), and the download is refused
    assert day.status_code == 400 and 'id="from" name="from"' in day.text
    assert 'aria-describedby="from-error"' in day.text and 'aria-describedby="by-error"' in day.text
    assert month.status_code == 400 and 'aria-describedby="to-error"' in month.text
    assert download.status_code == 400 and "to" in download.text


def _history_rows() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(AnHistoryCustomer)) or 0)


def _upload(
    client: TestClient, text: str, name: str = "history.csv", token: str | None = None
) -> Any:
    form = client.get("/ui/analytics/history").text
    return client.post(
        "/ui/analytics/history",
        data={"csrf_token": token if token is not None else csrf_of(form)},
        files={"file": (name, text.encode("utf-8"), "text/csv")},
        follow_redirects=False,
    )


def test_the_import_names_each_bad_row_by_line_and_imports_nothing(
    client: TestClient, db_url: str
) -> None:
    # given an analyst on the import page, which documents the format
    _as(client, "analyst")
    page = client.get("/ui/analytics/history").text
    for column in ("customer_id", "tenure_months", "contract_type", "observed_on"):
        assert f"<code>{column}</code>" in page
    assert "month-to-month, one-year, two-year" in page
    # when a file with three bad rows (and a good one) is uploaded
    refused = _upload(client, BAD_HISTORY, "bad.csv")
    # then the page names each bad row by its line number, and nothing was imported
    assert refused.status_code == 400
    lines = re.findall(r'<td class="amount line">(\d+)</td>\s*<td>([^<]*)</td>', refused.text)
    assert [int(n) for n, _ in lines] == [3, 4, 5]
    assert "tenure_months" in lines[0][1] and "payment_method" in lines[1][1]
    assert "churned" in lines[2][1] or "line 2" in lines[2][1]
    assert "Nothing was imported from bad.csv" in refused.text
    assert _history_rows() == 0
    # when the corrected file is uploaded
    done = _upload(client, GOOD_HISTORY, "good.csv")
    # then it is imported whole, and the page says so
    assert done.status_code == 303, done.text
    shown = client.get(done.headers["location"]).text
    assert "Imported 2 customers from good.csv; 0 of them are live customers." in shown
    assert _history_rows() == 2
    # and an empty upload or a form without its token imports nothing
    assert _upload(client, "", "empty.csv").status_code == 400
    assert _upload(client, GOOD_HISTORY, "again.csv", token="forged").status_code == 403
    assert _history_rows() == 2


def test_marketing_sees_the_format_but_may_not_import(client: TestClient, db_url: str) -> None:
    # given a marketing person
    _as(client, "marketing")
    # when it opens the import page and posts a file anyway
    page = client.get("/ui/analytics/history")
    posted = client.post(
        "/ui/analytics/history",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("h.csv", GOOD_HISTORY.encode(), "text/csv")},
    )
    # then the page shows the format without a form, and the post is refused
    assert page.status_code == 200 and 'type="file"' not in page.text
    assert posted.status_code == 403 and _history_rows() == 0


def test_the_index_shows_this_months_figures_as_the_api_reports_them(
    client: TestClient, auth: TokenFactory, db_url: str
) -> None:
    # given contacts this month and one last month, and a bill this month
    today = utcnow()
    first = today.date().replace(day=1)
    with session_scope() as session:
        a = given.customer(session, "Now AG")
        now = today.strftime("%Y-%m-%dT%H:%M")
        given.contact(
            session, a, channel="phone", reason="Question", created=now, start=now, end=now
        )
        earlier = (datetime.combine(first, datetime.min.time()) - timedelta(days=3)).isoformat()
        given.contact(session, a, channel="phone", reason="Old", created=earlier)
        given.bill(session, a, first, [("recurring", "123.40", "p")])
        from etomcrm.analytics import store

        store.rebuild(session)
    _as(client, "analyst")
    # when the index is opened
    page = client.get("/ui/analytics").text
    # then its figures are this month's as the API reports them
    month = f"{first:%Y-%m}"
    month_contacts = client.get(
        CONTACTS_API,
        params={"groupBy": "total", "from": first.isoformat(), "to": today.date().isoformat()},
        headers=auth("analyst"),
    ).json()["total"]
    profit = client.get(
        PROFIT_API, params={"groupBy": "month", "from": month, "to": month}, headers=auth("admin")
    ).json()["total"]
    assert f"This month ({month})" in page
    assert re.search(r'id="h-contacts">1 ', page) and month_contacts["contacts"] == 1
    assert f'id="h-revenue">{profit["revenue"]} EUR' in page and profit["revenue"] == "123.40"
    assert f'id="h-fcr">{_share(month_contacts["firstContactResolution"])}' in page


def test_the_pages_label_every_control_and_speak_german(client: TestClient, db_url: str) -> None:
    # given an administrator
    _as(client, "admin")
    for path in (
        "/ui/analytics",
        "/ui/analytics/contacts",
        "/ui/analytics/profitability",
        "/ui/analytics/history",
        "/ui/analytics/contacts?from=bad",
    ):
        # when each page is read, then each of its controls has a label
        controls = Controls()
        controls.feed(client.get(path).text)
        assert controls.unlabelled() == [], path
    # and in German the pages speak German
    client.cookies.set("etomcrm_lang", "de")
    german = client.get("/ui/analytics/contacts")
    assert "Kundenkontakte" in german.text and "Als CSV herunterladen" in german.text
    assert "Kundenrentabilität" in client.get("/ui/analytics/profitability").text
    assert "Import der Historie" in client.get("/ui/analytics/history").text
    assert "Dieser Monat" in client.get("/ui/analytics").text


def _a_large_store(customers: int, contacts_each: int, months: int) -> None:
    """A store written straight into its tables: ``customers`` customers with
    ``contacts_each`` contacts and a revenue line in each of ``months`` months."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [f"big-{n:05d}" for n in range(customers)]
    with session_scope() as session:
        session.execute(
            insert(AnCustomer),
            [{"customer_id": c, "name": f"Kunde {c}", "segment": "dealer"} for c in ids],
        )
        session.execute(
            insert(AnContactFact),
            [
                {
                    "interaction_id": f"{c}-{k}",
                    "customer_id": c,
                    "channel": ("phone", "email", "portal")[k % 3],
                    "reason": f"reason {k % 7}",
                    "direction": "inbound",
                    "status": "completed",
                    "received_at": start + timedelta(hours=k),
                    "day": (start + timedelta(hours=k)).date(),
                    "response_seconds": 60 * k,
                    "handling_seconds": 300,
                    "ended": True,
                    "first_contact_resolved": k % 2 == 0,
                }
                for c in ids
                for k in range(contacts_each)
            ],
        )
        session.execute(
            insert(AnRevenueFact),
            [
                {
                    "customer_id": c,
                    "product_id": "p",
                    "month": f"2026-{m + 1:02d}",
                    "rate_type": "recurring",
                    "amount": Decimal("10.00"),
                    "currency": "EUR",
                }
                for c in ids
                for m in range(months)
            ],
        )


def _queries(client: TestClient, count_queries: Counter, path: str) -> int:
    with count_queries() as counter:
        page = client.get(path)
    assert page.status_code == 200, (path, page.text[:500])
    return int(counter.count)


PAGES = (
    "/ui/analytics",
    "/ui/analytics/contacts?by=customer",
    "/ui/analytics/contacts?by=channel&drill=phone",
    "/ui/analytics/profitability?by=customer",
    "/ui/analytics/profitability?by=customerMonth",
    "/ui/analytics/history",
)


def test_each_page_needs_as_many_queries_for_a_large_store_as_for_a_small(
    client: TestClient, db_url: str, count_queries: Counter
) -> None:
    # given an analyst, and a store of 3 customers
    _as(client, "analyst")
    client.get("/ui/")  # the session's user is looked up once, then cached
    _a_large_store(3, 2, 2)
    few = {path: _queries(client, count_queries, path) for path in PAGES}
    # when the store grows to 300 customers with 10 contacts and 6 months each
    with session_scope() as session:
        session.execute(delete(AnContactFact))
        session.execute(delete(AnRevenueFact))
        session.execute(delete(AnCustomer))
    _a_large_store(300, 10, 6)
    many = {path: _queries(client, count_queries, path) for path in PAGES}
    # then every page takes as many queries as before, and few
    assert many == few
    assert max(many.values()) <= 8, many
    # and a table shows at most 200 groups, saying the CSV has them all
    page = client.get("/ui/analytics/contacts?by=customer").text
    assert page.count('<tr class="group"') == 200
    assert "the first 200 of 300 groups; the CSV has them all" in page
    assert len(client.get("/ui/analytics/contacts.csv?by=customer").text.splitlines()) == 302
