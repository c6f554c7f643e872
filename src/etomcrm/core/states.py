"""State machines of TMF resources: one rule for refusing a move, with its reason."""

from __future__ import annotations

from collections.abc import Mapping

from etomcrm.core.errors import IllegalTransition

StateMachine = Mapping[str, frozenset[str]]


def check_transition(what: str, machine: StateMachine, before: str, after: str) -> None:
    """Refuse a move the machine does not allow, naming the moves it does (409)."""
    allowed = machine.get(before, frozenset())
    if after not in allowed:
        names = ", ".join(sorted(allowed)) or "none (final state)"
        raise IllegalTransition(
            f"{what} cannot change from {before!r} to {after!r}; allowed from {before!r}: {names}"
        )
