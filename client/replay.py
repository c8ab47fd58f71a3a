"""Replay recorded histories against the current interpreter with Temporal's ``Replayer``.

Two uses:

- ``replay_history``: the determinism check of ``flowtide replay`` and of the replay corpus. A history the
  current code cannot reproduce is reported in plain words (which step, what the record says happened,
  what the code does instead) next to Temporal's own message.
- ``record_by_replay``: the run record of a run that no worker serves. Replaying the history runs the
  interpreter's own code over the recorded events (no activity executes: their results come from the
  history), so the rebuilt record is exactly what the ``record`` query would have answered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Replayer,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

_RUNTIME: Runtime | None = None
# run id -> the replayed workflow instance (filled by the capture interceptor, read right after the replay)
_CAPTURED: dict[str, Any] = {}

_EVENT_WORDS = {
    "ActivityTaskScheduled": "scheduled a step activity",
    "TimerStarted": "started a timer (a delay, a signal timeout or a retry wait)",
    "StartChildWorkflowExecutionInitiated": "started a child run (a sub-flow or a loop part)",
    "UpsertWorkflowSearchAttributes": "updated its search attributes (a status change)",
    "WorkflowPropertiesModified": "updated its memo",
    "MarkerRecorded": "ran a local activity",
    "WorkflowExecutionCompleted": "completed",
    "WorkflowExecutionFailed": "failed",
    "SignalExternalWorkflowExecutionInitiated": "signalled another run",
}
_MACHINE_WORDS = {
    "Timer": "starts a timer",
    "Activity": "schedules a step activity",
    "ChildWorkflow": "starts a child run",
    "UpsertSearchAttributes": "updates the search attributes (a status change)",
    "UpsertWorkflowSearchAttributes": "updates the search attributes (a status change)",
    "CompleteWorkflow": "completes the run",
    "FailWorkflow": "fails the run",
    "LocalActivity": "runs a local activity",
    "ModifyWorkflowProperties": "updates the memo",
}


@dataclass
class ReplayReport:
    """The outcome of replaying one history."""

    workflow_id: str
    run_id: str
    events: int
    activities: int
    ok: bool
    explanation: str | None = None  # plain words, when not ok
    raw: str | None = None  # Temporal's message, when not ok


def quiet_runtime() -> Runtime:
    """A Temporal runtime that keeps the SDK core's replay warnings off the user's terminal."""
    global _RUNTIME
    if _RUNTIME is None:
        _RUNTIME = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter("ERROR", "ERROR"))))
    return _RUNTIME


def default_workflows() -> list[type]:
    """The workflow types a Flowtide worker registers."""
    from flowtide.workflows.engine import FlowLoopWorkflow, FlowWorkflow
    return [FlowWorkflow, FlowLoopWorkflow]


def build_replayer(workflows: Sequence[type] | None = None, interceptors: Sequence[Interceptor] = (), *,
                   keep_state: bool = False) -> Replayer:
    """A ``Replayer`` with the worker's sandbox passthrough (``worker.app.PASSTHROUGH``) and data converter.

    ``keep_state``: at the end of a history the replayer evicts the workflow; a safe eviction cancels its
    coroutines, and the interpreter's cancellation handler would then mark the run and its running steps
    ``cancelled``. Skipping it leaves the state as the last recorded workflow task left it.
    """
    from flowtide.client.codec import data_converter
    from flowtide.worker.app import PASSTHROUGH
    runner = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))
    # the worker's converter: with FLOWTIDE_CODEC_KEY the recorded payloads are encrypted
    return Replayer(workflows=list(workflows or default_workflows()), workflow_runner=runner,
                    interceptors=list(interceptors), runtime=quiet_runtime(), data_converter=data_converter(),
                    disable_safe_workflow_eviction=keep_state)


class BadHistoryError(ValueError):
    """Not a history the Replayer can take (shown to the user as one line)."""


_WFT_STARTED = EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
_AFTER_WFT_STARTED = frozenset({EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
                                EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
                                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED})


def check_history(history: WorkflowHistory) -> None:
    """Refuse a history whose shape the SDK core cannot take.

    On such a history the core panics (a first event that is not the start, events out of order, a workflow
    task started and then not completed) or waits for a workflow task (only the start event), and the replay
    never returns; so this check runs first.

    Raises:
        BadHistoryError: what is wrong, in one line.
    """
    events = history.events
    if not events:
        raise BadHistoryError("not a Temporal history JSON: it has no events")
    if (events[0].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
            or not events[0].workflow_execution_started_event_attributes.workflow_type.name):
        raise BadHistoryError("not a Temporal history JSON: events[0] must be a WorkflowExecutionStarted event "
                              "with a workflow type")
    if len(events) == 1:  # the core would wait forever for a workflow task
        raise BadHistoryError("the history holds only its start event: no workflow code has run yet, so there is "
                              "nothing to replay")
    for i, e in enumerate(events):
        if e.event_id != i + 1:
            raise BadHistoryError(f"not a complete Temporal history: events[{i}] has id {e.event_id}, expected "
                                  f"{i + 1} (events missing, repeated or out of order)")
        if e.event_type == _WFT_STARTED and i + 1 < len(events) and events[i + 1].event_type not in _AFTER_WFT_STARTED:
            raise BadHistoryError(f"not a valid Temporal history: workflow task started at event {e.event_id} is "
                                  f"followed by {EventType.Name(events[i + 1].event_type)}, not by its outcome")


def load_history(text: str, fallback_id: str) -> WorkflowHistory:
    """A history from its JSON (``runs export``, ``temporal workflow show -o json``, the Web UI's download).

    The workflow id matters for replay: the interpreter derives child run ids (sub-flows, loop parts)
    from it. It is read from the started event; ``fallback_id`` (e.g. the file name) serves only for a
    server that does not record it there.

    Raises:
        BadHistoryError: not JSON, not a history, or a history that cannot be replayed (``check_history``).
    """
    try:
        history = WorkflowHistory.from_json(fallback_id, text)
    except Exception as exc:  # JSON or protobuf shape errors: one line, not a traceback
        raise BadHistoryError(f"not a Temporal history JSON ({type(exc).__name__}: {exc})") from None
    check_history(history)
    recorded = history.events[0].workflow_execution_started_event_attributes.workflow_id
    return WorkflowHistory(recorded, history.events) if recorded else history


async def replay_history(history: WorkflowHistory, workflows: Sequence[type] | None = None) -> ReplayReport:
    """Replay ``history``; report whether the current code makes the same decisions, in plain words.

    Raises:
        BadHistoryError: the history cannot be replayed at all (see ``check_history``).
    """
    check_history(history)
    result = await build_replayer(workflows).replay_workflow(history, raise_on_replay_failure=False)
    activities = sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    report = ReplayReport(workflow_id=history.workflow_id, run_id=history.run_id, events=len(history.events),
                          activities=activities, ok=result.replay_failure is None)
    if result.replay_failure is not None:
        report.raw = _temporal_message(str(result.replay_failure))
        report.explanation = explain(report.raw, history)
    return report


def _temporal_message(text: str) -> str:
    m = re.search(r'message: "((?:[^"\\]|\\.)*)"', text)
    return m.group(1).replace('\\"', '"').replace("\\'", "'") if m else text


def _step_at(history: WorkflowHistory, event_id: int) -> str:
    for e in history.events:
        if e.event_id == event_id and e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = e.activity_task_scheduled_event_attributes
            return f" for step '{a.activity_id}' ({a.activity_type.name})"
    return ""


_RECORDED_WORDS = {"LocalActivity": "ran a local activity", "Activity": "scheduled a step activity",
                   "Timer": "started a timer", "ChildWorkflow": "started a child run"}
_DIFFERENT_STEPS = "steps were added, removed, renamed or reordered before it."


def explain(message: str, history: WorkflowHistory) -> str:
    """Temporal's non-determinism message in plain words, naming the step where the code diverges."""
    m = re.search(r"(\w+?) ?[Mm]achine does not handle (?:this event: )?HistoryEvent\(id: (\d+), (\w+)\)", message)
    if m:
        machine, event_id, event = m.group(1), int(m.group(2)), m.group(3)
        recorded = _EVENT_WORDS.get(event, f"recorded a {event} event")
        doing = _MACHINE_WORDS.get(machine, f"does something else ({machine})")
        return (f"At history event {event_id} the recorded run {recorded}{_step_at(history, event_id)}, but the "
                f"current interpreter {doing} at that point. The code now makes a different decision for this "
                "run: steps or waits were added, removed or reordered.")
    m = re.search(r"(Activity|Child workflow) (id|type) of (?:scheduled event|recorded marker) '([^']*)' does not "
                  r"match .*? command '([^']*)'", message)
    if m:
        noun = {("Activity", "id"): "step", ("Activity", "type"): "step kind", ("Child workflow", "id"): "child run",
                ("Child workflow", "type"): "child workflow type"}[(m.group(1), m.group(2))]
        did, does = ("started", "starts") if m.group(1) == "Child workflow" else ("scheduled", "schedules")
        return (f"The recorded run {did} {noun} '{m.group(3)}' here, but the current interpreter {does} {noun} "
                f"'{m.group(4)}' instead: {_DIFFERENT_STEPS}")
    m = re.search(r"Missing associated machine for (\w+)\((\d+)\)", message)
    if m:
        did = _RECORDED_WORDS.get(m.group(1), f"issued a {m.group(1)} command")
        return (f"The recorded run {did} (its #{m.group(2)}) where the current interpreter does not: the code "
                "now issues fewer commands for this run (steps were removed or skipped, or the run ends earlier).")
    if "No command scheduled for event" in message or "nondeterminism" in message.lower():
        return ("The current interpreter does not reproduce the recorded run: it issues fewer, more or different "
                "commands than the history holds. Temporal says: " + message)
    return "The current interpreter fails on this history (a workflow task error, not a recorded step): " + message


class _CaptureInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        _CAPTURED[workflow.info().run_id] = workflow.instance()
        return await super().execute_workflow(input)


class _Capture(Interceptor):
    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _CaptureInbound


_UNPROCESSED_WORDS = {
    "ActivityTaskCompleted": "a step activity completed",
    "ActivityTaskFailed": "a step activity failed",
    "ActivityTaskTimedOut": "a step activity timed out",
    "ActivityTaskCanceled": "a step activity was cancelled",
    "TimerFired": "a timer fired",
    "WorkflowExecutionSignaled": "a signal arrived",
    "WorkflowExecutionCancelRequested": "a cancellation was requested",
    "ChildWorkflowExecutionCompleted": "a child run completed",
    "ChildWorkflowExecutionFailed": "a child run failed",
}


def _command_of(event: Any) -> int | None:
    """The workflow task whose command produced ``event`` (None for events from the outside)."""
    name = event.WhichOneof("attributes")
    attrs = getattr(event, name) if name else None
    value = getattr(attrs, "workflow_task_completed_event_id", None)
    return int(value) if value else None


def processed(history: WorkflowHistory) -> tuple[WorkflowHistory, list[str]]:
    """The part of ``history`` the workflow has processed, and what waits for a worker (in plain words).

    Events after the last completed workflow task (an activity result, a signal, a cancel request) are
    only seen by the workflow when a worker runs its next task; cutting them keeps a rebuilt record in
    step with what Temporal reports now instead of running ahead of it.
    """
    events = list(history.events)
    last = max((i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
               default=None)
    if last is None:
        return history, []
    wft = events[last].event_id
    keep = events[:last + 1] + [e for e in events[last + 1:] if _command_of(e) == wft]
    waiting = []
    for e in events[last + 1:]:
        word = _UNPROCESSED_WORDS.get(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_").title()
                                      .replace("_", ""))
        if word and _command_of(e) != wft:
            waiting.append(word)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            msg = e.workflow_task_failed_event_attributes.failure.message
            waiting.append(f"the run's last workflow task failed in the worker ({msg[:300]}); it is retried "
                           "until the code is fixed")
    return WorkflowHistory(history.workflow_id, keep), list(dict.fromkeys(waiting))


async def record_by_replay(history: WorkflowHistory, now: datetime | None = None) -> dict[str, Any] | None:
    """The interpreter's run record rebuilt by replaying ``history``; None when the code cannot replay it."""
    from flowtide.workflows.engine import FlowWorkflow
    try:
        check_history(history)
    except BadHistoryError:
        return None
    try:
        result = await build_replayer([FlowWorkflow], [_Capture()], keep_state=True).replay_workflow(
            history, raise_on_replay_failure=False)
    finally:
        instance = _CAPTURED.pop(history.run_id, None)
    if result.replay_failure is not None or instance is None or not getattr(instance, "info", None):
        return None
    return dict(instance.state.record(instance.info, now or datetime.now(UTC)))
