"""The demo's last part (seed 5.3, "The BMW demo shows them on its data"): the story's
contact statistics (3.2.3), BMW's profitability per month, the computed segments
(3.9.2), the campaign's success, what the churn model says of the history at hand, and
BMW's profile with its next best offer (3.9.4), through the same service functions as
the API and the analyst workspace's pages.

The analytical store is derived from the story's records first (as ``etomcrm analytics
rebuild`` does): the demo's flows may run without the bus delivering to the store's
handlers, and a rebuild derives the same facts on every run, so a second run shows the
same figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from sqlalchemy import select

from etomcrm.analytics import churn, store
from etomcrm.analytics.campaigns import campaign_success
from etomcrm.analytics.contacts import contact_statistics
from etomcrm.analytics.profitability import customer_profitability
from etomcrm.analytics.trends import segment_overview
from etomcrm.customer_interface.models import CustomerRow
from etomcrm.db import session_scope, utcnow
from etomcrm.retention.profile import customer_profile, offer_summary
from etomcrm.security.service import SYSTEM

BMW = "BMW AG"


@dataclass(frozen=True)
class AnalyticsSummary:
    response_target_minutes: int
    handling_target_minutes: int
    contacts: list[dict[str, Any]]  # per channel, then the total: the API's rows
    customer_id: str | None
    months: list[dict[str, Any]]  # BMW's months, then its total: the API's rows
    currency: str
    segments: list[dict[str, Any]] = field(default_factory=list)  # the API's rows
    campaigns: list[dict[str, Any]] = field(default_factory=list)  # the API's rows
    churn_model: str = ""  # why the rule still gives the churn score, or the model
    bmw_segment: str | None = None
    offers: list[dict[str, Any]] = field(default_factory=list)  # BMW's, best first


def tell_analytics() -> AnalyticsSummary:
    """Derive the store from the story's records, then read the contacts per channel
    (all time) and BMW's profitability per month."""
    with session_scope() as session:
        store.rebuild(session)
    with session_scope(readonly=True) as session:
        contacts = contact_statistics(session, by="channel")
        bmw = session.scalar(select(CustomerRow.id).where(CustomerRow.name == BMW).limit(1))
        profit = customer_profitability(session, by="month", customer_id=bmw or "")
    months = sorted((g.as_row() for g in profit.groups), key=lambda r: str(r["key"]))
    with session_scope(readonly=True) as session:
        segments = [s.as_row() for s in segment_overview(session).segments]
        campaigns = [c.as_row() for c in campaign_success(session)]
        model = churn.current_model(session)
        why_not = churn.usable(model)
        profile = customer_profile(session, SYSTEM, bmw, now=utcnow()) if bmw else None
    return AnalyticsSummary(
        segments=segments,
        campaigns=campaigns,
        churn_model=(
            f"churn model v{model.version} in use"
            if model and why_not is None
            else f"the churn rule gives the scores: {why_not}"
        ),
        bmw_segment=profile.segment if profile else None,
        offers=[offer_summary(item) for item in profile.offers] if profile else [],
        response_target_minutes=contacts.response_target_minutes,
        handling_target_minutes=contacts.handling_target_minutes,
        contacts=[g.as_row() for g in contacts.groups] + [contacts.total.as_row()],
        customer_id=bmw,
        months=[*months, profit.total.as_row()],
        currency=profit.currency,
    )


def _share(value: str | None) -> str:
    return "-" if value is None else f"{value} ({float(value):.1%})"


def contact_line(row: dict[str, Any]) -> str:
    """One channel's figures in a line (the API's values as they are)."""
    return (
        f"  {row['key']}: {row['contacts']} contacts ({row['inbound']} in, "
        f"{row['outbound']} out); mean response {row['meanResponseMinutes'] or '-'} min, "
        f"within target {_share(row['responseWithinTarget'])}; mean handling "
        f"{row['meanHandlingMinutes'] or '-'} min, within target "
        f"{_share(row['handlingWithinTarget'])}; first-contact resolution "
        f"{_share(row['firstContactResolution'])} "
        f"[{row['firstContactResolved']}/{row['inboundEnded']}]"
    )


def profit_line(row: dict[str, Any], currency: str) -> str:
    """One month's profitability in a line (the API's values as they are)."""
    return (
        f"  {row['key']}: revenue {row['revenue']} {currency} - cost to serve "
        f"{row['costToServe']} {currency} (SLA credits {row['slaCredits']}, installation "
        f"{row['installationCost']}, routers {row['routerCost']}, tickets "
        f"{row['ticketCost']}, dunning {row['dunningCost']}) = profit {row['profit']} {currency}"
    )


def print_analytics(console: Console, summary: AnalyticsSummary) -> None:
    console.print(
        "Analytics (seed 5.3), 3.2.3 contacts by channel, all time (targets: answered "
        f"within {summary.response_target_minutes} min, handled within "
        f"{summary.handling_target_minutes} min):",
        soft_wrap=True,
        highlight=False,
    )
    for row in summary.contacts:
        console.print(contact_line(row), soft_wrap=True, highlight=False)
    if summary.customer_id is None:
        console.print("Analytics: no customer named BMW AG, no profitability to show.")
        return
    console.print(
        f"Analytics (seed 5.3), {BMW}'s profitability per month ({summary.currency}, net):",
        soft_wrap=True,
        highlight=False,
    )
    for row in summary.months:
        console.print(profit_line(row, summary.currency), soft_wrap=True, highlight=False)
    console.print(
        "The same figures: GET /etomcrm/v1/analytics/contactStatistics and "
        "customerProfitability, and the analyst workspace at /ui/analytics.",
        soft_wrap=True,
        highlight=False,
    )
    for row in summary.segments:
        console.print(
            f"  segment {row['segment']}: {row['customers']} customer(s), revenue "
            f"{row['revenuePerMonth']} {summary.currency}/month, traffic "
            f"{row['usagePerMonth']}/month, contacts {row['contactsPerMonth']}/month",
            soft_wrap=True,
            highlight=False,
        )
    for row in summary.campaigns:
        console.print(
            f"  campaign {row['name']}: {row['sent']} sent, {row['responses']} "
            f"response(s), {row['won']} won, billed revenue {row['billedRevenue']} "
            f"{summary.currency}; control group: {row['controlGroup']}",
            soft_wrap=True,
            highlight=False,
        )
    console.print(f"  churn: {summary.churn_model}", soft_wrap=True, highlight=False)
    if summary.bmw_segment is not None:
        console.print(
            f"  {BMW} (3.9.4): segment {summary.bmw_segment}; "
            + (
                "next best offer "
                + "; ".join(
                    f"{o['offer']} at {o['site']}: expected value {o['expectedValue']}"
                    for o in summary.offers[:2]
                )
                if summary.offers
                else "no offer: nothing its sites and tickets call for"
            ),
            soft_wrap=True,
            highlight=False,
        )
