"""The quote pages over plain HTTP (seed 5.2, issue 11): the staff quote builder with
materials, prices, the cost estimate and the four-eyes approval, versions side by
side, the PDF; and a customer's quotes in the portal, accepted with the education
acknowledged, scoped as the API scopes them."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from etomcrm.customer_interface.models import PartyInteractionRow
from etomcrm.db import session_scope
from etomcrm.selling.models import QuoteRow
from etomcrm.selling.quote_costs import cost_estimate
from etomcrm.selling.quotes import submit_quote
from tests import factories
from tests.conftest import TokenFactory
from tests.quote_helpers import QUOTES, SALES, Bmw, draft, load_bmw
from tests.test_fulfillment_flow import complete_contract_data
from tests.test_pages_portal import csrf_of, sign_in, user

ACCESS, ROUTER, INSTALLATION = "Site access 100 Mbit/s", "Managed router", "Installation"


@pytest.fixture
def bmw(db_url: str) -> Bmw:
    return load_bmw()


def _builder(bmw: Bmw, html: str, **fields: Any) -> dict[str, Any]:
    """The builder's form as a browser posts it: the CSRF token plus ``fields``."""
    return {"csrf_token": csrf_of(html), "discount": "0", "months": "36", **fields}


def _quote_id(location: str) -> str:
    found = re.search(r"/quotes/([^/#?]+)$", location)
    assert found, location
    return found.group(1)


def _stored(quote_id: str) -> dict[str, Any]:
    with session_scope() as session:
        row = session.get(QuoteRow, quote_id)
        assert row is not None
        return dict(row.body)


def _sla_per_site(body: dict[str, Any]) -> dict[str, str]:
    return {
        item["product"]["place"][0]["id"]: next(
            c["value"] for c in item["product"]["productCharacteristic"] if c["name"] == "slaLevel"
        )
        for item in body["quoteItem"]
    }


def test_sales_builds_a_quote_of_sites_by_offerings_with_an_sla_level_per_site(
    client: TestClient, bmw: Bmw
) -> None:
    # given Anna of sales signed in, and the builder for BMW
    user("anna.sales", role="sales")
    assert sign_in(client, "anna.sales").status_code == 303
    form = client.get(f"/ui/customers/{bmw.customer_id}/quotes/new")
    assert form.status_code == 200, form.text
    first, second = bmw.site_ids[:2]
    offerings = bmw.offerings
    # when she quotes access, router and installation with Gold at the headquarters and
    # access with Silver at the second site, 5 % off for 24 months
    response = client.post(
        f"/ui/customers/{bmw.customer_id}/quotes",
        data=_builder(
            bmw,
            form.text,
            discount="5",
            months="24",
            **{
                f"o-{first}": [offerings[ACCESS], offerings[ROUTER], offerings[INSTALLATION]],
                f"sla-{first}": offerings["SLA Gold"],
                f"o-{second}": [offerings[ACCESS]],
                f"sla-{second}": offerings["SLA Silver"],
            },
        ),
        follow_redirects=False,
    )
    # then the quote is drafted and its page shows it per site
    assert response.status_code == 303, response.text
    quote_id = _quote_id(response.headers["location"])
    body = _stored(quote_id)
    assert _sla_per_site(body) == {first: "SLA Gold", second: "SLA Silver"}
    assert body["discountPercent"] == 5 and body["contractDurationMonths"] == 24
    page = client.get(response.headers["location"])
    assert page.status_code == 200, page.text
    text = page.text
    assert "SLA level: SLA Gold" in text and "SLA level: SLA Silver" in text
    # with the router's stock answer and ready-by date
    assert "in stock" in text and "materials ready by" in text
    # the prices (429 a month less 5 %: 407.55) and the internal estimate with its margin
    assert "407.55 EUR" in text
    assert "Internal cost estimate" in text and 'id="margin"' in text
    assert f'href="/ui/customers/{bmw.customer_id}/quotes/{quote_id}/document.pdf"' in text
    # and the quote is in the customer's list
    listing = client.get(f"/ui/customers/{bmw.customer_id}/quotes")
    assert f'href="/ui/customers/{bmw.customer_id}/quotes/{quote_id}"' in listing.text


def test_bad_builder_input_is_shown_again_with_each_error_beside_its_field(
    client: TestClient, bmw: Bmw
) -> None:
    user("anna.sales", role="sales")
    assert sign_in(client, "anna.sales").status_code == 303
    form = client.get(f"/ui/customers/{bmw.customer_id}/quotes/new")
    first, second = bmw.site_ids[:2]
    # when the discount is no number, the term is zero and the second site has an SLA
    # level but nothing to apply it to
    response = client.post(
        f"/ui/customers/{bmw.customer_id}/quotes",
        data=_builder(
            bmw,
            form.text,
            discount="lots",
            months="0",
            description="Dealer extranet, phase 1",
            **{
                f"o-{first}": [bmw.offerings[ACCESS]],
                f"sla-{second}": bmw.offerings["SLA Gold"],
            },
        ),
        follow_redirects=False,
    )
    # then the builder comes back with 400, each error beside its field
    assert response.status_code == 400
    text = response.text
    assert 'id="discount-error"' in text and 'id="months-error"' in text
    assert "An SLA level needs an offering at the site." in text
    # and nothing typed or chosen is lost
    assert 'value="lots"' in text and "Dealer extranet, phase 1" in text
    assert re.search(rf'name="o-{first}" value="{bmw.offerings[ACCESS]}" checked', text)
    assert re.search(rf'<option value="{bmw.offerings["SLA Gold"]}" selected', text)
    with session_scope() as session:
        assert session.scalars(select(QuoteRow.id)).all() == []
    # and a form without a choice at all says so
    empty = client.post(
        f"/ui/customers/{bmw.customer_id}/quotes",
        data=_builder(bmw, form.text),
        follow_redirects=False,
    )
    assert empty.status_code == 400 and 'id="lines-error"' in empty.text


def test_the_every_site_row_fills_each_site_to_adjust_before_drafting(
    client: TestClient, bmw: Bmw
) -> None:
    user("anna.sales", role="sales")
    assert sign_in(client, "anna.sales").status_code == 303
    form = client.get(f"/ui/customers/{bmw.customer_id}/quotes/new")
    response = client.post(
        f"/ui/customers/{bmw.customer_id}/quotes",
        data=_builder(
            bmw,
            form.text,
            do="apply",
            **{"o-all": [bmw.offerings[ACCESS]], "sla-all": bmw.offerings["SLA Silver"]},
        ),
        follow_redirects=False,
    )
    # then every one of the 66 sites has access and SLA Silver chosen, nothing drafted
    assert response.status_code == 200
    for site_id in bmw.site_ids:
        assert f'name="o-{site_id}" value="{bmw.offerings[ACCESS]}" checked' in response.text
    assert response.text.count(f'<option value="{bmw.offerings["SLA Silver"]}" selected') == 67
    with session_scope() as session:
        assert session.scalars(select(QuoteRow.id)).all() == []


def test_a_discount_above_the_threshold_waits_for_a_second_persons_approval(
    client: TestClient, bmw: Bmw
) -> None:
    # given Anna drafted a quote with 15 % off (above the 10 % threshold) and submitted it
    user("anna.sales", role="sales")
    user("bernd.sales", role="sales")
    assert sign_in(client, "anna.sales").status_code == 303
    form = client.get(f"/ui/customers/{bmw.customer_id}/quotes/new")
    drafted = client.post(
        f"/ui/customers/{bmw.customer_id}/quotes",
        data=_builder(
            bmw, form.text, discount="15", **{f"o-{bmw.site_ids[0]}": [bmw.offerings[ACCESS]]}
        ),
        follow_redirects=False,
    )
    assert drafted.status_code == 303, drafted.text
    quote_id = _quote_id(drafted.headers["location"])
    page = client.get(drafted.headers["location"])
    assert "Submit for discount approval" in page.text
    submitted = client.post(
        f"/ui/customers/{bmw.customer_id}/quotes/{quote_id}/action",
        data={"csrf_token": csrf_of(page.text), "action": "submit"},
        follow_redirects=False,
    )
    assert submitted.status_code == 303
    assert _stored(quote_id)["state"] == "pending"
    # when Anna herself tries to approve it
    page = client.get(submitted.headers["location"])
    assert "You set this discount" in page.text and "Approve the discount" not in page.text
    refused = client.post(
        f"/ui/customers/{bmw.customer_id}/quotes/{quote_id}/action",
        data={"csrf_token": csrf_of(page.text), "action": "approve"},
    )
    # then she is refused (four eyes) and it still waits
    assert refused.status_code == 403 and "four-eyes" in refused.text
    assert _stored(quote_id)["state"] == "pending"
    # when Bernd, another sales manager, opens his home page
    assert sign_in(client, "bernd.sales").status_code == 303
    home = client.get("/ui/")
    # then the work list leads to the approvals and to the quote's approval
    assert 'href="/ui/quotes/approvals"' in home.text
    assert f"/quotes/{quote_id}#approval" in home.text
    waiting = client.get("/ui/quotes/approvals")
    assert waiting.status_code == 200 and quote_id in waiting.text
    page = client.get(f"/ui/customers/{bmw.customer_id}/quotes/{quote_id}")
    assert "Waiting for approval." in page.text and "Approve the discount" in page.text
    approved = client.post(
        f"/ui/customers/{bmw.customer_id}/quotes/{quote_id}/action",
        data={"csrf_token": csrf_of(page.text), "action": "approve"},
        follow_redirects=False,
    )
    # and his approval makes the quote ready for the customer, naming him
    assert approved.status_code == 303
    assert _stored(quote_id)["state"] == "approved"
    after = client.get(approved.headers["location"])
    assert "Approved by" in after.text


def test_a_revision_is_a_new_version_shown_beside_the_old_one(client: TestClient, bmw: Bmw) -> None:
    # given a quote for two sites with SLA Gold
    quote = draft(bmw, sites=2)
    user("anna.sales", role="sales")
    assert sign_in(client, "anna.sales").status_code == 303
    edit = client.get(f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}/edit")
    assert edit.status_code == 200
    first, second, third = bmw.site_ids[:3]
    # when she adds a third site with Silver and gives 3 %
    offerings = [bmw.offerings[ACCESS], bmw.offerings[ROUTER], bmw.offerings[INSTALLATION]]
    response = client.post(
        f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}/revise",
        data=_builder(
            bmw,
            edit.text,
            discount="3",
            **{
                f"o-{first}": offerings,
                f"sla-{first}": bmw.offerings["SLA Gold"],
                f"o-{second}": offerings,
                f"sla-{second}": bmw.offerings["SLA Gold"],
                f"o-{third}": [bmw.offerings[ACCESS]],
                f"sla-{third}": bmw.offerings["SLA Silver"],
            },
        ),
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert _stored(quote["id"])["version"] == "2"
    # then the versions stand side by side, with what changed
    versions = client.get(f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}/versions")
    assert versions.status_code == 200, versions.text
    text = versions.text
    assert "Version 1" in text and "Version 2" in text
    assert "0 %" in text and "3 %" in text
    assert "SLA Silver" in text and 'class="amount changed"' in text
    assert "Margin" in text
    # and the old version is readable as it was, but not listed as a quote of its own
    old = client.get(f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}-v1")
    assert old.status_code == 200 and "This is an earlier version" in old.text
    listing = client.get(f"/ui/customers/{bmw.customer_id}/quotes").text
    assert f'id="quote-{quote["id"]}"' in listing and f"{quote['id']}-v1" not in listing


def test_a_customer_accepts_its_quote_with_the_education_acknowledged(
    client: TestClient, auth: TokenFactory, bmw: Bmw
) -> None:
    # given an approved quote for BMW whose contract data is complete, and Katrin's user
    quote = draft(bmw)
    with session_scope() as session:
        submit_quote(session, SALES, quote["id"])
    complete_contract_data(client, auth("admin"), bmw.customer_id)
    user("katrin.weber", customer_id=bmw.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    # when she opens her quotes and the quote
    listing = client.get(f"/ui/customers/{bmw.customer_id}/quotes")
    assert listing.status_code == 200 and quote["id"] in listing.text
    page = client.get(f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}")
    # then she reads the effort and risks per site, never the provider's costs
    assert page.status_code == 200
    assert "Lead times, effort, prerequisites and risks per site" in page.text
    assert "Internal cost estimate" not in page.text and "margin" not in page.text.lower()
    # when she accepts without acknowledging them
    refused = client.post(
        f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}/decision",
        data={"csrf_token": csrf_of(page.text), "answer": "accept"},
    )
    # then the page says what is missing beside the box, and nothing is decided
    assert refused.status_code == 400
    assert 'id="acknowledged-error"' in refused.text
    assert _stored(quote["id"])["state"] == "approved"
    # when she acknowledges them and accepts
    accepted = client.post(
        f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}/decision",
        data={"csrf_token": csrf_of(page.text), "answer": "accept", "acknowledged": "yes"},
        follow_redirects=False,
    )
    # then the quote is accepted and the education recorded, through the portal
    assert accepted.status_code == 303, accepted.text
    assert _stored(quote["id"])["state"] == "accepted"
    with session_scope() as session:
        channels = [
            body["channel"][0]["id"]
            for body in session.scalars(
                select(PartyInteractionRow.body).where(
                    PartyInteractionRow.at_type == "CustomerEducation"
                )
            )
        ]
    assert channels == ["portal"]


def test_an_acceptance_the_rules_refuse_leaves_no_education_behind(
    client: TestClient, bmw: Bmw
) -> None:
    # given an approved quote, but BMW's contract data is not complete
    quote = draft(bmw)
    with session_scope() as session:
        submit_quote(session, SALES, quote["id"])
    user("katrin.weber", customer_id=bmw.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    page = client.get(f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}")
    # when Katrin accepts with the brief acknowledged
    response = client.post(
        f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}/decision",
        data={"csrf_token": csrf_of(page.text), "answer": "accept", "acknowledged": "yes"},
    )
    # then she is told why, as the API tells it, and nothing is kept
    assert response.status_code == 409 and "not complete enough" in response.text
    assert _stored(quote["id"])["state"] == "approved"
    with session_scope() as session:
        assert (
            session.scalars(
                select(PartyInteractionRow.id).where(
                    PartyInteractionRow.at_type == "CustomerEducation"
                )
            ).all()
            == []
        )


def test_another_customers_user_gets_404_for_bmws_quotes(
    client: TestClient, admin: dict[str, str], bmw: Bmw
) -> None:
    quote = draft(bmw)
    other = factories.customer(client, admin)
    user("eva.other", customer_id=other["id"])
    assert sign_in(client, "eva.other").status_code == 303
    for path in (
        f"/ui/customers/{bmw.customer_id}/quotes",
        f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}",
        f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}/document.pdf",
        f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}/versions",
        f"/ui/customers/{other['id']}/quotes/{quote['id']}",
    ):
        assert client.get(path).status_code == 404, path
    # and a customer's user drafts no quote, not even for itself
    assert client.get(f"/ui/customers/{other['id']}/quotes/new").status_code == 403


def test_the_quote_pdf_on_the_page_and_at_the_tmf648_api(
    client: TestClient, auth: TokenFactory, bmw: Bmw
) -> None:
    quote = draft(bmw, discount="5")
    user("katrin.weber", customer_id=bmw.customer_id)
    assert sign_in(client, "katrin.weber").status_code == 303
    page_pdf = client.get(f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}/document.pdf")
    assert page_pdf.status_code == 200
    assert page_pdf.headers["content-type"] == "application/pdf"
    assert page_pdf.content.startswith(b"%PDF")
    api_pdf = client.get(
        f"{QUOTES}/{quote['id']}/document?language=de",
        headers=auth("customer", customer_id=bmw.customer_id),
    )
    assert api_pdf.status_code == 200 and api_pdf.content.startswith(b"%PDF")
    other = factories.customer(client, auth("admin"))
    assert (
        client.get(
            f"{QUOTES}/{quote['id']}/document", headers=auth("customer", customer_id=other["id"])
        ).status_code
        == 404
    )
    assert (
        client.get(
            f"{QUOTES}/{quote['id']}/document?language=fr", headers=auth("sales")
        ).status_code
        == 400
    )


def test_the_cost_estimate_adds_purchase_labour_and_line_costs(bmw: Bmw) -> None:
    # given one site with access 100 (429/month), a router (690), installation (950)
    # and SLA Gold (149/month), 36 months, no discount
    quote = draft(bmw, sites=1)
    # when the estimate is made
    with session_scope() as session:
        estimate = cost_estimate(session, quote)
    # then: the router's purchase (415) and an hour mounting it (85), installation's
    # four hours (340), two hours patching the access (170); 45 % of each monthly charge
    assert estimate.one_time_cost == Decimal("1010.00")
    assert estimate.monthly_cost == Decimal("260.10")  # 193.05 + 67.05
    assert estimate.revenue == Decimal("1640.00") + Decimal("578.00") * 36
    assert estimate.margin == estimate.revenue - Decimal("1010.00") - Decimal("260.10") * 36
    assert estimate.margin_percent == Decimal("53.8")  # 12,074.40 of 22,448.00
    assert estimate.not_costed == []


def test_customer_360_links_to_the_quote_pages_which_speak_german_too(
    client: TestClient, bmw: Bmw
) -> None:
    quote = draft(bmw)
    user("anna.sales", role="sales")
    assert sign_in(client, "anna.sales").status_code == 303
    page = client.get(f"/ui/customers/{bmw.customer_id}")
    assert f'href="/ui/customers/{bmw.customer_id}/quotes/{quote["id"]}"' in page.text
    assert f'href="/ui/customers/{bmw.customer_id}/quotes"' in page.text
    # and the quote pages speak the browser's German
    german = {"Accept-Language": "de-DE,de;q=0.9"}
    listing = client.get(f"/ui/customers/{bmw.customer_id}/quotes", headers=german)
    assert "Angebote für BMW AG" in listing.text and "Neues Angebot" in listing.text
    one = client.get(f"/ui/customers/{bmw.customer_id}/quotes/{quote['id']}", headers=german)
    assert "Interne Kostenschätzung" in one.text and "SLA-Stufe" in one.text


def test_the_quote_pages_need_as_many_queries_for_sixty_sites_as_for_two(
    client: TestClient, bmw: Bmw, count_queries: Callable[[], Any]
) -> None:
    small, large = draft(bmw, sites=2), draft(bmw, sites=60)
    user("anna.sales", role="sales")
    assert sign_in(client, "anna.sales").status_code == 303

    def queries(path: str) -> int:
        with count_queries() as counter:
            page = client.get(path)
        assert page.status_code == 200, page.text
        return int(counter.count)

    base = f"/ui/customers/{bmw.customer_id}/quotes"
    queries(f"{base}/{small['id']}")  # the session's user is looked up once, then cached
    for suffix in ("", "/versions", "/edit"):
        assert queries(f"{base}/{small['id']}{suffix}") == queries(f"{base}/{large['id']}{suffix}")
    assert queries(f"{base}/{large['id']}") <= 14
    assert queries(base) <= 3


def test_staff_find_a_quote_by_its_id_in_the_search(client: TestClient, bmw: Bmw) -> None:
    # given a quote for BMW
    quote = draft(bmw)
    user("anna.sales", role="sales")
    assert sign_in(client, "anna.sales").status_code == 303
    # when sales search its id
    found = client.get("/ui/search", params={"q": quote["id"]})
    # then the quote is found, linked to its page
    assert found.status_code == 200
    assert f'href="/ui/customers/{bmw.customer_id}/quotes/{quote["id"]}"' in found.text
