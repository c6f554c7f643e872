"""3.2.1 Customer contact management: the rules of parties, customers, sites and contacts.

The generic TMF life cycle lives in :mod:`etomcrm.core.resources`; this module says
who owns what, which customer states may follow which, and what a customer may change
about itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from etomcrm.core import resources, states
from etomcrm.core.bus import record
from etomcrm.core.errors import Conflict, Forbidden, InvalidRequest
from etomcrm.core.resources import CREATE, READ, UPDATE, RefSpec, ResourceKind
from etomcrm.core.tmf_schemas import (
    CUSTOMER,
    GEOGRAPHIC_SITE,
    PARTY,
    PARTY_INTERACTION,
    JsonDict,
)
from etomcrm.customer_interface.events import CustomerTerminated
from etomcrm.customer_interface.models import (
    CustomerRow,
    GeographicSiteRow,
    IndividualRow,
    OrganizationRow,
    PartyInteractionRow,
)
from etomcrm.security.service import STAFF_ROLES, Principal, Role

# 3.2.2: a customer request's status (requests.py handles the requests themselves).
REQUEST_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"inProgress", "closed"}),
    "inProgress": frozenset({"resolved", "closed"}),
    # A resolution the customer disputes goes back to work.
    "resolved": frozenset({"closed", "inProgress"}),
    "closed": frozenset(),
}

CONTACT_WRITERS = frozenset({Role.ADMIN, Role.SALES, Role.ORDER_MANAGER, Role.SUPPORT})

# 3.9.1: a customer's life cycle. Terminated is final: its orders, bills and contact
# history stay, but nothing new is sold to it.
CUSTOMER_TRANSITIONS: dict[str, frozenset[str]] = {
    "prospect": frozenset({"active", "terminated"}),
    "active": frozenset({"suspended", "terminated"}),
    "suspended": frozenset({"active", "terminated"}),
    "terminated": frozenset(),
}
INITIAL_CUSTOMER_STATES = frozenset({"prospect", "active"})
# Statuses in which the relationship has ended (or is ending): nothing new is sold.
ENDED_CUSTOMER_STATES = frozenset({"terminated"})
# What a customer may change about itself through the portal or its API key.
CUSTOMER_SELF_SERVICE = frozenset({"contactMedium", "relatedParty", "characteristic"})
# Characteristics the provider decides (the credit assessment, 3.5.2, reads them): a
# customer's own token never writes them, however it sends its characteristic list.
PROVIDER_FACTS = frozenset(
    {"creditScore", "approvedCreditLimit", "openBalance", "latePaymentsLast12Months"}
)


def _facts(body: JsonDict) -> dict[str, Any]:
    return {
        str(c["name"]): c.get("value")
        for c in body.get("characteristic") or []
        if isinstance(c, dict) and c.get("name") in PROVIDER_FACTS
    }


def _customer_ref_ids(body: JsonDict) -> list[str]:
    return [
        p["id"]
        for p in body.get("relatedParty", []) or []
        if isinstance(p, dict)
        and p.get("@referredType") == "Customer"
        and isinstance(p.get("id"), str)
    ]


def refuse_if_relationship_ended(session: Session, customer_id: str, what: str) -> None:
    """3.9.1 Establish and Terminate Customer Relationship (eTOM 1.1.1.9.1): nothing new
    is sold to a customer whose relationship has ended; ``what`` names the refused act
    (e.g. "order new products")."""
    status = session.scalar(select(CustomerRow.status).where(CustomerRow.id == customer_id))
    if status in ENDED_CUSTOMER_STATES:
        raise Conflict(
            f"customer {customer_id} is {status}: it cannot {what}; a returning customer "
            "is registered as a new customer (status prospect)",
            reason="Customer relationship ended",
        )


def customer_of(body: JsonDict) -> str | None:
    """The customer a resource belongs to: the first relatedParty of @referredType
    Customer (orders, quotes, tickets, sites all name their customer this way)."""
    refs = _customer_ref_ids(body)
    return refs[0] if refs else None


@dataclass
class PartyKind(ResourceKind):
    """TMF632 individuals and organizations: the people and companies we deal with."""

    def before_delete(self, session: Session, principal: Principal, body: JsonDict) -> None:
        engaged = session.scalar(
            select(func.count())
            .select_from(CustomerRow)
            .where(CustomerRow.body["engagedParty", "id"].as_string() == body["id"])
        )
        if engaged:
            raise Conflict(
                f"{self.name} {body['id']} is the engaged party of {engaged} customer(s); "
                "delete or re-assign those customers first"
            )


@dataclass
class CustomerKind(ResourceKind):
    """TMF629 customer: a party in the role of buying from us."""

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        return str(body["id"])

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        if old is None:
            body.setdefault("status", "prospect")
            if body["status"] not in INITIAL_CUSTOMER_STATES:
                raise InvalidRequest(
                    f"a new customer starts as {' or '.join(sorted(INITIAL_CUSTOMER_STATES))}, "
                    f"not {body['status']!r}"
                )
            return
        if principal.is_customer:
            changed = {k for k in set(old) | set(body) if old.get(k) != body.get(k)}
            changed -= {"id"}
            refused = sorted(changed - CUSTOMER_SELF_SERVICE)
            if refused:
                raise Forbidden(
                    f"a customer may change only {', '.join(sorted(CUSTOMER_SELF_SERVICE))} "
                    f"of itself, not {', '.join(refused)}"
                )
            before_facts, after_facts = _facts(old), _facts(body)
            touched = sorted(
                n
                for n in set(before_facts) | set(after_facts)
                if before_facts.get(n) != after_facts.get(n)
            )
            if touched:
                raise Forbidden(
                    f"{', '.join(touched)} are the provider's credit facts: a customer "
                    "cannot set or remove them (send your characteristic list with them "
                    "unchanged)"
                )
        before, after = old.get("status"), body.get("status")
        if before != after:
            states.check_transition(
                "customer status", CUSTOMER_TRANSITIONS, str(before), str(after)
            )
            if after in ENDED_CUSTOMER_STATES:
                # Its active products are disconnected by whoever handles the event.
                record(session, CustomerTerminated(str(body["id"])))

    def after_save(
        self, session: Session, principal: Principal, body: JsonDict, owner: str | None
    ) -> None:
        # The engaged party and the named contacts become visible to the customer's own
        # users; a party already claimed by another customer stays with it.
        refs = [body["engagedParty"]] + [
            p
            for p in body.get("relatedParty", []) or []
            if isinstance(p, dict) and p.get("@referredType") in ("Individual", "Organization")
        ]
        for row, type_name in ((IndividualRow, "Individual"), (OrganizationRow, "Organization")):
            ids = [r["id"] for r in refs if r.get("@referredType") in (type_name, None)]
            if ids:
                session.execute(
                    update(row)
                    .where(row.id.in_(ids), row.owner_customer_id.is_(None))
                    .values(owner_customer_id=owner)
                    .execution_options(synchronize_session=False)
                )

    def before_delete(self, session: Session, principal: Principal, body: JsonDict) -> None:
        if body.get("status") not in ("prospect", "terminated"):
            raise Conflict(
                f"customer {body['id']} is {body.get('status')!r}; terminate it first "
                "(status: terminated), so nothing it owns is lost by accident"
            )
        for kind in (GEOGRAPHIC_SITE_KIND, PARTY_INTERACTION_KIND):
            count = session.scalar(
                select(func.count())
                .select_from(kind.row)
                .where(kind.row.owner_customer_id == body["id"])
            )
            if count:
                raise Conflict(
                    f"customer {body['id']} still has {count} {kind.name} record(s); "
                    "delete them first or keep the customer as terminated"
                )


@dataclass
class CustomerOwnedKind(ResourceKind):
    """Sites and interactions: owned by the customer their relatedParty names."""

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        refs = _customer_ref_ids(body)
        if len(set(refs)) > 1:
            raise InvalidRequest(
                f"a {self.name} belongs to one customer; relatedParty names {len(set(refs))}"
            )
        if principal.is_customer and not refs:
            body.setdefault("relatedParty", []).append(
                {"id": principal.customer_id, "@referredType": "Customer", "role": "customer"}
            )

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        if principal.is_customer:
            return principal.customer_id
        refs = _customer_ref_ids(body)
        return refs[0] if refs else None


class GeographicSiteKind(CustomerOwnedKind):
    """A customer's site: staff must say whose it is (a site of nobody is lost data)."""

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        super().before_save(session, principal, body, old)
        if not _customer_ref_ids(body):
            raise InvalidRequest(
                "a geographicSite belongs to a customer: name it in relatedParty "
                '({"id": ..., "@referredType": "Customer", "role": "customer"})'
            )


class PartyInteractionKind(CustomerOwnedKind):
    """Contacts, customer requests and surveys; a request's status follows its machine
    whichever route changes it."""

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        super().before_save(session, principal, body, old)
        if old is None or body.get("@type") != "CustomerRequest":
            return
        before, after = old.get("status"), body.get("status")
        if before != after:
            states.check_transition("request status", REQUEST_TRANSITIONS, str(before), str(after))


PARTY_REFS = (
    RefSpec("relatedParty[]"),
    RefSpec("organizationParentRelationship.organization", "organization"),
    RefSpec("organizationChildRelationship[].organization", "organization"),
)

INDIVIDUAL_KIND = PartyKind(
    name="individual",
    type_name="Individual",
    doc=PARTY,
    row=IndividualRow,
    write_roles=CONTACT_WRITERS,
    customer_operations=frozenset({READ, CREATE, UPDATE}),
    refs=PARTY_REFS,
    name_attribute="familyName",
)
ORGANIZATION_KIND = PartyKind(
    name="organization",
    type_name="Organization",
    doc=PARTY,
    row=OrganizationRow,
    write_roles=CONTACT_WRITERS,
    customer_operations=frozenset({READ, UPDATE}),
    refs=PARTY_REFS,
    name_attribute="tradingName",
)
CUSTOMER_KIND = CustomerKind(
    name="customer",
    type_name="Customer",
    doc=CUSTOMER,
    row=CustomerRow,
    write_roles=frozenset({Role.ADMIN, Role.SALES, Role.ORDER_MANAGER}),
    customer_operations=frozenset({READ, UPDATE}),
    refs=(RefSpec("engagedParty", "party"), RefSpec("relatedParty[]")),
)
GEOGRAPHIC_SITE_KIND = GeographicSiteKind(
    name="geographicSite",
    type_name="GeographicSite",
    doc=GEOGRAPHIC_SITE,
    row=GeographicSiteRow,
    write_roles=CONTACT_WRITERS,
    customer_operations=frozenset({READ, CREATE, UPDATE}),
    refs=(RefSpec("relatedParty[]"), RefSpec("siteRelationship[]", "geographicSite")),
)
PARTY_INTERACTION_KIND = PartyInteractionKind(
    name="partyInteraction",
    type_name="PartyInteraction",
    doc=PARTY_INTERACTION,
    row=PartyInteractionRow,
    # Every staff role that talks to customers records its contacts.
    write_roles=STAFF_ROLES - {Role.ANALYST},
    customer_operations=frozenset({READ, CREATE}),
    refs=(RefSpec("relatedParty[]"),),
    name_attribute="reason",
    ended_not_deleted="an interaction stays in the contact history; close it through its status",
    # a department's work list: partyInteraction?routedTo=support
    extensions={
        **dict.fromkeys(
            (
                "classification",
                "classifiedBy",
                "classificationReason",
                "routedTo",
                "presentedTo",
                "surveyKey",
            ),
            resources.TEXT,
        ),
        "question": resources.LIST,
        "educationBrief": resources.OBJECT,
        "surveyAnswer": resources.OBJECT,
    },
)
