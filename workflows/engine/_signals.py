"""Signals and waiting state across a run's child runs (sub-flows, loop coordinators, loop batches).

Users signal the run they started; the step waiting for it may be in a child run. ``Relay``:

- delivers a signal to this run when one of its own steps waits for that name, else forwards it to the
  active children (each forwards it on the same way), else keeps it for a later wait here; a signal that no
  child accepts (each closed before this run saw it close) is kept here too, never a failure of the run;
- tells the parent run when this run starts or stops waiting (``CHILD_STATUS``), so the parent (and its
  parent) shows ``paused`` in ``runs list --status paused`` while any descendant waits for a signal.

Deterministic: only Temporal commands (child starts, external signals) and in-memory state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from flowtide.workflows.contracts import RESERVED_SIGNAL_PREFIX

# internal signal: {"workflowId", "paused"}; never a user signal (the service refuses the prefix)
CHILD_STATUS = RESERVED_SIGNAL_PREFIX + "flowtide.childStatus"


class Relay:
    """The signal queues of one run and its links to its parent and active children."""

    def __init__(self, publish: Callable[[bool], None]) -> None:
        self.queues: dict[str, deque[Any]] = {}
        self.awaited: dict[str, int] = {}  # names this run's own steps wait for now (with counts)
        self.children: dict[str, workflow.ChildWorkflowHandle[Any, Any]] = {}
        self.paused_children: set[str] = set()
        self._publish = publish  # set this run's FlowStatus to paused (True) or back to running (False)
        self._reported = False

    async def deliver(self, name: str, data: Any) -> None:
        """A signal arrived: for a step here, for the children, or kept here (see the module docstring)."""
        if name == CHILD_STATUS:
            await self._child_status(data)
            return
        if not self.awaited.get(name) and self.children:
            accepted = False
            for handle in list(self.children.values()):
                accepted = await self._forward(handle, name, data) or accepted
            if accepted:
                return
        self.queues.setdefault(name, deque()).append(data)

    @staticmethod
    async def _forward(handle: workflow.ChildWorkflowHandle[Any, Any], name: str, data: Any) -> bool:
        """Signal one child; False when it refused (it closed before this run saw it close: Temporal fails the
        external signal with ``ExternalWorkflowExecutionNotFound``). Before the patch, the refusal failed the run."""
        try:
            await handle.signal(name, data)
        except ApplicationError as err:  # how the SDK resolves a failed SignalExternalWorkflowExecution command
            if not workflow.patched("relay-to-closed-child"):
                raise
            workflow.logger.info("signal %r kept here: child %s refused it (%s)", name[:100], handle.id, err.type)
            return False
        return True

    def has(self, name: str) -> bool:
        return bool(self.queues.get(name))

    def take(self, name: str) -> Any:
        return self.queues[name].popleft()

    async def wait_starts(self, name: str) -> None:
        self.awaited[name] = self.awaited.get(name, 0) + 1
        await self.report()

    async def wait_ends(self, name: str) -> None:
        self.awaited[name] -= 1
        if not self.awaited[name]:
            del self.awaited[name]
        await self.report()

    async def run_child(self, workflow_type: str, arg: Any, **options: Any) -> Any:
        """``execute_child_workflow`` (the same commands) with the child reachable for signals meanwhile."""
        handle = await workflow.start_child_workflow(workflow_type, arg, **options)
        self.children[handle.id] = handle
        try:
            result = await handle
        finally:
            self.children.pop(handle.id, None)
        if handle.id in self.paused_children:  # it ended while waiting (a timeout): this run waits no more
            self.paused_children.discard(handle.id)
            await self.report()
        return result

    async def _child_status(self, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("workflowId"), str):
            return  # not from a child of ours: ignore rather than fail the run
        if data.get("paused") and data["workflowId"] in self.children:
            self.paused_children.add(data["workflowId"])
        else:
            self.paused_children.discard(data["workflowId"])
        await self.report()

    async def report(self) -> None:
        """Publish whether this run or a descendant waits, and tell the parent when that changes."""
        paused = bool(self.awaited) or bool(self.paused_children)
        if paused == self._reported:
            return
        self._reported = paused
        self._publish(paused)
        parent = workflow.info().parent
        if parent is not None and workflow.patched("relay-child-status"):
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(
                CHILD_STATUS, {"workflowId": workflow.info().workflow_id, "paused": paused})
