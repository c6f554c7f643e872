"""What the simulated network knows a site by, for its seeded draws.

The CRM's ids are new on every run (time-ordered random UUIDs), so a draw keyed by a
site's id gives another coverage, point of presence or outcome on every run even under
one ``ETOMCRM_NETWORK_SEED``. The network knows a site by what the customer said about
it: its code, its name and its address. Under one seed the same site gets the same
answers on every run, in every process, whatever else was asked before.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import GeographicSiteRow

# What a site is known by, in this order: the customer's code and name, then its address.
_SITE_ATTRIBUTES = ("code", "name")
_PLACE_ATTRIBUTES = (
    "street1",
    "street2",
    "streetNr",
    "streetName",
    "postcode",
    "city",
    "country",
)


def _first_place(site: JsonDict) -> JsonDict:
    for place in site.get("place", []) or []:
        if isinstance(place, dict):
            return place
    return {}


def site_identity(site: JsonDict) -> str:
    """The site as the network knows it: code, name and address. A site described by
    nothing but its id and a postcode is known by its id (nothing else tells it apart)."""
    place = _first_place(site)
    described = [str(site.get(a) or "") for a in _SITE_ATTRIBUTES]
    described += [str(place.get(a) or "") for a in _PLACE_ATTRIBUTES]
    if (
        any(site.get(a) for a in _SITE_ATTRIBUTES)
        or place.get("street1")
        or place.get("streetName")
    ):
        return "|".join(described)
    return str(site.get("id", ""))


def site_identity_of(session: Session, site_id: str) -> str:
    """:func:`site_identity` of a stored site; an unknown site is known by its id."""
    row = session.get(GeographicSiteRow, site_id)
    return site_identity(row.body) if row is not None else site_id
