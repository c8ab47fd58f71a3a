"""Deliberately changed interpreters, registered under the real workflow name, to prove replay catches them.

Each is what a careless change to ``workflows/engine/interpreter.py`` would look like; a worker running it would
get stuck on the recorded runs, and ``flowtide replay`` must say so in plain words. (Temporal wants the
``@workflow.run`` method on each class itself, hence the repeated one-line ``run``.)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

from flowtide.workflows.engine._state import Frame
from flowtide.workflows.engine.interpreter import FlowWorkflow


@workflow.defn(name="FlowWorkflow")
class SettleTimerInterpreter(FlowWorkflow):
    """Waits on a short timer before every outside-world step (a new pause, not guarded by patched())."""

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        return await super().run(params)

    async def _activity(self, step: dict[str, Any], frame: Frame, inp: dict[str, Any], cap: int | None
                        ) -> dict[str, Any]:
        await workflow.sleep(timedelta(milliseconds=10))
        return await super()._activity(step, frame, inp, cap)


@workflow.defn(name="FlowWorkflow")
class RenamedActivityInterpreter(FlowWorkflow):
    """Gives activities a new id scheme (``<flowId>.<stepId>``), as a refactoring might."""

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        return await super().run(params)

    async def _activity(self, step: dict[str, Any], frame: Frame, inp: dict[str, Any], cap: int | None
                        ) -> dict[str, Any]:
        return await super()._activity(dict(step, id=f"{self.state.flow.get('id')}.{step['id']}"), frame, inp, cap)


@workflow.defn(name="FlowWorkflow")
class SkipsLaterStepsInterpreter(FlowWorkflow):
    """Runs only the first step of every block (an early-exit bug): fewer commands than recorded."""

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        return await super().run(params)

    async def run_block(self, steps: list[dict[str, Any]], frame: Frame, *, start: list[str] | None = None,
                        at: Any = None) -> None:
        await super().run_block(steps[:1], frame, start=start, at=at)
