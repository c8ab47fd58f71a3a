"""What the loop helpers may use of the workflow that runs them: a narrow interface, not the whole object.

``_loops``, ``_iterate``, ``_batches`` and ``_loop_reuse`` take a ``LoopHost``. ``FlowWorkflow`` (and its
loop-part subclass) satisfies it; mypy checks that the helpers reach for nothing else, so the interpreter
can change behind it without the loop code knowing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from flowtide.workflows.contracts import WireStep
    from flowtide.workflows.engine._relay import Relay
    from flowtide.workflows.engine._state import Frame, RunState


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
