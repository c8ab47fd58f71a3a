"""How long the run's history is, counting what the current workflow task has not written yet.

``workflow.info().get_current_history_length()`` (and ``is_continue_as_new_suggested()``) change only when a
workflow task starts. Local activities complete inside one workflow task and each leaves a marker event that
is written only when the task completes, so a run of many short local steps would see the same length for a
while and then jump past the history guard, the continue-as-new threshold, or Temporal's own limit, in one
step. The engine counts those markers itself, and ends the task (a 1 ms timer) after ``LOCAL_STEPS_PER_TASK``
of them so that Temporal's figures catch up. Deterministic: the markers and their order replay as recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

if TYPE_CHECKING:
    from flowtide.workflows.engine._protocols import RunHost

LOCAL_STEPS_PER_TASK = 100  # local-activity markers one workflow task may hold before the run yields


def note_local_step(wf: RunHost) -> None:
    """A local activity (a step attempt series) completed or failed in this workflow task: one marker more."""
    length = workflow.info().get_current_history_length()
    seen, since = wf.local_marks
    wf.local_marks = (length, since + 1 if seen == length else 1)


def unwritten(wf: RunHost) -> int:
    """Marker events of this workflow task that the reported history length does not count yet (0 for a run
    recorded before they were counted: its continue-as-new points and yields must replay as they were)."""
    seen, since = wf.local_marks
    if not since or seen != workflow.info().get_current_history_length():
        return 0
    return since if workflow.patched("count-local-markers") else 0


def history_events(wf: RunHost) -> int:
    """The history's length as Temporal will see it once this workflow task completes."""
    return workflow.info().get_current_history_length() + unwritten(wf)
