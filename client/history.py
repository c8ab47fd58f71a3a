"""Read a run from its Temporal history alone: its start parameters, and a run record rebuilt from events.

The interpreter maps every outside-world step to one activity (type = step kind, id = step id or
``stepId#index`` in a loop, summary = title). Its scheduled input holds the rendered step input, its
completed result ``{output, console, attempt, warnings}``, its failure an ``ApplicationError`` whose
details are ``(error record, output, console)``. A step run as a local activity (``execution: local``, or
chosen automatically) leaves one ``core_local_activity`` marker instead: its clear ``data`` says the step id,
kind, attempt and times, its ``result`` is the same result, its failure the same failure; a marker with a
``backoff`` is an attempt that failed and waits for a timer before the next. ``record_from_events`` turns
those events into a run record when the interpreter itself cannot replay the history (it changed since the
run). Pure steps run inside the workflow and leave no event of their own, so such a record lists the
outside-world steps only, and a local step's rendered input (not recorded in its marker) is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

from flowtide.workflows.contracts import AttemptFailure, handed_back

_E = EventType
LOCAL_MARKER = "core_local_activity"  # the marker a local activity records (one per completion or backoff)


@dataclass
class StartInfo:
    """What the run was started with (the ``WORKFLOW_EXECUTION_STARTED`` event)."""

    params: dict[str, Any]  # {"flow": wire flow, "input": payload, "options": {...}}
    task_queue: str
    workflow_type: str
    started_at: datetime

    @property
    def flow(self) -> dict[str, Any]:
        return dict(self.params.get("flow") or {})

    @property
    def payload(self) -> Any:
        return self.params.get("input")


def _time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


async def start_info(history: WorkflowHistory, converter: DataConverter) -> StartInfo:
    """Decode the first event of ``history``: the workflow input, task queue and start time."""
    first = history.events[0]
    if first.event_type != _E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        raise ValueError("the history does not begin with WORKFLOW_EXECUTION_STARTED")
    attrs = first.workflow_execution_started_event_attributes
    args = await converter.decode(attrs.input.payloads) if attrs.input.payloads else []
    params = args[0] if args and isinstance(args[0], dict) else {}
    return StartInfo(params=params, task_queue=attrs.task_queue.name, workflow_type=attrs.workflow_type.name,
                     started_at=_time(first))


def count_steps(steps: list[dict[str, Any]]) -> int:
    """Steps of a wire flow, nested blocks included (the interpreter's ``progress.total``)."""
    return sum(1 + sum(count_steps(b) for b in (s.get("blocks") or {}).values()) for s in steps)


def _row(task: dict[str, Any], activity_id: str, kind: str, at: datetime) -> dict[str, Any]:
    return {"stepId": task.get("stepId") or activity_id.split("#")[0], "stepType": kind,
            "title": task.get("title") or activity_id, "iteration": task.get("iteration"), "status": "running",
            "attempts": 0, "startedAt": at.isoformat(), "completedAt": None, "durationMs": None,
            "input": task.get("input"), "output": None, "console": [], "error": None, "warnings": []}


def _close(row: dict[str, Any], at: datetime, status: str) -> None:
    row["status"] = status
    row["completedAt"] = at.isoformat()
    started = datetime.fromisoformat(row["startedAt"])
    row["durationMs"] = int((at - started).total_seconds() * 1000)


def _failure_fields(err: BaseException, row: dict[str, Any]) -> None:
    if isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    sent = AttemptFailure.decode(err.details) if isinstance(err, ApplicationError) else None
    if sent is not None:
        row["error"], row["output"], row["console"] = dict(sent.record), sent.output, sent.console
    else:
        code = "TIMEOUT" if isinstance(err, TimeoutError) else (
            err.type if isinstance(err, ApplicationError) else None) or "UNKNOWN_ERROR"
        row["error"] = {"stepId": row["stepId"], "stepType": row["stepType"], "type": "execution", "code": code,
                        "message": str(err), "severity": "error", "retryable": False, "providerStatus": None,
                        "detail": None, "attempt": 1}
    row["attempts"] = int(row["error"].get("attempt") or 1)


def _marker_time(value: Any, default: datetime) -> datetime:
    """A ``{"seconds", "nanos"}`` time from a local-activity marker's data, or ``default``."""
    if not isinstance(value, dict) or not isinstance(value.get("seconds"), int):
        return default
    return datetime.fromtimestamp(value["seconds"] + int(value.get("nanos") or 0) / 1e9, UTC)


async def _apply_local(event: HistoryEvent, rows: dict[int | str, dict[str, Any]], conv: DataConverter) -> None:
    """One ``core_local_activity`` marker: a local step's row, opened by its first marker and closed by the
    marker that carries its result or its final failure (one with a ``backoff`` leaves it retrying)."""
    m = event.marker_recorded_event_attributes
    data = await conv.decode(m.details["data"].payloads) if "data" in m.details else []
    info = data[0] if data and isinstance(data[0], dict) else {}
    activity_id = str(info.get("activity_id") or "")
    at = _time(event)
    row = rows.setdefault(f"local:{activity_id}", _row({}, activity_id, str(info.get("activity_type") or "?"),
                                                     _marker_time(info.get("original_schedule_time"), at)))
    row["attempts"] = int(info.get("attempt") or 1)
    done = _marker_time(info.get("complete_time"), at)
    if m.HasField("failure"):
        err = await conv.decode_failure(m.failure)
        if handed_back(err):
            return  # handed back by a stopping worker: not an attempt; a later marker has the step's outcome
        _failure_fields(err, row)
        row["attempts"] = max(row["attempts"], int(info.get("attempt") or 1))
        if info.get("backoff"):
            row["status"] = "retrying"  # a timer, then the next attempt: a later marker closes the row
            return
        _close(row, done, "failed")
        return
    result = (await conv.decode(m.details["result"].payloads))[0] if "result" in m.details else {}
    result = result if isinstance(result, dict) else {"output": result}
    row.update(output=result.get("output"), console=result.get("console") or [], error=None,
               warnings=result.get("warnings") or [], attempts=int(result.get("attempt") or row["attempts"]))
    _close(row, done, "warning" if row["warnings"] else "completed")


async def _apply(event: HistoryEvent, rows: dict[int | str, dict[str, Any]], conv: DataConverter) -> None:
    t = event.event_type
    if t == _E.EVENT_TYPE_MARKER_RECORDED and event.marker_recorded_event_attributes.marker_name == LOCAL_MARKER:
        await _apply_local(event, rows, conv)
    elif t == _E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        a = event.activity_task_scheduled_event_attributes
        decoded = await conv.decode(a.input.payloads) if a.input.payloads else []
        task = decoded[0] if decoded and isinstance(decoded[0], dict) else {}
        rows[event.event_id] = _row(task, a.activity_id, a.activity_type.name, _time(event))
    elif t == _E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        c = event.activity_task_completed_event_attributes
        row = rows[c.scheduled_event_id]
        result = (await conv.decode(c.result.payloads))[0] if c.result.payloads else {}
        result = result if isinstance(result, dict) else {"output": result}
        row.update(output=result.get("output"), console=result.get("console") or [],
                   warnings=result.get("warnings") or [], attempts=int(result.get("attempt") or 1))
        _close(row, _time(event), "warning" if row["warnings"] else "completed")
    elif t == _E.EVENT_TYPE_ACTIVITY_TASK_FAILED:
        f = event.activity_task_failed_event_attributes
        row = rows[f.scheduled_event_id]
        _failure_fields(await conv.decode_failure(f.failure), row)
        _close(row, _time(event), "failed")
    elif t == _E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
        o = event.activity_task_timed_out_event_attributes
        row = rows[o.scheduled_event_id]
        row["error"] = {"stepId": row["stepId"], "stepType": row["stepType"], "type": "execution",
                        "code": "TIMEOUT", "message": f"step '{row['stepId']}' timed out", "severity": "error",
                        "retryable": True, "providerStatus": None, "detail": o.failure.message, "attempt": 1}
        _close(row, _time(event), "failed")
    elif t == _E.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
        _close(rows[event.activity_task_canceled_event_attributes.scheduled_event_id], _time(event), "cancelled")


def _wire_steps(steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every step of a wire flow by id, nested blocks included."""
    out: dict[str, dict[str, Any]] = {}
    for s in steps:
        out[str(s.get("id"))] = s
        for block in (s.get("blocks") or {}).values():
            out.update(_wire_steps(block))
    return out


def _absorbed(step: dict[str, Any] | None, flow: dict[str, Any]) -> bool:
    """Whether the flow lets a failure of ``step`` pass (continueOnError, or an onError that goes on): the
    interpreter's own rule for which failure is the run's root cause."""
    if step is None:
        return False
    on_error = step.get("onError") or (flow.get("settings") or {}).get("onError") or {}
    return bool(step.get("continueOnError") or on_error.get("action") == "continue-workflow" or on_error.get("next"))


def _counts(steps: list[dict[str, Any]]) -> dict[str, int]:
    c = {"completed": 0, "failed": 0, "skipped": 0, "warning": 0, "running": 0, "cancelled": 0}
    for s in steps:
        c[s["status"]] = c.get(s["status"], 0) + 1
    return c


async def record_from_events(history: WorkflowHistory, converter: DataConverter, *, status: str,
                             now: datetime | None = None) -> dict[str, Any]:
    """A run record rebuilt from the activity events of ``history`` (outside-world steps only)."""
    info = await start_info(history, converter)
    rows: dict[int | str, dict[str, Any]] = {}
    for event in history.events:
        await _apply(event, rows, converter)
    steps = list(rows.values())
    if status not in ("running", "waiting", "paused"):
        for s in steps:
            if s["status"] in ("running", "retrying"):
                s["status"] = "cancelled"
    end = _time(history.events[-1]) if status not in ("running", "waiting", "paused") else (now or datetime.now(UTC))
    flow = info.flow
    failed = [s for s in steps if s["status"] == "failed"]
    wire = _wire_steps(flow.get("steps") or [])
    root = [s for s in failed if not _absorbed(wire.get(s["stepId"]), flow)] or failed
    done = {s["stepId"] for s in steps if s["status"] not in ("running", "retrying")}
    return {"runId": history.run_id, "workflowId": history.workflow_id, "flowId": flow.get("id"),
            "flowVersion": flow.get("version", 1), "status": status, "startedAt": info.started_at.isoformat(),
            "completedAt": end.isoformat() if status not in ("running", "waiting", "paused") else None,
            "durationMs": int((end - info.started_at).total_seconds() * 1000),
            "progress": {"done": len(done), "total": max(len(done), count_steps(flow.get("steps") or []))},
            "counts": _counts(steps), "firstFailedStep": root[0]["stepId"] if root else None,
            "error": None, "errors": [s["error"] for s in failed], "output": None, "webhookResponse": None,
            "steps": steps, "loops": [], "rerunOf": (info.params.get("options") or {}).get("rerunOf"),
            "partial": "rebuilt from the history's activity events and local-activity markers: steps that run "
                       "inside the workflow (set-variable, if, return, ...) are not listed, nor the input of a "
                       "step run as a local activity"}
