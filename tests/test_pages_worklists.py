"""The staff landing page's work lists over plain HTTP (issue 11): each role sees the
lists it works on, each with its count and its oldest item, one query per list."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from etomcrm.billing.dunning_models import BillingEnquiryRow, DunningCaseRow
from etomcrm.customer_interface.models import PartyInteractionRow
from etomcrm.db import session_scope, utcnow
from etomcrm.flows.models import ProcessFlowRow
from etomcrm.order_handling.models import ProductOrderRow
from etomcrm.problem_handling.models import TroubleTicketRow
from etomcrm.qos_sla.models import SlaViolationRow
from etomcrm.selling.models import QuoteRow
from tests import factories
from tests.test_pages_portal import sign_in, user


def _body(row_id: str, type_name: str, **extra: Any) -> dict[str, Any]:
    return {"id": row_id, "@type": type_name, **extra}


def work(customer_id: str, copies: int = 1) -> None:
    """``copies`` items on every work list, the first of each the oldest; and one
    request in the billing queue (never on support's list)."""
    now = utcnow()
    with session_scope() as session:
        for n in range(copies):
            at = now - timedelta(days=10 - n)
            common: dict[str, Any] = {"owner_customer_id": customer_id, "created_at": at}
            session.add_all(
                [
                    PartyInteractionRow(
                        id=f"req-{customer_id}-{n}"[:64],
                        at_type="CustomerRequest",
                        name=f"Request {n}",
                        status="open",
                        body=_body("r", "CustomerRequest", routedTo="support"),
                        **common,
                    ),
                    PartyInteractionRow(
                        id=f"ret-{customer_id}-{n}"[:64],
                        at_type="RetentionTask",
                        name=f"Retention {n}",
                        status="open",
                        body=_body("t", "RetentionTask", routedTo="sales"),
                        **common,
                    ),
                    PartyInteractionRow(
                        id=f"bil-{customer_id}-{n}"[:64],
                        at_type="BillingTask",
                        name=f"Unmatched payment {n}",
                        status="open",
                        body=_body("b", "BillingTask", routedTo="billing"),
                        created_at=at,
                    ),
                    QuoteRow(
                        id=f"quo-{customer_id}-{n}"[:64],
                        at_type="Quote",
                        name=f"Quote {n}",
                        status="pending",
                        body=_body("q", "Quote"),
                        updated_at=at,
                        **common,
                    ),
                    ProductOrderRow(
                        id=f"ord-{customer_id}-{n}"[:64],
                        at_type="ProductOrder",
                        name=f"Order {n}",
                        status="inProgress",
                        body=_body("o", "ProductOrder", inJeopardy=True),
                        **common,
                    ),
                    TroubleTicketRow(
                        id=f"tt-{customer_id}-{n}"[:64],
                        at_type="TroubleTicket",
                        name=f"Ticket {n}",
                        status="inProgress",
                        body=_body("t", "TroubleTicket"),
                        resolution_due_at=now + timedelta(hours=n + 1),
                        **common,
                    ),
                    SlaViolationRow(
                        id=f"vio-{customer_id}-{n}"[:64],
                        at_type="SlaViolation",
                        violation_key=f"{customer_id}/{n}",
                        body=_body("v", "SlaViolation", credit={"value": "10", "status": "owed"}),
                        **common,
                    ),
                    ProcessFlowRow(
                        id=f"flo-{customer_id}-{n}"[:64],
                        at_type="ProcessFlow",
                        status="hold",
                        flow="fulfillment",
                        case_id=f"case-{n}",
                        body=_body("f", "ProcessFlow", failed=True),
                        updated_at=at,
                        **common,
                    ),
                    BillingEnquiryRow(
                        id=f"enq-{customer_id}-{n}"[:64],
                        at_type="BillingEnquiry",
                        status="pendingApproval",
                        bill_id="bill",
                        disputed_amount=Decimal("900.00"),
                        body=_body("e", "BillingEnquiry"),
                        updated_at=at,
                        **common,
                    ),
                    DunningCaseRow(
                        id=f"dun-{customer_id}-{n}"[:64],
                        at_type="DunningCase",
                        status="open",
                        bill_id=f"bill-{customer_id}-{n}"[:64],
                        billing_account_id="account",
                        trigger="overdue",
                        body=_body("d", "DunningCase"),
                        **common,
                    ),
                ]
            )
        session.add(
            PartyInteractionRow(
                id=f"reqb-{customer_id}"[:64],
                at_type="CustomerRequest",
                status="open",
                body=_body("r", "CustomerRequest", routedTo="billing"),
                owner_customer_id=customer_id,
            )
        )


def counts(html: str) -> dict[str, int]:
    return {
        key: int(count)
        for key, count in re.findall(
            r'<li id="work-(\w+)">.*?<strong class="count">(\d+)</strong>', html, re.S
        )
    }


ROLES = {
    "support": {"requests": 2, "ticketsBySlaClock": 2, "failedFlows": 2},
    "billing": {
        "requests": 1,
        "creditNoteApprovals": 2,
        "creditsOwed": 2,
        "billingTasks": 2,
        "dunningCases": 2,
    },
    "sales": {"requests": 0, "quoteApprovals": 2, "failedFlows": 2, "retentionTasks": 2},
    "order_manager": {"requests": 0, "ordersInJeopardy": 2, "failedFlows": 2},
    "sla_manager": {"ticketsBySlaClock": 2, "creditsOwed": 2, "failedFlows": 2},
    "marketing": {},
}


def test_each_role_sees_its_work_lists_with_counts_and_the_oldest(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given two items on every list, BMW's
    bmw = factories.customer(client, admin)
    work(bmw["id"], copies=2)
    for role, expected in ROLES.items():
        # when a person of each role opens the landing page
        client.cookies.clear()
        user(f"{role}.person", role=role)
        assert sign_in(client, f"{role}.person").status_code == 303
        home = client.get("/ui/")
        # then exactly the lists of its role are there, each with its count
        assert home.status_code == 200
        assert counts(home.text) == expected, role
    # and the oldest item leads to its customer's 360; a ticket list shows the first due
    client.cookies.clear()
    user("sven.support", role="support")
    assert sign_in(client, "sven.support").status_code == 303
    text = client.get("/ui/").text
    assert f'href="/ui/customers/{bmw["id"]}">Request 0</a>' in text
    assert "due first" in text and f'href="/ui/customers/{bmw["id"]}">Ticket 0</a>' in text
    # and in German, as the browser asks
    german = client.get("/ui/", headers={"Accept-Language": "de"}).text
    assert "Ihre Arbeitslisten" in german and "Zu bearbeitende Kundenanliegen" in german


def test_the_work_lists_take_one_query_each_whatever_their_length(
    client: TestClient, admin: dict[str, str], count_queries: Callable[[], Any]
) -> None:
    # given an administrator, who sees every list, and three items on each
    bmw = factories.customer(client, admin)
    work(bmw["id"], copies=3)
    user("ada.admin", role="admin")
    assert sign_in(client, "ada.admin").status_code == 303
    client.get("/ui/")  # the session's user is looked up once, then cached

    def queries() -> tuple[int, dict[str, int]]:
        with count_queries() as counter:
            home = client.get("/ui/")
        return counter.count, counts(home.text)

    few, small = queries()
    # when thirty more wait on each
    audi = factories.customer(client, admin, "Audi AG")
    work(audi["id"], copies=30)
    many, large = queries()
    # then the page takes the same queries, one per list
    assert few == many <= len(large) + 1
    assert large["dunningCases"] == 33 and small["dunningCases"] == 3
    assert large["requests"] == 33 + 2  # an admin sees every queue
