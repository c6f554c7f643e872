"""Authentication, roles, customer scoping and the audit trail, on every API."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from etomcrm.bootstrap import KINDS as API_KINDS
from etomcrm.cli import app as cli
from etomcrm.config import get_settings
from etomcrm.core.models import AuditRecord
from etomcrm.db import get_engine, session_scope, utcnow
from etomcrm.security.models import ApiKey, InstallationSecret, UserAccount
from etomcrm.security.service import _signing_secret, create_user
from tests.conftest import TokenFactory
from tests.factories import (
    CATALOG,
    CUSTOMER,
    INTERACTION,
    PARTY,
    SITE,
    STOCK,
    customer,
    interaction,
    post,
    site,
)

# Every list the API serves, from every area: each needs a token and stays bounded.
ALL_LISTS = [kind.path for kind in API_KINDS]
READ_ONLY = {kind.path for kind in API_KINDS if not kind.writable}


@pytest.mark.parametrize("path", ALL_LISTS)
def test_every_api_needs_a_valid_bearer_token(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    response = client.get(path, headers={"Authorization": "Bearer etm_not-a-real-token"})
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    # a record only etomcrm writes has no POST at all
    assert client.post(path, json={}).status_code == (405 if path in READ_ONLY else 401)


def test_apikey_cli_prints_the_token_alone_on_the_last_line(client: TestClient) -> None:
    # when an admin key is created with the CLI
    result = CliRunner().invoke(cli, ["apikey", "create", "crm-integration", "--role", "admin"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    # then that line is the token, it works, and only its hash is stored
    assert (
        client.get(f"{CUSTOMER}/customer", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    with session_scope() as session:
        hashes = list(session.scalars(select(ApiKey.token_hash)))
    assert token not in hashes and len(hashes) == 1 and len(hashes[0]) == 64


def test_apikey_cli_refuses_unknown_role_and_unscoped_customer(db_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["apikey", "create", "x", "--role", "wizard"])
    assert result.exit_code == 2 and "unknown role" in result.output
    result = runner.invoke(cli, ["apikey", "create", "x", "--role", "customer"])
    assert result.exit_code == 2 and "--customer" in result.output


def test_revoked_apikey_stops_working(client: TestClient, admin: dict[str, str]) -> None:
    with session_scope() as session:
        key_id = session.scalars(select(ApiKey.id)).one()
    result = CliRunner().invoke(cli, ["apikey", "revoke", key_id])
    assert result.exit_code == 0
    assert client.get(f"{CUSTOMER}/customer", headers=admin).status_code == 401


def test_staff_user_signs_in_with_an_argon2_password(client: TestClient) -> None:
    # given a sales user
    with session_scope() as session:
        create_user(session, "anna.sales", "correct horse battery", "sales")
        stored = session.scalars(select(UserAccount.password_hash)).one()
    assert stored.startswith("$argon2id$")
    # when she signs in, the token she gets works with her role
    response = client.post(
        "/auth/token", json={"username": "anna.sales", "password": "correct horse battery"}
    )
    assert response.status_code == 200
    token = response.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{CUSTOMER}/customer", headers=headers).status_code == 200
    # and a wrong password or unknown user gets 401 without telling which
    for username, password in (("anna.sales", "wrong password!"), ("nobody", "whatever1234")):
        denied = client.post("/auth/token", json={"username": username, "password": password})
        assert denied.status_code == 401
        assert denied.json()["message"] == "wrong username or password"


def test_user_cli_creates_a_user(client: TestClient) -> None:
    result = CliRunner().invoke(
        cli,
        ["user", "create", "olaf.orders", "--role", "order_manager", "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    response = client.post(
        "/auth/token", json={"username": "olaf.orders", "password": "a long enough password"}
    )
    assert response.status_code == 200


def test_tampered_login_token_is_refused(client: TestClient) -> None:
    with session_scope() as session:
        create_user(session, "anna.sales", "correct horse battery", "sales")
    token = client.post(
        "/auth/token", json={"username": "anna.sales", "password": "correct horse battery"}
    ).json()["access_token"]
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert (
        client.get(
            f"{CUSTOMER}/customer", headers={"Authorization": f"Bearer {forged}"}
        ).status_code
        == 401
    )


def test_a_login_token_without_an_expiry_is_refused(client: TestClient) -> None:
    # given a token signed with the installation's own secret, but without "exp"
    with session_scope() as session:
        user = create_user(session, "anna.sales", "correct horse battery", "sales")
        claims = {"sub": user.id, "name": "anna.sales", "role": "sales", "iat": utcnow()}
        forever = jwt.encode(claims, _signing_secret(session), algorithm="HS256")
    # when it is used, it is refused, naming what it lacks
    answer = client.get(f"{CUSTOMER}/customer", headers={"Authorization": f"Bearer {forever}"})
    assert answer.status_code == 401
    assert "'exp'" in answer.json()["message"]


@pytest.mark.parametrize(
    ("role", "method", "path", "allowed"),
    [
        ("analyst", "post", f"{CUSTOMER}/customer", False),
        ("analyst", "get", f"{CUSTOMER}/customer", True),
        ("marketing", "post", f"{CATALOG}/catalog", True),
        ("sales", "post", f"{CATALOG}/catalog", False),
        ("support", "post", f"{INTERACTION}/partyInteraction", True),
        ("billing", "post", f"{STOCK}/productStock", False),
        ("order_manager", "post", f"{STOCK}/productStock", True),
    ],
)
def test_roles_limit_what_staff_can_do(
    client: TestClient, auth: TokenFactory, role: str, method: str, path: str, allowed: bool
) -> None:
    response = client.request(method, path, json={"name": "x"}, headers=auth(role))
    if allowed:
        assert response.status_code != 403, response.text
    else:
        assert response.status_code == 403
        assert role in response.json()["message"]


def _two_customers(
    client: TestClient, admin: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    return customer(client, admin, "BMW AG"), customer(client, admin, "Daimler AG")


def test_customer_token_sees_only_its_own_resources_on_every_customer_api(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given two customers, each with a contact, a site and an interaction
    mine, theirs = _two_customers(client, admin)
    owned: dict[str, dict[str, str]] = {}
    for who in (mine, theirs):
        contact = post(
            client, f"{PARTY}/individual", {"givenName": "Eva", "familyName": who["name"]}, admin
        )
        client.patch(
            f"{CUSTOMER}/customer/{who['id']}",
            json={
                "relatedParty": [
                    {"id": contact["id"], "@referredType": "Individual", "role": "contact"}
                ]
            },
            headers=admin,
        )
        owned[who["id"]] = {
            f"{CUSTOMER}/customer": who["id"],
            f"{PARTY}/organization": who["engagedParty"]["id"],
            f"{PARTY}/individual": contact["id"],
            f"{SITE}/geographicSite": site(client, admin, who["id"])["id"],
            f"{INTERACTION}/partyInteraction": interaction(client, admin, who["id"])["id"],
        }
    token = auth("customer", customer_id=mine["id"])
    for path, their_id in owned[theirs["id"]].items():
        # when the first customer asks for the other's resource by id, or lists
        # then it gets 404 (not 403: existence is not revealed) and never sees it listed
        assert client.get(f"{path}/{their_id}", headers=token).status_code == 404, path
        assert client.patch(f"{path}/{their_id}", json={}, headers=token).status_code in (
            403,
            404,
        ), path
        # (405 for the record of business, which nobody deletes, reveals nothing either)
        assert client.delete(f"{path}/{their_id}", headers=token).status_code in (
            403,
            404,
            405,
        ), path
        listed = client.get(path, headers=token)
        assert listed.status_code in (200, 206)
        ids = {r["id"] for r in listed.json()}
        assert their_id not in ids, path
        # and its own resource is there
        my_id = owned[mine["id"]][path]
        assert my_id in ids, path
        assert client.get(f"{path}/{my_id}", headers=token).status_code == 200, path


def test_customer_cannot_point_at_another_customers_resources(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    mine, theirs = _two_customers(client, admin)
    token = auth("customer", customer_id=mine["id"])
    response = client.post(
        f"{SITE}/geographicSite",
        json={
            "name": "sneaky",
            "relatedParty": [{"id": theirs["id"], "@referredType": "Customer"}],
        },
        headers=token,
    )
    assert response.status_code == 422
    # a site without a customer named becomes the caller's own
    own = client.post(f"{SITE}/geographicSite", json={"name": "Dealer Ulm"}, headers=token)
    assert own.status_code == 201
    assert own.json()["relatedParty"] == [
        {"id": mine["id"], "@referredType": "Customer", "role": "customer"}
    ]
    assert client.get(f"{SITE}/geographicSite/{own.json()['id']}", headers=admin).status_code == 200


def test_customer_may_change_only_its_contact_data(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    mine = customer(client, admin)
    token = auth("customer", customer_id=mine["id"])
    ok = client.patch(
        f"{CUSTOMER}/customer/{mine['id']}",
        json={
            "contactMedium": [
                {"mediumType": "email", "characteristic": {"emailAddress": "it@bmw.de"}}
            ]
        },
        headers=token,
    )
    assert ok.status_code == 200, ok.text
    refused = client.patch(
        f"{CUSTOMER}/customer/{mine['id']}", json={"status": "active"}, headers=token
    )
    assert refused.status_code == 403
    assert "status" in refused.json()["message"]
    assert client.post(f"{CUSTOMER}/customer", json={"name": "x"}, headers=token).status_code == 403


def test_customer_reads_the_catalog_but_not_stock_and_cannot_change_either(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    mine = customer(client, admin)
    offering = post(client, f"{CATALOG}/productOffering", {"name": "Site access 100 Mbit/s"}, admin)
    token = auth("customer", customer_id=mine["id"])
    assert (
        client.get(f"{CATALOG}/productOffering/{offering['id']}", headers=token).status_code == 200
    )
    assert (
        client.patch(
            f"{CATALOG}/productOffering/{offering['id']}", json={"name": "x"}, headers=token
        ).status_code
        == 403
    )
    assert client.get(f"{STOCK}/productStock", headers=token).status_code == 403


def test_every_change_writes_an_audit_record(client: TestClient, auth: TokenFactory) -> None:
    # given a sales user's token
    sales = auth("sales")
    created = customer(client, sales)
    client.patch(
        f"{CUSTOMER}/customer/{created['id']}", json={"statusReason": "pilot"}, headers=sales
    )
    client.delete(f"{CUSTOMER}/customer/{created['id']}", headers=sales)
    with session_scope() as session:
        records = session.scalars(
            select(AuditRecord)
            .where(AuditRecord.resource_id == created["id"])
            .order_by(AuditRecord.at)
        ).all()
    # then who, when and what are recorded for each step
    assert [r.action for r in records] == ["create", "update", "delete"]
    assert {r.actor for r in records} == {"apikey:test-sales"}
    assert {r.actor_role for r in records} == {"sales"}
    assert records[0].changes["created"]["name"] == "BMW AG"
    assert records[1].changes == {"statusReason": {"old": None, "new": "pilot"}}
    assert records[2].changes["deleted"]["id"] == created["id"]
    assert all(r.at is not None and r.at.tzinfo is not None for r in records)


def test_staff_changes_keep_a_contact_with_its_customer(
    client: TestClient, admin: dict[str, str], auth: TokenFactory
) -> None:
    # given a contact the customer's own user created
    mine = customer(client, admin)
    token = auth("customer", customer_id=mine["id"])
    contact = post(client, f"{PARTY}/individual", {"givenName": "Eva", "familyName": "Roth"}, token)
    # when staff corrects it
    fixed = client.patch(
        f"{PARTY}/individual/{contact['id']}", json={"title": "Dr."}, headers=admin
    )
    assert fixed.status_code == 200
    # then the customer still sees it
    assert client.get(f"{PARTY}/individual/{contact['id']}", headers=token).status_code == 200


def test_login_tokens_are_signed_with_the_secret_from_a_file_and_it_stays_out_of_the_database(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the signing secret in a file (a mounted secret)
    secret = "a mounted secret of well over thirty-two characters"
    (tmp_path / "secret").write_text(secret + "\n")
    monkeypatch.setenv("ETOMCRM_SECRET_KEY_FILE", str(tmp_path / "secret"))
    get_settings.cache_clear()
    with session_scope() as session:
        create_user(session, "anna.sales", "correct horse battery", "sales")
    # when a user signs in
    token = client.post(
        "/auth/token", json={"username": "anna.sales", "password": "correct horse battery"}
    ).json()["access_token"]
    # then the token is signed with the file's secret, and the database keeps none
    assert jwt.decode(token, secret, algorithms=["HS256"])["sub"]
    with session_scope() as session:
        assert session.scalars(select(InstallationSecret)).all() == []
    assert client.get(
        f"{CUSTOMER}/customer", headers={"Authorization": f"Bearer {token}"}
    ).is_success


def test_a_new_sqlite_database_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    # given no database file yet
    path = tmp_path / "fresh.db"
    # when etomcrm opens it
    with get_engine(f"sqlite:///{path}").connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    # then it was created 0600 (customer data and password hashes are in it)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
