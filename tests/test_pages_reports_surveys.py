"""The portal's SLA reports by month and its satisfaction surveys over plain HTTP (seed
5.1; 3.7.3, 3.9.5), and the paging of the portal's lists: a customer's user reads its
months, a month's report per site against the SLA level with its violations and
credits, downloads the PDF; answers a survey through a form that keeps what was typed;
staff see the same for any customer and the satisfaction on the Customer 360. Scoped
as the API (another customer's user gets 404), a bounded number of queries whatever
the number of rows."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from etomcrm.customer_interface.models import PartyInteractionRow
from etomcrm.db import session_scope, utcnow
from etomcrm.pages import portal_views
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.qos_sla.models import SlaRow, SlaViolationRow
from etomcrm.retention import satisfaction
from etomcrm.security.service import SYSTEM
from tests.conftest import TokenFactory
from tests.test_pages_portal import Network, csrf_of, network, sign_in, user
from tests.test_pages_tickets_bills import billed


def _this_month() -> str:
    return utcnow().strftime("%Y-%m")


def _last_month() -> str:
    first = utcnow().replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def with_slas(customer: Network, level: str = "Gold") -> None:
    """Each of the customer's access products under an SLA of ``level`` (99.9 %), and
    last month's availability violated on the first one with a credit of 12.50 EUR."""
    with session_scope() as session:
        for n in range(1, len(customer.site_ids) + 1):
            product_id = f"{customer.customer_id}-p{n}"[:64]
            rules = [
                {"id": metric, "metric": metric, "unit": unit, "referenceValue": value}
                for metric, unit, value in (
                    ("availability", "%", "99.9"),
                    ("timeToRepair", "h", "4"),
                    ("latency", "ms", "30"),
                    ("loss", "%", "0.5"),
                )
            ]
            session.add(
                SlaRow(
                    id=f"sla-{product_id}"[:64],
                    product_id=product_id,
                    owner_customer_id=customer.customer_id,
                    at_type="Sla",
                    body={
                        "id": f"sla-{product_id}",
                        "@type": "Sla",
                        "rule": rules,
                        "penaltyRule": "5 % of the monthly charge per started 0.1 %",
                        "serviceCalendar": {},
                        "slaSpecification": {"id": "spec-gold", "name": level},
                        "product": {"id": product_id},
                    },
                )
            )
        period = _last_month()
        product_id = f"{customer.customer_id}-p1"[:64]
        key = f"{product_id}/availability/{period}"
        session.add(
            SlaViolationRow(
                id=f"v-{customer.customer_id}"[:64],
                violation_key=key,
                owner_customer_id=customer.customer_id,
                at_type="SlaViolation",
                status="open",
                body={
                    "id": f"v-{customer.customer_id}",
                    "product": {"id": product_id},
                    "metric": "availability",
                    "period": period,
                    "violation": {"actualValue": "99.5", "referenceValue": "99.9"},
                    "credit": {"unit": "EUR", "value": "12.50", "status": "owed"},
                },
            )
        )


def survey(customer_id: str, key: str) -> str:
    """A satisfaction survey sent to the customer after an order (the service's own)."""
    with session_scope() as session:
        body = satisfaction.send_survey(
            session,
            customer_id=customer_id,
            about={"id": f"order-{key}", "@referredType": "ProductOrder"},
            key=key,
        )
    return str(body["id"])


def test_a_customer_reads_its_sla_reports_by_month_and_downloads_the_pdf(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer with two sites under a Gold SLA, violated last month
    bmw = network(client, admin, 2)
    with_slas(bmw)
    user("katrin.weber", customer_id=bmw.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    base = f"/ui/customers/{bmw.customer_id}"
    # when she opens the SLA reports from the portal's navigation
    assert f'href="{base}/reports"' in client.get(f"{base}/tickets").text
    months = client.get(f"{base}/reports")
    # then this month (so far) and last month are listed, last month with its violation
    assert months.status_code == 200
    assert months.text.index(_this_month()) < months.text.index(_last_month())
    row = months.text.split(f'href="{base}/reports/{_last_month()}"')[1].split("</tr>")[0]
    assert '<td class="amount">1</td>' in row and "12.50 EUR" in row
    assert f'href="{base}/reports/{_last_month()}/report.pdf"' in row
    # and last month's report shows each site against its SLA level, and the credit
    report = client.get(f"{base}/reports/{_last_month()}")
    assert report.status_code == 200, report.text
    for name in bmw.site_names:
        assert f">{name}</a>" in report.text
    assert "Gold" in report.text and "99.9 %" in report.text
    assert "The month is over" in report.text
    assert "credit 12.50 EUR on your next bill" in report.text
    # this month's report is the month so far
    current = client.get(f"{base}/reports/{_this_month()}")
    assert current.status_code == 200 and "The month so far" in current.text
    # and the PDF is the API's document
    pdf = client.get(f"{base}/reports/{_last_month()}/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    assert f"qos-report-{_last_month()}.pdf" in pdf.headers["content-disposition"]
    # in German too
    german = client.get(f"{base}/reports/{_last_month()}", headers={"Accept-Language": "de"})
    assert "SLA-Bericht" in german.text and "Gutschrift 12,50 EUR" in german.text
    # a month that is no month, or has not begun, is a 400 page, not a 500
    for bad in ("2026-13", "next", "2999-01"):
        refused = client.get(f"{base}/reports/{bad}")
        assert refused.status_code == 400, bad
        assert "<html" in refused.text


def test_staff_see_the_same_report_for_any_customer(
    client: TestClient, admin: dict[str, str]
) -> None:
    bmw = network(client, admin, 1)
    with_slas(bmw)
    user("jonas.sla", role="sla_manager")
    assert sign_in(client, "jonas.sla").status_code == 303
    base = f"/ui/customers/{bmw.customer_id}"
    assert _last_month() in client.get(f"{base}/reports").text
    report = client.get(f"{base}/reports/{_last_month()}")
    assert report.status_code == 200 and "Gold" in report.text
    assert client.get(f"{base}/reports/{_last_month()}/report.pdf").content.startswith(b"%PDF")


def test_a_customer_without_an_sla_has_no_report_months(
    client: TestClient, admin: dict[str, str]
) -> None:
    bmw = network(client, admin, 1)
    user("katrin.weber", customer_id=bmw.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    months = client.get(f"/ui/customers/{bmw.customer_id}/reports")
    assert months.status_code == 200 and "No SLA reports yet" in months.text


def test_a_customer_answers_a_survey_and_nothing_typed_is_lost(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer with an open survey and one already answered
    bmw = network(client, admin, 1)
    open_id = survey(bmw.customer_id, "after-order-1")
    done_id = survey(bmw.customer_id, "after-order-2")
    with session_scope() as session:
        satisfaction.answer_survey(session, SYSTEM, done_id, csat=4, nps=8)
    user("katrin.weber", customer_id=bmw.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    base = f"/ui/customers/{bmw.customer_id}/surveys"
    # when she opens her surveys: the open one first, waiting for her answer
    listing = client.get(base)
    assert listing.status_code == 200
    assert "1 survey waits for your answer" in listing.text
    assert listing.text.index(f"{base}/{open_id}") < listing.text.index(f"{base}/{done_id}")
    form = client.get(f"{base}/{open_id}")
    assert form.status_code == 200
    assert 'for="csat-1"' in form.text and 'for="nps-10"' in form.text
    assert 'for="comment"' in form.text
    # and sends a score out of range with a comment
    refused = client.post(
        f"{base}/{open_id}",
        data={
            "csat": "9",
            "nps": "7",
            "comment": "Faster installs",
            "csrf_token": csrf_of(form.text),
        },
    )
    # then the form comes back with the reason beside the field and what she typed kept
    assert refused.status_code == 400
    assert 'aria-describedby="csat-error"' in refused.text
    assert "Choose a number from 1 to 5." in refused.text
    assert ">Faster installs</textarea>" in refused.text
    assert 'id="nps-7" name="nps" value="7" checked' in refused.text
    with session_scope() as session:
        row = session.get(PartyInteractionRow, open_id)
        assert row is not None and row.body["status"] == "open"
    # when she corrects it
    posted = client.post(
        f"{base}/{open_id}",
        data={
            "csat": "5",
            "nps": "9",
            "comment": "Faster installs",
            "csrf_token": csrf_of(form.text),
        },
        follow_redirects=False,
    )
    # then the answer is stored through the survey service, as the API stores it
    assert posted.status_code == 303 and posted.headers["location"] == f"{base}/{open_id}"
    with session_scope() as session:
        row = session.get(PartyInteractionRow, open_id)
        assert row is not None and row.body["status"] == "completed"
        answer = row.body["surveyAnswer"]
    assert (answer["csat"], answer["nps"], answer["comment"]) == (5, 9, "Faster installs")
    assert answer["answeredBy"] == "katrin.weber"
    after = client.get(posted.headers["location"])
    assert (
        "Thank you for your answer." in after.text
        and '<form method="post" action="/ui/customers' not in after.text
    )
    assert "0 surveys wait for your answer" in client.get(base).text
    # a second answer is refused, as the API refuses it
    again = client.post(
        f"{base}/{open_id}",
        data={"csat": "1", "nps": "0", "csrf_token": csrf_of(form.text)},
    )
    assert again.status_code == 409
    # an answer without the session's CSRF token is refused
    third = survey(bmw.customer_id, "after-ticket-3")
    forged = client.post(f"{base}/{third}", data={"csat": "1", "nps": "0"})
    assert forged.status_code == 403
    # and the staff's Customer 360 shows the satisfaction with its latest score
    user("olaf.support", role="support")
    assert sign_in(client, "olaf.support").status_code == 303
    page = client.get(f"/ui/customers/{bmw.customer_id}")
    assert page.status_code == 200
    section = page.text.split('id="section-satisfaction"')[1].split("</section>")[0]
    assert "Satisfaction (2)" in section
    assert "CSAT 5 of 5, NPS answer 9 of 10" in section and "Faster installs" in section
    assert "Average CSAT 4.50, NPS 50.0 over 2 answers" in section
    assert "1 survey waits for an answer" in section


@pytest.mark.parametrize(
    "path",
    [
        "/reports",
        "/reports/{period}",
        "/reports/{period}/report.pdf",
        "/surveys",
        "/surveys/{survey}",
    ],
)
def test_another_customers_user_gets_404_on_report_and_survey_urls(
    client: TestClient, admin: dict[str, str], path: str
) -> None:
    # given BMW with an SLA and a survey, and a user of another customer
    bmw = network(client, admin, 1, "B")
    with_slas(bmw)
    survey_id = survey(bmw.customer_id, "bmw-1")
    other = network(client, admin, 1, "O")
    user("mia.other", customer_id=other.customer_id)
    assert sign_in(client, "mia.other").status_code == 303
    typed = path.format(period=_last_month(), survey=survey_id)
    # when she types BMW's address, or BMW's survey under her own customer
    bmw_page = client.get(f"/ui/customers/{bmw.customer_id}{typed}")
    own_page = client.get(f"/ui/customers/{other.customer_id}/surveys/{survey_id}")
    # then there is nothing there
    assert bmw_page.status_code == 404
    assert own_page.status_code == 404
    if path == "/surveys/{survey}":
        answered = client.post(
            f"/ui/customers/{other.customer_id}/surveys/{survey_id}",
            data={"csat": "1", "nps": "0", "csrf_token": csrf_of(own_page.text)},
        )
        assert answered.status_code == 404


def test_the_report_and_survey_pages_need_as_many_queries_for_thirty_as_for_three(
    client: TestClient, auth: TokenFactory, count_queries: Callable[[], Any]
) -> None:
    admin = auth("admin")
    # given a customer with 3 sites under an SLA and 3 surveys, another with 30 of each
    small, large = network(client, admin, 3, "S"), network(client, admin, 30, "L")
    for customer, count in ((small, 3), (large, 30)):
        with_slas(customer)
        for n in range(count):
            survey(customer.customer_id, f"{customer.customer_id}-{n}")
    user("staff.support", role="support")
    assert sign_in(client, "staff.support").status_code == 303

    def queries(path: str) -> int:
        with count_queries() as counter:
            page = client.get(path)
        assert page.status_code == 200, path
        return int(counter.count)

    def first_survey(customer: Network) -> str:
        with session_scope() as session:
            return str(
                session.scalar(
                    select(PartyInteractionRow.id)
                    .where(PartyInteractionRow.owner_customer_id == customer.customer_id)
                    .limit(1)
                )
            )

    queries(f"/ui/customers/{small.customer_id}/reports")  # the user is cached from then on
    for path in ("/reports", f"/reports/{_last_month()}", "/surveys"):
        few = queries(f"/ui/customers/{small.customer_id}{path}")
        many = queries(f"/ui/customers/{large.customer_id}{path}")
        assert few == many, path
    assert queries(f"/ui/customers/{small.customer_id}/reports") <= 4
    assert queries(f"/ui/customers/{small.customer_id}/surveys") <= 2
    few = queries(f"/ui/customers/{small.customer_id}/surveys/{first_survey(small)}")
    many = queries(f"/ui/customers/{large.customer_id}/surveys/{first_survey(large)}")
    assert few == many <= 2
    # the Customer 360 with its satisfaction section keeps its bound too
    assert queries(f"/ui/customers/{small.customer_id}") == queries(
        f"/ui/customers/{large.customer_id}"
    )


def _many_tickets(customer_id: str, count: int) -> None:
    """``count`` tickets of the customer, the newest open, written in one statement."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with session_scope() as session:
        session.execute(
            insert(TroubleTicketRow),
            [
                {
                    "id": f"{customer_id}-t{n:04d}"[:64],
                    "at_type": "TroubleTicket",
                    "name": f"Ticket {n:04d}",
                    "status": "acknowledged" if n >= count - 5 else "closed",
                    "owner_customer_id": customer_id,
                    "created_at": start + timedelta(hours=n),
                    "updated_at": start + timedelta(hours=n),
                    "version": 1,
                    "body": {
                        "id": f"{customer_id}-t{n:04d}"[:64],
                        "name": f"Ticket {n:04d}",
                        "status": "acknowledged" if n >= count - 5 else "closed",
                        "severity": "Minor",
                        "creationDate": (start + timedelta(hours=n)).isoformat(),
                        "relatedParty": [{"id": customer_id, "@referredType": "Customer"}],
                    },
                }
                for n in range(count)
            ],
        )


ROW = re.compile(r'<tr class="ticket ')


def test_the_portals_lists_show_two_hundred_rows_a_page_with_next_and_previous(
    client: TestClient, auth: TokenFactory, count_queries: Callable[[], Any]
) -> None:
    admin = auth("admin")
    # given a customer with 205 tickets (5 open) and one with 3
    many, few = network(client, admin, 1, "M"), network(client, admin, 1, "F")
    _many_tickets(many.customer_id, 205)
    _many_tickets(few.customer_id, 3)
    user("staff.support", role="support")
    assert sign_in(client, "staff.support").status_code == 303
    base = f"/ui/customers/{many.customer_id}/tickets"

    def read(path: str) -> tuple[Any, int]:
        with count_queries() as counter:
            page = client.get(path)
        assert page.status_code == 200, path
        return page, int(counter.count)

    read(base)  # the user is cached from then on
    # when the first page is read
    first, first_count = read(base)
    # then it holds 200 rows, the open ones first, with a link to the next page only
    assert len(ROW.findall(first.text)) == portal_views.PAGE_SIZE == 200
    assert "5 open tickets" in first.text
    assert first.text.index("Ticket 0204") < first.text.index("Ticket 0199")
    assert f'rel="next" href="{base}?page=2"' in first.text and 'rel="prev"' not in first.text
    # and the second the 5 rows left, with a link back, and the same open count
    second, second_count = read(f"{base}?page=2")
    assert len(ROW.findall(second.text)) == 5 and "Ticket 0000" in second.text
    assert f'rel="prev" href="{base}?page=1"' in second.text and 'rel="next"' not in second.text
    assert "5 open tickets" in second.text
    # with as many queries as a list of three, which needs no paging links
    short, short_count = read(f"/ui/customers/{few.customer_id}/tickets")
    assert 'class="pager"' not in short.text
    assert first_count == second_count == short_count
    # a page that is no page number is a 400 page
    for bad in ("0", "-1", "x", "99999999"):
        assert client.get(f"{base}?page={bad}").status_code == 400, bad


def test_bills_and_surveys_page_the_same_way(
    client: TestClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given pages of two rows (the 200 of the portal take minutes to bill), five bills
    # and five surveys of one customer
    monkeypatch.setattr(portal_views, "PAGE_SIZE", 2)
    five = billed(5, 1, "Five AG")
    for n in range(5):
        survey(five.customer_id, f"five-{n}")
    user("staff.billing", role="admin")
    assert sign_in(client, "staff.billing").status_code == 303
    for path, row, link in (
        ("bills", '<tr class="bill ', "/bills/"),
        ("surveys", '<tr class="survey ', "/surveys/"),
    ):
        base = f"/ui/customers/{five.customer_id}/{path}"
        seen: list[str] = []
        for number, rows in ((1, 2), (2, 2), (3, 1)):
            page = client.get(f"{base}?page={number}")
            assert page.status_code == 200
            assert page.text.count(row) == rows, (path, number)
            assert ('rel="next"' in page.text) == (number < 3)
            assert ('rel="prev"' in page.text) == (number > 1)
            seen += re.findall(rf'href="/ui/customers/[^/"]+{link}([^/"#?]+)"', page.text)
        # every row once, on one page
        assert len(set(seen)) == 5, path
    # the bills' open total is the customer's, not the page's
    first = client.get(f"/ui/customers/{five.customer_id}/bills")
    assert "Open in total" in first.text
