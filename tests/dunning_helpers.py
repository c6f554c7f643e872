"""Customers with services and issued bills, inserted directly: the tests of dunning and
billing enquiries need bills as the bill run leaves them (numbered, sent, due), not the
bill run itself. And the maker of credit notes at the enquiries' port.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etomcrm.billing import enquiries
from etomcrm.billing.enquiries import CreditLine
from etomcrm.billing.models import AppliedRateRow, CustomerBillRow
from etomcrm.catalog.models import ProductOfferingRow
from etomcrm.customer_interface.models import CustomerRow, GeographicSiteRow
from etomcrm.db import session_scope
from etomcrm.order_handling.models import ProductRow

OFFERING_ID = "po-dunning-access"


@dataclass(frozen=True)
class Customer:
    id: str
    account_id: str
    product_ids: tuple[str, ...]


def _offering(session: Session) -> None:
    if session.get(ProductOfferingRow, OFFERING_ID) is None:
        body = {"id": OFFERING_ID, "@type": "ProductOffering", "name": "Site access 100 Mbit/s"}
        session.add(
            ProductOfferingRow(
                id=OFFERING_ID, at_type="ProductOffering", name=body["name"], body=body
            )
        )
        session.flush()


def customer_with_services(session: Session, name: str, *, sites: int = 2) -> Customer:
    """An active customer with an e-mail contact and one active access product per site."""
    _offering(session)
    customer_id = f"cust-{uuid.uuid4().hex[:10]}"
    session.add(
        CustomerRow(
            id=customer_id,
            at_type="Customer",
            name=name,
            status="active",
            owner_customer_id=customer_id,
            body={
                "id": customer_id,
                "@type": "Customer",
                "name": name,
                "status": "active",
                "contactMedium": [
                    {
                        "mediumType": "email",
                        "characteristic": {"emailAddress": f"billing@{customer_id}.example"},
                    }
                ],
            },
        )
    )
    products = []
    for number in range(1, sites + 1):
        site_id = f"{customer_id}-site-{number}"
        party = [{"id": customer_id, "@referredType": "Customer", "role": "customer"}]
        session.add(
            GeographicSiteRow(
                id=site_id,
                at_type="GeographicSite",
                name=f"{name} site {number}",
                status="active",
                owner_customer_id=customer_id,
                body={
                    "id": site_id,
                    "@type": "GeographicSite",
                    "name": f"{name} site {number}",
                    "relatedParty": party,
                    "place": [
                        {"@type": "GeographicAddress", "city": "München", "postcode": "80809"}
                    ],
                },
            )
        )
        product_id = f"{customer_id}-p{number}"
        session.add(
            ProductRow(
                id=product_id,
                at_type="Product",
                name="Site access 100 Mbit/s",
                status="active",
                owner_customer_id=customer_id,
                body={
                    "id": product_id,
                    "@type": "Product",
                    "name": "Site access 100 Mbit/s",
                    "status": "active",
                    "productOffering": {"id": OFFERING_ID, "name": "Site access 100 Mbit/s"},
                    "place": [
                        {
                            "id": site_id,
                            "role": "installationAddress",
                            "@referredType": "GeographicSite",
                        }
                    ],
                    "relatedParty": party,
                },
            )
        )
        products.append(product_id)
    session.flush()
    return Customer(customer_id, f"acct-{customer_id}", tuple(products))


def issued_bill(
    session: Session,
    customer: Customer,
    *,
    due: date,
    lines: Sequence[tuple[str, str]] = (("Site access, November", "119.00"),),
    status: str = "sent",
) -> str:
    """A sent bill of the customer with its lines (name, amount tax included at 19 %),
    due on ``due``; returns its id."""
    bill_id = str(uuid.uuid4())
    number = (session.scalar(select(func.count()).select_from(CustomerBillRow)) or 0) + 1
    bill_no = f"RE-2026-{number:06d}"
    total = sum((Decimal(amount) for _, amount in lines), Decimal("0.00"))
    for line_no, (name, amount) in enumerate(lines, start=1):
        gross = Decimal(amount)
        net = (gross / Decimal("1.19")).quantize(Decimal("0.01"))
        session.add(
            AppliedRateRow(
                id=f"{bill_id}-l{line_no}",
                source_key=f"test/{bill_id}/{line_no}",
                billing_account_id=customer.account_id,
                customer_id=customer.id,
                bill_id=bill_id,
                rate_type="recurring",
                name=name,
                tax_excluded=net,
                tax_rate=Decimal("19.00"),
                tax_amount=gross - net,
                tax_included=gross,
                currency="EUR",
                characteristic={},
            )
        )
    session.add(
        CustomerBillRow(
            id=bill_id,
            at_type="CustomerBill",
            name=bill_no,
            status=status,
            owner_customer_id=customer.id,
            billing_account_id=customer.account_id,
            bill_no=bill_no,
            category="normal",
            bill_date=date(2026, 12, 1),
            payment_due_date=due,
            amount_due=total,
            remaining_amount=total,
            body={
                "id": bill_id,
                "@type": "CustomerBill",
                "billNo": bill_no,
                "state": status,
                "amountDue": {"unit": "EUR", "value": f"{total:.2f}"},
                "paymentDueDate": due.isoformat(),
            },
        )
    )
    session.flush()
    return bill_id


def pay(bill_id: str, amount: str | None = None) -> None:
    """What a payment does to the bill (the pay part's allocation): less open, then
    settled."""
    with session_scope() as session:
        bill = session.get(CustomerBillRow, bill_id)
        assert bill is not None
        paid = Decimal(amount) if amount is not None else bill.remaining_amount
        bill.remaining_amount -= paid
        bill.status = "settled" if bill.remaining_amount <= 0 else "partiallyPaid"


@dataclass
class CreditNotes:
    """The credit notes the test double made: (bill id, lines, reason)."""

    made: list[tuple[str, list[CreditLine], str]]


@pytest.fixture
def credit_notes() -> Iterator[CreditNotes]:
    """A maker of credit notes at ``enquiries.issue_credit_notes_with`` (the one port the
    bills part fills at the merge): it stores a numbered credit-note bill referencing the
    bill and lowers what is open on it, as ``bills.credit_note`` is to."""
    made = CreditNotes([])

    def credit_note(
        session: Session,
        bill_id: str,
        lines: Sequence[CreditLine],
        reason: str,
        *,
        today: date,
    ) -> CustomerBillRow:
        bill = session.get(CustomerBillRow, bill_id)
        assert bill is not None
        total = sum((line.amount for line in lines), Decimal("0.00"))
        number = len(made.made) + 1
        note_id = str(uuid.uuid4())
        body: dict[str, Any] = {
            "id": note_id,
            "@type": "CustomerBill",
            "category": "creditNote",
            "billNo": f"GS-2026-{number:06d}",
            "amountDue": {"unit": "EUR", "value": f"{-total:.2f}"},
            "relatedBill": {"id": bill_id, "billNo": bill.bill_no},
            "reason": reason,
        }
        note = CustomerBillRow(
            id=note_id,
            at_type="CustomerBill",
            name=body["billNo"],
            status="sent",
            owner_customer_id=bill.owner_customer_id,
            billing_account_id=bill.billing_account_id,
            bill_no=body["billNo"],
            category="creditNote",
            bill_date=today,
            amount_due=-total,
            remaining_amount=Decimal("0.00"),
            body=body,
        )
        session.add(note)
        bill.remaining_amount = max(bill.remaining_amount - total, Decimal("0.00"))
        if bill.remaining_amount == 0:
            bill.status = "settled"
        made.made.append((bill_id, list(lines), reason))
        return note

    previous = list(enquiries._issuer)
    enquiries.issue_credit_notes_with(credit_note)
    yield made
    enquiries._issuer[:] = previous
