"""3.4.4 Acquire customer data: what a contract needs to know about the customer.

Where each item lives on the TMF629 customer (and what counts as present):

- legal name: a customer ``characteristic`` ``legalName``; or else the engaged party is
  an organization with ``isLegalEntity`` true and a ``name``;
- VAT id: a customer ``characteristic`` ``vatId``, valid per python-stdnum's
  ``stdnum.eu.vat`` (country prefix, format and check digits);
- billing contact: a ``contactMedium`` with ``mediumType`` ``email``, ``contactType``
  ``billing`` and an ``emailAddress``;
- billing address: a ``contactMedium`` with ``mediumType`` ``postalAddress`` and
  ``contactType`` ``billing`` carrying ``street1``, ``postCode``, ``city`` and
  ``country``; or a geographic site of the customer whose ``relatedParty`` names the
  customer with role ``billing`` and whose place has that address.

Ordering refuses a customer while :func:`missing_contract_data` lists anything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.eu import vat

from etomcrm.core import resources
from etomcrm.core.errors import InvalidRequest, NotFound
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import CustomerRow, GeographicSiteRow, OrganizationRow
from etomcrm.customer_interface.service import CUSTOMER_KIND
from etomcrm.security.service import Principal
from etomcrm.selling.accounts import has_billing_account_with_payment_method

LEGAL_NAME = "legalName"
VAT_ID = "vatId"
BILLING = "billing"
EMAIL_MEDIUM = "email"
POSTAL_MEDIUM = "postalAddress"
ADDRESS_FIELDS = ("street1", "postCode", "city", "country")
# The same address as a TMF674 place spells the post code differently.
PLACE_FIELDS = {"street1": "street1", "postCode": "postcode", "city": "city", "country": "country"}


def _characteristic(body: JsonDict, name: str) -> Any:
    for item in body.get("characteristic") or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get("value")
    return None


def _media(body: JsonDict, medium_type: str) -> list[JsonDict]:
    return [
        m.get("characteristic") or {}
        for m in body.get("contactMedium") or []
        if isinstance(m, dict) and str(m.get("mediumType", "")).lower() == medium_type.lower()
    ]


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _has_legal_name(session: Session, body: JsonDict) -> bool:
    if _text(_characteristic(body, LEGAL_NAME)):
        return True
    party = body.get("engagedParty") or {}
    if party.get("@referredType") not in (None, "Organization"):
        return False
    organization = session.scalar(
        select(OrganizationRow.body).where(OrganizationRow.id == party.get("id"))
    )
    return bool(
        organization and organization.get("isLegalEntity") and _text(organization.get("name"))
    )


def _has_billing_contact(body: JsonDict) -> bool:
    return any(
        m.get("contactType") == BILLING and _text(m.get("emailAddress"))
        for m in _media(body, EMAIL_MEDIUM)
    )


def _complete_address(address: JsonDict, fields: dict[str, str]) -> bool:
    return all(_text(address.get(name)) for name in fields.values())


def _has_billing_address(session: Session, body: JsonDict) -> bool:
    identity = {name: name for name in ADDRESS_FIELDS}
    if any(
        m.get("contactType") == BILLING and _complete_address(m, identity)
        for m in _media(body, POSTAL_MEDIUM)
    ):
        return True
    sites = session.scalars(
        select(GeographicSiteRow.body).where(GeographicSiteRow.owner_customer_id == body["id"])
    )
    for site in sites:
        billing = any(
            isinstance(p, dict) and p.get("id") == body["id"] and p.get("role") == BILLING
            for p in site.get("relatedParty") or []
        )
        if billing and any(
            isinstance(place, dict) and _complete_address(place, PLACE_FIELDS)
            for place in site.get("place") or []
        ):
            return True
    return False


def _missing(session: Session, body: JsonDict) -> list[str]:
    missing = []
    if not _has_legal_name(session, body):
        missing.append(
            "The legal name is missing: add the customer characteristic 'legalName' "
            "(the name in the commercial register)."
        )
    vat_id = _characteristic(body, VAT_ID)
    if not _text(vat_id):
        missing.append(
            "The VAT id is missing: add the customer characteristic 'vatId' (e.g. DE123456789)."
        )
    elif not vat.is_valid(vat_id):
        missing.append(
            f"The VAT id {vat_id!r} is not a valid EU VAT id (country prefix, format and "
            "check digit); correct the customer characteristic 'vatId'."
        )
    if not _has_billing_contact(body):
        missing.append(
            "The billing contact is missing: add an e-mail contact medium with contactType "
            "'billing' where invoices are sent."
        )
    if not _has_billing_address(session, body):
        missing.append(
            "The billing address is missing: add a postal address contact medium with "
            "contactType 'billing' (street1, postCode, city, country), or a site with "
            "role 'billing'."
        )
    if not has_billing_account_with_payment_method(session, body["id"]):
        missing.append(
            "No billing account with a payment method: create a billingAccount (TMF666, "
            "bill cycle day, delivery) for the customer and a paymentMethod (TMF670, SEPA "
            "direct debit with its mandate, or bank transfer) naming it."
        )
    return missing


def missing_contract_data(session: Session, customer_id: str) -> list[str]:
    """3.4.4 Acquire Customer Data (eTOM 1.1.1.4.4): what the customer record still lacks.

    Each item is a sentence saying what to add; an empty list means the customer can
    contract. The order flow refuses to accept an order while the list is not empty.
    """
    body = session.scalar(select(CustomerRow.body).where(CustomerRow.id == customer_id))
    if body is None:
        raise NotFound(f"no customer with id {customer_id}")
    return _missing(session, body)


def contract_readiness(session: Session, principal: Principal, customer_id: str) -> JsonDict:
    """3.4.4 Acquire Customer Data (eTOM 1.1.1.4.4): the readiness a caller may read.

    Staff read any customer's; a customer reads its own (another's id is not found).
    """
    body, _ = resources.get(session, CUSTOMER_KIND, principal, customer_id)
    missing = _missing(session, body)
    return {"customerId": customer_id, "ready": not missing, "missing": missing}


def _required_text(data: JsonDict, name: str, what: str) -> str:
    value = data.get(name)
    if not _text(value):
        raise InvalidRequest(f"the {what} needs {name!r} (text)")
    return str(value).strip()


def _with_characteristic(body: JsonDict, name: str, value: str) -> list[JsonDict]:
    kept = [c for c in body.get("characteristic") or [] if c.get("name") != name]
    return [*kept, {"name": name, "valueType": "string", "value": value}]


def _with_medium(body: JsonDict, medium_type: str, characteristic: JsonDict) -> list[JsonDict]:
    # The new billing medium replaces the old billing medium of that type; others stay.
    kept = [
        m
        for m in body.get("contactMedium") or []
        if not (
            str(m.get("mediumType", "")).lower() == medium_type.lower()
            and (m.get("characteristic") or {}).get("contactType") == BILLING
        )
    ]
    return [*kept, {"mediumType": medium_type, "characteristic": characteristic}]


def complete_customer_data(
    session: Session,
    principal: Principal,
    customer_id: str,
    *,
    legal_name: str | None = None,
    vat_id: str | None = None,
    billing_contact: JsonDict | None = None,
    billing_address: JsonDict | None = None,
) -> JsonDict:
    """3.4.4 Acquire Customer Data (eTOM 1.1.1.4.4): record what contracting needs.

    ``billing_contact`` is ``{"emailAddress": ..., "name"?: ..., "phoneNumber"?: ...}``;
    ``billing_address`` is ``{"street1", "postCode", "city", "country"}`` (``street2``
    optional). A VAT id is checked and stored in its compact form; an invalid one is
    refused naming it. A customer may complete its own record.
    """
    current, _ = resources.get(session, CUSTOMER_KIND, principal, customer_id)
    body = dict(current)
    changes: JsonDict = {}
    if legal_name is not None:
        if not _text(legal_name):
            raise InvalidRequest("the legal name cannot be empty")
        body["characteristic"] = changes["characteristic"] = _with_characteristic(
            body, LEGAL_NAME, legal_name.strip()
        )
    if vat_id is not None:
        if not vat.is_valid(vat_id):
            raise InvalidRequest(
                f"the VAT id {vat_id!r} is not a valid EU VAT id: it needs the country "
                "prefix (e.g. DE), the national number and a correct check digit"
            )
        body["characteristic"] = changes["characteristic"] = _with_characteristic(
            body, VAT_ID, vat.compact(vat_id)
        )
    if billing_contact is not None:
        if not isinstance(billing_contact, dict):
            raise InvalidRequest("the billing contact must be an object with an emailAddress")
        email = _required_text(billing_contact, "emailAddress", "billing contact")
        if "@" not in email.strip("@"):
            raise InvalidRequest(f"the billing contact's e-mail {email!r} is not an address")
        medium: JsonDict = {"contactType": BILLING, "emailAddress": email}
        for optional in ("phoneNumber", "name"):
            if _text(billing_contact.get(optional)):
                medium[optional] = str(billing_contact[optional]).strip()
        body["contactMedium"] = changes["contactMedium"] = _with_medium(body, EMAIL_MEDIUM, medium)
    if billing_address is not None:
        if not isinstance(billing_address, dict):
            raise InvalidRequest("the billing address must be an object")
        address: JsonDict = {"contactType": BILLING}
        for name in ADDRESS_FIELDS:
            address[name] = _required_text(billing_address, name, "billing address")
        if _text(billing_address.get("street2")):
            address["street2"] = str(billing_address["street2"]).strip()
        body["contactMedium"] = changes["contactMedium"] = _with_medium(
            body, POSTAL_MEDIUM, address
        )
    if not changes:
        raise InvalidRequest(
            "give at least one of legalName, vatId, billingContact, billingAddress"
        )
    updated, _ = resources.patch(session, CUSTOMER_KIND, principal, customer_id, changes)
    return updated
