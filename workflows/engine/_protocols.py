"""What the loop and step helpers may use of the workflow that runs them: narrow interfaces, not the whole object.

``_loops``, ``_iterate``, ``_batches`` and ``_loop_reuse`` take a ``LoopHost``. ``FlowWorkflow`` (and its
loop-part subclass) satisfies it; mypy checks that the helpers reach for nothing else, so the interpreter
can change behind it without the loop code knowing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from flowtide.workflows.contracts import ErrorRecord, StepRow, WireStep
    from flowtide.workflows.engine._signals import Relay
    from flowtide.workflows.engine._state import Frame, RunState
    from flowtide.workflows.errors import StepFailure
    from flowtide.workflows.language.work import Work


class LoopHost(Protocol):
    """The run a loop belongs to: its state and scope, child starts, and how to run a block of steps."""

    info: dict[str, Any]  # runId, workflowId, startedAt, attempt, project
    settings: dict[str, Any]  # the flow's settings (wire form)
    vars: dict[str, Any]  # the run's variables (set-variable writes them; loops carry them between batches)
    state: RunState  # everything the run record is built from
    relay: Relay  # starts child runs (loop batches) and forwards signals to them
    reuse: dict[str, Any]  # a rerun's outputs to take over (loop items planned by ``_loop_reuse``)

    async def run_block(self, steps: list[WireStep], frame: Frame, *, start: list[str] | None = None) -> None:
        """Run a block of steps (a loop body for one item) in ``frame``."""


class RunHost(LoopHost, Protocol):
    """What the step helpers (``_steps``, ``_control_kinds``, ``_remote``, ``_chain``, ``_weigh``) use of the run:
    the loop host's view plus the work meter, the scope's sizes, the restart count and three methods."""

    work: Work  # the run's work meter (templates, conditions)
    scope_sizes: dict[str, tuple[Any, int]]  # the scope's variables and kept outputs with their JSON sizes
    scope_bytes: int  # their sum
    task_steps: tuple[datetime | None, int]  # (time of the current workflow task, steps run in it)
    local_steps: int  # local steps since the run last ended a workflow task on purpose (engine._events)
    workflow_retries: int  # restarts by onError retry-workflow

    def strict(self) -> bool:
        """Whether a template reading a missing path is an error (``settings.strictTemplates``)."""

    def finish(self, step: WireStep, frame: Frame, rec: StepRow, result: dict[str, Any],
               failure: StepFailure | None, attempts: int, started: Any) -> ErrorRecord | None:
        """Record a step's result or failure in its row, ``$meta`` and the scope; return its error record."""

    async def _activity(self, step: WireStep, frame: Frame, inp: dict[str, Any], cap: int | None
                        ) -> dict[str, Any]:
        """Run the step's activity (a method, so a changed interpreter in tests can override it)."""
