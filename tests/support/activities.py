"""Run one step's activity in-process (``ActivityEnvironment``) with the task the interpreter would send."""

from __future__ import annotations

from typing import Any

from workflows.kinds import KINDS, activity_task
from workflows.retry import effective


def step_task(kind: str, inp: dict[str, Any], *, step_id: str = "step", title: str | None = None,
              timeout: float = 10, retry: dict[str, Any] | None = None,
              limits: dict[str, Any] | None = None) -> dict[str, Any]:
    """The task of step ``step_id`` of kind ``kind`` in run ``run-1`` of workflow ``wf-1``; ``retry`` is the
    step's ``retryPolicy`` (the kind's family defaults apply to the rest)."""
    return activity_task(kind, inp, step_id=step_id, title=title, timeout=timeout,
                         retry=effective(KINDS[kind].family, retry).to_dict(), run_id="run-1", workflow_id="wf-1",
                         limits=limits)
