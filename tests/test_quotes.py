"""3.4.3 Negotiate the sale: TMF648 quotes with prices, materials, versions and approval."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from etomcrm.core import resources
from etomcrm.core.errors import Conflict, InvalidRequest, UnknownReference
from etomcrm.db import session_scope
from etomcrm.selling.events import QuoteDecided
from etomcrm.selling.quotes import (
    QUOTE_KIND,
    QuoteLine,
    archive_id,
    draft_quote,
    line_amounts,
    quote_totals,
    revise_quote,
    submit_quote,
)
from tests.conftest import Handled, TokenFactory
from tests.factories import CATALOG, customer, post, site
from tests.quote_helpers import MANAGER, QUOTES, SALES, Bmw, action, draft, educate, load_bmw
from tests.test_fulfillment_flow import complete_contract_data

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"


@pytest.fixture
def bmw(db_url: str) -> Bmw:
    return load_bmw()


def _characteristic(item: dict[str, Any], name: str) -> Any:
    return next(c["value"] for c in item["product"]["productCharacteristic"] if c["name"] == name)


def _approved(bmw: Bmw) -> dict[str, Any]:
    quote = draft(bmw)
    with session_scope() as session:
        return submit_quote(session, SALES, quote["id"])


def test_draft_prices_every_site_and_offering_from_the_catalog(
    client: TestClient, auth: TokenFactory, bmw: Bmw
) -> None:
    # given two BMW sites quoted with 100 Mbit/s, a managed router, installation, SLA Gold
    quote = draft(bmw, sites=2)
    # when sales reads the quote through TMF648
    response = client.get(f"{QUOTES}/{quote['id']}", headers=auth("sales"))
    # then there is one item per site and offering, each tied to its site
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "inProgress" and body["version"] == "1"
    assert len(body["quoteItem"]) == 8  # 3 offerings and the SLA level at 2 sites
    first = body["quoteItem"][0]
    assert first["product"]["place"][0] == {
        "id": bmw.site_ids[0],
        "name": first["product"]["place"][0]["name"],
        "role": "installationAddress",
        "@referredType": "GeographicSite",
    }
    assert _characteristic(first, "slaLevel") == "SLA Gold"
    assert first["product"]["productTerm"][0]["duration"] == {"amount": 36, "units": "month"}
    router = next(i for i in body["quoteItem"] if i["productOffering"]["name"] == "Managed router")
    assert _characteristic(router, "materialAvailability") == "inStock"
    assert _characteristic(router, "materialLeadTimeDays") == 0
    # and the totals are the catalog's prices: (429 + 149) a month and (690 + 950) once per site
    assert quote_totals(body) == {"recurring": Decimal("1156"), "oneTime": Decimal("3280")}
    recurring = next(p for p in body["quoteTotalPrice"] if p["priceType"] == "recurring")
    assert recurring["recurringChargePeriod"] == "month"
    end = body["validFor"]["endDateTime"]
    assert end > body["validFor"]["startDateTime"]


def test_routers_beyond_stock_wait_for_replenishment(client: TestClient, bmw: Bmw) -> None:
    # given 40 managed routers in stock and 45 sites that each need one
    quote = draft(bmw, sites=45, offerings=("Managed router",), sla=None)
    # then the first 40 come from stock and the last 5 wait the 21 days of replenishment
    availability = [_characteristic(i, "materialAvailability") for i in quote["quoteItem"]]
    assert availability == ["inStock"] * 40 + ["replenishment"] * 5
    assert _characteristic(quote["quoteItem"][44], "materialLeadTimeDays") == 21
    assert _characteristic(quote["quoteItem"][0], "slaLevel") == "none"


def test_lines_and_total_are_exact_for_awkward_amounts(
    client: TestClient, admin: dict[str, str], bmw: Bmw
) -> None:
    # given prices that do not divide evenly and a discount of 12.5 %
    monthly = post(
        client,
        f"{CATALOG}/productOfferingPrice",
        {
            "name": "Odd monthly",
            "priceType": "recurring",
            "price": {"unit": "EUR", "value": 33.33},
            "recurringChargePeriodType": "month",
        },
        admin,
    )
    once = post(
        client,
        f"{CATALOG}/productOfferingPrice",
        {"name": "Odd once", "priceType": "oneTime", "price": {"unit": "EUR", "value": 0.07}},
        admin,
    )
    offering = post(
        client,
        f"{CATALOG}/productOffering",
        {
            "name": "Odd offering",
            "lifecycleStatus": "Active",
            "productOfferingPrice": [{"id": monthly["id"]}, {"id": once["id"]}],
        },
        admin,
    )
    lines = [
        QuoteLine(s, offering["id"], quantity=q) for q, s in enumerate(bmw.site_ids[:7], start=1)
    ]
    # when the quote is drafted
    with session_scope() as session:
        quote = draft_quote(
            session,
            SALES,
            customer_id=bmw.customer_id,
            items=lines,
            sla_offering_id=None,
            discount_percent=Decimal("12.5"),
        )
    body = client.get(f"{QUOTES}/{quote['id']}", headers=admin).json()
    # then each line is list price times quantity less 12.5 %, in cents rounded half up
    first = body["quoteItem"][0]["quoteItemPrice"][0]
    assert Decimal(str(first["price"]["dutyFreeAmount"]["value"])) == Decimal("29.16")  # 33.33-4.17
    assert first["priceAlteration"][0]["price"]["percentage"] == 12.5
    third = body["quoteItem"][2]["quoteItemPrice"][0]
    assert Decimal(str(third["price"]["dutyFreeAmount"]["value"])) == Decimal(
        "87.49"
    )  # 99.99-12.50
    # and the sum of the lines is the total, exactly, per price type
    lines_by_type = line_amounts(body)
    totals = quote_totals(body)
    assert sum(lines_by_type["recurring"], Decimal(0)) == totals["recurring"]
    assert sum(lines_by_type["oneTime"], Decimal(0)) == totals["oneTime"]
    assert totals["recurring"] == Decimal("816.58")
    assert totals["oneTime"] == Decimal("1.71")


def test_revision_makes_version_2_and_keeps_version_1_readable(
    client: TestClient, auth: TokenFactory, bmw: Bmw
) -> None:
    # given an approved version 1 at full price
    quote = _approved(bmw)
    # when sales revises it with a 5 % discount and SLA Silver
    with session_scope() as session:
        revised = revise_quote(
            session,
            SALES,
            quote["id"],
            discount_percent=Decimal(5),
            sla_offering_id=bmw.offerings["SLA Silver"],
        )
    # then the quote keeps its id, is version 2 and starts again inProgress
    assert revised["id"] == quote["id"] and revised["version"] == "2"
    assert revised["state"] == "inProgress"
    assert quote_totals(revised)["recurring"] == Decimal("946.20")  # 2 * (429 + 69) * 0.95
    assert revised["previousVersion"] == [{"id": archive_id(quote["id"], 1), "version": "1"}]
    # and version 1 stays readable as it was, and cannot be changed
    sales = auth("sales")
    old = client.get(f"{QUOTES}/{archive_id(quote['id'], 1)}", headers=sales).json()
    assert old["version"] == "1" and old["state"] == "approved"
    assert old["supersededBy"] == {"id": quote["id"], "version": "2"}
    assert quote_totals(old)["recurring"] == Decimal("1156")
    response = client.patch(f"{QUOTES}/{old['id']}", json={"state": "accepted"}, headers=sales)
    assert response.status_code == 409 and "change the current quote" in response.json()["message"]


def test_patch_of_items_through_tmf_is_a_revision(
    client: TestClient, auth: TokenFactory, bmw: Bmw
) -> None:
    quote = draft(bmw, sites=1)
    sales = auth("sales")
    items = [
        {
            "productOffering": {"id": bmw.offerings["Site access 1000 Mbit/s"]},
            "product": {"place": [{"id": bmw.site_ids[0], "role": "installationAddress"}]},
            "quoteItemPrice": [
                {"priceType": "recurring", "price": {"dutyFreeAmount": {"value": 1}}}
            ],
        }
    ]
    response = client.patch(f"{QUOTES}/{quote['id']}", json={"quoteItem": items}, headers=sales)
    assert response.status_code == 200, response.text
    body = response.json()
    # the price a client sends is replaced by the catalog's
    assert body["version"] == "2" and quote_totals(body)["recurring"] == Decimal("1190")


def test_discount_above_threshold_needs_a_second_person(
    client: TestClient, auth: TokenFactory, bmw: Bmw
) -> None:
    # given a sales person who drafts a quote with 15 % off (above the 10 % threshold)
    anna, bernd = auth("sales"), auth("sales")
    payload = {
        "relatedParty": [{"id": bmw.customer_id, "@referredType": "Customer", "role": "customer"}],
        "discountPercent": 15,
        "quoteItem": [
            {
                "productOffering": {"id": bmw.offerings["Site access 100 Mbit/s"]},
                "product": {
                    "place": [
                        {
                            "id": bmw.site_ids[0],
                            "role": "installationAddress",
                            "@referredType": "GeographicSite",
                        }
                    ]
                },
            }
        ],
    }
    quote = post(client, QUOTES, payload, anna)
    assert quote["authorization"][0]["state"] == "requested"
    # when she marks it ready, it waits for approval
    assert action(client, quote["id"], "submit", anna).json()["state"] == "pending"
    # then she cannot approve it herself
    response = action(client, quote["id"], "approve", anna)
    assert response.status_code == 403
    assert "cannot approve it too" in response.json()["message"]
    # and a marketing person cannot approve at all
    assert action(client, quote["id"], "approve", auth("marketing")).status_code == 403
    # but a second sales manager can
    approved = action(client, quote["id"], "approve", bernd)
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"
    assert approved.json()["authorization"][0]["state"] == "approved"


def _tmf648_item(bmw: Bmw, *percentages: float) -> dict[str, Any]:
    return {
        "productOffering": {"id": bmw.offerings["Site access 100 Mbit/s"]},
        "product": {
            "place": [
                {
                    "id": bmw.site_ids[0],
                    "role": "installationAddress",
                    "@referredType": "GeographicSite",
                }
            ]
        },
        "quoteItemPrice": [
            {
                "priceType": "recurring",
                "priceAlteration": [
                    {"name": "Discount", "priceType": "recurring", "price": {"percentage": p}}
                ],
            }
            for p in percentages
        ],
    }


def test_a_tmf648_price_alteration_percentage_is_the_quotes_discount(
    client: TestClient, auth: TokenFactory, bmw: Bmw
) -> None:
    # given a sales person who states 15 % off as TMF648 does: a priceAlteration
    anna, bernd = auth("sales"), auth("sales")
    party = [{"id": bmw.customer_id, "@referredType": "Customer", "role": "customer"}]
    payload = {"relatedParty": party, "quoteItem": [_tmf648_item(bmw, 15)]}
    # when she drafts the quote
    quote = post(client, QUOTES, payload, anna)
    # then the discount is 15 %, taken off every line, and needs a second person
    assert quote["discountPercent"] == 15
    undiscounted = post(
        client, QUOTES, {"relatedParty": party, "quoteItem": [_tmf648_item(bmw)]}, anna
    )
    assert quote_totals(quote)["recurring"] == (
        quote_totals(undiscounted)["recurring"] * Decimal("0.85")
    ).quantize(Decimal("0.01"))
    line = quote["quoteItem"][0]["quoteItemPrice"][0]
    assert line["priceAlteration"][0]["price"]["percentage"] == 15
    assert quote["authorization"][0]["state"] == "requested"
    assert action(client, quote["id"], "submit", anna).json()["state"] == "pending"
    assert action(client, quote["id"], "approve", anna).status_code == 403
    assert action(client, quote["id"], "approve", bernd).json()["state"] == "approved"
    # and a revision that states 5 % in its items is priced with 5 %, no approval needed
    revised = client.patch(
        f"{QUOTES}/{undiscounted['id']}", json={"quoteItem": [_tmf648_item(bmw, 5)]}, headers=anna
    )
    assert revised.status_code == 200, revised.text
    assert revised.json()["discountPercent"] == 5 and "authorization" not in revised.json()
    # and percentages that disagree are refused with what to do
    mixed = client.post(
        QUOTES, json={"relatedParty": party, "quoteItem": [_tmf648_item(bmw, 5, 20)]}, headers=anna
    )
    assert mixed.status_code == 400 and "one discount" in mixed.json()["message"]
    both = client.post(
        QUOTES,
        json={"relatedParty": party, "discountPercent": 10, "quoteItem": [_tmf648_item(bmw, 20)]},
        headers=anna,
    )
    assert both.status_code == 400 and "disagree" in both.json()["message"]


def test_going_straight_to_approved_past_a_large_discount_is_refused(bmw: Bmw) -> None:
    quote = draft(bmw, sites=1, discount="20")
    with session_scope() as session, pytest.raises(Conflict, match="second person"):
        resources.patch(session, QUOTE_KIND, MANAGER, quote["id"], {"state": "approved"})


def test_without_a_large_discount_submit_approves_and_illegal_moves_name_the_allowed(
    client: TestClient, auth: TokenFactory, bmw: Bmw
) -> None:
    quote = draft(bmw, sites=1, discount="10")  # at the threshold, not above it
    sales = auth("sales")
    response = client.patch(f"{QUOTES}/{quote['id']}", json={"state": "accepted"}, headers=sales)
    assert response.status_code == 409
    assert response.json()["code"] == "ILLEGAL_TRANSITION"
    assert "allowed from 'inProgress': approved, cancelled, pending" in response.json()["message"]
    assert action(client, quote["id"], "submit", sales).json()["state"] == "approved"


def test_customer_accepts_only_after_education_and_the_flow_is_told(
    client: TestClient, auth: TokenFactory, bmw: Bmw, handled: Handled
) -> None:
    decided: list[QuoteDecided] = handled(QuoteDecided)
    quote = _approved(bmw)
    complete_contract_data(client, auth("admin"), bmw.customer_id)
    bmw_user = auth("customer", customer_id=bmw.customer_id)
    # when BMW accepts before anyone explained the effort and risks
    response = client.patch(f"{QUOTES}/{quote['id']}", json={"state": "accepted"}, headers=bmw_user)
    # then it is refused, saying why
    assert response.status_code == 409
    assert "not been educated on version 1" in response.json()["message"]
    assert decided == []
    # when sales records the education and BMW accepts again
    educate(client, quote["id"], auth("sales"))
    response = client.patch(f"{QUOTES}/{quote['id']}", json={"state": "accepted"}, headers=bmw_user)
    # then the quote is accepted and the pre-sale flow is woken once it is committed
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "accepted"
    assert "effectiveQuoteCompletionDate" in response.json()
    assert decided == [QuoteDecided(quote["id"], bmw.customer_id, "accepted")]
    # and an accepted quote is final
    response = action(client, quote["id"], "cancel", auth("sales"))
    assert response.status_code == 409 and "accepted" in response.json()["message"]


def test_decision_stands_when_no_flow_can_be_woken(
    client: TestClient, auth: TokenFactory, bmw: Bmw
) -> None:
    # given no flow engine running in this process
    quote = _approved(bmw)
    # when the customer rejects the quote through the action route
    bmw_user = auth("customer", customer_id=bmw.customer_id)
    response = action(client, quote["id"], "reject", bmw_user, reason="too expensive")
    # then the rejection is recorded with its reason
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "rejected"
    assert response.json()["note"][-1]["text"] == "Rejected: too expensive"
    read = client.get(f"{QUOTES}/{quote['id']}", headers=bmw_user).json()
    assert read["state"] == "rejected"


def test_education_on_version_1_does_not_cover_version_2(
    client: TestClient, auth: TokenFactory, bmw: Bmw
) -> None:
    quote = _approved(bmw)
    sales = auth("sales")
    educate(client, quote["id"], sales)
    with session_scope() as session:
        revise_quote(session, SALES, quote["id"], discount_percent=Decimal(3))
        submit_quote(session, SALES, quote["id"])
    response = action(client, quote["id"], "accept", auth("customer", customer_id=bmw.customer_id))
    assert response.status_code == 409 and "version 2" in response.json()["message"]


def test_a_customer_sees_only_its_own_quotes_and_may_only_decide(
    client: TestClient, auth: TokenFactory, admin: dict[str, str], bmw: Bmw
) -> None:
    # given a quote for BMW and one for another customer
    bmw_quote = draft(bmw, sites=1)
    other = customer(client, admin, "Audi AG")
    other_site = site(client, admin, other["id"], "Ingolstadt")
    with session_scope() as session:
        other_quote = draft_quote(
            session,
            SALES,
            customer_id=other["id"],
            items=[QuoteLine(other_site["id"], bmw.offerings["Site access 10 Mbit/s"])],
            sla_offering_id=None,
        )
    bmw_user = auth("customer", customer_id=bmw.customer_id)
    # then BMW lists only its own quote
    listed = client.get(QUOTES, headers=bmw_user)
    assert [q["id"] for q in listed.json()] == [bmw_quote["id"]]
    # and another customer's quote does not exist for BMW
    assert client.get(f"{QUOTES}/{other_quote['id']}", headers=bmw_user).status_code == 404
    assert action(client, other_quote["id"], "accept", bmw_user).status_code == 404
    # and BMW cannot change the price
    response = client.patch(
        f"{QUOTES}/{bmw_quote['id']}", json={"discountPercent": 50}, headers=bmw_user
    )
    assert response.status_code == 403 and "discountPercent" in response.json()["message"]
    # nor cancel or create quotes
    assert action(client, bmw_quote["id"], "cancel", bmw_user).status_code == 403
    assert client.post(QUOTES, json={"quoteItem": [{}]}, headers=bmw_user).status_code == 403


def test_a_quote_covers_only_its_customers_sites(
    client: TestClient, admin: dict[str, str], bmw: Bmw
) -> None:
    other = customer(client, admin, "Audi AG")
    foreign = site(client, admin, other["id"], "Ingolstadt")
    with session_scope() as session, pytest.raises(InvalidRequest, match="another customer"):
        draft_quote(
            session,
            SALES,
            customer_id=bmw.customer_id,
            items=[QuoteLine(foreign["id"], bmw.offerings["Site access 10 Mbit/s"])],
            sla_offering_id=None,
        )
    with session_scope() as session, pytest.raises(UnknownReference, match="no product offering"):
        draft_quote(
            session,
            SALES,
            customer_id=bmw.customer_id,
            items=[QuoteLine(bmw.site_ids[0], "nonexistent")],
            sla_offering_id=None,
        )


def test_sales_cancels_an_open_quote(client: TestClient, auth: TokenFactory, bmw: Bmw) -> None:
    quote = draft(bmw, sites=1)
    response = action(client, quote["id"], "cancel", auth("sales"))
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert {i["state"] for i in response.json()["quoteItem"]} == {"cancelled"}


def test_an_order_naming_the_accepted_quote_takes_its_prices_and_sla_level(
    client: TestClient, auth: TokenFactory, bmw: Bmw
) -> None:
    # given BMW accepted a quote for one site with SLA Gold and 5 % off
    quote = draft(bmw, sites=1, discount="5", offerings=("Site access 100 Mbit/s",))
    with session_scope() as session:
        submit_quote(session, SALES, quote["id"])
    complete_contract_data(client, auth("admin"), bmw.customer_id)
    educate(client, quote["id"], auth("sales"))
    bmw_user = auth("customer", customer_id=bmw.customer_id)
    accepted = client.patch(f"{QUOTES}/{quote['id']}", json={"state": "accepted"}, headers=bmw_user)
    assert accepted.status_code == 200, accepted.text
    access = next(
        i for i in quote["quoteItem"] if i["productOffering"]["name"] == "Site access 100 Mbit/s"
    )
    # when the order manager orders it in TMF622's shape, naming the quote, not the prices
    manager = auth("order_manager")
    party = [{"id": bmw.customer_id, "@referredType": "Customer", "role": "customer"}]
    place = [
        {"id": bmw.site_ids[0], "role": "installationAddress", "@referredType": "GeographicSite"}
    ]
    item = {
        "id": "1",
        "action": "add",
        "productOffering": {"id": access["productOffering"]["id"]},
        "product": {"place": place},
    }
    response = client.post(
        ORDERS,
        json={
            "relatedParty": party,
            "quote": [{"id": quote["id"], "@referredType": "Quote"}],
            "productOrderItem": [item],
        },
        headers=manager,
    )
    # then the item carries the quote's discounted prices and its SLA level
    assert response.status_code == 201, response.text
    ordered = response.json()["productOrderItem"][0]
    assert ordered["itemPrice"] == [
        {k: v for k, v in p.items() if k != "productOfferingPrice"}
        for p in access["quoteItemPrice"]
    ]
    assert ordered["itemPrice"][0]["priceAlteration"][0]["price"]["percentage"] == 5
    assert _characteristic(ordered, "slaLevel") == "SLA Gold"
    assert ordered["quoteItem"] == {"id": access["id"], "quoteId": quote["id"]}
    # and an order naming a quote the customer has not accepted is refused, saying why
    open_quote = draft(bmw, sites=1, offerings=("Site access 100 Mbit/s",))
    refused = client.post(
        ORDERS,
        json={
            "relatedParty": party,
            "quote": [{"id": open_quote["id"]}],
            "productOrderItem": [item],
        },
        headers=manager,
    )
    assert refused.status_code == 409 and "accepted" in refused.json()["message"]
