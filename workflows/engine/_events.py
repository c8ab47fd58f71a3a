"""How long the run's history is, counting the local-activity markers Temporal's figure may not show yet.

``workflow.info().get_current_history_length()`` (and ``is_continue_as_new_suggested()``) change only when a
workflow task starts. Local activities complete inside one workflow task and each leaves a marker event that
is written only when the task completes, so a run of many short local steps would see the same length for a
while and then jump past the history guard, the continue-as-new threshold, or Temporal's own limit in one
step. The engine counts the local steps since it last ended a workflow task on purpose, adds them to the
length (an upper bound of the markers not written yet), and ends the task (a 1 ms timer) after
``LOCAL_STEPS_PER_TASK`` of them so that Temporal's figures catch up.

Deterministic: the count depends only on which steps ran locally, in order, never on when workflow tasks
happened to end. Runs recorded before (patch ``count-local-markers``, asked where a step first runs locally)
count nothing, so their yields and continue-as-new points replay as they were.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow

if TYPE_CHECKING:
    from flowtide.workflows.engine._protocols import RunHost

LOCAL_STEPS_PER_TASK = 100  # local steps after which the run ends its workflow task (a 1 ms timer)


def local_step_starts(wf: RunHost) -> None:
    """A step is about to run as a local activity: from the run's first one on, local steps are counted."""
    if wf.local_steps < 0:
        wf.local_steps = 0 if workflow.patched("count-local-markers") else -2  # -2: recorded before: never


def local_step_ended(wf: RunHost) -> None:
    """A local activity completed or failed: one marker more that the history length may not count yet."""
    if wf.local_steps >= 0:
        wf.local_steps += 1


def unwritten(wf: RunHost) -> int:
    """Local steps since the run last ended a workflow task on purpose (0 when not counted)."""
    return max(0, wf.local_steps)


async def end_task(wf: RunHost, why: str, wait: timedelta = timedelta(milliseconds=1)) -> None:
    """End the run's workflow task on purpose (a timer of ``wait``, summarised ``why``): the next task starts
    with a fresh work meter, and Temporal's history length counts the local markers again."""
    await workflow.sleep(wait, summary=why)
    wf.work.new_task()
    if wf.local_steps > 0:
        wf.local_steps = 0


def history_events(wf: RunHost) -> int:
    """The history's length, counting the markers of local steps it may not show yet (an upper bound)."""
    return workflow.info().get_current_history_length() + unwritten(wf)
