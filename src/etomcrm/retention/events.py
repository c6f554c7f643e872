"""What retention states for the others to act on (domain events)."""

from __future__ import annotations

from dataclasses import dataclass

from etomcrm.core.bus import DomainEvent


@dataclass(frozen=True)
class CustomerRiskRaised(DomainEvent):
    """A customer's churn risk became high (its previous assessment was not high): once
    per rise, not once per assessment."""

    customer_id: str
    assessment_id: str


@dataclass(frozen=True)
class ContractEndApproaching(DomainEvent):
    """An active product's contract ends in ``days`` days (on ``ends_on``,
    ``YYYY-MM-DD``): the moment to offer before the customer looks elsewhere."""

    customer_id: str
    product_id: str
    ends_on: str
    days: int
