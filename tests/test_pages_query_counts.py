"""Each page renders with a bounded number of database queries whatever the number of
rows (issue 11): the pages the other page tests did not yet hold to it (a site, a
ticket, the search, the network page and its map with many open tickets, the 360 with
many tickets), each read for one customer with few rows and one with many; and the
work lists' links lead to API lists that answer."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert

from etomcrm.db import session_scope, utcnow
from etomcrm.network.models import NetworkMeasurementRow
from etomcrm.pages.views import PROBLEM_LIMIT
from tests.conftest import TokenFactory
from tests.test_pages_portal import Network, network, sign_in, user
from tests.test_pages_tickets_bills import _ticket_for

Counter = Callable[[], Any]


def _queries(client: TestClient, count_queries: Counter, path: str) -> tuple[int, str]:
    with count_queries() as counter:
        page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    return int(counter.count), page.text


def _a_year_measured(customer: Network) -> None:
    """The customer's first site measured hourly for a year (the 24 hours the helper
    writes come on top): 8,760 more rows behind its charts."""
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    link_id = f"{customer.customer_id}-l1"[:64]
    rows = [
        {
            "link_id": link_id,
            "site_id": customer.site_ids[0],
            "at": now - timedelta(hours=hour),
            "interval_seconds": 3600,
            "availability": 1.0,
            "latency_ms": 11.0,
            "loss_percent": 0.0,
            "bytes_in": 5_000_000,
            "bytes_out": 7_000_000,
        }
        for hour in range(24, 24 + 365 * 24)
    ]
    with session_scope() as session:
        session.execute(insert(NetworkMeasurementRow), rows)


def test_a_site_and_a_ticket_need_as_many_queries_for_a_large_customer_as_for_a_small(
    client: TestClient, auth: TokenFactory, count_queries: Counter
) -> None:
    admin = auth("admin")
    # given a customer with 3 sites measured for a day and one ticket naming one site,
    small = network(client, admin, 3, "S")
    small_ticket = _ticket_for(client, admin, small.customer_id, small.site_ids[0])
    # and one with 30 sites, its first measured for a year, and 30 tickets
    large = network(client, admin, 30, "L")
    _a_year_measured(large)
    large_tickets = [_ticket_for(client, admin, large.customer_id, site) for site in large.site_ids]
    user("staff.support", role="support")
    assert sign_in(client, "staff.support").status_code == 303
    client.get("/ui/")  # the session's user is looked up once, then cached
    # when staff open a site page and a ticket page of each
    site_few, _ = _queries(
        client, count_queries, f"/ui/customers/{small.customer_id}/sites/{small.site_ids[0]}"
    )
    site_many, _ = _queries(
        client, count_queries, f"/ui/customers/{large.customer_id}/sites/{large.site_ids[0]}"
    )
    ticket_few, _ = _queries(
        client, count_queries, f"/ui/customers/{small.customer_id}/tickets/{small_ticket}"
    )
    ticket_many, text = _queries(
        client, count_queries, f"/ui/customers/{large.customer_id}/tickets/{large_tickets[-1]}"
    )
    # then each takes the same queries for both: the customer, the site, its links, the
    # traffic of the three charts (each with its scope check), the SLA standing; the
    # customer, the ticket, the site names and the links' products
    assert site_few == site_many <= 10
    assert ticket_few == ticket_many <= 5
    assert large.site_names[-1] in text


def test_the_search_needs_as_many_queries_for_thirty_matches_as_for_three(
    client: TestClient, admin: dict[str, str], count_queries: Counter
) -> None:
    # given 3 sites named "Ort S…" and 30 named "Ort L…", and a ticket at each
    small, large = network(client, admin, 3, "S"), network(client, admin, 30, "L")
    for customer in (small, large):
        for site in customer.site_ids:
            _ticket_for(client, admin, customer.customer_id, site)
    user("staff.admin", role="admin")
    assert sign_in(client, "staff.admin").status_code == 303
    client.get("/ui/")  # the session's user is looked up once, then cached
    # when staff search each name
    few, _ = _queries(client, count_queries, "/ui/search?q=Ort+S")
    many, text = _queries(client, count_queries, "/ui/search?q=Ort+L")
    # then both take one query per kind searched, and at most ten of a kind are listed
    assert few == many <= 6  # one query per kind searched
    assert text.count(f"/ui/customers/{large.customer_id}/sites/") == 10


def test_the_network_page_and_its_map_list_a_bounded_number_of_open_problems(
    client: TestClient, admin: dict[str, str], count_queries: Counter
) -> None:
    # given a customer with 3 sites and 3 open tickets, and one with 30 sites and 60
    small, large = network(client, admin, 3, "S"), network(client, admin, 30, "L")
    for site in small.site_ids:
        _ticket_for(client, admin, small.customer_id, site)
    for site in large.site_ids * 2:
        _ticket_for(client, admin, large.customer_id, site)
    user("staff.analyst", role="analyst")
    assert sign_in(client, "staff.analyst").status_code == 303
    client.get("/ui/")  # the session's user is looked up once, then cached
    counts: dict[str, int] = {}
    for name, customer in (("few", small), ("many", large)):
        for part in ("network", "network/map"):
            counts[f"{part} {name}"], text = _queries(
                client, count_queries, f"/ui/customers/{customer.customer_id}/{part}"
            )
    # then page and fragment take the same queries for both: the customer, its sites'
    # documents, the topology's links, PoPs and sites, the oldest open problems with
    # their count, the sites of all open problems, the SLA standing
    assert counts["network few"] == counts["network many"] <= 8
    assert counts["network/map few"] == counts["network/map many"] <= 8
    # and the map lists the oldest open problems with the count of all
    assert "Open problems (60)</h2>" in text
    assert f"The oldest {PROBLEM_LIMIT} of 60." in text
    problems = text[text.index('<section class="problems">') :]
    problems = problems[: problems.index("</section>")]
    assert problems.count("<li>") == PROBLEM_LIMIT
    # yet every site with an open problem is marked, listed or not
    assert text.count('<span class="tag problem">') == 30


def test_the_360_needs_as_many_queries_for_thirty_tickets_as_for_three(
    client: TestClient, admin: dict[str, str], count_queries: Counter
) -> None:
    # given a customer with 3 tickets, another with 30
    small, large = network(client, admin, 3, "S"), network(client, admin, 3, "L")
    for n in range(3):
        _ticket_for(client, admin, small.customer_id, small.site_ids[n])
    for n in range(30):
        _ticket_for(client, admin, large.customer_id, large.site_ids[n % 3])
    user("olaf.berger", role="admin")
    assert sign_in(client, "olaf.berger").status_code == 303
    client.get("/ui/")  # the session's user is looked up once, then cached
    # when staff open each one's 360
    few, _ = _queries(client, count_queries, f"/ui/customers/{small.customer_id}")
    many, text = _queries(client, count_queries, f"/ui/customers/{large.customer_id}")
    # then both take the same queries, and the ten newest tickets are shown of 30
    assert few == many <= 20
    assert "Trouble tickets (30)" in text and "The newest 10 of 30." in text


def test_every_list_the_staff_home_links_to_answers(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given an administrator, who sees every work list
    user("ada.admin", role="admin")
    assert sign_in(client, "ada.admin").status_code == 303
    home = client.get("/ui/")
    found = re.findall(r'<a href="((?:/tmf-api|/ui)/[^"#]+)', home.text)
    links = {h.replace("&amp;", "&") for h in found}
    api = sorted(link for link in links if link.startswith("/tmf-api/"))
    pages = sorted(link for link in links if link.startswith("/ui/") and link != "/ui/")
    assert len(api) + len(pages) >= 9 and pages
    # then each list it links to is one the API answers (no filter it does not know), or
    # a page that opens
    for link in api:
        answer = client.get(link, headers=admin)
        assert answer.status_code in (200, 206), (link, answer.text)
    for link in pages:
        answer = client.get(link)
        assert answer.status_code == 200, (link, answer.text[:500])
