"""The resource kinds billing serves: TMF678 bills (3.8.3, 3.8.4), TMF676 payments (3.8.5).

``customerBill`` is made by the bill run, never by a request: a request reads it, and
staff hold it back (``onHold``) or release it. A bill is a record of business: it is
never deleted (405) and, once issued, never edited (409); a correction is a credit note.
``customerBillOnDemand`` asks for a bill off cycle, made at once.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from etomcrm.billing import bills
from etomcrm.billing.bill_models import CustomerBillOnDemandRow
from etomcrm.billing.models import CustomerBillRow
from etomcrm.billing.payments import PAYMENT_KIND
from etomcrm.core import resources
from etomcrm.core.errors import Conflict, InvalidRequest, MethodNotAllowed, NotFound
from etomcrm.core.resources import CREATE, DELETE, READ, ResourceKind
from etomcrm.core.tmf_schemas import CUSTOMER_BILL, JsonDict
from etomcrm.db import utcnow
from etomcrm.security.service import Principal, Role
from etomcrm.selling.models import BillingAccountRow

BILLING_STAFF = frozenset({Role.ADMIN, Role.BILLING})
# What a PATCH may change on a bill: its state (by the staff moves) and nothing else.
_MOVABLE = frozenset({"state", "lastUpdate"})


class CustomerBillKind(ResourceKind):
    def authorize(self, principal: Principal, operation: str) -> None:
        if operation == DELETE:
            raise MethodNotAllowed("a customer bill is a record of business: never deleted")
        if operation == CREATE:
            raise MethodNotAllowed(
                "customer bills are made by the bill run (or customerBillOnDemand), not posted"
            )
        super().authorize(principal, operation)

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        if old is None:
            raise MethodNotAllowed("customer bills are made by the bill run, not posted")
        changed = {k for k in set(old) | set(body) if old.get(k) != body.get(k)} - _MOVABLE
        if changed:
            raise Conflict(
                f"a customer bill is never edited ({', '.join(sorted(changed))}); "
                "a correction is a credit note referencing it"
            )
        bills.check_staff_move(
            str(old.get("state")), str(body.get("state")), numbered="billNo" in old
        )


CUSTOMER_BILL_KIND = CustomerBillKind(
    name="customerBill",
    type_name="CustomerBill",
    doc=CUSTOMER_BILL,
    row=CustomerBillRow,
    write_roles=BILLING_STAFF,
    customer_operations=frozenset({READ}),
    status_attribute="state",
    name_attribute="billNo",
    extensions={"referencedBill": resources.TEXT, "description": resources.TEXT},
)


class CustomerBillOnDemandKind(ResourceKind):
    """A bill now: the account's unbilled charges until today, issued and sent."""

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        account = session.get(BillingAccountRow, (body.get("billingAccount") or {}).get("id"))
        return account.owner_customer_id if account is not None else current

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        account_id = (body.get("billingAccount") or {}).get("id")
        if not isinstance(account_id, str):
            raise InvalidRequest("a customerBillOnDemand names its billingAccount (id)")
        account = session.get(BillingAccountRow, account_id)
        if account is None or (
            principal.is_customer and account.owner_customer_id != principal.customer_id
        ):
            raise NotFound(f"no billing account with id {account_id}")
        body["state"] = "inProgress"
        bill_id = bills.bill_now(
            session, account_id, today=utcnow().date(), key=f"onDemand/{body['id']}"
        )
        body["state"] = "done"
        if bill_id is None:
            body["description"] = "nothing unbilled: no bill was made"
            return
        bill = session.get(CustomerBillRow, bill_id)
        assert bill is not None
        body["customerBill"] = {
            "id": bill_id,
            "href": f"{CUSTOMER_BILL.base_path}/customerBill/{bill_id}",
            "@referredType": "CustomerBill",
        }
        body.setdefault("name", f"bill {bill.bill_no}")


CUSTOMER_BILL_ON_DEMAND_KIND = CustomerBillOnDemandKind(
    name="customerBillOnDemand",
    type_name="CustomerBillOnDemand",
    doc=CUSTOMER_BILL,
    row=CustomerBillOnDemandRow,
    write_roles=BILLING_STAFF,
    customer_operations=frozenset({READ, CREATE}),
    status_attribute="state",
    changeable=False,
)

KINDS: list[ResourceKind] = [CUSTOMER_BILL_KIND, CUSTOMER_BILL_ON_DEMAND_KIND, PAYMENT_KIND]
