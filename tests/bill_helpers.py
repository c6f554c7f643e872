"""Customers, billing accounts and rated charges as the bill run finds them.

Until the "acc" and "rating" branches are merged, the accounts and the rated charges
(``AppliedRateRow``) are written here directly, as those areas would write them.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.orm import Session

from etomcrm.billing.models import AppliedRateRow
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.db import new_id
from etomcrm.selling.models import BillingAccountRow, PaymentMethodRow

CENT = Decimal("0.01")


def customer(session: Session, name: str = "BMW AG", email: str = "billing@bmw.example") -> str:
    customer_id = new_id()
    body = {
        "id": customer_id,
        "@type": "Customer",
        "name": name,
        "status": "approved",
        "contactMedium": [
            {"mediumType": "email", "characteristic": {"emailAddress": email}},
            {
                "mediumType": "postalAddress",
                "characteristic": {
                    "street1": "Petuelring 130",
                    "postCode": "80809",
                    "city": "München",
                    "country": "DE",
                },
            },
        ],
    }
    session.add(
        CustomerRow(
            id=customer_id,
            at_type="Customer",
            name=name,
            status="approved",
            owner_customer_id=customer_id,
            body=body,
        )
    )
    return customer_id


def account(
    session: Session,
    customer_id: str,
    *,
    cycle_day: int = 1,
    debit: bool = True,
    vat_id: str | None = None,
    country: str = "DE",
    email: str | None = None,
    delivery: tuple[str, ...] = ("email", "portal"),
) -> str:
    account_id = new_id()
    body: dict[str, object] = {
        "id": account_id,
        "@type": "BillingAccount",
        "name": f"account {account_id[:8]}",
        "state": "active",
        "contact": [
            {
                "contactType": "billing",
                "contactMedium": [
                    {
                        "mediumType": "postalAddress",
                        "characteristic": {
                            "street1": "Petuelring 130",
                            "postCode": "80809",
                            "city": "München",
                            "country": country,
                        },
                    }
                ],
            }
        ],
        "relatedParty": [{"id": customer_id, "@referredType": "Customer", "role": "owner"}],
        "billStructure": {"presentationMedia": [{"name": name} for name in delivery]},
    }
    if email:
        contact = body["contact"][0]  # type: ignore[index]
        contact["contactMedium"].append(
            {"mediumType": "email", "characteristic": {"emailAddress": email}}
        )
    if vat_id:
        body["vatId"] = vat_id
    session.add(
        BillingAccountRow(
            id=account_id,
            at_type="BillingAccount",
            name=str(body["name"]),
            status="active",
            owner_customer_id=customer_id,
            body=body,
            bill_cycle_day=cycle_day,
            currency="EUR",
        )
    )
    if debit:
        # The TMF670 paymentMethod as 3.4.4 writes it: SEPA direct debit with a mandate.
        method_id = new_id()
        session.add(
            PaymentMethodRow(
                id=method_id,
                at_type="bankAccountDebit",
                name="SEPA",
                status="active",
                owner_customer_id=customer_id,
                billing_account_id=account_id,
                body={
                    "id": method_id,
                    "@type": "bankAccountDebit",
                    "status": "active",
                    "accountNumber": "DE02120300000000202051",
                    "BIC": "BYLADEM1001",
                    "account": [{"id": account_id, "@referredType": "BillingAccount"}],
                    "mandate": {
                        "reference": f"M-{account_id[:8]}",
                        "dateOfSignature": "2026-01-15",
                        "scheme": "B2B",
                    },
                },
            )
        )
    return account_id


def rate(
    session: Session,
    account_id: str,
    customer_id: str,
    net: Decimal | str,
    *,
    name: str = "Internet access 100 Mbit/s",
    rate_type: str = "recurring",
    tax_rate: Decimal | str = "19",
    period: tuple[date, date] = (date(2026, 11, 1), date(2026, 11, 30)),
) -> str:
    """One rated charge, as rating writes it (unbilled)."""
    amount = Decimal(net).quantize(CENT, rounding=ROUND_HALF_UP)
    tax = (amount * Decimal(tax_rate) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    rate_id = new_id()
    session.add(
        AppliedRateRow(
            id=rate_id,
            source_key=f"test/{uuid.uuid4()}",
            billing_account_id=account_id,
            customer_id=customer_id,
            product_id=None,
            rate_type=rate_type,
            name=name,
            period_start=period[0],
            period_end=period[1],
            quantity=Decimal(1),
            unit_price=amount,
            tax_excluded=amount,
            tax_rate=Decimal(tax_rate),
            tax_amount=tax,
            tax_included=amount + tax,
            currency="EUR",
            characteristic={},
        )
    )
    return rate_id


def billable_account(
    session: Session, *nets: str, cycle_day: int = 1, name: str = "BMW AG"
) -> tuple[str, str]:
    """A customer with an account and these charges for November 2026: (customer, account)."""
    customer_id = customer(session, name)
    account_id = account(session, customer_id, cycle_day=cycle_day)
    for net in nets:
        rate(session, account_id, customer_id, net)
    return customer_id, account_id
