"""3.4.4 Acquire customer data, completed: who pays, when and how.

A TMF666 ``billingAccount`` belongs to one customer (``relatedParty`` role customer); a
customer may hold several (headquarters paying for every site, or one per region with
its cost centre). The account carries, in TMF666 terms and a few extensions:

- ``billCycleDay`` (extension, 1 to 28): the day of the month the account is billed; the
  server mirrors it into ``billStructure.cycleSpecification``;
- ``currency`` (extension, ``EUR``);
- ``billStructure.presentationMedia``: the bill delivery, ``email`` and/or ``portal``;
- ``contact`` with ``contactType`` ``billing``: the billing contact (an ``email``
  medium) and address (a ``postalAddress`` medium: street1, postCode, city, country);
  absent, the customer's billing contact and address (3.4.4 contract data) apply;
- ``vatId`` (extension; absent, the customer's): the server derives ``vatTreatment``,
  ``reverseCharge`` for a valid VAT id of another EU state than the provider's,
  ``standard`` otherwise;
- ``accountBalance``: server-set, written by :func:`record_account_balance` only;
- ``creditLimit``: staff only, a customer principal never writes it;
- ``state``: active, suspended, closed;
- ``paymentMethod`` (extension, server-set): the TMF670 payment methods naming the
  account; ``defaultPaymentMethod`` the one collected from.

A TMF670 ``paymentMethod`` is ``bankAccountDebit`` (SEPA direct debit: IBAN and BIC
checked with schwifty, a ``mandate`` with reference, signature date not in the future
and scheme CORE or B2B) or ``bankAccountTransfer`` (the customer transfers; an IBAN, if
given, is checked too). It names its billing account in ``account``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal, cast

import orjson
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session
from stdnum.eu import vat

from etomcrm.config import get_settings
from etomcrm.core import resources
from etomcrm.core.clock import iso
from etomcrm.core.errors import Forbidden, InvalidRequest, MethodNotAllowed
from etomcrm.core.resources import (
    CREATE,
    DELETE,
    LIST,
    NUMBER,
    OBJECT,
    READ,
    TEXT,
    UPDATE,
    RefSpec,
    ResourceKind,
)
from etomcrm.core.tmf_schemas import ACCOUNT, PAYMENT_METHOD, JsonDict
from etomcrm.customer_interface.models import CustomerRow, OrganizationRow
from etomcrm.customer_interface.service import CustomerOwnedKind
from etomcrm.db import UTCDateTime, among, utcnow
from etomcrm.security.service import SYSTEM, Principal, Role
from etomcrm.selling.models import BillingAccountRow, PaymentMethodRow

CENT = Decimal("0.01")
CURRENCIES = frozenset({"EUR"})
DELIVERY = ("email", "portal")
ACCOUNT_STATES = ("active", "suspended", "closed")
METHOD_STATES = ("active", "inactive")
DEBIT, TRANSFER = "bankAccountDebit", "bankAccountTransfer"
SCHEMES = ("CORE", "B2B")
# The characters the SEPA rulebook allows in a mandate reference, at most 35.
MANDATE_REFERENCE = re.compile(r"^[A-Za-z0-9+?/\-:().,']{1,35}$")
ACCOUNT_WRITERS = frozenset({Role.ADMIN, Role.SALES, Role.BILLING})
# What a customer principal may not write on its own account.
STAFF_ONLY = ("creditLimit", "state")


# ----- helpers over the documents ---------------------------------------------------


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _customer_id(body: JsonDict) -> str | None:
    for party in body.get("relatedParty") or []:
        if isinstance(party, dict) and party.get("@referredType") == "Customer":
            return cast(str, party.get("id"))
    return None


def _media(contacts: Any, medium_type: str) -> list[JsonDict]:
    out: list[JsonDict] = []
    for contact in contacts or []:
        if not isinstance(contact, dict) or contact.get("contactType") != "billing":
            continue
        for medium in contact.get("contactMedium") or []:
            if isinstance(medium, dict) and medium.get("mediumType") == medium_type:
                out.append(medium.get("characteristic") or {})
    return out


def _customer_media(customer: JsonDict, medium_type: str) -> list[JsonDict]:
    return [
        m.get("characteristic") or {}
        for m in customer.get("contactMedium") or []
        if isinstance(m, dict)
        and m.get("mediumType") == medium_type
        and (m.get("characteristic") or {}).get("contactType") == "billing"
    ]


def _characteristic(customer: JsonDict, name: str) -> Any:
    for item in customer.get("characteristic") or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get("value")
    return None


def _delivery(body: JsonDict) -> tuple[str, ...]:
    media = (body.get("billStructure") or {}).get("presentationMedia") or []
    return tuple(str(m.get("name")) for m in media if isinstance(m, dict))


def reverse_charge(vat_id: str | None) -> bool:
    """True for a valid VAT id of another EU member state than the provider's: the
    recipient owes the VAT (§13b UStG, Art. 196 VAT directive)."""
    if not vat_id or not vat.is_valid(vat_id):
        return False
    provider = get_settings().provider_country.upper()
    country = vat.compact(vat_id)[:2].upper()
    # Greece writes EL in VAT ids.
    return country not in (provider, "EL" if provider == "GR" else provider)


def _check_money(body: JsonDict, attribute: str, currency: str) -> None:
    value = body.get(attribute)
    if value is None:
        return
    try:
        amount = Decimal(str(value.get("value")))
    except InvalidOperation:
        raise InvalidRequest(f"{attribute}.value must be an amount") from None
    if amount < 0:
        raise InvalidRequest(f"{attribute} cannot be negative")
    if value.setdefault("unit", currency) != currency:
        raise InvalidRequest(f"{attribute} must be in the account's currency {currency}")


def _pairs(result: Any) -> dict[str, Any]:
    return {str(key): value for key, value in result}


def _name_parties(session: Session, parties: list[Any]) -> None:
    """Give a customer reference the name the schema requires (a portal user's account
    names its own customer by id only)."""
    unnamed = [
        p
        for p in parties
        if isinstance(p, dict) and p.get("@referredType") == "Customer" and not p.get("name")
    ]
    if not unnamed:
        return
    names = _pairs(
        session.execute(
            select(CustomerRow.id, CustomerRow.name).where(
                CustomerRow.id.in_({str(p.get("id")) for p in unnamed})
            )
        )
    )
    for party in unnamed:
        party["name"] = names.get(str(party.get("id"))) or str(party.get("id"))


# ----- TMF666 billingAccount ------------------------------------------------------------


@dataclass
class BillingAccountKind(CustomerOwnedKind):
    def authorize(self, principal: Principal, operation: str) -> None:
        if operation == DELETE:
            raise MethodNotAllowed(
                "a billing account is a record of business and is never deleted; "
                "set its state to closed instead"
            )
        super().authorize(principal, operation)

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        super().before_save(session, principal, body, old)
        before = old or {}
        customer_id = _customer_id(body)
        if customer_id is None:
            raise InvalidRequest(
                "relatedParty must name the customer the billing account belongs to "
                "(@referredType Customer, role customer)"
            )
        if old is not None and _customer_id(old) != customer_id:
            raise InvalidRequest("relatedParty: a billing account stays with its customer")
        if principal.is_customer:
            for attribute in STAFF_ONLY:
                if body.get(attribute) != before.get(attribute) and not (
                    old is None and attribute == "state" and body.get(attribute) == "active"
                ):
                    raise Forbidden(f"{attribute} of a billing account is set by the provider")
        if old is None and principal.id != SERVICE.id:
            for attribute in ("accountBalance", "paymentMethod"):
                if attribute in body:
                    raise InvalidRequest(
                        f"{attribute} is set by etomcrm, not by a request: "
                        f"{self.server_set[attribute]}"
                    )
        _name_parties(session, body.get("relatedParty") or [])
        day = body.setdefault("billCycleDay", 1)
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 28:
            raise InvalidRequest(
                f"billCycleDay must be a day of the month from 1 to 28, not {day!r}"
            )
        currency = str(body.setdefault("currency", "EUR"))
        if currency not in CURRENCIES:
            raise InvalidRequest(f"currency: bills are issued in EUR, not {currency!r}")
        if old is not None and old.get("currency") != currency:
            raise InvalidRequest("currency: an account's currency does not change")
        _check_money(body, "creditLimit", currency)
        state = body.setdefault("state", "active")
        if state not in ACCOUNT_STATES:
            raise InvalidRequest(f"state must be one of {', '.join(ACCOUNT_STATES)}, not {state!r}")
        if before.get("state") == "closed" and state != "closed":
            raise InvalidRequest("state: a closed billing account is not reopened")
        structure = body.setdefault("billStructure", {})
        structure["cycleSpecification"] = {
            "name": f"monthly on day {day}",
            "frequency": "monthly",
            "billingPeriod": "month",
        }
        media = structure.setdefault("presentationMedia", [{"name": "email"}])
        for medium in media:
            if medium.get("name") not in DELIVERY:
                raise InvalidRequest(
                    "billStructure.presentationMedia: a bill is delivered by "
                    f"{' or '.join(DELIVERY)}, not {medium.get('name')!r}"
                )
        self._check_contact(session, body, customer_id)
        vat_id = _text(body.get("vatId"))
        if vat_id is not None:
            if not vat.is_valid(vat_id):
                raise InvalidRequest(
                    f"vatId {vat_id!r} is not a valid EU VAT id (country prefix, format "
                    "and check digit)"
                )
            body["vatId"] = vat.compact(vat_id)
        else:
            customer = session.scalar(select(CustomerRow.body).where(CustomerRow.id == customer_id))
            vat_id = _text(_characteristic(customer or {}, "vatId"))
        body["vatTreatment"] = "reverseCharge" if reverse_charge(vat_id) else "standard"
        self._check_default_method(session, body)
        # TMF666 names its change stamp lastModified (core stamps lastUpdate).
        body["lastModified"] = iso(utcnow())
        if old is not None:
            # The bill run selects by these columns; patch rewrites only the shared ones.
            row = session.get(BillingAccountRow, body["id"])
            if row is not None:
                row.bill_cycle_day = day
                row.currency = currency

    def _check_contact(self, session: Session, body: JsonDict, customer_id: str) -> None:
        for email in _media(body.get("contact"), "email"):
            address = _text(email.get("emailAddress"))
            if address is None or "@" not in address.strip("@"):
                raise InvalidRequest(
                    f"contact.contactMedium.characteristic.emailAddress {address!r} is not "
                    "an e-mail address"
                )
        for postal in _media(body.get("contact"), "postalAddress"):
            for name in ("street1", "postCode", "city", "country"):
                if _text(postal.get(name)) is None:
                    raise InvalidRequest(
                        f"contact.contactMedium.characteristic.{name} is missing from the "
                        "billing address"
                    )
        if "email" in _delivery(body) and not _media(body.get("contact"), "email"):
            customer = session.scalar(select(CustomerRow.body).where(CustomerRow.id == customer_id))
            if not any(
                _text(m.get("emailAddress")) for m in _customer_media(customer or {}, "email")
            ):
                raise InvalidRequest(
                    "billStructure.presentationMedia email needs a billing e-mail: add a "
                    "billing contact with an email medium, or the customer's billing contact"
                )

    def _check_default_method(self, session: Session, body: JsonDict) -> None:
        ref = body.get("defaultPaymentMethod")
        if not ref:
            return
        account_id = session.scalar(
            select(PaymentMethodRow.billing_account_id).where(PaymentMethodRow.id == ref["id"])
        )
        if account_id != body["id"]:
            raise InvalidRequest(
                f"defaultPaymentMethod {ref['id']} is not a payment method of this account; "
                "create the paymentMethod naming the account first"
            )
        ref.setdefault("@referredType", "PaymentMethod")

    def row_columns(self, session: Session, body: JsonDict) -> dict[str, Any]:
        return {"bill_cycle_day": body["billCycleDay"], "currency": body["currency"]}


BILLING_ACCOUNT_KIND = BillingAccountKind(
    name="billingAccount",
    type_name="BillingAccount",
    doc=ACCOUNT,
    row=BillingAccountRow,
    write_roles=ACCOUNT_WRITERS,
    customer_operations=frozenset({READ, CREATE, UPDATE}),
    refs=(RefSpec("relatedParty[]"), RefSpec("defaultPaymentMethod", "paymentMethod")),
    status_attribute="state",
    extensions={
        "billCycleDay": NUMBER,
        "currency": TEXT,
        "vatId": TEXT,
        "vatTreatment": TEXT,
        "costCentre": TEXT,
        "paymentMethod": LIST,
    },
    server_set={
        "accountBalance": "the balance is what the bills and payments leave",
        "paymentMethod": "it lists the paymentMethod resources naming this account",
        "vatTreatment": "it follows from the VAT id",
    },
)


# The system writing server-set attributes (balances, payment method links): the only
# principal whose changes to them are kept.
SERVICE = Principal(id="system-accounts", name=SYSTEM.name, role=SYSTEM.role)


def _service() -> Principal:
    return SERVICE


# ----- TMF670 paymentMethod -------------------------------------------------------------


def _iban(value: Any, attribute: str) -> str:
    try:
        return str(IBAN(str(value or "")).compact)
    except (SchwiftyException, ValueError) as error:
        raise InvalidRequest(f"{attribute} {value!r} is not a valid IBAN: {error}") from None


def _bic(value: Any, attribute: str) -> str:
    try:
        return str(BIC(str(value or "")).compact)
    except (SchwiftyException, ValueError) as error:
        raise InvalidRequest(f"{attribute} {value!r} is not a valid BIC: {error}") from None


def _check_mandate(mandate: Any) -> None:
    if not isinstance(mandate, dict):
        raise InvalidRequest(
            "mandate is required for a SEPA direct debit: reference, dateOfSignature, scheme"
        )
    reference = mandate.get("reference")
    if not isinstance(reference, str) or not MANDATE_REFERENCE.match(reference):
        raise InvalidRequest(
            f"mandate.reference {reference!r} is not a SEPA mandate reference (1 to 35 of "
            "A-Z a-z 0-9 + ? / - : ( ) . , ')"
        )
    try:
        signed = date.fromisoformat(str(mandate.get("dateOfSignature")))
    except ValueError:
        raise InvalidRequest(
            f"mandate.dateOfSignature {mandate.get('dateOfSignature')!r} is not a date (YYYY-MM-DD)"
        ) from None
    if signed > utcnow().date():
        raise InvalidRequest(f"mandate.dateOfSignature {signed} lies in the future")
    if mandate.get("scheme") not in SCHEMES:
        raise InvalidRequest(f"mandate.scheme must be CORE or B2B, not {mandate.get('scheme')!r}")


def _account_ids(body: JsonDict) -> list[str]:
    return [a["id"] for a in body.get("account") or [] if isinstance(a, dict) and a.get("id")]


@dataclass
class PaymentMethodKind(ResourceKind):
    def authorize(self, principal: Principal, operation: str) -> None:
        if operation == DELETE:
            raise MethodNotAllowed(
                "a payment method (a SEPA mandate) is kept as evidence; set its status to "
                "inactive instead of deleting it"
            )
        super().authorize(principal, operation)

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        accounts = _account_ids(body)
        if len(accounts) != 1:
            raise InvalidRequest(
                "account must name the one billingAccount this payment method pays for"
            )
        if old is not None and _account_ids(old) != accounts:
            raise InvalidRequest("account: a payment method stays with its billing account")
        for ref in body["account"]:
            ref.setdefault("@referredType", "BillingAccount")
        means = body.get("@type")
        if means not in (DEBIT, TRANSFER):
            raise InvalidRequest(
                f"@type must be {DEBIT} (SEPA direct debit) or {TRANSFER}, not {means!r}"
            )
        if old is not None and old.get("@type") != means:
            raise InvalidRequest("@type: create a new payment method for another means")
        status = body.setdefault("status", "active")
        if status not in METHOD_STATES:
            raise InvalidRequest(f"status must be active or inactive, not {status!r}")
        if old is None or old.get("status") != status:
            body["statusDate"] = iso(utcnow())
        if means == DEBIT or body.get("accountNumber") is not None:
            body["accountNumber"] = _iban(body.get("accountNumber"), "accountNumber")
            body["accountNumberType"] = "IBAN"
        if means == DEBIT or body.get("BIC") is not None:
            body["BIC"] = _bic(body.get("BIC"), "BIC")
        if means == DEBIT:
            if _text(body.get("owner")) is None:
                raise InvalidRequest("owner: a direct debit names the account holder")
            _check_mandate(body.get("mandate"))
            if old is not None and (old.get("mandate") or {}).get("reference") != body[
                "mandate"
            ].get("reference"):
                raise InvalidRequest("mandate.reference: a new mandate is a new payment method")
            if principal.id != SERVICE.id:
                body["sequenceType"] = (old or {}).get("sequenceType", "FRST")
        else:
            body.pop("mandate", None)
            body.pop("sequenceType", None)

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        owner = session.scalar(
            select(BillingAccountRow.owner_customer_id).where(
                BillingAccountRow.id == _account_ids(body)[0]
            )
        )
        if owner is not None and not body.get("relatedParty"):
            body["relatedParty"] = {"id": owner, "@referredType": "Customer", "role": "payer"}
            _name_parties(session, [body["relatedParty"]])
        return owner

    def row_columns(self, session: Session, body: JsonDict) -> dict[str, Any]:
        return {"billing_account_id": _account_ids(body)[0]}

    def after_save(
        self, session: Session, principal: Principal, body: JsonDict, owner: str | None
    ) -> None:
        account_id = _account_ids(body)[0]
        account = session.scalar(
            select(BillingAccountRow.body).where(BillingAccountRow.id == account_id)
        )
        if account is None:
            return
        refs = [r for r in account.get("paymentMethod") or [] if r.get("id") != body["id"]]
        refs.append({"id": body["id"], "name": body["name"], "@referredType": "PaymentMethod"})
        changes: JsonDict = {"paymentMethod": refs}
        if not account.get("defaultPaymentMethod") and body.get("status") == "active":
            changes["defaultPaymentMethod"] = {
                "id": body["id"],
                "name": body["name"],
                "@referredType": "PaymentMethod",
            }
        resources.patch(
            session, BILLING_ACCOUNT_KIND, _service(), account_id, changes, by_service=True
        )


PAYMENT_METHOD_KIND = PaymentMethodKind(
    name="paymentMethod",
    type_name="PaymentMethod",
    doc=PAYMENT_METHOD,
    row=PaymentMethodRow,
    write_roles=ACCOUNT_WRITERS,
    customer_operations=frozenset({READ, CREATE, UPDATE}),
    refs=(RefSpec("account[]", "billingAccount"),),
    extensions={
        "accountNumber": TEXT,
        "BIC": TEXT,
        "owner": TEXT,
        "mandate": OBJECT,
        "sequenceType": TEXT,
    },
    server_set={"sequenceType": "FRST until the first collection, RCUR after it"},
)


# ----- what billing reads (the contract) -----------------------------------------------


@dataclass(frozen=True)
class PayerTerms:
    """Everything the bill run, the invoice and the collection need about a payer."""

    account_id: str
    customer_id: str
    name: str
    bill_cycle_day: int
    currency: str
    delivery: tuple[str, ...]
    email: str | None
    legal_name: str
    street: str
    post_code: str
    city: str
    country: str
    vat_id: str | None
    reverse_charge: bool
    credit_limit: Decimal | None
    payment_method_id: str | None
    means: Literal["sepaDirectDebit", "bankTransfer"] | None
    iban: str | None
    bic: str | None
    mandate_reference: str | None
    mandate_signed: date | None
    scheme: Literal["CORE", "B2B"] | None
    first_collection_done: bool


def _chosen_method(account: JsonDict, methods: list[JsonDict]) -> JsonDict | None:
    active = [m for m in methods if m.get("status") == "active"]
    default = (account.get("defaultPaymentMethod") or {}).get("id")
    for method in active:
        if method["id"] == default:
            return method
    return min(active, key=lambda m: str(m["id"])) if active else None


def _legal_name(customer: JsonDict, organizations: dict[str, JsonDict], fallback: str) -> str:
    name = _text(_characteristic(customer, "legalName"))
    if name:
        return name
    party = customer.get("engagedParty") or {}
    organization = organizations.get(str(party.get("id")))
    if organization and _text(organization.get("name")):
        return str(organization["name"])
    return _text(customer.get("name")) or fallback


def payer_terms(session: Session, account_ids: Collection[str]) -> dict[str, PayerTerms]:
    """The payer terms of each account found, by id; four queries whatever the number of
    ids (accounts, their payment methods, their customers, the customers' organizations).

    Contact, address and VAT id the account does not carry are the customer's
    (3.4.4 contract data).
    """
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(
            BillingAccountRow.id, BillingAccountRow.owner_customer_id, BillingAccountRow.body
        ).where(among(session, BillingAccountRow.id, ids))
    ).all()
    methods: dict[str, list[JsonDict]] = {}
    for account_id, method in session.execute(
        select(PaymentMethodRow.billing_account_id, PaymentMethodRow.body).where(
            among(session, PaymentMethodRow.billing_account_id, ids)
        )
    ):
        methods.setdefault(str(account_id), []).append(method)
    customer_ids = {str(owner) for _, owner, _ in rows if owner}
    customers: dict[str, JsonDict] = _pairs(
        session.execute(
            select(CustomerRow.id, CustomerRow.body).where(
                among(session, CustomerRow.id, customer_ids)
            )
        )
    )
    organization_ids = {str((c.get("engagedParty") or {}).get("id")) for c in customers.values()}
    organizations: dict[str, JsonDict] = _pairs(
        session.execute(
            select(OrganizationRow.id, OrganizationRow.body).where(
                among(session, OrganizationRow.id, organization_ids)
            )
        )
    )
    out: dict[str, PayerTerms] = {}
    for account_id, owner, body in rows:
        customer = customers.get(str(owner), {})
        emails = _media(body.get("contact"), "email") or _customer_media(customer, "email")
        postal = _media(body.get("contact"), "postalAddress") or _customer_media(
            customer, "postalAddress"
        )
        address = postal[0] if postal else {}
        vat_id = _text(body.get("vatId")) or _text(_characteristic(customer, "vatId"))
        limit = body.get("creditLimit")
        method = _chosen_method(body, methods.get(account_id, []))
        debit = method is not None and method.get("@type") == DEBIT
        mandate = (method or {}).get("mandate") or {}
        out[account_id] = PayerTerms(
            account_id=account_id,
            customer_id=str(owner),
            name=str(body.get("name")),
            bill_cycle_day=int(body.get("billCycleDay", 1)),
            currency=str(body.get("currency", "EUR")),
            delivery=_delivery(body),
            email=_text(emails[0].get("emailAddress")) if emails else None,
            legal_name=_legal_name(customer, organizations, str(body.get("name"))),
            street=str(address.get("street1", "")),
            post_code=str(address.get("postCode", "")),
            city=str(address.get("city", "")),
            country=str(address.get("country", "")),
            vat_id=vat.compact(vat_id) if vat_id and vat.is_valid(vat_id) else vat_id,
            reverse_charge=reverse_charge(vat_id),
            credit_limit=(
                Decimal(str(limit["value"])).quantize(CENT, ROUND_HALF_UP)
                if isinstance(limit, dict) and limit.get("value") is not None
                else None
            ),
            payment_method_id=method["id"] if method else None,
            means=None if method is None else ("sepaDirectDebit" if debit else "bankTransfer"),
            iban=(method or {}).get("accountNumber"),
            bic=(method or {}).get("BIC"),
            mandate_reference=mandate.get("reference") if debit else None,
            mandate_signed=date.fromisoformat(mandate["dateOfSignature"]) if debit else None,
            scheme=mandate.get("scheme") if debit else None,
            first_collection_done=debit and (method or {}).get("sequenceType") == "RCUR",
        )
    return out


def default_account_id(session: Session, customer_id: str) -> str | None:
    """The account a customer's charges go to when an order names none: its only active
    account, else the oldest active one that has a payment method, else the oldest."""
    rows = session.execute(
        select(BillingAccountRow.id, BillingAccountRow.body)
        .where(
            BillingAccountRow.owner_customer_id == customer_id,
            BillingAccountRow.status == "active",
        )
        .order_by(BillingAccountRow.created_at, BillingAccountRow.id)
    ).all()
    for account_id, body in rows:
        if body.get("paymentMethod"):
            return str(account_id)
    return str(rows[0][0]) if rows else None


def accounts_due(session: Session, cycle_day: int) -> list[str]:
    """The active accounts billed on ``cycle_day`` (1 to 28), in id order."""
    return list(
        session.scalars(
            select(BillingAccountRow.id)
            .where(
                BillingAccountRow.bill_cycle_day == cycle_day,
                BillingAccountRow.status == "active",
            )
            .order_by(BillingAccountRow.id)
        )
    )


def record_account_balance(
    session: Session, account_id: str, amount: Decimal, currency: str
) -> None:
    """Write the TMF666 ``accountBalance`` (what the customer owes; negative: credit).

    Only this function writes it; a request that tries is refused. It is billing's fact,
    written beside the account's document as it is, so an account whose other attributes
    an older version accepted still gets its balance.
    """
    account = session.get(BillingAccountRow, account_id)
    if account is None:
        return
    value = amount.quantize(CENT, ROUND_HALF_UP)
    balance: JsonDict = {
        "balanceType": "receivable",
        "amount": {"unit": currency, "value": float(value)},
        "validFor": {"startDateTime": iso(utcnow())},
    }
    account.body = {**account.body, "accountBalance": [balance]}
    account.version = (account.version or 1) + 1
    account.updated_at = utcnow()


def record_account_balances(session: Session, balances: Mapping[str, tuple[Decimal, str]]) -> None:
    """:func:`record_account_balance` for many accounts (id → amount, currency) at once:
    one statement writes every account's balance (a bill run's chunk refreshes a
    thousand), the document's other attributes as they are."""
    if not balances:
        return
    session.flush()
    moment = iso(utcnow())
    rows = orjson.dumps(
        [
            {
                "id": account_id,
                "balance": {
                    "balanceType": "receivable",
                    "amount": {
                        "unit": currency,
                        "value": float(amount.quantize(CENT, ROUND_HALF_UP)),
                    },
                    "validFor": {"startDateTime": moment},
                },
            }
            for account_id, (amount, currency) in balances.items()
        ]
    ).decode()
    if session.get_bind().dialect.name == "postgresql":
        statement = text(
            "UPDATE billing_account AS a SET body = (a.body::jsonb"
            " || jsonb_build_object('accountBalance', jsonb_build_array(x.balance)))::json,"
            " version = coalesce(a.version, 1) + 1, updated_at = :now"
            " FROM json_to_recordset(CAST(:rows AS json)) AS x(id text, balance jsonb)"
            " WHERE a.id = x.id"
        )
    else:
        statement = text(
            "UPDATE billing_account SET body = json_set(billing_account.body,"
            " '$.accountBalance', json_array(json(x.balance))),"
            " version = coalesce(billing_account.version, 1) + 1, updated_at = :now"
            " FROM (SELECT json_extract(value, '$.id') AS id,"
            " json_extract(value, '$.balance') AS balance FROM json_each(:rows)) AS x"
            " WHERE billing_account.id = x.id"
        )
    session.execute(
        statement.bindparams(bindparam("now", type_=UTCDateTime)),
        {"rows": rows, "now": utcnow()},
    )
    # Accounts this session holds read their row again.
    for held in list(session.identity_map.values()):
        if isinstance(held, BillingAccountRow) and held.id in balances:
            session.expire(held)


def mark_first_collection(session: Session, payment_method_id: str) -> None:
    """After the first direct debit of a mandate was submitted, later ones are RCUR."""
    resources.patch(
        session,
        PAYMENT_METHOD_KIND,
        _service(),
        payment_method_id,
        {"sequenceType": "RCUR"},
        by_service=True,
    )


def has_billing_account_with_payment_method(session: Session, customer_id: str) -> bool:
    """3.4.4: the customer has an active billing account with an active payment method."""
    found = session.scalar(
        select(PaymentMethodRow.id)
        .join(BillingAccountRow, BillingAccountRow.id == PaymentMethodRow.billing_account_id)
        .where(
            BillingAccountRow.owner_customer_id == customer_id,
            BillingAccountRow.status == "active",
            PaymentMethodRow.status == "active",
        )
        .limit(1)
    )
    return found is not None


def open_billing_account(
    session: Session,
    principal: Principal,
    customer_id: str,
    *,
    name: str,
    owner: str,
    iban: str,
    bic: str,
    mandate_reference: str,
    mandate_signed: date,
    scheme: Literal["CORE", "B2B"] = "B2B",
    bill_cycle_day: int = 1,
    delivery: tuple[str, ...] = ("email", "portal"),
    cost_centre: str | None = None,
) -> tuple[JsonDict, JsonDict]:
    """3.4.4 Acquire Customer Data (eTOM 1.1.1.4.4): open a billing account of the
    customer paid by SEPA direct debit; returns (account, payment method).

    Contact, address and VAT id are the customer's contract data.
    """
    customer_name = session.scalar(select(CustomerRow.name).where(CustomerRow.id == customer_id))
    account_body: JsonDict = {
        "name": name,
        "relatedParty": [
            {
                "id": customer_id,
                "@referredType": "Customer",
                "role": "customer",
                "name": customer_name or customer_id,
            }
        ],
        "billCycleDay": bill_cycle_day,
        "currency": "EUR",
        "billStructure": {"presentationMedia": [{"name": medium} for medium in delivery]},
    }
    if cost_centre:
        account_body["costCentre"] = cost_centre
    account, _, _ = resources.create(session, BILLING_ACCOUNT_KIND, principal, account_body)
    method, _, _ = resources.create(
        session,
        PAYMENT_METHOD_KIND,
        principal,
        {
            "@type": DEBIT,
            "name": f"SEPA {scheme} direct debit {mandate_reference}",
            "account": [{"id": account["id"], "@referredType": "BillingAccount", "name": name}],
            "accountNumber": iban,
            "BIC": bic,
            "owner": owner,
            "mandate": {
                "reference": mandate_reference,
                "dateOfSignature": mandate_signed.isoformat(),
                "scheme": scheme,
            },
        },
    )
    return account, method
