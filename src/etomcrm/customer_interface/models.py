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


class CommunicationMessageRow(TmfResourceRow, Base):
    """TMF681: a message to a customer's contacts; its id is derived from the sender's
    key, so a retried send finds the message it already wrote."""

    __tablename__ = "communication_message"
