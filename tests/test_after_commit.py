"""after_commit: what must wait for a durable change (waking a flow) runs once the
outermost transaction commits; not when a savepoint is released, never on rollback."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from etomcrm.core.models import AuditRecord
from etomcrm.db import after_commit, session_scope


def _audit(actor: str) -> AuditRecord:
    return AuditRecord(
        actor=actor,
        actor_role="admin",
        action="create",
        resource_type="Test",
        resource_id="1",
        changes={},
    )


def test_an_action_waits_for_the_outer_commit_not_a_savepoint(db_url: str) -> None:
    # given an action registered in a unit of work that then releases a savepoint
    seen: list[list[str]] = []

    def action() -> None:
        with session_scope() as reader:
            seen.append(list(reader.scalars(select(AuditRecord.actor))))

    with session_scope() as session:
        session.add(_audit("first"))
        after_commit(session, action)
        with session.begin_nested():
            session.add(_audit("second"))
        # then the savepoint's release ran nothing
        assert seen == []
    # when the unit of work commits: then the action ran once and saw both rows
    assert [sorted(rows) for rows in seen] == [["first", "second"]]


def test_an_action_never_runs_on_rollback(db_url: str) -> None:
    ran: list[bool] = []
    with pytest.raises(RuntimeError), session_scope() as session:
        after_commit(session, lambda: ran.append(True))
        session.add(_audit("lost"))
        raise RuntimeError("the unit of work fails")
    with session_scope() as session:
        session.add(_audit("next"))
    assert ran == []
