"""List endpoints issue a bounded number of SQL statements, whatever the page size."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from etomcrm.core.totals import TOTALS
from tests.factories import CATALOG, CUSTOMER, PARTY, customer, interaction, site
from tests.test_security import ALL_LISTS


@pytest.fixture
def populated(client: TestClient, admin: dict[str, str]) -> None:
    for i in range(12):
        created = customer(client, admin, f"Customer {i}")
        site(client, admin, created["id"])
        interaction(client, admin, created["id"])
    for i in range(12):
        client.post(f"{CATALOG}/productOffering", json={"name": f"Offering {i}"}, headers=admin)


@pytest.mark.parametrize("path", ALL_LISTS)
def test_list_queries_do_not_grow_with_page_size(
    client: TestClient,
    admin: dict[str, str],
    populated: None,
    count_queries: Callable[[], Any],
    path: str,
) -> None:
    client.get(path, headers=admin)  # the token is verified and cached by now
    counts = []
    for limit in (1, 5, 12, 100):
        TOTALS.clear()  # so every request counts its rows too
        with count_queries() as counter:
            response = client.get(f"{path}?limit={limit}", headers=admin)
        assert response.status_code in (200, 206)
        counts.append(counter.count)
    # one count and one page (on SQLite an explicit BEGIN comes first)
    assert counts == [counts[0]] * 4
    assert counts[0] <= 2  # the count, and the page when there is one


def test_filtered_list_is_bounded(
    client: TestClient, admin: dict[str, str], populated: None, count_queries: Callable[[], Any]
) -> None:
    client.get(f"{CUSTOMER}/customer", headers=admin)
    with count_queries() as counter:
        client.get(f"{CUSTOMER}/customer?status=prospect&limit=100", headers=admin)
    assert counter.count == 2  # the count and the page


def test_reference_checks_are_one_query_per_referenced_kind(
    client: TestClient, admin: dict[str, str], count_queries: Callable[[], Any]
) -> None:
    # given a customer naming ten contacts
    from tests.factories import organization, post

    org = organization(client, admin)
    contacts = [
        post(client, f"{PARTY}/individual", {"givenName": "A", "familyName": f"N{i}"}, admin)
        for i in range(10)
    ]
    body: dict[str, Any] = {
        "name": "BMW AG",
        "engagedParty": {"id": org["id"], "@referredType": "Organization"},
        "relatedParty": [
            {"id": c["id"], "@referredType": "Individual", "role": "contact"} for c in contacts
        ],
    }
    with count_queries() as counter:
        assert client.post(f"{CUSTOMER}/customer", json=body, headers=admin).status_code == 201
    fewer = {**body, "relatedParty": body["relatedParty"][:1]}
    with count_queries() as counter_one:
        assert client.post(f"{CUSTOMER}/customer", json=fewer, headers=admin).status_code == 201
    # then ten references cost the same statements as one
    assert counter.count == counter_one.count


def test_task_flow_list_is_bounded(
    client: TestClient, admin: dict[str, str], count_queries: Callable[[], Any]
) -> None:
    # given a process flow with 30 recorded steps
    from etomcrm.db import session_scope
    from etomcrm.flows import recorder

    with session_scope() as session:
        recorder.start_flow(
            session,
            workflow_id="ordering-test",
            flow="ordering",
            case_id="order-1",
            case_type="ProductOrder",
            customer_id=None,
            description="test",
        )
        for n in range(30):
            recorder.record_task(
                session, "ordering-test", f"step-{n}", recorder.Task("3.5.4", "Track", f"look {n}")
            )
    path = "/tmf-api/processFlowManagement/v4/processFlow/ordering-test/taskFlow"
    client.get(path, headers=admin)
    counts = []
    for limit in (1, 5, 30, 100):
        with count_queries() as counter:
            response = client.get(f"{path}?limit={limit}", headers=admin)
        assert response.status_code in (200, 206)
        assert len(response.json()) == min(limit, 30)
        counts.append(counter.count)
    # then the flow, the count and the page, whatever the page size
    assert counts == [counts[0]] * 4 and counts[0] <= 4
