"""The portal's tickets and bills over plain HTTP (seed 5.1): a customer's user opens a
ticket for a site, follows it, confirms or rejects its resolution; reads its bills with
their lines, downloads the PDF and the XML, disputes a line. Scoped as the API (another
customer's user gets 404), CSRF on every form, bad input a 4xx page, a bounded number of
queries whatever the number of tickets or bills."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.billing import bills
from etomcrm.billing.bill_models import BillDocumentRow
from etomcrm.billing.dunning_models import BillingEnquiryRow
from etomcrm.billing.models import AppliedRateRow
from etomcrm.db import session_scope
from etomcrm.problem_handling.events import ServiceProblemRaisedForTicket
from etomcrm.problem_handling.models import TroubleTicketRow
from tests import bill_helpers
from tests.conftest import Handled, TokenFactory
from tests.test_pages_portal import csrf_of, network, sign_in, user

NOV = (date(2026, 11, 1), date(2026, 11, 30))
TODAY = date(2026, 12, 1)


def _ticket_for(client: TestClient, admin: dict[str, str], customer_id: str, site_id: str) -> str:
    """A ticket staff opened for the customer about one of its sites (TMF621 POST)."""
    answer = client.post(
        "/tmf-api/troubleTicket/v4/troubleTicket",
        json={
            "name": "No traffic at the site",
            "description": "The access is dead since this morning",
            "severity": "Major",
            "ticketType": "network",
            "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "customer"}],
            "relatedEntity": [
                {"id": site_id, "@referredType": "GeographicSite", "role": "affectedSite"}
            ],
        },
        headers=admin,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _resolved(client: TestClient, admin: dict[str, str], ticket_id: str) -> None:
    path = f"/tmf-api/troubleTicket/v4/troubleTicket/{ticket_id}"
    for status in ("inProgress", "resolved"):
        moved = client.patch(
            path,
            json={"status": status},
            headers={**admin, "Content-Type": "application/merge-patch+json"},
        )
        assert moved.status_code == 200, moved.text


def test_a_customer_opens_a_ticket_for_a_site_and_follows_it(
    client: TestClient, admin: dict[str, str], handled: Handled
) -> None:
    # given a customer with three sites (the first one's access down) and its portal user
    bmw = network(client, admin, 3)
    user("katrin.weber", customer_id=bmw.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    base = f"/ui/customers/{bmw.customer_id}"
    raised = handled(ServiceProblemRaisedForTicket)
    # when she opens a ticket from the first site's page
    site = client.get(f"{base}/sites/{bmw.site_ids[0]}")
    assert f'href="{base}/tickets/new?site={bmw.site_ids[0]}"' in site.text
    assert f'href="{base}/tickets/new"' in client.get(f"{base}/network").text
    form = client.get(f"{base}/tickets/new", params={"site": bmw.site_ids[0]})
    assert form.status_code == 200
    assert f'<option value="{bmw.site_ids[0]}" selected>' in form.text
    assert 'for="site"' in form.text and 'for="description"' in form.text
    assert 'for="severity"' in form.text
    posted = client.post(
        f"{base}/tickets",
        data={
            "site": bmw.site_ids[0],
            "description": "No traffic at all since 9:00",
            "severity": "Critical",
            "csrf_token": csrf_of(form.text),
        },
        follow_redirects=False,
    )
    # then the ticket is opened as through the API: about the site, isolated (3.6.1)
    assert posted.status_code == 303, posted.text
    ticket_id = posted.headers["location"].rsplit("/", 1)[1]
    with session_scope() as session:
        row = session.get(TroubleTicketRow, ticket_id)
        assert row is not None and row.owner_customer_id == bmw.customer_id
        body = dict(row.body)
    assert body["severity"] == "Critical" and body["status"] == "acknowledged"
    assert {"id": bmw.site_ids[0], "@referredType": "GeographicSite"}.items() <= (
        body["relatedEntity"][0].items()
    )
    # the site's access is down: a service problem is raised for the ticket, and its
    # Assurance flow started by the same event as for a ticket posted to the API
    assert body["diagnosis"]["linkStatus"] == "down"
    problem_id = body["diagnosis"]["serviceProblem"]["id"]
    assert [(e.problem_id, e.ticket_id) for e in raised] == [(problem_id, ticket_id)]
    # and its page shows the site, the status, the history and the network's note
    page = client.get(posted.headers["location"])
    assert page.status_code == 200
    assert f'/sites/{bmw.site_ids[0]}">{bmw.site_names[0]}</a>' in page.text
    assert "acknowledged" in page.text and "No traffic at all since 9:00" in page.text
    assert f"Linked to service problem {problem_id}" in page.text
    # and the list shows it, open first, with its site and its SLA clock running
    listing = client.get(f"{base}/tickets")
    assert listing.status_code == 200
    assert f'href="{base}/tickets/{ticket_id}"' in listing.text
    assert "1 open ticket" in listing.text
    assert "min left" in listing.text or "overdue by" in listing.text
    german = client.get(f"{base}/tickets", headers={"Accept-Language": "de"})
    assert "Störungsmeldungen von" in german.text and "1 offene Störungsmeldung" in german.text
    # and the network page rings the site as an open problem, linked beside it
    topology = client.get(f"{base}/network")
    problems = topology.text.split('class="problems"')[1].split("</section>")[0]
    assert f'/sites/{bmw.site_ids[0]}">{bmw.site_names[0]}</a>' in problems


def test_a_customer_confirms_or_rejects_a_resolution(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given two resolved tickets of a customer
    bmw = network(client, admin, 2)
    first = _ticket_for(client, admin, bmw.customer_id, bmw.site_ids[0])
    second = _ticket_for(client, admin, bmw.customer_id, bmw.site_ids[1])
    _resolved(client, admin, first)
    _resolved(client, admin, second)
    user("katrin.weber", customer_id=bmw.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    base = f"/ui/customers/{bmw.customer_id}/tickets"
    # when she confirms the first one's resolution
    page = client.get(f"{base}/{first}")
    assert "Is the problem solved?" in page.text
    assert "clock stopped: waiting for you" in page.text
    confirmed = client.post(
        f"{base}/{first}/resolution",
        data={"answer": "confirm", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    # then it is closed, as the API's confirmResolution closes it
    assert confirmed.status_code == 303
    after = client.get(confirmed.headers["location"])
    assert "the customer confirmed the resolution" in after.text
    assert "Is the problem solved?" not in after.text
    # when she rejects the second one's with what is still wrong
    page = client.get(f"{base}/{second}")
    rejected = client.post(
        f"{base}/{second}/resolution",
        data={"answer": "reject", "reason": "Still slow", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert rejected.status_code == 303
    # then it is in progress again, the reopening counted
    with session_scope() as session:
        closed, reopened = (
            session.get(TroubleTicketRow, first),
            session.get(TroubleTicketRow, second),
        )
        assert closed is not None and closed.status == "closed"
        assert reopened is not None and reopened.status == "inProgress"
        assert reopened.body["reopenCount"] == 1
    # and a reason is required to reject, an open ticket cannot be confirmed
    page = client.get(f"{base}/{second}")
    empty = client.post(
        f"{base}/{second}/resolution",
        data={"answer": "confirm", "csrf_token": csrf_of(page.text)},
    )
    assert empty.status_code == 409 and "only a resolved ticket" in empty.text


@dataclass(frozen=True)
class Billed:
    customer_id: str
    bill_ids: list[str]
    line_ids: list[str]


def billed(bills_count: int = 1, lines: int = 2, name: str = "BMW AG") -> Billed:
    """A customer with ``bills_count`` issued November bills (one account each) of
    ``lines`` charges each."""
    bill_ids: list[str] = []
    with session_scope() as session:
        customer_id = bill_helpers.customer(session, name)
        for _ in range(bills_count):
            account_id = bill_helpers.account(session, customer_id)
            for n in range(lines):
                bill_helpers.rate(
                    session, account_id, customer_id, f"{10 + n}.00", name=f"Charge {n}"
                )
            session.flush()
            bill_id = bills.bill_account(session, account_id, *NOV, today=TODAY)
            assert bill_id is not None
            bills.issue(session, bill_id, today=TODAY)
            bill_ids.append(bill_id)
        line_ids = list(
            session.scalars(
                select(AppliedRateRow.id)
                .where(AppliedRateRow.bill_id == bill_ids[0])
                .order_by(AppliedRateRow.id)
            )
        )
    return Billed(customer_id, bill_ids, line_ids)


def test_a_customer_reads_its_bills_downloads_them_and_disputes_a_line(
    client: TestClient,
) -> None:
    # given a customer with an issued bill of two lines, and its portal user
    bmw = billed(1, 2)
    user("katrin.weber", customer_id=bmw.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    base = f"/ui/customers/{bmw.customer_id}/bills"
    bill_id = bmw.bill_ids[0]
    # when she opens her bills
    listing = client.get(base)
    # then she sees the bill with number, amount, due date, state and open amount
    assert listing.status_code == 200
    assert f'href="{base}/{bill_id}"' in listing.text
    # 10.00 + 11.00 net, 19 % VAT: 24.99 due, all of it open
    row = listing.text.split(f'href="{base}/{bill_id}"')[1].split("</tr>")[0]
    assert row.count("24.99 EUR") == 2 and "validated" in row and "2026-11-01" in row
    page = client.get(f"{base}/{bill_id}")
    assert page.status_code == 200
    assert "Charge 0" in page.text and "Charge 1" in page.text
    # and downloads the PDF and the XML of the bill as issued
    pdf = client.get(f"{base}/{bill_id}/document.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and "attachment" in pdf.headers["content-disposition"]
    api_pdf = pdf.content
    xml = client.get(f"{base}/{bill_id}/document.xml")
    assert xml.status_code == 200 and b"CrossIndustryInvoice" in xml.content
    assert client.get(f"{base}/{bill_id}/document.doc").status_code == 404
    with session_scope() as session:
        stored = session.get(BillDocumentRow, bill_id)
        # the same bytes as the PDF embeds and the bill keeps
        assert stored is not None and stored.pdf == pdf.content and stored.xml == xml.content
    assert api_pdf == client.get(f"{base}/{bill_id}/document.pdf").content
    # when she disputes the second line
    disputed = client.post(
        f"{base}/{bill_id}/dispute",
        data={
            "line": bmw.line_ids[1],
            "description": "This charge is twice on the bill",
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    # then a billing enquiry is logged for that line, through the portal
    assert disputed.status_code == 303, disputed.text
    with session_scope() as session:
        enquiry = session.scalars(
            select(BillingEnquiryRow).where(BillingEnquiryRow.bill_id == bill_id)
        ).one()
        assert enquiry.owner_customer_id == bmw.customer_id and enquiry.status == "open"
        assert [line["id"] for line in enquiry.body["disputedLine"]] == [bmw.line_ids[1]]
        assert enquiry.body["channel"] == "portal"
    again = client.get(f"{base}/{bill_id}")
    assert "This charge is twice on the bill" in again.text and "disputed" in again.text


def test_another_customers_user_gets_404_on_ticket_and_bill_urls(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given BMW's ticket and bill, and a user of another customer
    bmw = network(client, admin, 1, "B")
    ticket_id = _ticket_for(client, admin, bmw.customer_id, bmw.site_ids[0])
    _resolved(client, admin, ticket_id)
    bmw_bills = billed(1, 1, "BMW Bank")
    other = network(client, admin, 1, "O")
    user("someone.else", customer_id=other.customer_id)
    assert sign_in(client, "someone.else").status_code == 303
    token = csrf_of(client.get(f"/ui/customers/{other.customer_id}/tickets").text)
    bill = bmw_bills.bill_ids[0]
    # when that user types BMW's addresses, or BMW's ticket and bill under its own customer
    for customer_id in (bmw.customer_id, bmw_bills.customer_id, other.customer_id):
        base = f"/ui/customers/{customer_id}"
        for path in (
            f"{base}/tickets/{ticket_id}",
            f"{base}/bills/{bill}",
            f"{base}/bills/{bill}/document.pdf",
            f"{base}/bills/{bill}/document.xml",
        ):
            response = client.get(path)
            # then each is a plain 404 page
            assert response.status_code == 404, path
            assert "Not found" in response.text and "No traffic" not in response.text
        for path, data in (
            (f"{base}/tickets/{ticket_id}/resolution", {"answer": "confirm"}),
            (f"{base}/bills/{bill}/dispute", {"line": bmw_bills.line_ids[0], "description": "x"}),
        ):
            assert client.post(path, data={**data, "csrf_token": token}).status_code == 404, path
    for path in ("tickets", "tickets/new", "bills"):
        assert client.get(f"/ui/customers/{bmw.customer_id}/{path}").status_code == 404
    # and nothing of BMW's changed
    with session_scope() as session:
        row = session.get(TroubleTicketRow, ticket_id)
        assert row is not None and row.status == "resolved"
        assert session.scalars(select(BillingEnquiryRow)).first() is None
    # while its own lists work, without BMW's
    own = client.get(f"/ui/customers/{other.customer_id}/tickets")
    assert own.status_code == 200 and ticket_id not in own.text
    assert bill not in client.get(f"/ui/customers/{other.customer_id}/bills").text


def test_each_form_refuses_a_post_without_the_sessions_csrf_token(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer with a site, a resolved ticket and a bill, its user signed in
    bmw = network(client, admin, 1)
    ticket_id = _ticket_for(client, admin, bmw.customer_id, bmw.site_ids[0])
    _resolved(client, admin, ticket_id)
    with session_scope() as session:
        account_id = bill_helpers.account(session, bmw.customer_id)
        rate_id = bill_helpers.rate(session, account_id, bmw.customer_id, "30.00")
        session.flush()
        bill_id = bills.bill_account(session, account_id, *NOV, today=TODAY)
        assert bill_id is not None
        bills.issue(session, bill_id, today=TODAY)
    user("katrin.weber", customer_id=bmw.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    base = f"/ui/customers/{bmw.customer_id}"
    # when each form is posted without the token, or with another one
    for path, data in (
        (f"{base}/tickets", {"site": bmw.site_ids[0], "description": "x", "severity": "Minor"}),
        (f"{base}/tickets/{ticket_id}/resolution", {"answer": "confirm"}),
        (f"{base}/bills/{bill_id}/dispute", {"line": rate_id, "description": "wrong"}),
    ):
        for token in ({}, {"csrf_token": "0" * 64}):
            response = client.post(path, data={**data, **token}, follow_redirects=False)
            # then it is refused with a page saying so
            assert response.status_code == 403, path
            assert "the form has expired" in response.text
    # and nothing was done
    with session_scope() as session:
        assert len(session.scalars(select(TroubleTicketRow.id)).all()) == 1
        row = session.get(TroubleTicketRow, ticket_id)
        assert row is not None and row.status == "resolved"
        assert session.scalars(select(BillingEnquiryRow)).first() is None


def test_bad_form_input_gets_the_form_again_with_the_reason_beside_the_field(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer's user and another customer's site
    bmw = network(client, admin, 2, "B")
    other = network(client, admin, 1, "O")
    bmw_bills = billed(1, 1, "BMW Bank")
    user("katrin.weber", customer_id=bmw.customer_id)
    user("lena.bank", customer_id=bmw_bills.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    base = f"/ui/customers/{bmw.customer_id}"
    token = csrf_of(client.get(f"{base}/tickets/new").text)
    # when she sends an empty description
    empty = client.post(
        f"{base}/tickets",
        data={
            "site": bmw.site_ids[1],
            "description": "  ",
            "severity": "Minor",
            "csrf_token": token,
        },
    )
    # then the form comes back (400) with the reason beside the field, her choices kept
    assert empty.status_code == 400
    assert 'id="description" name="description"' in empty.text
    assert 'aria-invalid="true" aria-describedby="description-error"' in empty.text
    assert "Describe the problem." in empty.text
    assert f'<option value="{bmw.site_ids[1]}" selected>' in empty.text
    assert '<option value="Minor" selected>' in empty.text
    # when she names a site that is not hers, or none, or an unknown severity
    for site in (other.site_ids[0], "no-such-site", ""):
        unknown = client.post(
            f"{base}/tickets",
            data={"site": site, "description": "Down", "severity": "Major", "csrf_token": token},
        )
        assert unknown.status_code == 400 and "Choose one of your sites." in unknown.text
        assert ">Down</textarea>" in unknown.text  # what she typed is kept
    odd = client.post(
        f"{base}/tickets",
        data={"site": bmw.site_ids[0], "description": "Down", "severity": "x", "csrf_token": token},
    )
    assert odd.status_code == 400 and "Choose a severity." in odd.text
    # and an unknown answer to a resolution is a 4xx page too
    bad = client.post(
        f"{base}/tickets/no-such-ticket/resolution", data={"answer": "x", "csrf_token": token}
    )
    assert bad.status_code == 404
    with session_scope() as session:
        assert session.scalars(select(TroubleTicketRow)).first() is None
    # when a customer disputes with no description, or a line of no bill of hers
    page = client.get("/ui/")
    client.post("/ui/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert sign_in(client, "lena.bank").status_code == 303
    bill_base = f"/ui/customers/{bmw_bills.customer_id}/bills/{bmw_bills.bill_ids[0]}"
    token = csrf_of(client.get(bill_base).text)
    for data, reason in (
        ({"line": bmw_bills.line_ids[0], "description": ""}, "Say what is wrong with the line."),
        ({"line": "not-a-line", "description": "Too much"}, "Choose a line of this bill."),
    ):
        refused = client.post(f"{bill_base}/dispute", data={**data, "csrf_token": token})
        # then the bill page comes back (400) with the reason beside the field
        assert refused.status_code == 400 and reason in refused.text
        assert 'aria-invalid="true"' in refused.text
    with session_scope() as session:
        assert session.scalars(select(BillingEnquiryRow)).first() is None


def test_the_ticket_and_bill_pages_need_as_many_queries_for_thirty_as_for_three(
    client: TestClient, auth: TokenFactory, count_queries: Callable[[], Any]
) -> None:
    admin = auth("admin")
    # given a customer with 3 tickets and 3 bills, another with 30 of each
    small, large = network(client, admin, 3, "S"), network(client, admin, 3, "L")
    for n in range(3):
        _ticket_for(client, admin, small.customer_id, small.site_ids[n % 3])
    for n in range(30):
        _ticket_for(client, admin, large.customer_id, large.site_ids[n % 3])
    few, many = billed(3, 3, "Few AG"), billed(30, 3, "Many AG")
    with session_scope() as session:
        # a bill of 30 lines beside the bills of 3
        account_id = bill_helpers.account(session, few.customer_id)
        for n in range(30):
            bill_helpers.rate(session, account_id, few.customer_id, f"{n + 1}.00")
        session.flush()
        long_bill = bills.bill_account(session, account_id, *NOV, today=TODAY)
        assert long_bill is not None
        bills.issue(session, long_bill, today=TODAY)
    user("staff.billing", role="billing")
    assert sign_in(client, "staff.billing").status_code == 303

    def queries(path: str) -> int:
        with count_queries() as counter:
            page = client.get(path)
        assert page.status_code == 200, path
        return int(counter.count)

    queries(f"/ui/customers/{small.customer_id}/tickets")  # the user is cached from then on
    # when the lists and pages are read for few and for many
    tickets_few = queries(f"/ui/customers/{small.customer_id}/tickets")
    tickets_many = queries(f"/ui/customers/{large.customer_id}/tickets")
    bills_few = queries(f"/ui/customers/{few.customer_id}/bills")
    bills_many = queries(f"/ui/customers/{many.customer_id}/bills")
    bill_short = queries(f"/ui/customers/{few.customer_id}/bills/{few.bill_ids[0]}")
    bill_long = queries(f"/ui/customers/{few.customer_id}/bills/{long_bill}")
    # then the number of queries is the same: the customer, the tickets, its sites and
    # the links' products; the customer and the bills; the bill, its lines, its enquiries
    assert tickets_few == tickets_many <= 4
    assert bills_few == bills_many <= 2
    assert bill_short == bill_long <= 4
    page = client.get(f"/ui/customers/{large.customer_id}/tickets")
    assert page.text.count('<tr class="ticket ') == 30
