"""Handlers of domain events that start or signal a flow (wired in ``bootstrap``).

Each runs after the change it reports has committed, and never raises: the flow it
signals also looks again by itself (its own timer), so a lost signal delays, never
loses, work.
"""

from __future__ import annotations

import logging

from etomcrm.flows import engine
from etomcrm.flows.fulfillment import ACCEPTANCE_TOPIC, post_ordering_workflow_id
from etomcrm.order_handling.events import OrderAccepted

log = logging.getLogger(__name__)


def wake_post_ordering_on_acceptance(event: OrderAccepted) -> None:
    """The customer accepted its order: the post-ordering flow waiting for that goes on
    (to the satisfaction survey) now rather than at the end of the acceptance period."""
    try:
        engine.send(post_ordering_workflow_id(event.order_id), "accepted", ACCEPTANCE_TOPIC)
    except Exception:
        log.exception("could not wake the post-ordering flow of order %s", event.order_id)
