"""TMF701 process flows and task flows: what each case's flow did, step by step."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from etomcrm.core.models import TmfResourceRow
from etomcrm.db import Base


class ProcessFlowRow(TmfResourceRow, Base):
    """One run of a flow for one case; its id is the DBOS workflow id."""

    __tablename__ = "process_flow"

    flow: Mapped[str] = mapped_column(String(50), index=True)
    # The quote, order or ticket the flow is about, for `etomcrm trace` and filters.
    case_id: Mapped[str] = mapped_column(String(64), index=True)


class TaskFlowRow(TmfResourceRow, Base):
    """One step of a process flow, written in the same transaction as the step's effect.

    Its id is derived from (workflow, step), so a step that runs again after a crash
    finds its own record and does not repeat its effect.
    """

    __tablename__ = "task_flow"

    process_flow_id: Mapped[str] = mapped_column(String(64), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    seed_number: Mapped[str] = mapped_column(String(10))
