"""TMF API conventions (DESIGN.md section 4), held once for every API."""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from etomcrm.config import get_settings
from etomcrm.core.models import AuditRecord, OutboxEvent
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.db import session_scope
from tests.factories import (
    CATALOG,
    CUSTOMER,
    INTERACTION,
    PARTY,
    SITE,
    customer,
    organization,
    post,
    site,
)


def _count(row: type) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(row)) or 0


def test_created_resource_carries_id_href_and_type(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given an organization
    org = organization(client, admin)
    # when a customer is created for it
    response = client.post(
        f"{CUSTOMER}/customer",
        json={"name": "BMW AG", "engagedParty": {"id": org["id"], "@referredType": "Organization"}},
        headers=admin,
    )
    # then it answers 201 with id, an absolute href that reads it back, @type and an ETag
    assert response.status_code == 201
    body = response.json()
    assert body["@type"] == "Customer"
    assert body["href"] == f"{get_settings().public_base_url}{CUSTOMER}/customer/{body['id']}"
    assert response.headers["Location"] == body["href"]
    assert response.headers["ETag"] == '"1"'
    assert client.get(body["href"], headers=admin).json() == body


def test_client_cannot_choose_id_or_href(client: TestClient, admin: dict[str, str]) -> None:
    org = organization(client, admin)
    response = client.post(
        f"{CUSTOMER}/customer",
        json={
            "id": "chosen",
            "href": "http://elsewhere/x",
            "name": "BMW AG",
            "engagedParty": {"id": org["id"], "@referredType": "Organization"},
        },
        headers=admin,
    )
    assert response.status_code == 201
    assert response.json()["id"] != "chosen"
    assert response.json()["href"].startswith(f"{get_settings().public_base_url}/")


def test_a_host_header_never_reaches_hrefs_locations_or_events(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given the public base URL from configuration
    public = get_settings().public_base_url
    # when a client sends a forged Host header with a create
    org = organization(client, admin)
    response = client.post(
        f"{CUSTOMER}/customer",
        json={"name": "BMW AG", "engagedParty": {"id": org["id"], "@referredType": "Organization"}},
        headers={**admin, "Host": "evil.example"},
    )
    # then the href, the Location and the stored event name the configured base only
    assert response.status_code == 201
    assert response.json()["href"].startswith(f"{public}/")
    assert response.headers["Location"].startswith(f"{public}/")
    with session_scope() as session:
        payloads = session.scalars(select(OutboxEvent.payload)).all()
    assert payloads
    assert not any("evil.example" in orjson.dumps(p).decode() for p in payloads)


def test_every_attribute_of_the_document_is_stored_and_returned(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given an organization described with many of the document's attributes
    body = {
        "tradingName": "BMW AG",
        "name": "Bayerische Motoren Werke Aktiengesellschaft",
        "nameType": "AG",
        "isLegalEntity": True,
        "isHeadOffice": True,
        "organizationType": "company",
        "status": "validated",
        "existsDuring": {"startDateTime": "1916-03-07T00:00:00Z"},
        "organizationIdentification": [
            {
                "identificationId": "HRB 42243",
                "identificationType": "commercialRegister",
                "issuingAuthority": "Amtsgericht München",
            }
        ],
        "contactMedium": [
            {
                "mediumType": "email",
                "preferred": True,
                "characteristic": {"emailAddress": "extranet@bmw.de"},
            }
        ],
        "partyCharacteristic": [{"name": "vatId", "value": "DE129273398"}],
        "externalReference": [{"externalReferenceType": "DUNS", "name": "315000554"}],
        "@baseType": "Party",
    }
    # when it is created and read back
    created = post(client, f"{PARTY}/organization", body, admin)
    read = client.get(f"{PARTY}/organization/{created['id']}", headers=admin).json()
    # then every attribute comes back unchanged
    for key, value in body.items():
        assert read[key] == value, key


def test_fields_selects_attributes_plus_id_href_and_required(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = customer(client, admin)
    response = client.get(f"{CUSTOMER}/customer/{created['id']}?fields=name", headers=admin)
    assert response.status_code == 200
    # engagedParty is required by the Customer schema, so it stays
    assert set(response.json()) == {"id", "href", "@type", "name", "engagedParty"}
    listed = client.get(f"{CUSTOMER}/customer?fields=status", headers=admin).json()
    assert set(listed[0]) == {"id", "href", "@type", "status", "engagedParty"}


def test_fields_and_filters_accept_the_at_attributes_of_every_resource(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a customer and a request it filed (TMF683 lists no @-attributes)
    created = customer(client, admin)
    request = post(
        client,
        f"{INTERACTION}/customerRequest",
        {"customerId": created["id"], "channel": "phone", "subject": "Invoice question"},
        admin,
    )
    # when a client selects the @-attributes in fields
    one = client.get(f"{CUSTOMER}/customer/{created['id']}?fields=@type,@baseType", headers=admin)
    many = client.get(f"{INTERACTION}/partyInteraction?fields=@type,@baseType", headers=admin)
    # then they are accepted and answered
    assert one.status_code == 200, one.text
    assert one.json()["@type"] == "Customer"
    assert many.status_code == 200, many.text
    assert many.json() == [
        {
            "id": request["id"],
            "href": request["href"],
            "@type": "CustomerRequest",
            "@baseType": "PartyInteraction",
        }
    ]
    # and a filter by @baseType finds it
    found = client.get(
        f"{INTERACTION}/partyInteraction", params={"@baseType": "PartyInteraction"}, headers=admin
    )
    assert found.status_code == 200 and [r["id"] for r in found.json()] == [request["id"]]


def test_fields_with_unknown_attribute_is_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.get(f"{CUSTOMER}/customer?fields=nmae", headers=admin)
    assert response.status_code == 400
    assert "nmae" in response.json()["message"]


def test_paging_with_counts_and_partial_content(client: TestClient, admin: dict[str, str]) -> None:
    # given five customers
    ids = [customer(client, admin, f"Customer {i}")["id"] for i in range(5)]
    # when the second page of two is asked for
    response = client.get(f"{CUSTOMER}/customer?offset=2&limit=2", headers=admin)
    # then it is a partial page of the two in creation order, with the counts
    assert response.status_code == 206
    assert response.headers["X-Total-Count"] == "5"
    assert response.headers["X-Result-Count"] == "2"
    assert [c["id"] for c in response.json()] == ids[2:4]
    last = client.get(f"{CUSTOMER}/customer?offset=4&limit=2", headers=admin)
    assert last.status_code == 200
    assert last.headers["X-Result-Count"] == "1"
    beyond = client.get(f"{CUSTOMER}/customer?offset=10", headers=admin)
    assert beyond.status_code == 200 and beyond.json() == []


def test_bad_paging_values_are_refused(client: TestClient, admin: dict[str, str]) -> None:
    for query in ("limit=0", "limit=abc", "offset=-1"):
        response = client.get(f"{CUSTOMER}/customer?{query}", headers=admin)
        assert response.status_code == 400, query
        assert response.json()["code"] == "INVALID_BODY"


def test_attribute_filters(client: TestClient, admin: dict[str, str]) -> None:
    # given two customers, one of them active, and sites in two cities
    first = customer(client, admin, "BMW AG")
    second = customer(client, admin, "MINI GmbH")
    client.patch(f"{CUSTOMER}/customer/{second['id']}", json={"status": "active"}, headers=admin)
    site(client, admin, first["id"], "München")
    site(client, admin, first["id"], "Leipzig")
    # when filtering by a column, a dotted path into the document, and any-of values
    active = client.get(f"{CUSTOMER}/customer?status=active", headers=admin).json()
    by_party = client.get(
        f"{CUSTOMER}/customer?engagedParty.id={first['engagedParty']['id']}", headers=admin
    ).json()
    either = client.get(f"{CUSTOMER}/customer?name=BMW AG,MINI GmbH", headers=admin)
    by_code = client.get(f"{SITE}/geographicSite?code=LEI", headers=admin).json()
    # then exactly the matching resources come back
    assert [c["id"] for c in active] == [second["id"]]
    assert [c["id"] for c in by_party] == [first["id"]]
    assert either.headers["X-Total-Count"] == "2"
    assert [s["name"] for s in by_code] == ["Dealer Leipzig"]


def test_filter_on_unknown_attribute_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    response = client.get(f"{CUSTOMER}/customer?colour=red", headers=admin)
    assert response.status_code == 400
    assert "colour" in response.json()["message"]


def test_merge_patch_changes_and_removes_attributes(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = customer(client, admin)
    client.patch(
        f"{CUSTOMER}/customer/{created['id']}", json={"statusReason": "pilot"}, headers=admin
    )
    # when a merge patch sets one attribute and removes another with null
    response = client.patch(
        f"{CUSTOMER}/customer/{created['id']}",
        content=b'{"status": "active", "statusReason": null}',
        headers={**admin, "Content-Type": "application/merge-patch+json"},
    )
    # then both take effect and the version moves on
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    assert "statusReason" not in response.json()
    assert response.headers["ETag"] == '"3"'


def test_lost_update_gets_412(client: TestClient, admin: dict[str, str]) -> None:
    # given two clients who both read version 1
    created = customer(client, admin)
    tag = client.get(f"{CUSTOMER}/customer/{created['id']}", headers=admin).headers["ETag"]
    first = client.patch(
        f"{CUSTOMER}/customer/{created['id']}",
        json={"statusReason": "a"},
        headers={**admin, "If-Match": tag},
    )
    assert first.status_code == 200
    # when the second writes with the stale ETag
    second = client.patch(
        f"{CUSTOMER}/customer/{created['id']}",
        json={"statusReason": "b"},
        headers={**admin, "If-Match": tag},
    )
    # then it is refused and the first change stands
    assert second.status_code == 412
    assert second.json()["code"] == "PRECONDITION_FAILED"
    assert (
        client.get(f"{CUSTOMER}/customer/{created['id']}", headers=admin).json()["statusReason"]
        == "a"
    )


def test_idempotency_key_replays_the_first_result(
    client: TestClient, admin: dict[str, str]
) -> None:
    org = organization(client, admin)
    body = {"name": "BMW AG", "engagedParty": {"id": org["id"], "@referredType": "Organization"}}
    headers = {**admin, "Idempotency-Key": "order-42"}
    first = client.post(f"{CUSTOMER}/customer", json=body, headers=headers)
    retried = client.post(f"{CUSTOMER}/customer", json=body, headers=headers)
    assert first.status_code == retried.status_code == 201
    assert retried.json() == first.json()
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert _count(CustomerRow) == 1
    # the same key with another body is a client mistake, not a replay
    other = client.post(f"{CUSTOMER}/customer", json={**body, "name": "Other"}, headers=headers)
    assert other.status_code == 409
    assert _count(CustomerRow) == 1


def test_delete_answers_204_then_404(client: TestClient, admin: dict[str, str]) -> None:
    created = customer(client, admin)
    assert client.delete(f"{CUSTOMER}/customer/{created['id']}", headers=admin).status_code == 204
    response = client.get(f"{CUSTOMER}/customer/{created['id']}", headers=admin)
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    assert client.delete(f"{CUSTOMER}/customer/{created['id']}", headers=admin).status_code == 404


def test_unknown_path_and_method_get_tmf_errors(client: TestClient, admin: dict[str, str]) -> None:
    missing = client.get("/tmf-api/nothing/v4/here", headers=admin)
    assert missing.status_code == 404 and missing.json()["reason"]
    wrong = client.put(f"{CUSTOMER}/customer/x", json={}, headers=admin)
    assert wrong.status_code == 405 and wrong.json()["code"] == "METHOD_NOT_ALLOWED"


def test_wrong_types_are_refused_with_the_place_named(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post(
        f"{PARTY}/organization", json={"tradingName": "X", "isLegalEntity": "yes"}, headers=admin
    )
    assert response.status_code == 400
    assert "isLegalEntity" in response.json()["message"]
    assert '"yes" is not of type "boolean"' in response.json()["message"]


def test_missing_required_attribute_is_named(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(f"{CUSTOMER}/customer", json={"name": "no party"}, headers=admin)
    assert response.status_code == 400
    assert '"engagedParty" is a required property' in response.json()["message"]


def test_malformed_json_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(
        f"{CUSTOMER}/customer",
        content=b'{"name": "BMW',
        headers={**admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


def test_non_object_bodies_and_wrong_media_types_are_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert client.post(f"{CUSTOMER}/customer", json=[1, 2], headers=admin).status_code == 400
    response = client.post(
        f"{CUSTOMER}/customer", content=b"name=x", headers={**admin, "Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_oversize_body_is_refused_and_nothing_written(
    client: TestClient, admin: dict[str, str]
) -> None:
    huge = {"tradingName": "X", "name": "x" * 1_100_000}
    response = client.post(f"{PARTY}/organization", json=huge, headers=admin)
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_nul_characters_are_refused(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(f"{PARTY}/organization", json={"tradingName": "X\x00Y"}, headers=admin)
    assert response.status_code == 400
    assert "NUL" in response.json()["message"]


def test_unknown_reference_is_refused_and_nothing_is_half_written(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given the counts of customers, audit records and events before
    before = (_count(CustomerRow), _count(AuditRecord), _count(OutboxEvent))
    # when a customer refers to a party that does not exist
    response = client.post(
        f"{CUSTOMER}/customer",
        json={
            "name": "Ghost",
            "engagedParty": {"id": "no-such-party", "@referredType": "Organization"},
        },
        headers=admin,
    )
    # then the answer names the missing reference and nothing was written
    assert response.status_code == 422
    assert "engagedParty no-such-party" in response.json()["message"]
    assert (_count(CustomerRow), _count(AuditRecord), _count(OutboxEvent)) == before


def test_references_in_lists_are_checked(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(
        f"{CATALOG}/productOffering",
        json={"name": "Access", "category": [{"id": "nope"}]},
        headers=admin,
    )
    assert response.status_code == 422
    assert "category nope" in response.json()["message"]


def test_references_to_other_systems_are_kept_unchecked(
    client: TestClient, admin: dict[str, str]
) -> None:
    org = organization(client, admin)
    response = client.post(
        f"{CUSTOMER}/customer",
        json={
            "name": "BMW AG",
            "engagedParty": {"id": org["id"], "@referredType": "Organization"},
            "account": [{"id": "ACC-1", "name": "billing account in the billing system"}],
            "relatedParty": [
                {"id": "sales-7", "@referredType": "PartyRole", "role": "accountManager"}
            ],
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    assert response.json()["account"][0]["id"] == "ACC-1"


def test_patch_that_breaks_the_schema_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    created = customer(client, admin)
    response = client.patch(
        f"{CUSTOMER}/customer/{created['id']}", json={"engagedParty": None}, headers=admin
    )
    assert response.status_code == 400
    response = client.patch(
        f"{CUSTOMER}/customer/{created['id']}", json={"validFor": "tomorrow"}, headers=admin
    )
    assert response.status_code == 400
    assert "validFor" in response.json()["message"]


def test_filters_reach_into_lists_and_typed_values(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given sites of two customers, told apart only by an entry of their relatedParty list
    first = customer(client, admin, "BMW AG")
    second = customer(client, admin, "MINI GmbH")
    site(client, admin, first["id"], "München")
    site(client, admin, first["id"], "Leipzig")
    site(client, admin, second["id"], "Oxford")
    # when filtering by an attribute of a list element, and by a nested list attribute
    mine = client.get(f"{SITE}/geographicSite?relatedParty.id={first['id']}", headers=admin)
    by_city = client.get(f"{SITE}/geographicSite?place.city=Leipzig", headers=admin).json()
    # then exactly the matching resources come back
    assert mine.headers["X-Total-Count"] == "2"
    assert [s["name"] for s in by_city] == ["Dealer Leipzig"]
    # and a boolean attribute matches its JSON value
    organization(client, admin, "Legal AG")
    legal = client.get(f"{PARTY}/organization?isLegalEntity=true", headers=admin)
    assert legal.headers["X-Total-Count"] == "3"
    assert client.get(f"{PARTY}/organization?isLegalEntity=false", headers=admin).json() == []


def test_patch_that_changes_nothing_keeps_the_version(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = post(client, f"{CATALOG}/category", {"name": "Site access"}, admin)
    before = _count(AuditRecord), _count(OutboxEvent)
    response = client.patch(
        f"{CATALOG}/category/{created['id']}", json={"name": "Site access"}, headers=admin
    )
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert response.json()["lastUpdate"] == created["lastUpdate"]
    assert (_count(AuditRecord), _count(OutboxEvent)) == before


def test_huge_numbers_make_the_round_trip(client: TestClient, admin: dict[str, str]) -> None:
    # given a number beyond 64-bit integers in a document
    created = client.post(
        f"{CATALOG}/productOfferingPrice",
        json={"name": "Traffic", "percentage": 1e20, "recurringChargePeriodLength": 12},
        headers={**admin, "Idempotency-Key": "k1"},
    )
    assert created.status_code == 201
    # when it is read back and the create is retried, then both answer with it
    read = client.get(f"{CATALOG}/productOfferingPrice/{created.json()['id']}", headers=admin)
    assert read.status_code == 200 and read.json()["percentage"] == 1e20
    retried = client.post(
        f"{CATALOG}/productOfferingPrice",
        json={"name": "Traffic", "percentage": 1e20, "recurringChargePeriodLength": 12},
        headers={**admin, "Idempotency-Key": "k1"},
    )
    assert retried.status_code == 201 and retried.json()["percentage"] == 1e20


def test_paging_values_must_be_plain_whole_numbers_given_once(
    client: TestClient, admin: dict[str, str]
) -> None:
    for query in (
        "limit=²",
        "offset=\u0661",  # ARABIC-INDIC DIGIT ONE
        "limit=5&limit=6",
        "offset=1.5",
        "fields=name&fields=status",
    ):
        response = client.get(f"{CUSTOMER}/customer?{query}", headers=admin)
        assert response.status_code == 400, query
    huge = client.get(f"{CUSTOMER}/customer?offset={10**30}", headers=admin)
    assert huge.status_code == 200 and huge.json() == []


def test_nul_in_path_or_query_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    for url in (f"{CUSTOMER}/customer/ab%00cd", f"{CUSTOMER}/customer?name=a%00b"):
        response = client.get(url, headers=admin)
        assert response.status_code == 400, url
        assert "NUL" in response.json()["message"]


def test_reads_survive_a_dropped_database_connection(
    client: TestClient, admin: dict[str, str], db_url: str
) -> None:
    # given a customer read once, so the read connection is held
    created = customer(client, admin)
    assert client.get(f"{CUSTOMER}/customer/{created['id']}", headers=admin).status_code == 200
    if not db_url.startswith("postgresql"):
        return  # an SQLite file has no server connection to lose
    # when the server ends every other connection (a restart, a failover)
    from etomcrm.db import get_engine

    with get_engine(db_url).begin() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    # then the next reads reconnect instead of failing
    assert client.get(f"{CUSTOMER}/customer/{created['id']}", headers=admin).status_code == 200
    assert client.get(f"{CUSTOMER}/customer", headers=admin).status_code == 200


def test_sort_is_refused_rather_than_ignored(client: TestClient, admin: dict[str, str]) -> None:
    response = client.get(f"{CUSTOMER}/customer?sort=name", headers=admin)
    assert response.status_code == 400
    assert "creation order" in response.json()["message"]
