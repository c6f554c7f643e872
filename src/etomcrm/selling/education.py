"""3.4.2 Educate the customer: the effort and the risk of a quoted solution, per site.

Before a customer commits, the sales person walks it through what the quote means on
the ground. :func:`education_brief` computes it from the quote, the latest feasibility
answer per site (TMF679) and the stock; :func:`record_education` stores what was
presented as a TMF683 partyInteraction (@type CustomerEducation), and a quote cannot
be accepted before that record exists for its current version.

Where the figures come from:

- Network lead time: the site's latest productOfferingQualification item — a
  ``leadTimeDays`` characteristic on its product, else the days from the qualification
  date to ``expectedActivationDate``. No qualification yet is a risk of its own.
- Material lead time: the quote's ``materialLeadTimeDays`` (0 when in stock).
- Installation effort: an ``installationEffortHours`` characteristic of the offering's
  product specification; otherwise :data:`DEFAULT_EFFORT_HOURS` by what the item is
  (the installation offering's ``appointmentWindowHours`` counts as its effort).
- Prerequisites: building access for the technician on a weekday at every site; for
  every material, mains power and rack space beside the demarcation point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.catalog.models import ProductOfferingRow, ProductSpecificationRow
from etomcrm.catalog.service import SLA_TYPE
from etomcrm.core import resources
from etomcrm.core.clock import iso
from etomcrm.core.errors import InvalidRequest
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.service import PARTY_INTERACTION_KIND, customer_of
from etomcrm.db import utcnow
from etomcrm.security.service import SYSTEM, Principal
from etomcrm.selling.models import ProductOfferingQualificationRow
from etomcrm.selling.quotes import (
    EDUCATION_TYPE,
    QUOTE_KIND,
    accept_quote,
    education_reason,
)

EFFORT_CHARACTERISTIC = "installationEffortHours"
# Hours on site when the catalog does not say: a material is mounted and configured in
# one hour, an access line is patched and tested in two; an SLA is paperwork.
DEFAULT_EFFORT_HOURS = {"material": Decimal(1), "service": Decimal(2), "sla": Decimal(0)}
CHANNELS = frozenset({"meeting", "phone", "email", "video", "portal", "letter"})


@dataclass
class SiteBrief:
    site_id: str
    site_name: str
    network_lead_time_days: int | None = None
    material_lead_time_days: int = 0
    installation_hours: Decimal = Decimal(0)
    prerequisites: list[str] = field(default_factory=list)
    risks: list[str] = field(default_factory=list)

    @property
    def lead_time_days(self) -> int:
        return max(self.network_lead_time_days or 0, self.material_lead_time_days)

    def as_json(self) -> JsonDict:
        return {
            "siteId": self.site_id,
            "siteName": self.site_name,
            "leadTimeDays": self.lead_time_days,
            "networkLeadTimeDays": self.network_lead_time_days,
            "materialLeadTimeDays": self.material_lead_time_days,
            "installationEffortHours": float(self.installation_hours),
            "prerequisites": self.prerequisites,
            "risks": self.risks,
        }


def _characteristic(item: JsonDict, name: str) -> Any:
    for ch in (item.get("product") or {}).get("productCharacteristic", []) or []:
        if isinstance(ch, dict) and ch.get("name") == name:
            return ch.get("value")
    return None


def _day(text: Any) -> date | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        return None


@dataclass(frozen=True)
class _Feasibility:
    lead_time_days: int | None
    risks: tuple[str, ...]


def _site_ids_of(poq: JsonDict, item: JsonDict) -> list[str]:
    places = (item.get("product") or {}).get("place") or poq.get("place") or []
    return [p["id"] for p in places if isinstance(p, dict) and isinstance(p.get("id"), str)]


def _feasibility(poq: JsonDict, item: JsonDict) -> _Feasibility:
    """What one TMF679 item says about a site; fields missing are read as unknown."""
    risks: list[str] = []
    result = str(item.get("qualificationItemResult") or poq.get("qualificationResult") or "")
    reasons = [
        str(r.get("label") or r.get("code"))
        for r in item.get("eligibilityUnavailabilityReason", []) or []
        if isinstance(r, dict) and (r.get("label") or r.get("code"))
    ]
    if result == "unqualified":
        risks.append(
            "unserviceable: the network cannot serve this site"
            + (f" ({'; '.join(reasons)})" if reasons else "")
        )
    special = _characteristic(item, "specialBuild")
    if special is True or any("special build" in r.lower() for r in reasons):
        risks.append("special build: the line must be built to the site first")
    lead: int | None = None
    raw = _characteristic(item, "leadTimeDays")
    if isinstance(raw, int | float | str):
        try:
            lead = int(Decimal(str(raw)))
        except InvalidOperation:
            lead = None
    if lead is None:
        start = _day(
            poq.get("productOfferingQualificationDate") or poq.get("effectiveQualificationDate")
        )
        end = _day(item.get("expectedActivationDate"))
        if start and end:
            lead = max((end - start).days, 0)
    return _Feasibility(lead, tuple(risks))


def _latest_feasibility(session: Session, customer_id: str) -> dict[str, _Feasibility]:
    """The newest qualification answer per site of one customer (ids sort by time)."""
    rows = session.scalars(
        select(ProductOfferingQualificationRow.body)
        .where(ProductOfferingQualificationRow.owner_customer_id == customer_id)
        .order_by(ProductOfferingQualificationRow.id.desc())
    )
    latest: dict[str, _Feasibility] = {}
    for poq in rows:
        for item in poq.get("productOfferingQualificationItem", []) or []:
            if not isinstance(item, dict):
                continue
            for site_id in _site_ids_of(poq, item):
                if site_id not in latest:
                    latest[site_id] = _feasibility(poq, item)
    return latest


def effort_per_offering(session: Session, offering_ids: set[str]) -> dict[str, Decimal | None]:
    """Hours per unit from the catalog, or None where it says nothing."""
    offerings: dict[str, JsonDict] = dict(
        session.execute(
            select(ProductOfferingRow.id, ProductOfferingRow.body).where(
                ProductOfferingRow.id.in_(offering_ids)
            )
        ).all()
    )
    spec_of = {
        o: b["productSpecification"]["id"]
        for o, b in offerings.items()
        if isinstance(b.get("productSpecification"), dict)
    }
    specs: dict[str, JsonDict] = dict(
        session.execute(
            select(ProductSpecificationRow.id, ProductSpecificationRow.body).where(
                ProductSpecificationRow.id.in_(set(spec_of.values()))
            )
        ).all()
    )
    effort: dict[str, Decimal | None] = {}
    for offering_id in offering_ids:
        spec = specs.get(spec_of.get(offering_id, ""), {})
        if spec.get("@type") == SLA_TYPE:
            effort[offering_id] = DEFAULT_EFFORT_HOURS["sla"]
            continue
        hours = None
        for ch in spec.get("productSpecCharacteristic", []) or []:
            if isinstance(ch, dict) and ch.get("name") in (
                EFFORT_CHARACTERISTIC,
                "appointmentWindowHours",
            ):
                values = ch.get("productSpecCharacteristicValue") or [{}]
                value = values[0].get("value") if isinstance(values[0], dict) else None
                if value is not None:
                    hours = Decimal(str(value))
                    if ch["name"] == EFFORT_CHARACTERISTIC:
                        break
        effort[offering_id] = hours
    return effort


def education_brief(session: Session, quote_id: str, *, principal: Principal = SYSTEM) -> JsonDict:
    """3.4.2 Educate the customer (eTOM 1.1.1.4.2): what the quoted solution means per site.

    Lead time (network or material, whichever is longer), installation effort, site
    prerequisites and feasibility risks, plus the totals across sites. ``principal``
    limits whose quotes may be read (a customer reads only its own).
    """
    quote, _ = resources.get(session, QUOTE_KIND, principal, quote_id)
    customer_id = customer_of(quote) or ""
    feasibility = _latest_feasibility(session, customer_id)
    items = [i for i in quote.get("quoteItem", []) or [] if isinstance(i, dict)]
    effort = effort_per_offering(session, {i["productOffering"]["id"] for i in items})
    sites: dict[str, SiteBrief] = {}
    for item in items:
        place = item["product"]["place"][0]
        brief = sites.setdefault(
            place["id"], SiteBrief(place["id"], place.get("name", place["id"]))
        )
        quantity = Decimal(int(item.get("quantity", 1)))
        material = _characteristic(item, "materialAvailability")
        hours = effort.get(item["productOffering"]["id"])
        if hours is None:
            hours = DEFAULT_EFFORT_HOURS["material" if material else "service"]
        brief.installation_hours += hours * quantity
        if material is not None:
            name = item["productOffering"].get("name", "material")
            days = int(_characteristic(item, "materialLeadTimeDays") or 0)
            brief.material_lead_time_days = max(brief.material_lead_time_days, days)
            for needed in (
                f"mains power (230 V socket) for the {name} beside the line's demarcation point",
                f"rack space (1 U, 19 inch) or a wall mount for the {name}",
            ):
                if needed not in brief.prerequisites:
                    brief.prerequisites.append(needed)
            if material == "replenishment":
                risk = f"{name} not in stock for this site: {days} days to replenish"
                if risk not in brief.risks:
                    brief.risks.append(risk)
    for site_id, brief in sites.items():
        brief.prerequisites.insert(
            0, "building access for our technician on a weekday, with a contact on site"
        )
        answer = feasibility.get(site_id)
        if answer is None:
            brief.risks.append("feasibility not yet checked: the network lead time is unknown")
        else:
            brief.network_lead_time_days = answer.lead_time_days
            brief.risks.extend(answer.risks)
    ordered = list(sites.values())
    return {
        "quoteId": quote_id,
        "quoteVersion": quote.get("version"),
        "customerId": customer_id,
        "sites": [b.as_json() for b in ordered],
        "longestLeadTimeDays": max((b.lead_time_days for b in ordered), default=0),
        "totalInstallationEffortHours": float(
            sum((b.installation_hours for b in ordered), Decimal(0))
        ),
        "sitesAtRisk": sum(1 for b in ordered if b.risks),
    }


def _summary(brief: JsonDict) -> str:
    lines = [
        f"Longest lead time {brief['longestLeadTimeDays']} days; installation effort "
        f"{brief['totalInstallationEffortHours']} hours over {len(brief['sites'])} site(s)."
    ]
    for site in brief["sites"]:
        risks = "; ".join(site["risks"]) or "no known risks"
        lines.append(
            f"{site['siteName']}: lead time {site['leadTimeDays']} days, "
            f"{site['installationEffortHours']} h on site; needs "
            f"{'; '.join(site['prerequisites'])}. Risks: {risks}."
        )
    return "\n".join(lines)


def record_education(
    session: Session,
    principal: Principal,
    quote_id: str,
    *,
    presented_to: str,
    channel: str,
    note: str = "",
) -> JsonDict:
    """3.4.2 Educate the customer (eTOM 1.1.1.4.2): record that the brief was presented.

    Stored as a TMF683 partyInteraction (@type CustomerEducation) on the customer, with
    the quote (and its version) as interaction item and the brief as it was presented.
    """
    if not presented_to.strip():
        raise InvalidRequest("say to whom the education was presented (presented_to)")
    if channel not in CHANNELS:
        raise InvalidRequest(
            f"channel must be one of {', '.join(sorted(CHANNELS))}, not {channel!r}"
        )
    # Read as the caller first: a customer's token sees only its own quotes.
    quote, _ = resources.get(session, QUOTE_KIND, principal, quote_id)
    if quote.get("supersededBy"):
        raise InvalidRequest(
            f"{quote_id} is an old version; educate on the current quote "
            f"{quote['supersededBy']['id']}"
        )
    brief = education_brief(session, quote_id, principal=principal)
    now = iso(utcnow())
    notes = [{"id": "1", "author": principal.name, "date": now, "text": _summary(brief)}]
    if note.strip():
        notes.append({"id": "2", "author": principal.name, "date": now, "text": note.strip()})
    payload: JsonDict = {
        "@type": EDUCATION_TYPE,
        "@baseType": "PartyInteraction",
        "reason": education_reason(quote_id, str(quote.get("version"))),
        "description": f"Effort and risks of quote {quote_id} version {quote.get('version')} "
        f"presented to {presented_to.strip()}",
        "direction": "outbound",
        "status": "completed",
        "channel": [{"id": channel, "name": channel}],
        "interactionDate": {"startDateTime": now, "endDateTime": now},
        "interactionItem": [
            {
                "id": "1",
                "reason": "quote presented",
                "item": {
                    "id": quote_id,
                    "name": f"Quote version {quote.get('version')}",
                    "role": "presented quote",
                    "@referredType": "Quote",
                    "version": str(quote.get("version")),
                },
            }
        ],
        "note": notes,
        "relatedParty": [
            {"id": customer_of(quote), "@referredType": "Customer", "role": "customer"},
        ],
        "educationBrief": brief,
        "presentedTo": presented_to.strip(),
    }
    body, _, _ = resources.create(session, PARTY_INTERACTION_KIND, principal, payload)
    return body


PORTAL_ACKNOWLEDGEMENT = "Read and acknowledged by the customer in the portal before accepting"


def accept_with_education(
    session: Session, principal: Principal, quote_id: str, *, acknowledged: bool
) -> JsonDict:
    """3.4.2 Educate the customer (eTOM 1.1.1.4.2): the customer reads the brief of the
    quote in the portal, acknowledges it, and accepts the quote (3.4.3).

    The acknowledgement is recorded as the education of the current version (channel
    portal, presented to the signed-in user), then the quote is accepted under the
    API's rules (approved, valid, customer data complete); if the acceptance is
    refused, the caller's transaction takes the record back with it.
    """
    if not acknowledged:
        raise InvalidRequest(
            "acknowledge the lead times, installation effort, site prerequisites and risks "
            "of the quote before accepting it"
        )
    record_education(
        session,
        principal,
        quote_id,
        presented_to=principal.name,
        channel="portal",
        note=PORTAL_ACKNOWLEDGEMENT,
    )
    return accept_quote(session, principal, quote_id)
