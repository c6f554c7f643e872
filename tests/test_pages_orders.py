"""The order tracker (seed 3.5.4) and the flow trace over plain HTTP (issue 11): staff
follow an order per site with its milestones, dates, jeopardy and the network's
answers; the portal shows a customer its own orders in its words; a case's trace is a
timeline with seed numbers; every page bounded in queries whatever its rows."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from etomcrm.db import session_scope, utcnow
from etomcrm.flows.framework import PlainRunner
from etomcrm.flows.fulfillment import ordering_workflow_id
from etomcrm.order_handling.models import ProductOrderRow
from tests import factories
from tests.test_fulfillment_flow import access_offering, complete_contract_data, order_body
from tests.test_pages_portal import sign_in, user
from tests.test_pages_tickets_bills import billed

ORDERING = "/tmf-api/productOrderingManagement/v4/productOrder"


@dataclass(frozen=True)
class Placed:
    order_id: str
    customer_id: str
    site_ids: list[str]
    site_names: list[str]


def placed(
    client: TestClient,
    admin: dict[str, str],
    network: dict[str, Any],
    sites: int,
    *,
    name: str = "BMW AG",
    late: tuple[int, ...] = (),
    fail: tuple[int, ...] = (),
    customer_id: str | None = None,
    looks: int = 1,
) -> Placed:
    """An order for ``sites`` new sites of the customer, through the ordering flow's own
    steps run as plain calls (accepted, issued, then ``looks`` looks at the network):
    the sites in ``late`` come back late (jeopardy), those in ``fail`` fail once and
    are reissued; the others are active at once."""
    if customer_id is None:
        customer_id = str(factories.customer(client, admin, name)["id"])
        complete_contract_data(client, admin, customer_id)
    made = [factories.site(client, admin, customer_id, f"Ort {n}") for n in range(sites)]
    for n in late:
        network[made[n]["id"]] = "late"
    for n in fail:
        network[made[n]["id"]] = "fail"
    offering = access_offering(client, admin)
    answer = client.post(
        ORDERING, json=order_body(customer_id, offering, [s["id"] for s in made]), headers=admin
    )
    assert answer.status_code == 201, answer.text
    order_id = str(answer.json()["id"])
    run = PlainRunner(ordering_workflow_id(order_id))
    assert run.step("accept", "accept_order_step", order_id)["accepted"]
    run.step("issue", "issue_order_step", order_id)
    for look in range(1, looks + 1):
        run.step(f"track-{look}", "track_order_step", order_id, look)
    return Placed(order_id, customer_id, [s["id"] for s in made], [s["name"] for s in made])


def _section(html: str, site_id: str) -> str:
    return html.split(f'id="site-{site_id}"')[1].split("</section>")[0]


def test_staff_follow_an_order_per_site_with_jeopardy_and_the_networks_answers(
    client: TestClient, admin: dict[str, str], network: dict[str, Any]
) -> None:
    # given an order for three sites: one active, one late, one whose activation failed
    order = placed(client, admin, network, 3, late=(1,), fail=(2,))
    user("olaf.berger", role="order_manager")
    assert sign_in(client, "olaf.berger").status_code == 303
    # when the order manager opens the order in the tracker
    page = client.get(f"/ui/orders/{order.order_id}")
    # then the order is in jeopardy, the late site first, each site with its milestones
    assert page.status_code == 200, page.text
    text = page.text
    assert "in jeopardy" in text and "1 late" in text
    positions = [text.index(f'id="site-{site}"') for site in order.site_ids]
    assert positions[1] == min(positions)
    late = _section(text, order.site_ids[1])
    assert order.site_names[1] in late
    assert "Jeopardy raised" in late and "delayed:" in late
    assert re.search(r"Promised</dt><dd>\d{4}-\d\d-\d\d", late)
    assert "Service order issued to the network" in late and "Site activated" in late
    # and the network's answers: the first site's service order completed
    active = _section(text, order.site_ids[0])
    assert "Service order, attempt 1" in active and "completed" in active
    assert "Site activated</strong> · done" in active
    # the failed site's first order failed and a second attempt is under way
    failed = _section(text, order.site_ids[2])
    assert "Service order, attempt 1" in failed and "Service order, attempt 2" in failed
    assert 'class="status failed">failed</span>' in failed
    # and the acceptance is dated by the flow, whose trace the order links to
    assert "Accepted (credit and data checked)</strong> · done · <time>" in text
    assert f'href="/ui/trace?case={order.order_id}"' in text


def test_a_site_past_its_expected_date_shows_overdue(
    client: TestClient, admin: dict[str, str], network: dict[str, Any]
) -> None:
    # given an order whose one open site was expected yesterday (its activation failed
    # once and the reissued order is still open)
    order = placed(client, admin, network, 2, fail=(1,))
    with session_scope() as session:
        row = session.get(ProductOrderRow, order.order_id)
        assert row is not None
        yesterday = (utcnow().date() - timedelta(days=1)).isoformat()
        row.body = {
            **row.body,
            "productOrderItem": [
                {**item, "expectedCompletionDate": yesterday}
                if item["state"] != "completed"
                else item
                for item in row.body["productOrderItem"]
            ],
        }
    user("olaf.berger", role="order_manager")
    assert sign_in(client, "olaf.berger").status_code == 303
    # when the order manager opens it and the list
    page = client.get(f"/ui/orders/{order.order_id}").text
    listed = client.get("/ui/orders").text
    # then the open site is overdue (late, first), the active one is not
    late = _section(page, order.site_ids[1])
    assert "overdue" in late and f"Expected</dt><dd>{yesterday}" in late
    assert "overdue" not in _section(page, order.site_ids[0])
    assert page.index(f'id="site-{order.site_ids[1]}"') < page.index(
        f'id="site-{order.site_ids[0]}"'
    )
    assert '<span class="late">1</span>' in listed


def test_the_order_list_filters_by_state_and_jeopardy_and_pages(
    client: TestClient, admin: dict[str, str], network: dict[str, Any]
) -> None:
    # given two customers' orders: one late (in jeopardy), one completed... nearly
    bmw = placed(client, admin, network, 2, late=(0,))
    audi = placed(client, admin, network, 1, name="Audi AG")
    user("olaf.berger", role="order_manager")
    assert sign_in(client, "olaf.berger").status_code == 303
    # when the order manager lists the orders in jeopardy
    listed = client.get("/ui/orders", params={"jeopardy": "true"})
    # then only BMW's is there, linked to its tracker and its customer
    assert listed.status_code == 200, listed.text
    assert f'href="/ui/orders/{bmw.order_id}"' in listed.text
    assert f'href="/ui/orders/{audi.order_id}"' not in listed.text
    assert f'href="/ui/customers/{bmw.customer_id}">BMW AG</a>' in listed.text
    assert "1\u20131 of 1 orders" in listed.text
    # and all orders, one a page: the newest first, the next a page further
    first = client.get("/ui/orders", params={"size": "1"})
    assert f'href="/ui/orders/{audi.order_id}"' in first.text and "Page 1 of 2" in first.text
    assert 'rel="next"' in first.text
    second = client.get("/ui/orders", params={"size": "1", "page": "2"})
    assert f'href="/ui/orders/{bmw.order_id}"' in second.text
    assert "2\u20132 of 2 orders" in second.text
    # and by state and by customer
    by_state = client.get("/ui/orders", params={"state": "inProgress"}).text
    assert bmw.order_id in by_state and audi.order_id in by_state
    assert "No orders." in client.get("/ui/orders", params={"state": "completed"}).text
    mine = client.get("/ui/orders", params={"customer": audi.customer_id}).text
    assert audi.order_id in mine and bmw.order_id not in mine
    # when the filters are bad, the page says which, with a 400, and lists unfiltered
    for params, message in (
        ({"state": "nonsense"}, "No such order state."),
        ({"size": "500"}, "Between 1 and 200."),
        ({"size": "many"}, "Between 1 and 200."),
        ({"page": "0"}, "No such page; the first is shown."),
    ):
        bad = client.get("/ui/orders", params=params)
        assert bad.status_code == 400 and message in bad.text, params
        assert bmw.order_id in bad.text


def test_a_customer_follows_its_orders_in_the_portal_and_never_anothers(
    client: TestClient, admin: dict[str, str], network: dict[str, Any]
) -> None:
    # given BMW's order with a late site, Audi's order, and Katrin of BMW
    bmw = placed(client, admin, network, 2, late=(1,))
    audi = placed(client, admin, network, 1, name="Audi AG")
    user("katrin.weber", customer_id=bmw.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    base = f"/ui/customers/{bmw.customer_id}"
    # when she opens BMW's orders from the portal's navigation
    network_page = client.get(f"{base}/network")
    assert f'href="{base}/orders"' in network_page.text
    listed = client.get(f"{base}/orders")
    # then she sees her order in her words, with the delayed site counted
    assert listed.status_code == 200, listed.text
    assert "Being installed" in listed.text and "1 site delayed" in listed.text
    assert audi.order_id not in listed.text
    # and the order per site: the late one says why, without the network's internals
    page = client.get(f"{base}/orders/{bmw.order_id}")
    assert page.status_code == 200, page.text
    late = _section(page.text, bmw.site_ids[1])
    assert "Delay announced" in late and "Why later" in late and "delayed:" in late
    assert "Site ready for use" in _section(page.text, bmw.site_ids[0])
    assert "Service order" not in page.text and "/ui/trace" not in page.text
    # and in German, as her browser asks
    german = client.get(f"{base}/orders/{bmw.order_id}", headers={"Accept-Language": "de"})
    assert "Verzögerung angekündigt" in german.text and "Auftrag bestätigt" in german.text
    # when she types Audi's order, under BMW or under Audi, or the staff's pages
    for path in (
        f"{base}/orders/{audi.order_id}",
        f"/ui/customers/{audi.customer_id}/orders/{audi.order_id}",
        f"/ui/customers/{audi.customer_id}/orders",
        f"/ui/orders/{audi.order_id}",
    ):
        refused = client.get(path)
        # then it is not there at all
        assert refused.status_code == 404, path
        assert "Audi AG" not in refused.text
    # and the staff's tracker, list and trace are not hers
    assert client.get(f"/ui/orders/{bmw.order_id}").status_code == 403
    assert client.get("/ui/orders").status_code == 403
    assert client.get("/ui/trace", params={"case": bmw.order_id}).status_code == 403


def test_the_trace_shows_a_cases_flow_with_its_seed_numbers(
    client: TestClient, admin: dict[str, str], network: dict[str, Any]
) -> None:
    # given an order that went through acceptance, issue and a look at the network
    order = placed(client, admin, network, 2, late=(0,))
    user("sven.koch", role="support")
    assert sign_in(client, "sven.koch").status_code == 303
    # when staff type its id into the trace
    page = client.get("/ui/trace", params={"case": order.order_id})
    # then the ordering flow's steps are there in order, each with its seed number
    assert page.status_code == 200, page.text
    text = page.text
    assert f"ordering-{order.order_id}" in text
    seeds = re.findall(r'<td class="seed">([\d.]+)</td>', text)
    assert seeds[:2] == ["3.4.4", "3.5.2"] and "3.5.3" in seeds and "3.5.4" in seeds
    assert "Track order and handle delays" in text and "late (jeopardy)" in text
    assert f'href="/ui/orders/{order.order_id}">The order in the order tracker' in text
    # when the id is unknown, too long, or not given
    unknown = client.get("/ui/trace", params={"case": "no-such-case-at-all"})
    assert unknown.status_code == 404
    assert "No flow has run for no-such-case-at-all." in unknown.text
    assert 'aria-invalid="true"' in unknown.text
    long = client.get("/ui/trace", params={"case": "x" * 65})
    assert long.status_code == 400 and "at most 64 characters" in long.text
    empty = client.get("/ui/trace")
    assert empty.status_code == 200 and 'for="case"' in empty.text
    # and a ticket's page leads staff to its trace too
    ticket = client.post(
        "/tmf-api/troubleTicket/v4/troubleTicket",
        json={
            "name": "No traffic",
            "description": "Dead since this morning",
            "severity": "Major",
            "ticketType": "network",
            "relatedParty": [
                {"id": order.customer_id, "@referredType": "Customer", "role": "customer"}
            ],
        },
        headers=admin,
    ).json()
    ticket_page = client.get(f"/ui/customers/{order.customer_id}/tickets/{ticket['id']}")
    assert f'href="/ui/trace?case={ticket["id"]}"' in ticket_page.text
    # and so does a bill's, for staff only
    bill = billed(name="Audi AG")
    bill_path = f"/ui/customers/{bill.customer_id}/bills/{bill.bill_ids[0]}"
    assert f'href="/ui/trace?case={bill.bill_ids[0]}"' in client.get(bill_path).text
    user("anna.audi", customer_id=bill.customer_id)
    client.cookies.clear()
    assert sign_in(client, "anna.audi").status_code == 303
    own_bill = client.get(bill_path)
    assert own_bill.status_code == 200 and "/ui/trace" not in own_bill.text


def test_the_360_and_the_work_list_lead_to_the_tracker(
    client: TestClient, admin: dict[str, str], network: dict[str, Any]
) -> None:
    # given BMW's order in jeopardy, Audi's that ended partial with its flag still set,
    # and an administrator
    order = placed(client, admin, network, 1, late=(0,))
    ended = placed(client, admin, network, 1, name="Audi AG", late=(0,))
    with session_scope() as session:
        row = session.get(ProductOrderRow, ended.order_id)
        assert row is not None and row.body["inJeopardy"] is True
        row.status, row.body = "partial", {**row.body, "state": "partial"}
    user("ada.admin", role="admin")
    assert sign_in(client, "ada.admin").status_code == 303
    # when she opens BMW's 360 and her landing page
    c360 = client.get(f"/ui/customers/{order.customer_id}").text
    home = client.get("/ui/").text
    # then the order leads to its tracker, the section to BMW's orders there
    assert f'href="/ui/orders/{order.order_id}"' in c360
    assert f'href="/ui/orders?customer={order.customer_id}"' in c360
    # and the work list "orders in jeopardy" to the tracker's list of them
    jeopardy = home.split('id="work-ordersInJeopardy"')[1].split("</li>")[0]
    assert 'href="/ui/orders?jeopardy=true"' in jeopardy
    assert '<strong class="count">1</strong>' in jeopardy  # a partial order is final
    listed = client.get("/ui/orders", params={"jeopardy": "true"}).text
    assert order.order_id in listed and ended.order_id not in listed
    # and the search finds the order and links it
    found = client.get("/ui/search", params={"q": order.order_id}).text
    assert f'href="/ui/orders/{order.order_id}"' in found


def test_the_order_pages_take_as_many_queries_for_many_rows_as_for_few(
    client: TestClient,
    admin: dict[str, str],
    network: dict[str, Any],
    count_queries: Callable[[], Any],
) -> None:
    # given a small order (two sites) and a large one (twelve, three late, two failing),
    # each tracked twice, and their flows' traces
    small = placed(client, admin, network, 2, looks=2)
    large = placed(client, admin, network, 12, name="Audi AG", late=(0, 1, 2), fail=(3, 4), looks=2)
    user("olaf.berger", role="order_manager")
    user("katrin.weber", customer_id=small.customer_id)
    user("anna.audi", customer_id=large.customer_id)
    assert sign_in(client, "olaf.berger").status_code == 303

    def queries(path: str) -> int:
        with count_queries() as counter:
            page = client.get(path)
        assert page.status_code == 200, path
        return int(counter.count)

    client.get("/ui/")  # the session's user is looked up once, then cached
    # when staff open each order, its trace, and the list of one and of both customers
    for few, many in (
        (f"/ui/orders/{small.order_id}", f"/ui/orders/{large.order_id}"),
        (f"/ui/trace?case={small.order_id}", f"/ui/trace?case={large.order_id}"),
        (f"/ui/orders?customer={small.customer_id}", "/ui/orders"),
    ):
        # then the larger takes no more queries than the smaller
        assert queries(few) == queries(many) <= 12, (few, many)
    # and so do the portal's pages, for each customer's own user
    counts = []
    for username, order in (("katrin.weber", small), ("anna.audi", large)):
        client.cookies.clear()
        assert sign_in(client, username).status_code == 303
        base = f"/ui/customers/{order.customer_id}"
        client.get(f"{base}/orders")
        counts.append((queries(f"{base}/orders"), queries(f"{base}/orders/{order.order_id}")))
    assert counts[0] == counts[1]
