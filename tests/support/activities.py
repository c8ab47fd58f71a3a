"""Run one step's activity in-process (``ActivityEnvironment``) with the task the interpreter would send."""

from __future__ import annotations

import asyncio
from typing import Any

from flowtide.workflows.contracts import activity_task
from flowtide.workflows.kinds import KINDS
from flowtide.workflows.retry import effective


def step_task(kind: str, inp: dict[str, Any], *, step_id: str = "step", title: str | None = None,
              timeout: float = 10, retry: dict[str, Any] | None = None,
              limits: dict[str, Any] | None = None) -> dict[str, Any]:
    """The task of step ``step_id`` of kind ``kind`` in run ``run-1`` of workflow ``wf-1``; ``retry`` is the
    step's ``retryPolicy`` (the kind's family defaults apply to the rest)."""
    return activity_task(kind, inp, step_id=step_id, title=title, timeout=timeout,
                         retry=effective(KINDS[kind].family, retry).to_dict(), run_id="run-1", workflow_id="wf-1",
                         limits=limits)


class LoopTicks:
    """Counts how often the event loop ran a ``period``-second sleep while the block ran: a step that
    blocked the worker's loop leaves it near zero. ``async with LoopTicks(0.05) as t: ...; t.ticks``."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            self.ticks += 1

    async def __aenter__(self) -> LoopTicks:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
