"""Tables of retention and loyalty: customer risk assessments (TMF696)."""

from __future__ import annotations

from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base


class PartyRoleRiskAssessmentRow(TmfResourceRow, Base):
    """3.9.3's result for one customer at one moment (TMF696 partyRoleRiskAssessment)."""

    __tablename__ = "party_role_risk_assessment"
