"""3.3 Marketing fulfilment response: campaigns, their collateral and what they bring in.

TM Forum v4 has no campaign API, so ``campaign`` is defined here (:data:`MARKETING`) in
the conventions of the others and served at ``/tmf-api/marketing/v4/campaign``. A
campaign names a target segment, collateral (TMF667 documents), a budget and a period.

The target segment (``targetSegment``) selects customers, any of:

* ``customer``: an explicit list of customer references;
* ``characteristic``: customers with all these characteristics (name and value);
* ``stateOrProvince``: customers with a site in one of these regions.

Terminated customers are never targeted. Distribution writes one marketing
communicationMessage per customer to its contacts who have not opted out (see
:mod:`etomcrm.customer_interface.communication`). A response is a TMF699 salesLead whose
``marketingCampaign`` names the campaign.
"""

from __future__ import annotations

import copy
import json
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from etomcrm.core import resources, states
from etomcrm.core.clock import iso
from etomcrm.core.errors import Conflict, InvalidRequest
from etomcrm.core.resources import READ, RefSpec, ResourceKind
from etomcrm.core.tmf_schemas import DOCUMENT, SALES, JsonDict, TmfDocument
from etomcrm.customer_interface.communication import (
    MARKETING as MARKETING_CATEGORY,
)
from etomcrm.customer_interface.communication import (
    customer_contacts,
    write_message,
)
from etomcrm.customer_interface.models import (
    CustomerRow,
    GeographicSiteRow,
)
from etomcrm.customer_interface.service import CustomerOwnedKind
from etomcrm.db import utcnow
from etomcrm.marketing.models import CampaignRow, CampaignTargetRow, DocumentRow
from etomcrm.security.service import STAFF_ROLES, Principal, Role
from etomcrm.selling.prospects import (
    amount_of,
    leads_of_campaign,
    money,
    open_lead,
    opportunities_of_leads,
)

MARKETERS = frozenset({Role.ADMIN, Role.MARKETING})
CAMPAIGN_TRANSITIONS: dict[str, frozenset[str]] = {
    "planned": frozenset({"active", "cancelled"}),
    "active": frozenset({"completed", "cancelled"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
}
DISTRIBUTABLE = frozenset({"planned", "active"})
TREATED, CONTROL = "treated", "control"
# More than half held out would leave the campaign measuring its control group.
MAX_CONTROL_SHARE = 0.5
# A lead that was rejected or cancelled answered the campaign but is no lead.
NOT_A_LEAD = frozenset({"rejected", "cancelled"})


def _campaign_definitions() -> dict[str, JsonDict]:
    text = {"type": "string"}
    count = {"type": "integer", "minimum": 0}
    segment = {
        "type": "object",
        "description": "Which customers a campaign addresses; criteria combine with AND, "
        "each list with OR",
        "properties": {
            "customer": {"type": "array", "items": {"$ref": "#/definitions/EntityRef"}},
            "characteristic": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "value"],
                    "properties": {"name": text, "value": {}},
                },
            },
            "stateOrProvince": {"type": "array", "items": text},
        },
    }
    distribution = {
        "type": "object",
        "description": "What distribution has done so far (server-set)",
        "properties": {
            "distributedAt": {"type": "string", "format": "date-time"},
            "customerCount": count,
            "messageCount": count,
            "recipientCount": count,
            "optedOutCount": count,
        },
    }
    targeting = {
        "type": "object",
        "description": "The campaign's targets as last set (server-set, POST .../targets): "
        "how many, how many held out as control group, the share asked for and the seed "
        "of the random draw (the same seed and targets draw the same control group)",
        "properties": {
            "targetCount": count,
            "treatedCount": count,
            "controlCount": count,
            "controlShare": {"type": "number", "minimum": 0, "maximum": 0.5},
            "seed": {"type": "integer"},
            "assignedAt": {"type": "string", "format": "date-time"},
        },
    }
    properties: dict[str, JsonDict] = {
        "id": text,
        "href": text,
        "name": text,
        "description": text,
        "status": {"$ref": "#/definitions/CampaignStateType"},
        "budget": {"$ref": "#/definitions/Money"},
        "validFor": {"$ref": "#/definitions/TimePeriod"},
        "targetSegment": segment,
        "collateral": {"type": "array", "items": {"$ref": "#/definitions/EntityRef"}},
        "distribution": distribution,
        "targeting": targeting,
        "creationDate": {"type": "string", "format": "date-time"},
        "lastUpdate": {"type": "string", "format": "date-time"},
        "@baseType": text,
        "@schemaLocation": text,
        "@type": text,
    }
    writable = {
        k: v
        for k, v in properties.items()
        if k not in {"id", "href", "distribution", "targeting", "creationDate", "lastUpdate"}
    }
    description = (
        "A marketing campaign (3.3.1, 3.3.2): target segment, collateral (TMF667 "
        "documents), budget and period. No TM Forum v4 API defines it; etomcrm serves it "
        "in the TMF conventions."
    )
    return {
        "Campaign": {"type": "object", "description": description, "properties": properties},
        "Campaign_Create": {
            "type": "object",
            "description": description,
            "required": ["name", "targetSegment"],
            "properties": writable,
        },
        "Campaign_Update": {"type": "object", "properties": writable},
        "CampaignStateType": {"type": "string", "enum": list(CAMPAIGN_TRANSITIONS)},
        "CampaignResult": {
            "type": "object",
            "description": "3.3.2 Track campaign results: what a campaign brought in",
            "required": ["campaign", "sent", "responses", "leads", "opportunities", "won"],
            "properties": {
                "campaign": {"$ref": "#/definitions/EntityRef"},
                "sent": {**count, "description": "Marketing messages issued"},
                "recipients": {**count, "description": "Contacts those messages went to"},
                "optedOut": {**count, "description": "Contacts left out (opted out)"},
                "responses": {**count, "description": "Sales leads attributed"},
                "leads": {**count, "description": "Responses not rejected or cancelled"},
                "opportunities": {**count, "description": "Leads converted to opportunities"},
                "won": {**count, "description": "Opportunities closed as won"},
                "budget": {"$ref": "#/definitions/Money"},
                "costPerLead": {"$ref": "#/definitions/Money"},
                "revenueAttributed": {"$ref": "#/definitions/Money"},
                "@type": text,
            },
        },
    }


SHARED_DEFINITIONS = (
    "Money",
    "TimePeriod",
    "EntityRef",
    "Error",
    "EventSubscription",
    "EventSubscriptionInput",
)


def _marketing_document() -> TmfDocument:
    shared = SALES.definitions
    definitions: dict[str, JsonDict] = {
        name: copy.deepcopy(shared[name])
        for name in (
            "Money",
            "TimePeriod",
            "EntityRef",
            "Error",
            "EventSubscription",
            "EventSubscriptionInput",
        )
    }
    definitions.update(_campaign_definitions())
    for name, schema in shared.items():
        if name.startswith("SalesLead") and "Event" in name:
            renamed = (
                json.dumps(schema).replace("SalesLead", "Campaign").replace("salesLead", "campaign")
            )
            definitions[name.replace("SalesLead", "Campaign")] = json.loads(renamed)
    raw = {"swagger": "2.0", "basePath": "/tmf-api/marketing/v4/", "definitions": definitions}
    return TmfDocument(code="Marketing", filename="", base_path="/tmf-api/marketing/v4", raw=raw)


MARKETING = _marketing_document()


def _transition(before: str, after: str) -> None:
    states.check_transition("campaign status", CAMPAIGN_TRANSITIONS, before, after)


@dataclass
class CampaignKind(ResourceKind):
    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        budget = body.get("budget")
        if budget is not None:
            if budget.get("unit", "EUR") != "EUR":
                raise InvalidRequest(f"budget must be in EUR, not {budget.get('unit')!r}")
            if amount_of(budget) < 0:
                raise InvalidRequest("budget cannot be negative")
        segment = body.get("targetSegment") or {}
        if not any(segment.get(k) for k in ("customer", "characteristic", "stateOrProvince")):
            raise InvalidRequest(
                "targetSegment needs at least one of customer, characteristic, stateOrProvince"
            )
        if old is None:
            body.setdefault("status", "planned")
            if body["status"] != "planned":
                raise InvalidRequest(f"a new campaign starts planned, not {body['status']!r}")
            body.pop("distribution", None)
            body.pop("targeting", None)
            return
        before, after = str(old.get("status")), str(body.get("status"))
        if before != after:
            _transition(before, after)


@dataclass
class DocumentKind(CustomerOwnedKind):
    """TMF667 documents: the provider's collateral and templates (no customer) and
    documents made for one customer (named in relatedParty), which that customer reads."""


CAMPAIGN_KIND = CampaignKind(
    name="campaign",
    type_name="Campaign",
    doc=MARKETING,
    row=CampaignRow,
    write_roles=MARKETERS,
    customer_owned=False,
    refs=(RefSpec("collateral[]", "document"), RefSpec("targetSegment.customer[]", "customer")),
    server_set={
        "distribution": "it is what distributing the campaign did (POST .../distribute)",
        "targeting": "it is what setting the campaign's targets did (POST .../targets)",
    },
)
DOCUMENT_KIND = DocumentKind(
    name="document",
    type_name="Document",
    doc=DOCUMENT,
    row=DocumentRow,
    write_roles=STAFF_ROLES - {Role.ANALYST},
    customer_operations=frozenset({READ}),
    refs=(RefSpec("relatedParty[]"), RefSpec("documentRelationship[]", "document")),
    status_attribute="lifecycleState",
)


def _has_characteristics(customer: JsonDict, wanted: list[JsonDict]) -> bool:
    held = {
        (c.get("name"), json.dumps(c.get("value"), sort_keys=True))
        for c in customer.get("characteristic") or []
        if isinstance(c, dict)
    }
    return all((w["name"], json.dumps(w["value"], sort_keys=True)) in held for w in wanted)


def segment_customers(session: Session, segment: JsonDict) -> list[str]:
    """Ids of the customers a target segment selects, in creation order."""
    rows = session.execute(
        select(CustomerRow.id, CustomerRow.body)
        .where(CustomerRow.status != "terminated")
        .order_by(CustomerRow.id)
    ).all()
    chosen = [(cid, body) for cid, body in rows]
    explicit = {c["id"] for c in segment.get("customer") or []}
    if explicit:
        chosen = [(cid, body) for cid, body in chosen if cid in explicit]
    wanted = segment.get("characteristic") or []
    if wanted:
        chosen = [(cid, body) for cid, body in chosen if _has_characteristics(body, wanted)]
    regions = {str(r).casefold() for r in segment.get("stateOrProvince") or []}
    if regions:
        ids = [cid for cid, _ in chosen]
        in_region: set[str] = set()
        for owner, site in session.execute(
            select(GeographicSiteRow.owner_customer_id, GeographicSiteRow.body).where(
                GeographicSiteRow.owner_customer_id.in_(ids)
            )
        ):
            for place in site.get("place") or []:
                region = place.get("stateOrProvince") if isinstance(place, dict) else None
                if isinstance(region, str) and region.casefold() in regions:
                    in_region.add(str(owner))
        chosen = [(cid, body) for cid, body in chosen if cid in in_region]
    return [cid for cid, _ in chosen]


def _collateral(session: Session, campaign: JsonDict) -> list[JsonDict]:
    ids = [c["id"] for c in campaign.get("collateral") or []]
    if not ids:
        return []
    documents = {
        d["id"]: d for d in session.scalars(select(DocumentRow.body).where(DocumentRow.id.in_(ids)))
    }
    attachments = []
    for doc_id in ids:
        document = documents[doc_id]
        attachment: JsonDict = {
            "id": doc_id,
            "name": str(document.get("name") or doc_id),
            "attachmentType": str(document.get("documentType") or "collateral"),
        }
        for binary in document.get("binaryAttachment") or []:
            if isinstance(binary, dict) and binary.get("url"):
                attachment["url"] = binary["url"]
                if binary.get("mimeType"):
                    attachment["mimeType"] = binary["mimeType"]
                break
        attachments.append(attachment)
    return attachments


def control_size(target_count: int, share: float) -> int:
    """How many of the targets are held out: the share of them, rounded half up."""
    return int(Decimal(str(share)) * target_count + Decimal("0.5"))


def draw_control_group(customer_ids: Sequence[str], share: float, seed: int) -> set[str]:
    """The control group drawn from the targets: ``control_size`` of them, chosen by a
    random generator seeded with ``seed`` over the ids in sorted order, so the same
    targets and seed always draw the same customers."""
    ordered = sorted(set(customer_ids))
    return set(random.Random(seed).sample(ordered, control_size(len(ordered), share)))


def set_campaign_targets(
    session: Session,
    principal: Principal,
    campaign_id: str,
    *,
    customer_ids: Sequence[str] | None = None,
    control_share: float = 0.0,
    seed: int | None = None,
) -> JsonDict:
    """3.3.1 Issue and distribute marketing collateral (eTOM 1.1.1.3.1): fix whom a
    planned campaign reaches and hold a control group out at random.

    The targets are ``customer_ids`` (a campaign plan's list) or, without them, the
    customers of the campaign's target segment. ``control_share`` of them (0 to 0.5,
    rounded half up) are drawn as control group with a generator seeded by ``seed``
    (one is drawn and recorded when none is given): they are measured like the others
    but distribution sends them nothing. Setting targets again replaces them, until the
    campaign is distributed.
    """
    CAMPAIGN_KIND.authorize(principal, resources.UPDATE)
    campaign, _ = resources.get(session, CAMPAIGN_KIND, principal, campaign_id)
    if campaign.get("status") != "planned":
        raise Conflict(
            f"campaign {campaign_id} is {campaign.get('status')!r}; targets are set while "
            "a campaign is planned"
        )
    if isinstance(control_share, bool) or not isinstance(control_share, int | float):
        raise InvalidRequest(f"controlShare must be a number, not {control_share!r}")
    if not 0 <= control_share <= MAX_CONTROL_SHARE:
        raise InvalidRequest(
            f"controlShare must be between 0 and {MAX_CONTROL_SHARE}, not {control_share}"
        )
    if seed is None:
        seed = secrets.randbelow(2**31)
    elif isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidRequest(f"seed must be an integer, not {seed!r}")
    if customer_ids is None:
        targets = segment_customers(session, campaign["targetSegment"])
    else:
        targets = sorted(set(customer_ids))
        known = set(
            session.scalars(
                select(CustomerRow.id).where(
                    CustomerRow.id.in_(targets), CustomerRow.status != "terminated"
                )
            )
        )
        unknown = [c for c in targets if c not in known]
        if unknown:
            raise InvalidRequest(
                "targets must be customers on record and not terminated; not: "
                + ", ".join(unknown[:10])
            )
    if not targets:
        raise InvalidRequest(f"campaign {campaign_id} would target no customer")
    control = draw_control_group(targets, control_share, seed)
    now = utcnow()
    session.execute(delete(CampaignTargetRow).where(CampaignTargetRow.campaign_id == campaign_id))
    session.execute(
        insert(CampaignTargetRow),
        [
            {
                "campaign_id": campaign_id,
                "customer_id": c,
                "group": CONTROL if c in control else TREATED,
                "assigned_at": now,
            }
            for c in sorted(targets)
        ],
    )
    targeting: JsonDict = {
        "targetCount": len(targets),
        "treatedCount": len(targets) - len(control),
        "controlCount": len(control),
        "controlShare": control_share,
        "seed": seed,
        "assignedAt": iso(now),
    }
    body, _ = resources.patch(
        session, CAMPAIGN_KIND, principal, campaign_id, {"targeting": targeting}, by_service=True
    )
    return body


def campaign_targets(session: Session, campaign_id: str) -> dict[str, str]:
    """The campaign's targets and their group (treated or control); empty when its
    targets were never set (it reaches its target segment)."""
    return dict(
        session.execute(
            select(CampaignTargetRow.customer_id, CampaignTargetRow.group).where(
                CampaignTargetRow.campaign_id == campaign_id
            )
        ).all()
    )


def _recipients(session: Session, campaign_id: str, segment: JsonDict) -> list[str]:
    """Whom distribution writes to: the treated targets of a campaign whose targets were
    set (never its control group), else its target segment; never a terminated one."""
    targets = campaign_targets(session, campaign_id)
    if not targets:
        return segment_customers(session, segment)
    treated = sorted(c for c, group in targets.items() if group == TREATED)
    live = set(
        session.scalars(
            select(CustomerRow.id).where(
                CustomerRow.id.in_(treated), CustomerRow.status != "terminated"
            )
        )
    )
    return [c for c in treated if c in live]


def distribute_collateral(session: Session, principal: Principal, campaign_id: str) -> JsonDict:
    """3.3.1 Issue and distribute marketing collateral (eTOM 1.1.1.3.1): send the campaign
    and its collateral to every contact in the target segment who has not opted out
    (to the treated targets only, when the targets were set with a control group).

    One marketing message per customer, once: distributing again reaches only customers
    who joined the segment since. A planned campaign becomes active.
    """
    CAMPAIGN_KIND.authorize(principal, resources.UPDATE)
    campaign, _ = resources.get(session, CAMPAIGN_KIND, principal, campaign_id)
    if campaign.get("status") not in DISTRIBUTABLE:
        raise Conflict(
            f"campaign {campaign_id} is {campaign.get('status')!r}; only a planned or "
            "active campaign is distributed"
        )
    attachment = _collateral(session, campaign)
    lines = [campaign.get("description") or campaign["name"]]
    lines += [f"- {a['name']}" + (f": {a['url']}" if a.get("url") else "") for a in attachment]
    lines.append("\nTo receive no more offers from us, reply with 'unsubscribe'.")
    content = "\n".join(lines)
    # A snapshot, not a running sum, so distributing again never counts anyone twice.
    stats: JsonDict = {"customerCount": 0, "messageCount": 0, "recipientCount": 0}
    stats["optedOutCount"] = 0
    for customer_id in _recipients(session, campaign_id, campaign["targetSegment"]):
        stats["customerCount"] += 1
        stats["optedOutCount"] += sum(
            1 for c in customer_contacts(session, customer_id) if c.opted_out
        )
        # Keyed per campaign and customer: a customer reached before gets nothing new.
        message = write_message(
            session,
            principal,
            customer_id=customer_id,
            subject=str(campaign["name"]),
            content=content,
            key=f"campaign:{campaign_id}:customer:{customer_id}",
            category=MARKETING_CATEGORY,
            related_entity=[{"id": campaign_id, "@referredType": "Campaign", "role": "campaign"}],
            attachment=attachment,
        )
        if message is not None:
            stats["messageCount"] += 1
            stats["recipientCount"] += len(message.get("receiver", []))
    stats["distributedAt"] = iso(utcnow())
    changes: JsonDict = {"distribution": stats}
    if campaign["status"] == "planned":
        changes["status"] = "active"
    body, _ = resources.patch(
        session, CAMPAIGN_KIND, principal, campaign_id, changes, by_service=True
    )
    return body


def record_campaign_response(
    session: Session,
    principal: Principal,
    campaign_id: str,
    *,
    customer_id: str | None,
    name: str,
    description: str = "",
    channel: str = "email",
    product_offering_ids: tuple[str, ...] = (),
    estimated_revenue: Decimal | None = None,
) -> JsonDict:
    """3.3.2 Track campaign results (eTOM 1.1.1.3.2): a prospect's answer to a campaign
    becomes a sales lead attributed to it."""
    campaign, _ = resources.get(session, CAMPAIGN_KIND, principal, campaign_id)
    if campaign.get("status") not in ("active", "completed"):
        raise Conflict(
            f"campaign {campaign_id} is {campaign.get('status')!r}; responses are recorded "
            "for an active or completed campaign"
        )
    return open_lead(
        session,
        principal,
        customer_id=customer_id,
        name=name,
        description=description,
        campaign_id=campaign_id,
        channel=channel,
        product_offering_ids=product_offering_ids,
        estimated_revenue=estimated_revenue,
    )


def campaign_results(session: Session, principal: Principal, campaign_id: str) -> JsonDict:
    """3.3.2 Track campaign results (eTOM 1.1.1.3.2): messages sent, responses, leads,
    opportunities, wins, cost per lead (budget ÷ leads) and revenue attributed (expected
    revenue of the won opportunities)."""
    campaign, _ = resources.get(session, CAMPAIGN_KIND, principal, campaign_id)
    responses = leads_of_campaign(session, campaign_id)
    leads = [lead for lead in responses if lead.get("status") not in NOT_A_LEAD]
    opportunities = opportunities_of_leads(session, [lead["id"] for lead in leads])
    won = [o for o in opportunities if o.get("stage") == "closedWon"]
    distribution = campaign.get("distribution") or {}
    budget = amount_of(campaign.get("budget"))
    result: JsonDict = {
        "@type": "CampaignResult",
        "campaign": {"id": campaign_id, "name": campaign.get("name"), "@referredType": "Campaign"},
        "sent": int(distribution.get("messageCount", 0)),
        "recipients": int(distribution.get("recipientCount", 0)),
        "optedOut": int(distribution.get("optedOutCount", 0)),
        "responses": len(responses),
        "leads": len(leads),
        "opportunities": len(opportunities),
        "won": len(won),
        "revenueAttributed": money(
            sum((amount_of(o.get("expectedRevenue")) for o in won), Decimal(0))
        ),
    }
    if campaign.get("budget") is not None:
        result["budget"] = money(budget)
        if leads:
            result["costPerLead"] = money(budget / len(leads))
    return result
