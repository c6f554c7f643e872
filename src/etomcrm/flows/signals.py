"""How the service layer wakes a flow that waits durably for a person's decision."""

from __future__ import annotations


def quote_decided(quote_id: str, state: str) -> None:
    """A quote was accepted, rejected or cancelled: wake the pre-sale flow waiting on it.

    Call it after the change has committed (``db.after_commit``).
    """
    from etomcrm.flows import engine

    engine.notify_quote_decision(quote_id, state)
