"""Billing accounts and issued bills written straight to the tables, for the payment tests
(the bill run that issues bills is another part of billing). Payment methods in the shape
3.4.4 (``selling.accounts``) gives them: ``bankAccountDebit`` with its ``mandate``, or
``bankAccountTransfer``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy.orm import Session

from etomcrm.billing.models import CustomerBillRow
from etomcrm.billing.payments import record_payment
from etomcrm.db import new_id
from etomcrm.selling.models import BillingAccountRow, PaymentMethodRow

IBAN = "DE11700700101234567890"
BIC = "DEUTDEMMXXX"


def account(
    session: Session,
    customer_id: str,
    *,
    name: str = "BMW AG",
    means: str = "bankTransfer",
    iban: str = IBAN,
    mandate: str | None = None,
    scheme: str = "CORE",
    signed: date = date(2026, 1, 15),
) -> str:
    """A billing account of the customer, paying by transfer or by SEPA direct debit."""
    account_id = new_id()
    session.add(
        BillingAccountRow(
            id=account_id,
            at_type="BillingAccount",
            name=name,
            status="active",
            owner_customer_id=customer_id,
            body={
                "id": account_id,
                "@type": "BillingAccount",
                "name": name,
                "state": "active",
                "currency": "EUR",
                "billCycleDay": 1,
                "billStructure": {"presentationMedia": [{"name": "portal"}]},
                "relatedParty": [
                    {
                        "id": customer_id,
                        "@referredType": "Customer",
                        "role": "customer",
                        "name": "customer",
                    }
                ],
            },
            bill_cycle_day=1,
            currency="EUR",
        )
    )
    method: dict[str, Any]
    if means == "sepaDirectDebit":
        method = {
            "@type": "bankAccountDebit",
            "name": "SEPA direct debit",
            "status": "active",
            "mandate": {
                "reference": mandate or f"MD-{account_id[:8]}",
                "dateOfSignature": signed.isoformat(),
                "scheme": scheme,
            },
            "sequenceType": "FRST",
            "account": [{"id": account_id, "@referredType": "BillingAccount"}],
            "accountNumber": iban,
            "accountNumberType": "IBAN",
            "BIC": BIC,
            "owner": name,
        }
    else:
        method = {
            "@type": "bankAccountTransfer",
            "name": "bank transfer",
            "status": "active",
            "account": [{"id": account_id, "@referredType": "BillingAccount"}],
            "accountNumber": iban,
            "accountNumberType": "IBAN",
            "owner": name,
        }
    method_id = new_id()
    session.add(
        PaymentMethodRow(
            id=method_id,
            at_type=method["@type"],
            name=method["name"],
            status="active",
            owner_customer_id=customer_id,
            body={"id": method_id, **method},
            billing_account_id=account_id,
        )
    )
    session.flush()
    return account_id


def bill(
    session: Session,
    account_id: str,
    customer_id: str,
    bill_no: str,
    amount: str,
    due: date,
    *,
    status: str = "sent",
    remaining: str | None = None,
) -> str:
    """An issued bill (numbered, ``validated`` or ``sent``) of ``amount`` EUR due on ``due``."""
    bill_id = new_id()
    due_amount = Decimal(amount)
    left = Decimal(remaining) if remaining is not None else due_amount
    session.add(
        CustomerBillRow(
            id=bill_id,
            at_type="CustomerBill",
            name=bill_no,
            status=status,
            owner_customer_id=customer_id,
            body={
                "id": bill_id,
                "@type": "CustomerBill",
                "billNo": bill_no,
                "state": status,
                "amountDue": {"unit": "EUR", "value": float(due_amount)},
                "remainingAmount": {"unit": "EUR", "value": float(left)},
                "paymentDueDate": due.isoformat(),
                "billingAccount": {"id": account_id, "@referredType": "BillingAccount"},
            },
            billing_account_id=account_id,
            bill_no=bill_no,
            category="normal",
            bill_date=date.fromordinal(due.toordinal() - 14),
            payment_due_date=due,
            amount_due=due_amount,
            remaining_amount=left,
        )
    )
    session.flush()
    return bill_id


def bill_state(session: Session, bill_id: str) -> tuple[str | None, Decimal]:
    row = session.get(CustomerBillRow, bill_id)
    assert row is not None
    return row.status, row.remaining_amount


def paid(
    session: Session,
    account_id: str,
    amount: str,
    on: date,
    reference: str,
    *,
    means: Literal["bankTransfer", "sepaDirectDebit"] = "bankTransfer",
) -> str:
    """A payment in EUR of the account on ``on`` naming ``reference``; its id."""
    return record_payment(
        session,
        account_id=account_id,
        amount=Decimal(amount),
        currency="EUR",
        payment_date=on,
        reference=reference,
        means=means,
    )
