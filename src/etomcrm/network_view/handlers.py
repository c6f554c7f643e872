"""What the customer network view does when another area states a fact, each in its
own transaction."""

from __future__ import annotations

from etomcrm.db import session_scope
from etomcrm.network_view.topology import build_topology
from etomcrm.order_handling.events import ProductsActivated


def links_for_activated_products(event: ProductsActivated) -> None:
    """3.5.5: the sites an order brought into service get their access links, so the
    network's alarms and measurements about them reach the customer (correlation and
    the SLA check know a site only by its link). Links already there stay as they are."""
    with session_scope() as session:
        build_topology(session, event.customer_id)
