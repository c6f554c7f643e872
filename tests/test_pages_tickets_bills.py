"""The portal's tickets and bills over plain HTTP (seed 5.1): a customer's user opens a
ticket for a site, follows it, confirms or rejects its resolution; reads its bills with
their lines, downloads the PDF and the XML, disputes a line. Scoped as the API (another
customer's user gets 404), CSRF on every form, bad input a 4xx page, a bounded number of
queries whatever the number of tickets or bills."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.billing import bills
from etomcrm.billing.dunning_models import BillingEnquiryRow
from etomcrm.billing.models import AppliedRateRow
from etomcrm.db import session_scope
from etomcrm.problem_handling.models import TroubleTicketRow
from tests import bill_helpers
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
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer with three sites (the first one's access down) and its portal user
    bmw = network(client, admin, 3)
    user("katrin.weber", customer_id=bmw.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    base = f"/ui/customers/{bmw.customer_id}"
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
    assert body["diagnosis"]["linkStatus"] in ("down", "unknown", "up", "degraded")
    # and its page shows the site, the status, the history and the network's note
    page = client.get(posted.headers["location"])
    assert page.status_code == 200
    assert f'/sites/{bmw.site_ids[0]}">{bmw.site_names[0]}</a>' in page.text
    assert "acknowledged" in page.text and "No traffic at all since 9:00" in page.text
    assert "Network diagnosis" in page.text or "Linked to service problem" in page.text
    # and the list shows it, open first, with its site and its SLA clock running
    listing = client.get(f"{base}/tickets")
    assert listing.status_code == 200
    assert f'href="{base}/tickets/{ticket_id}"' in listing.text
    assert "1 open ticket" in listing.text
    assert "min left" in listing.text or "overdue by" in listing.text


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
