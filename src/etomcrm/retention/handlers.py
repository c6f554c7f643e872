"""What retention (3.9) does when another area states a fact, each in its own
transaction."""

from __future__ import annotations

from datetime import date, timedelta

from etomcrm.billing.events import UsageIngested
from etomcrm.db import session_scope
from etomcrm.problem_handling.events import TicketEnded
from etomcrm.retention.events import ContractEndApproaching, CustomerRiskRaised
from etomcrm.retention.moments import (
    offer_after_resolved_ticket,
    offer_on_usage,
)
from etomcrm.retention.moments import (
    offer_before_contract_end as offer_before_end,
)
from etomcrm.retention.satisfaction import send_survey
from etomcrm.retention.tasks import open_retention_task


def survey_closed_ticket(event: TicketEnded) -> None:
    """3.9.5: a customer whose ticket closed is asked how the repair went (once: the
    survey's key is the ticket's)."""
    if event.status != "closed" or event.customer_id is None:
        return
    with session_scope() as session:
        send_survey(
            session,
            customer_id=event.customer_id,
            about={"id": event.ticket_id, "@referredType": "TroubleTicket"},
            key=f"ticket/{event.ticket_id}/survey",
        )


def task_account_manager(event: CustomerRiskRaised) -> None:
    """3.9.3: a churn risk became high; the account manager gets a retention task with
    the next best offer."""
    with session_scope() as session:
        open_retention_task(session, event.customer_id, event.assessment_id)


def offer_after_resolved_problem(event: TicketEnded) -> None:
    """3.9.4: a ticket closed after its resolution; the account manager gets the next
    best offer as a task (once per ticket, never twice open for one offer)."""
    if event.status != "closed" or event.customer_id is None:
        return
    with session_scope() as session:
        offer_after_resolved_ticket(session, event.customer_id, event.ticket_id)


def offer_on_usage_trend(event: UsageIngested) -> None:
    """3.9.4: usage of a month's first day came in, so the month before is complete;
    a site near its included volume is offered the next bandwidth."""
    for customer_id, day in event.customer_days:
        if not day.endswith("-01"):
            continue
        first = date.fromisoformat(day)
        previous = first - timedelta(days=1)
        with session_scope() as session:
            offer_on_usage(session, customer_id, f"{previous.year:04d}-{previous.month:02d}")


def offer_before_contract_end(event: ContractEndApproaching) -> None:
    """3.9.4: a contract ends soon; the account manager gets the next best offer."""
    with session_scope() as session:
        offer_before_end(session, event.customer_id, event.product_id, event.ends_on, event.days)
