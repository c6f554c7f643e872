"""Issue 10, the Billing flow end to end: the one-system story (request → order → active
sites under SLA Gold → an outage that loses the SLA, its credit owed) continues through
the HTTP API and the bill run: the month is rated and billed, the bill is sent with its
PDF, whose embedded Factur-X XML carries the totals the API shows; the next month's
bill carries the SLA credit once; a disputed line becomes a credit note; a payment
settles what is left."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import facturx
from fastapi.testclient import TestClient
from lxml import etree

from etomcrm.db import utcnow
from etomcrm.flows import billing
from tests.conftest import TokenFactory
from tests.test_one_system_end_to_end import (
    MESSAGES,
    access_link_of,
    break_the_sla,
    build_catalog,
    check_completion,
    check_credit,
    new_customer,
    raise_alarm,
    repair_and_confirm,
    sell,
)

BILLS = "/tmf-api/customerBillManagement/v4/customerBill"
RATES = "/tmf-api/customerBillManagement/v4/appliedCustomerBillingRate"
ENQUIRIES = "/tmf-api/customerBillManagement/v4/billingEnquiry"
PAYMENTS = "/tmf-api/paymentManagement/v4/payment"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"


def _periods() -> tuple[str, str]:
    """This month and the next, as the bill run names them (Berlin months)."""
    local = utcnow().astimezone(ZoneInfo("Europe/Berlin"))
    following = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
    return f"{local:%Y-%m}", f"{following:%Y-%m}"


def _run(period: str) -> dict[str, Any]:
    return billing.wait_for_bill_run(billing.start_bill_run(period), period)


def _value(money: dict[str, Any]) -> Decimal:
    return Decimal(str(money["value"]))


def _xml_total(xml: bytes, name: str) -> Decimal:
    found = etree.fromstring(xml).find(f".//{{{RAM}}}{name}")
    assert found is not None, name
    return Decimal(str(found.text))


def _rate_type(rate: dict[str, Any]) -> str:
    return str(next(c["value"] for c in rate["characteristic"] if c["name"] == "rateType"))


def _bills_of(client: TestClient, portal: dict[str, str]) -> list[dict[str, Any]]:
    listed = client.get(BILLS, headers=portal)
    assert listed.status_code == 200, listed.text
    return [b for b in listed.json() if b.get("category", "normal") != "creditNote"]


def test_the_month_is_billed_sent_credited_disputed_and_paid(
    client: TestClient, auth: TokenFactory, flows: None, network: dict[str, Any]
) -> None:
    # given BMW's sites active under SLA Gold, a lost month and its credit owed
    headers = {role: auth(role) for role in ("admin", "sales", "billing", "network")}
    catalog = build_catalog(client, headers["admin"])
    bmw, sites = new_customer(client, headers["sales"])
    portal = headers["portal"] = auth("customer", customer_id=bmw["id"])
    order = sell(client, headers, bmw, sites, catalog)
    check_completion(client, headers, bmw, catalog, order)
    link_id = access_link_of(client, portal, bmw, sites[0])
    problem_id, ticket, alarm_id = raise_alarm(client, headers, bmw, link_id)
    violation = break_the_sla(client, headers, link_id, ticket["id"])
    repair_and_confirm(client, headers, problem_id, ticket["id"], alarm_id)
    check_credit(client, headers, violation)
    this_month, next_month = _periods()

    # when the bill run for this month runs (3.8.2 → 3.8.3)
    summary = _run(this_month)

    # then BMW has one bill, issued and sent, its lines traceable to its products
    assert summary["bills"] == 1, summary
    (bill,) = _bills_of(client, portal)
    assert bill["state"] == "sent" and bill["billNo"].startswith("RE-")
    rates = client.get(RATES, params={"bill.id": bill["id"]}, headers=portal).json()
    kinds = {_rate_type(r) for r in rates}
    assert {"recurring", "oneTime"} <= kinds, kinds
    assert all(r.get("product") for r in rates if _rate_type(r) in ("recurring", "oneTime"))
    net = sum((_value(r["taxExcludedAmount"]) for r in rates), Decimal("0.00"))
    assert net == _value(bill["taxExcludedAmount"])
    # and the PDF's Factur-X XML carries the totals the API shows
    pdf = client.get(f"{BILLS}/{bill['id']}/document", headers=portal)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    _, xml = facturx.get_xml_from_pdf(pdf.content, check_xsd=True)
    assert _xml_total(xml, "TaxBasisTotalAmount") == _value(bill["taxExcludedAmount"])
    assert _xml_total(xml, "GrandTotalAmount") == _value(bill["taxIncludedAmount"])
    assert _xml_total(xml, "DuePayableAmount") == _value(bill["amountDue"])
    # and BMW was sent the bill
    told = client.get(MESSAGES, headers=portal).json()
    assert [m for m in told if bill["billNo"] in (m.get("subject") or "")], told

    # when next month is billed, and billed again
    _run(next_month)
    again = _run(next_month)

    # then the SLA credit is on that bill, once
    assert again["bills"] == 1
    credits = [
        r
        for r in client.get(RATES, params={"type": "credit"}, headers=portal).json()
        if r.get("bill")
    ]
    assert len(credits) == 1, credits
    assert -_value(credits[0]["taxExcludedAmount"]) == Decimal(str(violation["credit"]["value"]))

    # when BMW disputes the first bill's first recurring line and billing adjusts it
    line = next(r for r in rates if _rate_type(r) == "recurring")
    enquiry = client.post(
        ENQUIRIES,
        json={
            "customerBill": {"id": bill["id"]},
            "disputedLine": [{"id": line["id"]}],
            "description": "this site was connected later than billed",
        },
        headers=portal,
    )
    assert enquiry.status_code == 201, enquiry.text
    adjusted = client.post(
        f"{ENQUIRIES}/{enquiry.json()['id']}/adjust",
        json={"reason": "connected later: the line is credited", "amount": "10.00"},
        headers=headers["billing"],
    )

    # then a credit note referencing the bill is issued, and the bill owes less
    assert adjusted.status_code == 200, adjusted.text
    note_id = adjusted.json()["resolution"]["creditNote"]["id"]
    note = client.get(f"{BILLS}/{note_id}", headers=portal).json()
    assert note["category"] == "creditNote" and note["billNo"].startswith("GS-")
    assert note["referencedBill"] == bill["id"]
    owed = _value(client.get(f"{BILLS}/{bill['id']}", headers=portal).json()["remainingAmount"])
    assert owed < _value(bill["amountDue"])

    # when billing books BMW's transfer of what is left, naming the bill
    paid = client.post(
        PAYMENTS,
        json={
            "account": {"id": bill["billingAccount"]["id"], "@referredType": "BillingAccount"},
            "paymentMethod": {"@type": "BankAccountTransfer", "name": "bank transfer"},
            "totalAmount": {"unit": "EUR", "value": float(owed)},
            "paymentDate": utcnow().date().isoformat(),
            "reference": bill["billNo"],
        },
        headers=headers["billing"],
    )

    # then the bill is settled
    assert paid.status_code == 201, paid.text
    settled = client.get(f"{BILLS}/{bill['id']}", headers=portal).json()
    assert settled["state"] == "settled", settled
    assert _value(settled["remainingAmount"]) == Decimal("0.00")
