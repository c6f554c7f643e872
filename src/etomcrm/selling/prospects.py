"""3.4.1 Manage prospects: TMF699 sales leads and the opportunities they qualify into.

TMF699 v4 defines ``SalesLead`` but only a reference to a sales opportunity, so the
``SalesOpportunity`` resource is defined here in the same conventions and served beside
the lead at ``/tmf-api/sales/v4/salesOpportunity``; its schema is part of the service's
OpenAPI document. Opportunities are internal sales data: customers do not see them.

A lead is ``acknowledged`` when opened, worked (``inProgress``, ``pending``) and ends
``accepted`` (qualified: it became an opportunity), ``rejected`` or ``cancelled``.
An opportunity moves through the stages prospecting → qualification → proposal →
negotiation and closes won or lost, with the reason.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.core import resources, states
from etomcrm.core.clock import iso
from etomcrm.core.errors import IllegalTransition, InvalidRequest, UnknownReference
from etomcrm.core.resources import READ, RefSpec, ResourceKind
from etomcrm.core.tmf_schemas import SALES, JsonDict, TmfDocument
from etomcrm.customer_interface.service import CustomerOwnedKind
from etomcrm.db import utcnow
from etomcrm.security.service import SELLERS, Principal, Role
from etomcrm.selling.models import SalesLeadRow, SalesOpportunityRow

CURRENCY = "EUR"
CENT = Decimal("0.01")

LEAD_TRANSITIONS: dict[str, frozenset[str]] = {
    "acknowledged": frozenset({"inProgress", "pending", "accepted", "rejected", "cancelled"}),
    "inProgress": frozenset({"pending", "accepted", "rejected", "cancelled"}),
    "pending": frozenset({"inProgress", "accepted", "rejected", "cancelled"}),
    "accepted": frozenset(),
    "rejected": frozenset(),
    "cancelled": frozenset(),
}
STAGES = ("prospecting", "qualification", "proposal", "negotiation", "closedWon", "closedLost")
CLOSED = frozenset({"closedWon", "closedLost"})
STAGE_TRANSITIONS: dict[str, frozenset[str]] = {
    "prospecting": frozenset({"qualification", "closedLost"}),
    "qualification": frozenset({"prospecting", "proposal", "closedLost"}),
    "proposal": frozenset({"qualification", "negotiation", "closedWon", "closedLost"}),
    "negotiation": frozenset({"proposal", "closedWon", "closedLost"}),
    "closedWon": frozenset(),
    "closedLost": frozenset(),
}
INITIAL_STAGES = frozenset({"prospecting", "qualification"})


def _ref(definition: str, description: str) -> JsonDict:
    return {"$ref": f"#/definitions/{definition}", "description": description}


def _opportunity_definitions() -> dict[str, JsonDict]:
    text = {"type": "string"}
    properties: dict[str, JsonDict] = {
        "id": {"type": "string", "description": "Unique identifier of the opportunity"},
        "href": {"type": "string", "description": "Reference of the opportunity"},
        "name": {"type": "string", "description": "Name of the opportunity"},
        "description": {"type": "string", "description": "What the customer wants to buy"},
        "stage": _ref("SalesOpportunityStageType", "Where the opportunity stands"),
        "probability": {
            "type": "integer",
            "minimum": 0,
            "maximum": 100,
            "description": "Chance of winning, in percent",
        },
        "expectedRevenue": _ref("Money", "Revenue expected if the opportunity is won"),
        "owner": {"type": "string", "description": "The salesperson who owns the opportunity"},
        "winLossReason": {"type": "string", "description": "Why it was won or lost"},
        "creationDate": {"type": "string", "format": "date-time"},
        "lastUpdate": {"type": "string", "format": "date-time"},
        "stageChangeDate": {"type": "string", "format": "date-time"},
        "closeDate": {"type": "string", "format": "date-time"},
        "salesLead": _ref("EntityRef", "The lead this opportunity was qualified from"),
        "marketingCampaign": _ref("MarketingCampaignRef", "The campaign the lead came from"),
        "productOffering": {"type": "array", "items": {"$ref": "#/definitions/ProductOfferingRef"}},
        "relatedParty": {"type": "array", "items": {"$ref": "#/definitions/RelatedParty"}},
        "note": {"type": "array", "items": {"$ref": "#/definitions/Note"}},
        "@baseType": text,
        "@schemaLocation": text,
        "@type": text,
    }
    server_set = {"id", "href", "creationDate", "lastUpdate", "stageChangeDate", "closeDate"}
    writable = {k: v for k, v in properties.items() if k not in server_set}
    description = (
        "A sales opportunity (3.4.1 Manage prospects): stage, probability, expected "
        "revenue, owner and win/loss reason. TMF699 v4 defines only SalesOpportunityRef; "
        "etomcrm serves the resource in TMF699's conventions. Internal sales data: customers "
        "cannot read opportunities, not even their own."
    )
    return {
        "SalesOpportunity": {
            "type": "object",
            "description": description,
            "properties": properties,
        },
        "SalesOpportunity_Create": {
            "type": "object",
            "description": description + " Create: name is required.",
            "required": ["name"],
            "properties": writable,
        },
        "SalesOpportunity_Update": {"type": "object", "properties": writable},
        "SalesOpportunityStageType": {"type": "string", "enum": list(STAGES)},
    }


def _renamed_events(definitions: dict[str, JsonDict]) -> dict[str, JsonDict]:
    """SalesOpportunity events shaped like the document's SalesLead events."""
    out = {}
    for name, schema in definitions.items():
        if name.startswith("SalesLead") and "Event" in name:
            text = (
                json.dumps(schema)
                .replace("SalesLead", "SalesOpportunity")
                .replace("salesLead", "salesOpportunity")
            )
            out[name.replace("SalesLead", "SalesOpportunity")] = json.loads(text)
    return out


def _sales_document() -> TmfDocument:
    raw = copy.deepcopy(SALES.raw)
    raw["definitions"].update(_opportunity_definitions())
    raw["definitions"].update(_renamed_events(raw["definitions"]))
    return TmfDocument(code=SALES.code, filename=SALES.filename, base_path=SALES.base_path, raw=raw)


# TMF699 as served: the official document with the SalesOpportunity resource added.
SALES_DOCUMENT = _sales_document()


def money(amount: Decimal) -> JsonDict:
    """A TMF Money; the JSON number is the exact two-decimal amount."""
    if amount < 0:
        raise InvalidRequest(f"an amount cannot be negative, not {amount}")
    return {"unit": CURRENCY, "value": float(amount.quantize(CENT))}


def amount_of(value: Any) -> Decimal:
    """The Decimal in a TMF Money (0 when absent)."""
    if not isinstance(value, dict) or value.get("value") is None:
        return Decimal(0)
    try:
        return Decimal(str(value["value"])).quantize(CENT)
    except InvalidOperation:
        raise InvalidRequest(f"not an amount: {value['value']!r}") from None


def _now() -> str:
    return iso(utcnow())


def _check_money(body: JsonDict, attribute: str) -> None:
    value = body.get(attribute)
    if value is None:
        return
    if value.get("unit", CURRENCY) != CURRENCY:
        raise InvalidRequest(f"{attribute} must be in {CURRENCY}, not {value.get('unit')!r}")
    if amount_of(value) < 0:
        raise InvalidRequest(f"{attribute} cannot be negative")
    value.setdefault("unit", CURRENCY)


def _check_campaign(session: Session, body: JsonDict) -> None:
    # Whatever @referredType the client wrote: the campaign is marketing's, looked up by
    # its kind (marketing builds on selling, not the other way round).
    campaign = body.get("marketingCampaign")
    kind = ResourceKind.registry.get("campaign")
    if campaign and kind is not None and session.get(kind.row, campaign["id"]) is None:
        raise UnknownReference(
            f"referenced resource not found: marketingCampaign {campaign['id']} (campaign)"
        )


def _transition(what: str, machine: dict[str, frozenset[str]], before: str, after: str) -> None:
    states.check_transition(what, machine, before, after)


@dataclass
class SalesLeadKind(CustomerOwnedKind):
    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        super().before_save(session, principal, body, old)
        _check_money(body, "estimatedRevenue")
        _check_campaign(session, body)
        if old is None:
            body["status"] = "acknowledged"
            body["statusChangeDate"] = body["creationDate"]
            if body.get("salesOpportunity"):
                raise InvalidRequest(
                    "a new lead has no opportunity yet; qualify it by creating a "
                    "salesOpportunity that names it (salesLead)"
                )
            return
        before, after = str(old.get("status")), str(body.get("status"))
        if before != after:
            _transition("salesLead status", LEAD_TRANSITIONS, before, after)
            # Only qualifying sets salesOpportunity (a server-set attribute).
            if after == "accepted" and not body.get("salesOpportunity"):
                raise IllegalTransition(
                    "a lead is accepted by qualifying it: create a salesOpportunity whose "
                    "salesLead names it"
                )
            body["statusChangeDate"] = _now()


@dataclass
class SalesOpportunityKind(CustomerOwnedKind):
    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        super().before_save(session, principal, body, old)
        _check_money(body, "expectedRevenue")
        _check_campaign(session, body)
        stage = str(body.get("stage") or "qualification")
        if old is None:
            if stage not in INITIAL_STAGES:
                raise InvalidRequest(
                    f"a new opportunity starts in {' or '.join(sorted(INITIAL_STAGES))}, "
                    f"not {stage!r}"
                )
            body["stage"] = stage
            body["stageChangeDate"] = body["creationDate"]
            self._take_over_lead(session, principal, body)
            return
        if old.get("salesLead") != body.get("salesLead"):
            raise InvalidRequest("the lead an opportunity came from does not change")
        before = str(old.get("stage"))
        if before != stage:
            _transition("salesOpportunity stage", STAGE_TRANSITIONS, before, stage)
            body["stageChangeDate"] = _now()
            if stage in CLOSED:
                if not str(body.get("winLossReason") or "").strip():
                    raise InvalidRequest(f"closing an opportunity as {stage} needs a winLossReason")
                body["closeDate"] = body["stageChangeDate"]
                body["probability"] = 100 if stage == "closedWon" else 0

    def _take_over_lead(self, session: Session, principal: Principal, body: JsonDict) -> None:
        """The lead named becomes accepted; the opportunity inherits what it knew."""
        lead_ref = body.get("salesLead")
        if not lead_ref:
            return
        row = session.scalar(
            SALES_LEAD_KIND.scoped(principal, select(SalesLeadRow)).where(
                SalesLeadRow.id == lead_ref["id"]
            )
        )
        if row is None:
            raise UnknownReference(f"referenced resource not found: salesLead {lead_ref['id']}")
        lead: JsonDict = row.body
        if (
            lead.get("status") not in LEAD_TRANSITIONS
            or "accepted" not in LEAD_TRANSITIONS[str(lead.get("status"))]
        ):
            raise IllegalTransition(
                f"salesLead {lead['id']} is {lead.get('status')!r} and cannot qualify; "
                "only an open lead (acknowledged, inProgress, pending) becomes an opportunity"
            )
        lead_ref.setdefault("@referredType", "SalesLead")
        lead_ref.setdefault("name", lead.get("name"))
        for attribute in ("marketingCampaign", "description"):
            if lead.get(attribute) and attribute not in body:
                body[attribute] = copy.deepcopy(lead[attribute])
        if lead.get("relatedParty") and "relatedParty" not in body:
            body["relatedParty"] = copy.deepcopy(lead["relatedParty"])
            super().before_save(session, principal, body, None)
        if lead.get("productOffering") and "productOffering" not in body:
            body["productOffering"] = [copy.deepcopy(lead["productOffering"])]
        resources.patch(
            session,
            SALES_LEAD_KIND,
            principal,
            lead["id"],
            {
                "status": "accepted",
                "statusChangeReason": "qualified into an opportunity",
                "salesOpportunity": {
                    "id": body["id"],
                    "name": body["name"],
                    "@referredType": "SalesOpportunity",
                },
            },
            by_service=True,
        )


SALES_LEAD_KIND = SalesLeadKind(
    name="salesLead",
    type_name="SalesLead",
    doc=SALES_DOCUMENT,
    row=SalesLeadRow,
    write_roles=SELLERS,
    # A customer may follow its own enquiries, and raise one from the portal.
    customer_operations=frozenset({READ}),
    refs=(
        RefSpec("relatedParty[]"),
        RefSpec("productOffering", "productOffering"),
        RefSpec("productSpecification", "productSpecification"),
    ),
    server_set={
        "salesOpportunity": "it is set when the lead qualifies; create a salesOpportunity "
        "naming this lead instead"
    },
)
SALES_OPPORTUNITY_KIND = SalesOpportunityKind(
    name="salesOpportunity",
    type_name="SalesOpportunity",
    doc=SALES_DOCUMENT,
    row=SalesOpportunityRow,
    write_roles=frozenset({Role.ADMIN, Role.SALES}),
    read_roles=frozenset({Role.ADMIN, Role.SALES, Role.MARKETING, Role.ANALYST}),
    customer_operations=frozenset(),
    refs=(RefSpec("relatedParty[]"), RefSpec("productOffering[]", "productOffering")),
    status_attribute="stage",
)


def open_lead(
    session: Session,
    principal: Principal,
    *,
    customer_id: str | None,
    name: str,
    description: str = "",
    campaign_id: str | None = None,
    channel: str = "web",
    product_offering_ids: Sequence[str] = (),
    estimated_revenue: Decimal | None = None,
) -> JsonDict:
    """3.4.1 Manage prospects (eTOM 1.1.1.4.1): record a prospect's interest as a lead.

    The lead names the customer (a prospect customer is fine; None for a prospect not
    yet on record), the campaign it responds to and the offerings it asks about; TMF699
    holds one productOffering per lead, so the first is the lead's and all are noted.
    """
    payload: JsonDict = {"name": name, "channel": {"id": channel, "name": channel}}
    if description:
        payload["description"] = description
    if customer_id:
        payload["relatedParty"] = [
            {"id": customer_id, "@referredType": "Customer", "role": "prospect"}
        ]
    if campaign_id:
        payload["marketingCampaign"] = {"id": campaign_id, "@referredType": "Campaign"}
    if product_offering_ids:
        payload["productOffering"] = {
            "id": product_offering_ids[0],
            "@referredType": "ProductOffering",
        }
        if len(product_offering_ids) > 1:
            payload["note"] = [
                {"text": "offerings asked about: " + ", ".join(product_offering_ids)}
            ]
    if estimated_revenue is not None:
        payload["estimatedRevenue"] = money(estimated_revenue)
    body, _, _ = resources.create(session, SALES_LEAD_KIND, principal, payload)
    return body


def qualify_lead(
    session: Session,
    principal: Principal,
    lead_id: str,
    *,
    owner: str,
    probability: int,
    expected_revenue: Decimal,
) -> JsonDict:
    """3.4.1 Manage prospects (eTOM 1.1.1.4.1): qualify a lead into an opportunity.

    Returns the opportunity (stage qualification); the lead becomes accepted and points
    to it.
    """
    lead, _ = resources.get(session, SALES_LEAD_KIND, principal, lead_id)
    if not owner.strip():
        raise InvalidRequest("an opportunity needs an owner (the salesperson)")
    payload: JsonDict = {
        "name": str(lead.get("name")),
        "stage": "qualification",
        "owner": owner,
        "probability": probability,
        "expectedRevenue": money(expected_revenue),
        "salesLead": {"id": lead_id, "@referredType": "SalesLead"},
    }
    body, _, _ = resources.create(session, SALES_OPPORTUNITY_KIND, principal, payload)
    return body


def _opportunity(session: Session, principal: Principal, opportunity_id: str) -> JsonDict:
    body, _ = resources.get(session, SALES_OPPORTUNITY_KIND, principal, opportunity_id)
    return body


def advance_opportunity(
    session: Session,
    principal: Principal,
    opportunity_id: str,
    *,
    stage: str,
    probability: int | None = None,
) -> JsonDict:
    """3.4.1 Manage prospects (eTOM 1.1.1.4.1): move an opportunity to another stage.

    Closing goes through :func:`close_opportunity`, which needs the reason.
    """
    if stage in CLOSED:
        raise InvalidRequest(f"close an opportunity with its reason, not by advancing to {stage}")
    if stage not in STAGES:
        raise InvalidRequest(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    _opportunity(session, principal, opportunity_id)
    changes: JsonDict = {"stage": stage}
    if probability is not None:
        changes["probability"] = probability
    body, _ = resources.patch(session, SALES_OPPORTUNITY_KIND, principal, opportunity_id, changes)
    return body


def close_opportunity(
    session: Session, principal: Principal, opportunity_id: str, *, won: bool, reason: str
) -> JsonDict:
    """3.4.1 Manage prospects (eTOM 1.1.1.4.1): close an opportunity as won or lost, with
    the reason (probability becomes 100 or 0)."""
    _opportunity(session, principal, opportunity_id)
    changes = {"stage": "closedWon" if won else "closedLost", "winLossReason": reason}
    body, _ = resources.patch(session, SALES_OPPORTUNITY_KIND, principal, opportunity_id, changes)
    return body


def leads_of_campaign(session: Session, campaign_id: str) -> list[JsonDict]:
    """Every lead attributed to a campaign."""
    return list(
        session.scalars(
            select(SalesLeadRow.body).where(
                SalesLeadRow.body["marketingCampaign", "id"].as_string() == campaign_id
            )
        )
    )


def opportunities_of_leads(session: Session, lead_ids: Sequence[str]) -> list[JsonDict]:
    if not lead_ids:
        return []
    return list(
        session.scalars(
            select(SalesOpportunityRow.body).where(
                SalesOpportunityRow.body["salesLead", "id"].as_string().in_(list(lead_ids))
            )
        )
    )
