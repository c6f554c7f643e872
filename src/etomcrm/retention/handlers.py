"""What retention (3.9) does when another area states a fact, each in its own
transaction."""

from __future__ import annotations

from etomcrm.db import session_scope
from etomcrm.problem_handling.events import TicketEnded
from etomcrm.retention.events import CustomerRiskRaised
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
