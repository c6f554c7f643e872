"""Fill an etomcrm database with N realistic customers, fast, for the benchmarks.

Each customer comes with the Organization that is its engaged party, plus a pool of
spare (unowned) organizations that ``POST /customer`` in the load test refers to.

How the rows are made
---------------------
The schema is brought to head with ``etomcrm db upgrade``. Then:

1. The first customer (and its organization) is created through the real API
   (``etomcrm.api.app.create_app`` in-process, admin API key), and the rows it stored
   are compared with what this seeder builds for the very same request bodies. Any
   difference (keys, nesting, the ``type``/``name``/``status``/``owner_customer_id``/
   ``version`` columns) stops the seeder: the bulk rows must be what the API stores.
2. The other N-1 customers are bulk-inserted with SQLAlchemy Core into the
   ``organization`` and ``customer`` tables (``executemany`` in batches). The stored
   body is built with etomcrm's own steps of ``etomcrm.core.resources.create``
   (server-set attributes dropped, ``etomcrm.db.new_id``, ``@type``, time stamps,
   ``CustomerKind.before_save`` for the initial status, ``_columns`` for the indexed
   columns) and every request body is validated against the official TMF schema
   (``Organization_Create`` / ``Customer_Create``) and every stored body against the
   full ``Organization`` / ``Customer`` definition. What the bulk path skips: the
   audit records and outbox events a real create also writes (they are not read by
   the endpoints measured).

Files written to ``--work-dir``: ``customer_ids.txt`` (one id a line, for random GETs),
``spare_organization_ids.txt`` (for unique POSTs), ``post_customer_template.json`` (a
``Customer_Create`` body of the same shape with ``@@NAME@@``/``@@ORG_ID@@``/
``@@ORG_NAME@@`` placeholders) and ``seed.json`` (what was done, how long it took).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, cast

JsonDict = dict[str, Any]
ROOT = Path(__file__).resolve().parent.parent

# ----- realistic content --------------------------------------------------------------

_ROOTS = [
    "Nordwind",
    "Alpen",
    "Rhein",
    "Elbe",
    "Donau",
    "Isar",
    "Main",
    "Weser",
    "Havel",
    "Spree",
    "Taunus",
    "Harz",
    "Eifel",
    "Allgäu",
    "Baltic",
    "Atlas",
    "Boreal",
    "Cedar",
    "Delta",
    "Ember",
    "Falcon",
    "Granite",
    "Harbor",
    "Indigo",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Nimbus",
    "Orion",
    "Pioneer",
    "Quarry",
    "Redwood",
    "Summit",
    "Tundra",
    "Umber",
    "Vertex",
    "Willow",
    "Zenith",
    "Aurora",
    "Basalt",
    "Cobalt",
    "Dune",
    "Estuary",
    "Fjord",
    "Glacier",
    "Horizon",
    "Ironwood",
    "Lagoon",
]
_TRADES = [
    "Logistik",
    "Maschinenbau",
    "Automotive",
    "Energie",
    "Versicherung",
    "Telekom",
    "Medien",
    "Pharma",
    "Handel",
    "Bau",
    "Software",
    "Consulting",
    "Foods",
    "Logistics",
    "Systems",
    "Networks",
    "Retail",
    "Health",
    "Finance",
    "Robotics",
    "Analytics",
    "Aerospace",
    "Textil",
    "Chemie",
    "Solar",
    "Wind",
    "Data",
    "Cloud",
    "Mobility",
    "Security",
]
_FORMS = (
    ("GmbH", "Gesellschaft mit beschränkter Haftung", "DE"),
    ("AG", "Aktiengesellschaft", "DE"),
    ("SE", "Societas Europaea", "DE"),
    ("KG", "Kommanditgesellschaft", "DE"),
    ("S.A.", "Société anonyme", "FR"),
    ("SAS", "Société par actions simplifiée", "FR"),
    ("B.V.", "Besloten vennootschap", "NL"),
    ("Ltd", "Private limited company", "GB"),
    ("S.p.A.", "Società per azioni", "IT"),
    ("AB", "Aktiebolag", "SE"),
)
_CITIES = {
    "DE": [
        ("München", "80809", "Bayern"),
        ("Hamburg", "20095", "Hamburg"),
        ("Stuttgart", "70173", "Baden-Württemberg"),
        ("Köln", "50667", "Nordrhein-Westfalen"),
        ("Leipzig", "04109", "Sachsen"),
        ("Berlin", "10117", "Berlin"),
    ],
    "FR": [
        ("Paris", "75008", "Île-de-France"),
        ("Lyon", "69002", "Auvergne-Rhône-Alpes"),
        ("Toulouse", "31000", "Occitanie"),
    ],
    "NL": [("Amsterdam", "1012 AB", "Noord-Holland"), ("Eindhoven", "5611 AZ", "Noord-Brabant")],
    "GB": [("London", "EC2A 4NE", "England"), ("Manchester", "M1 1AE", "England")],
    "IT": [("Milano", "20121", "Lombardia"), ("Torino", "10121", "Piemonte")],
    "SE": [("Stockholm", "111 52", "Stockholm"), ("Göteborg", "411 04", "Västra Götaland")],
}
_STREETS = (
    "Petuelring",
    "Hauptstraße",
    "Industriestraße",
    "Rue de la Paix",
    "Keizersgracht",
    "High Street",
    "Via Roma",
    "Drottninggatan",
    "Bahnhofstraße",
    "Avenue Foch",
)
_SEGMENTS = ("enterprise", "enterprise", "mid-market", "mid-market", "small business", "public")
_INDUSTRIES = (
    "automotive",
    "manufacturing",
    "energy",
    "insurance",
    "media",
    "retail",
    "health",
    "finance",
    "logistics",
    "public sector",
)
_PHONE_PREFIX = {"DE": "+49", "FR": "+33", "NL": "+31", "GB": "+44", "IT": "+39", "SE": "+46"}


def _date(rng: random.Random, year_from: int, year_to: int) -> str:
    return (
        f"{rng.randint(year_from, year_to)}-{rng.randint(1, 12):02d}-"
        f"{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
    )


def _slug(text: str) -> str:
    return "".join(c for c in text.lower() if c.isascii() and c.isalnum())


def make_payloads(rng: random.Random, serial: int) -> tuple[JsonDict, JsonDict]:
    """An ``Organization_Create`` body and a ``Customer_Create`` body (engagedParty
    left for the caller to fill with the organization's id), as a client would send."""
    form, form_long, country = rng.choice(_FORMS)
    trading = f"{rng.choice(_ROOTS)} {rng.choice(_TRADES)} {serial}"
    legal = f"{trading} {form}"
    city, postcode, region = rng.choice(_CITIES[country])
    street = f"{rng.choice(_STREETS)} {rng.randint(1, 250)}"
    domain = f"{_slug(trading)}.example"
    phone = f"{_PHONE_PREFIX[country]} {rng.randint(20, 99)} {rng.randint(1000000, 9999999)}"
    since = _date(rng, 1950, 2020)
    postal = {
        "mediumType": "postalAddress",
        "characteristic": {
            "contactType": "headquarters",
            "street1": street,
            "postCode": postcode,
            "city": city,
            "stateOrProvince": region,
            "country": country,
        },
    }
    organization = {
        "tradingName": trading,
        "name": legal,
        "nameType": form,
        "isLegalEntity": True,
        "isHeadOffice": True,
        "organizationType": "company",
        "status": "validated",
        "existsDuring": {"startDateTime": since},
        "organizationIdentification": [
            {
                "identificationType": "commercialRegister",
                "identificationId": f"{form_long[:3].upper()}-{rng.randint(10000, 999999)}",
                "issuingAuthority": f"Register court {city}",
            }
        ],
        "contactMedium": [
            postal,
            {
                "mediumType": "telephone",
                "characteristic": {"contactType": "switchboard", "phoneNumber": phone},
            },
        ],
    }
    customer_since = _date(rng, 2015, 2025)
    customer = {
        "name": trading,
        "status": "active" if rng.random() < 0.85 else "prospect",
        "engagedParty": {"id": "", "@referredType": "Organization", "name": trading},
        "validFor": {"startDateTime": customer_since},
        "contactMedium": [
            {
                "mediumType": "email",
                "preferred": True,
                "characteristic": {"contactType": "billing", "emailAddress": f"billing@{domain}"},
            },
            {
                "mediumType": "telephone",
                "characteristic": {"contactType": "office", "phoneNumber": phone},
            },
            {
                "mediumType": "postalAddress",
                "characteristic": {
                    **cast(dict[str, str], postal["characteristic"]),
                    "contactType": "billing",
                },
            },
        ],
        "characteristic": [
            {"name": "segment", "valueType": "string", "value": rng.choice(_SEGMENTS)},
            {"name": "industry", "valueType": "string", "value": rng.choice(_INDUSTRIES)},
            {"name": "employees", "valueType": "integer", "value": rng.randint(10, 120000)},
        ],
        "account": [
            {
                "id": f"BA-{serial:08d}",
                "name": f"{trading} main billing account",
                "@referredType": "BillingAccount",
            }
        ],
        "creditProfile": [
            {
                "creditProfileDate": customer_since,
                "creditRiskRating": rng.randint(1, 5),
                "creditScore": rng.randint(300, 850),
                "validFor": {"startDateTime": customer_since},
            }
        ],
    }
    return organization, customer


def engage(customer: JsonDict, organization_id: str) -> JsonDict:
    out = dict(customer)
    out["engagedParty"] = {**customer["engagedParty"], "id": organization_id}
    return out


# ----- what etomcrm stores ----------------------------------------------------------------


def stored(kind: Any, payload: JsonDict, owner: str | None) -> JsonDict:
    """The row ``etomcrm.core.resources.create`` writes for this payload (as a dict of
    column values), built with etomcrm's own steps; validated like the API does."""
    from etomcrm.core import resources
    from etomcrm.db import new_id, utcnow
    from etomcrm.security.service import SYSTEM

    definition = f"{kind.type_name}_Create" if kind.has_create_schema else kind.type_name
    resources.validate_against(kind.doc, definition, payload, "seed request body")
    body: JsonDict = {k: v for k, v in payload.items() if k not in resources.SERVER_SET}
    body["id"] = new_id()
    body.setdefault("@type", kind.type_name)
    resources._stamp_times(kind, body, creating=True)
    kind.before_save(None, SYSTEM, body, None)  # only the create branch: no session used
    resources.validate_against(kind.doc, kind.type_name, body, "seed stored body")
    now = utcnow()
    attributes = {
        "id": body["id"],
        "owner_customer_id": owner,
        "body": body,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        **resources._columns(kind, body),
    }
    # ORM attribute names -> table column names (``at_type`` is stored as ``type``).
    columns = kind.row.__mapper__.columns
    return {columns[name].name: value for name, value in attributes.items()}


def _shape(node: Any) -> Any:
    """Structure and scalar types, without values (ids and times differ run to run)."""
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in sorted(node.items())}
    if isinstance(node, list):
        return [_shape(v) for v in node]
    return type(node).__name__


def verify_against_api(rng: random.Random) -> tuple[str, str]:
    """Create customer #1 through the real API and check the seeder builds the same rows.

    Returns (customer id, organization id) of the customer created."""
    with warnings.catch_warnings():  # starlette's note about httpx; irrelevant here
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from sqlalchemy import select

    from etomcrm.bootstrap import create_app
    from etomcrm.customer_interface.models import CustomerRow, OrganizationRow
    from etomcrm.customer_interface.service import CUSTOMER_KIND, ORGANIZATION_KIND
    from etomcrm.db import session_scope
    from etomcrm.security.service import create_api_key

    with session_scope() as session:
        _, token = create_api_key(session, "bench-seed", "admin")
    headers = {"Authorization": f"Bearer {token}"}
    org_payload, customer_payload = make_payloads(rng, 1)
    with TestClient(create_app(deliver_events=False)) as client:
        response = client.post("/tmf-api/party/v4/organization", json=org_payload, headers=headers)
        if response.status_code != 201:
            sys.exit(f"seed: the API refused the organization: {response.text}")
        org_id = response.json()["id"]
        customer_payload = engage(customer_payload, org_id)
        response = client.post(
            "/tmf-api/customerManagement/v4/customer", json=customer_payload, headers=headers
        )
        if response.status_code != 201:
            sys.exit(f"seed: the API refused the customer: {response.text}")
        customer_id = response.json()["id"]

    mine_org = stored(ORGANIZATION_KIND, org_payload, None)
    mine_customer = stored(CUSTOMER_KIND, customer_payload, "owner")
    mine_org["owner_customer_id"] = "owner"  # CustomerKind.after_save claims the party
    with session_scope(readonly=True) as session:
        api_rows = {
            "organization": session.scalar(
                select(OrganizationRow).where(OrganizationRow.id == org_id)
            ),
            "customer": session.scalar(select(CustomerRow).where(CustomerRow.id == customer_id)),
        }
        problems = []
        for label, mine, row, owner in (
            ("organization", mine_org, api_rows["organization"], customer_id),
            ("customer", mine_customer, api_rows["customer"], customer_id),
        ):
            assert row is not None, f"the API did not store the {label}"
            if _shape(row.body) != _shape(mine["body"]):
                problems.append(
                    f"{label} body: API {_shape(row.body)} != seed {_shape(mine['body'])}"
                )
            for attribute, column in (
                ("at_type", "type"),
                ("name", "name"),
                ("status", "status"),
                ("version", "version"),
            ):
                if getattr(row, attribute) != mine[column]:
                    problems.append(
                        f"{label}.{column}: API {getattr(row, attribute)!r} != "
                        f"seed {mine[column]!r}"
                    )
            if row.owner_customer_id != owner:
                problems.append(f"{label}.owner_customer_id: {row.owner_customer_id!r}")
            same_values = {
                k: v for k, v in row.body.items() if k not in ("id", "creationDate", "lastUpdate")
            }
            mine_values = {
                k: v
                for k, v in mine["body"].items()
                if k not in ("id", "creationDate", "lastUpdate")
            }
            if same_values != mine_values:
                problems.append(f"{label} body values differ")
    if problems:
        sys.exit(
            "seed: the bulk rows would differ from what the API stores:\n  " + "\n  ".join(problems)
        )
    return customer_id, org_id


# ----- bulk insert ------------------------------------------------------------------------


def bulk_seed(
    rng: random.Random,
    customers: int,
    spare: int,
    batch: int,
    work_dir: Path,
    first: tuple[str, str],
) -> JsonDict:
    from sqlalchemy import Table, func, insert, select

    from etomcrm.customer_interface.models import CustomerRow, OrganizationRow
    from etomcrm.customer_interface.service import CUSTOMER_KIND, ORGANIZATION_KIND
    from etomcrm.db import get_engine

    engine = get_engine()
    org_table, customer_table = (
        cast(Table, OrganizationRow.__table__),
        cast(Table, CustomerRow.__table__),
    )
    customer_ids = [first[0]]
    spare_ids: list[str] = []
    build_s = insert_s = 0.0
    serial = 2
    remaining = customers - 1
    while remaining > 0:
        n = min(batch, remaining)
        t0 = time.perf_counter()
        orgs, custs = [], []
        for _ in range(n):
            org_payload, customer_payload = make_payloads(rng, serial)
            serial += 1
            org = stored(ORGANIZATION_KIND, org_payload, None)
            cust = stored(CUSTOMER_KIND, engage(customer_payload, org["id"]), None)
            cust["owner_customer_id"] = cust["id"]  # CustomerKind.owner_for
            org["owner_customer_id"] = cust["id"]  # CustomerKind.after_save
            orgs.append(org)
            custs.append(cust)
            customer_ids.append(cust["id"])
        t1 = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(insert(org_table), orgs)
            conn.execute(insert(customer_table), custs)
        insert_s += time.perf_counter() - t1
        build_s += t1 - t0
        remaining -= n
        done = customers - remaining
        if done % (batch * 10) == 0 or remaining == 0:
            print(f"seed: {done} customers", flush=True)
    left = spare
    while left > 0:
        n = min(batch, left)
        t0 = time.perf_counter()
        orgs = []
        for _ in range(n):
            org_payload, _ = make_payloads(rng, serial)
            serial += 1
            orgs.append(stored(ORGANIZATION_KIND, org_payload, None))
            spare_ids.append(orgs[-1]["id"])
        t1 = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(insert(org_table), orgs)
        insert_s += time.perf_counter() - t1
        build_s += t1 - t0
        left -= n
    with engine.connect() as conn:
        counted = conn.scalar(select(func.count()).select_from(customer_table))
    (work_dir / "customer_ids.txt").write_text("\n".join(customer_ids) + "\n")
    (work_dir / "spare_organization_ids.txt").write_text("\n".join(spare_ids) + "\n")
    return {
        "build_seconds": round(build_s, 1),
        "insert_seconds": round(insert_s, 1),
        "customers_in_table": counted,
    }


def post_template(rng: random.Random) -> str:
    """A Customer_Create body like the seeded ones, with placeholders for wrk's Lua."""
    _, customer = make_payloads(rng, 99999999)
    customer = engage(customer, "@@ORG_ID@@")
    customer["name"] = "@@NAME@@"
    customer["engagedParty"]["name"] = "@@NAME@@"
    customer["status"] = "prospect"
    return json.dumps(customer, ensure_ascii=False, separators=(",", ":"))


def analyze(url: str) -> None:
    """PostgreSQL: what autovacuum would do after a bulk load (visibility map, stats)."""
    if not url.startswith("postgresql"):
        return
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE organization")
        conn.execute("VACUUM ANALYZE customer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ETOMCRM_DATABASE_URL"),
        help="default: $ETOMCRM_DATABASE_URL",
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument(
        "--spare-organizations",
        type=int,
        default=40_000,
        help="unowned organizations for the POST /customer test",
    )
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=629)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / "results" / "tmp")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url or set ETOMCRM_DATABASE_URL")
    os.environ["ETOMCRM_DATABASE_URL"] = args.database_url
    # The token cache and settings are per process; nothing else to reset.
    os.environ.setdefault("ETOMCRM_HUB_DELIVERY_ENABLED", "false")
    args.work_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    etomcrm = Path(sys.executable).with_name("etomcrm")
    subprocess.run([str(etomcrm), "db", "upgrade"], check=True)

    from sqlalchemy import func, select

    from etomcrm.customer_interface.models import CustomerRow
    from etomcrm.db import session_scope

    with session_scope(readonly=True) as session:
        existing = session.scalar(select(func.count()).select_from(CustomerRow))
    if existing:
        sys.exit(f"seed: the database already holds {existing} customers; seed an empty one")

    rng = random.Random(args.seed)
    first = verify_against_api(rng)
    print("seed: customer #1 created through the API; bulk rows match its shape", flush=True)
    report = bulk_seed(
        rng, args.customers, args.spare_organizations, args.batch, args.work_dir, first
    )
    t0 = time.perf_counter()
    analyze(args.database_url)
    report["analyze_seconds"] = round(time.perf_counter() - t0, 1)
    (args.work_dir / "post_customer_template.json").write_text(post_template(rng))
    report.update(
        customers=args.customers,
        spare_organizations=args.spare_organizations,
        seconds=round(time.perf_counter() - started, 1),
    )
    (args.work_dir / "seed.json").write_text(json.dumps(report, indent=2))
    print("seed: " + json.dumps(report), flush=True)
    if report["customers_in_table"] != args.customers:
        sys.exit(f"seed: expected {args.customers} customers, found {report['customers_in_table']}")


if __name__ == "__main__":
    main()
