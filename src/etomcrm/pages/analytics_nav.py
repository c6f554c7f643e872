"""The analyst workspace's dashboards (seed 5.3, "Where people see it") and who may
open them: the ONE list the workspace's index page, its navigation and the staff bar
read. A new dashboard adds its line here (its title and blurb as msgids at the end of
the German catalogue); nothing else lists them."""

from __future__ import annotations

from dataclasses import dataclass

from etomcrm.security.service import Role

WORKSPACE = "/ui/analytics"
# The analytical dashboards are the analyst's and marketing's (and the administrator's);
# other staff read the same figures through the API, as its READERS say.
ANALYSTS: frozenset[str] = frozenset({Role.ADMIN, Role.ANALYST, Role.MARKETING})


@dataclass(frozen=True)
class Dashboard:
    """One dashboard of the workspace: its path, its title and what it answers (both
    English msgids, translated where shown)."""

    key: str
    path: str
    title: str
    blurb: str


DASHBOARDS: tuple[Dashboard, ...] = (
    Dashboard(
        "contacts",
        WORKSPACE + "/contacts",
        "Customer contacts",
        "Volumes per channel, reason and customer; response and handling times against "
        "the targets; first-contact resolution (3.2.3).",
    ),
    Dashboard(
        "profitability",
        WORKSPACE + "/profitability",
        "Customer profitability",
        "Billed revenue minus the cost to serve, per customer, segment and month.",
    ),
    Dashboard(
        "churn",
        WORKSPACE + "/churn",
        "Churn risk",
        "Each customer's churn score with its reasons, and the model's evaluation.",
    ),
    Dashboard(
        "campaigns",
        WORKSPACE + "/campaigns",
        "Campaign success",
        "Responses, leads, won orders and billed revenue per campaign, with uplift.",
    ),
    Dashboard(
        "segments",
        WORKSPACE + "/segments",
        "Segments, trends and forecast",
        "Computed segments, their trends and the forecast for the next months (3.9.2).",
    ),
    Dashboard(
        "offers",
        WORKSPACE + "/offers",
        "Next best offers",
        "Customer profiles and the offers ranked by expected value (3.9.4).",
    ),
    Dashboard(
        "history",
        WORKSPACE + "/history",
        "Import of history",
        "A provider's history (customers, contracts, outcomes) from CSV, all rows or none.",
    ),
)


def may_analyse(role: str) -> bool:
    """Whether the role opens the analytical dashboards (the staff bar's link too)."""
    return role in ANALYSTS
