"""The README's worked examples are what the API takes (issue 12): every body of "From a
request to an order" is posted as printed, in order, against the demo's catalog."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import TokenFactory
from tests.quote_helpers import QUOTES, load_bmw

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "### From a request to an order"
# A line naming the call, then its body.
EXAMPLE = re.compile(r"^`(POST|PATCH) (/[^`]+)`\n+```json\n(.*?)\n```", re.M | re.S)


def _examples() -> list[tuple[str, str, str]]:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start)
    return EXAMPLE.findall(text[start : end if end > 0 else None])


def _fill(text: str, ids: dict[str, str]) -> str:
    for placeholder, value in ids.items():
        text = text.replace(f"<{placeholder}>", value)
    assert "<" not in text, text
    return text


def test_the_readmes_request_to_order_examples_are_accepted_as_printed(
    client: TestClient, auth: TokenFactory
) -> None:
    # given the demo's BMW, its sites and catalog, a sales person and a second one
    bmw = load_bmw()
    ids = {
        "customer id": bmw.customer_id,
        "site id": bmw.site_ids[0],
        "access offering id": bmw.offerings["Site access 100 Mbit/s"],
        "SLA offering id": bmw.offerings["SLA Gold"],
    }
    anna, bernd = auth("sales"), auth("sales")
    katrin = auth("customer", customer_id=bmw.customer_id)
    examples = _examples()
    assert [path.rsplit("/", 1)[-1] for _, path, _ in examples] == [
        "customerRequest",
        "productOfferingQualification",
        "quote",
        "education",
        "contractData",
        "billingAccount",
        "paymentMethod",
        "productOrder",
    ]
    answers: dict[str, Any] = {}
    for method, path, body in examples:
        if path.endswith("/education"):
            # what the README says happens between the quote and its education
            quote_id = ids["quote id"]
            assert client.post(f"{QUOTES}/{quote_id}/submit", headers=anna).status_code == 200
            approved = client.post(f"{QUOTES}/{quote_id}/approve", headers=bernd)
            assert approved.status_code == 200, approved.text
        if path.endswith("/productOrder"):
            accepted = client.post(f"{QUOTES}/{ids['quote id']}/accept", headers=katrin)
            assert accepted.status_code == 200, accepted.text
        # when the body is sent as printed
        response = client.request(
            method, _fill(path, ids), json=json.loads(_fill(body, ids)), headers=anna
        )
        # then it is taken
        assert response.status_code in (200, 201), (path, response.text)
        answers[path.rsplit("/", 1)[-1]] = response.json()
        if path.endswith("/quote"):
            ids["quote id"] = response.json()["id"]
        if path.endswith("/billingAccount"):
            ids["billing account id"] = response.json()["id"]
    # and it means what the README says it does: the request went to sales, the quote
    # carries the SLA level, the discount and the term, the order the quote's prices
    assert answers["customerRequest"]["classification"] == "selling"
    quote = answers["quote"]
    assert quote["discountPercent"] == 15 and quote["contractDurationMonths"] == 36
    levels = {
        c["value"]
        for item in quote["quoteItem"]
        for c in item["product"].get("productCharacteristic", [])
        if c["name"] == "slaLevel"
    }
    assert levels == {"SLA Gold"}
    assert quote["authorization"][0]["state"] == "requested"
    qualified = answers["productOfferingQualification"]["productOfferingQualificationItem"]
    assert qualified[0]["qualificationItemResult"] in ("qualified", "unqualified")
    assert answers["contractData"]["id"] == bmw.customer_id
    ordered = answers["productOrder"]["productOrderItem"][0]
    assert ordered["itemPrice"][0]["priceAlteration"][0]["price"]["percentage"] == 15
    assert {c["name"]: c["value"] for c in ordered["product"]["productCharacteristic"]}[
        "slaLevel"
    ] == "SLA Gold"
