"""Tables of TMF632 Party, TMF629 Customer, TMF674 Geographic Site, TMF683 Party Interaction."""

from __future__ import annotations

from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base


class IndividualRow(TmfResourceRow, Base):
    __tablename__ = "individual"


class OrganizationRow(TmfResourceRow, Base):
    __tablename__ = "organization"


class CustomerRow(TmfResourceRow, Base):
    __tablename__ = "customer"


class GeographicSiteRow(TmfResourceRow, Base):
    __tablename__ = "geographic_site"


class PartyInteractionRow(TmfResourceRow, Base):
    __tablename__ = "party_interaction"
