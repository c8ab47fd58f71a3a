"""Cancel a run so that it ends: ask it to cancel, and terminate it when its workflow tasks keep failing.

A cancel request is work for the run's next workflow task. When every workflow task fails (a bad deploy's
nondeterminism, a task that trips the SDK's deadlock detector, a worker bug), Temporal retries the task
forever and the cancel is never processed: the run would stay Running. So after a grace period a run that
is still open with a failing workflow task (its pending task's attempt is past 1) is terminated, with the
reason ``TERMINATE_REASON``. A run that is still open but whose tasks succeed (it is cancelling its activities)
is left to finish its cancellation.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

CANCEL_GRACE_S = 10.0  # how long a cancelled run may take before a failing one is terminated
POLL_S = 0.5
TERMINATE_REASON = "cancel requested; workflow task failing"
_STATUS = {WorkflowExecutionStatus.CANCELED: "cancelled", WorkflowExecutionStatus.TERMINATED: "terminated",
           WorkflowExecutionStatus.COMPLETED: "completed", WorkflowExecutionStatus.FAILED: "failed",
           WorkflowExecutionStatus.TIMED_OUT: "timed_out", WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued"}


async def cancel_run(handle: WorkflowHandle[Any, Any], *, grace_s: float = CANCEL_GRACE_S) -> str:
    """Ask the run to cancel; return how it ended, or ``cancel_requested`` when it is still cancelling.

    Args:
        handle: the run.
        grace_s: how long to wait for the run to end before terminating it when its workflow task fails.

    Returns:
        ``cancelled`` (or the status it ended with meanwhile), ``terminated`` (its workflow task was failing)
        or ``cancel_requested`` (still open and healthy after ``grace_s``: it is cancelling its steps).
    """
    await handle.cancel()
    return await settle(handle, grace_s=grace_s)


async def settle(handle: WorkflowHandle[Any, Any], *, grace_s: float = CANCEL_GRACE_S) -> str:
    """After a cancel request: wait up to ``grace_s`` for the run to end; terminate it if its task fails."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    while True:
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return _STATUS.get(desc.status, "ended") if desc.status is not None else "ended"
        if loop.time() >= deadline:
            break
        await asyncio.sleep(POLL_S)
    if desc.raw_description.pending_workflow_task.attempt > 1:
        await handle.terminate(reason=TERMINATE_REASON)
        return "terminated"
    return "cancel_requested"
