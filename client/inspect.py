"""Run records for any run, from Temporal alone, with or without a worker.

Where the record comes from, in order:

1. a completed run: its result (the interpreter returns the run record);
2. a failed run: its failure's details (``contracts.RunFailure``: the run record);
3. otherwise (running, waiting, paused, cancelled, terminated, timed out): the history, replayed in this
   process by the current interpreter (``client.replay.record_by_replay``): exact, and no worker needed;
   kept by ``client.record_cache`` until the history grows, so polling a run does not replay it each time;
4. if the interpreter cannot replay it (the code changed since): the ``record`` query while the run is
   open and a worker answers within ``query_timeout_s``;
5. last: the record rebuilt from the history's activity events (``client.history``).

``describe()`` adds what the history does not hold yet: the pending activities (attempt, next attempt time,
last failure), which turn a step into ``retrying`` with ``Retrying in N s``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from flowtide.client.history import record_from_events
from flowtide.client.record_cache import RECORDS, Rebuilt
from flowtide.client.replay import processed, record_by_replay
from flowtide.client.resolve import follow_chain
from flowtide.client.runs import record_from_failure
from flowtide.workflows.contracts import AttemptFailure
from flowtide.workflows.language import json_safe

EXECUTION_STATUS = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued",
}
OPEN_STATUSES = frozenset({"running", "waiting", "paused"})


@dataclass
class PendingStep:
    """One activity Temporal has not finished yet (from ``describe().pending_activities``)."""

    activity_id: str
    kind: str
    state: str  # scheduled | started | cancel_requested | paused | pause_requested
    attempt: int
    max_attempts: int | None
    next_attempt_at: datetime | None
    last_error: dict[str, Any] | None

    def retry_in_s(self, now: datetime | None = None) -> float | None:
        """Seconds until Temporal starts the next attempt, when a retry is pending."""
        if self.next_attempt_at is None:
            return None
        return max(0.0, (self.next_attempt_at - (now or datetime.now(UTC))).total_seconds())

    def to_dict(self) -> dict[str, Any]:
        return {"activityId": self.activity_id, "state": self.state, "attempt": self.attempt,
                "maxAttempts": self.max_attempts, "retryInS": self.retry_in_s(),
                "nextAttemptAt": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
                "lastError": self.last_error}


@dataclass
class RunView:
    """A run as ``flowtide runs show`` sees it."""

    record: dict[str, Any]
    source: str  # result | failure | replay | query | history
    execution_status: str
    task_queue: str
    pending: list[PendingStep] = field(default_factory=list)
    unprocessed: list[str] = field(default_factory=list)  # events no worker has handled yet

    def notes(self) -> list[str]:
        """Lines for the user about the run's state in Temporal."""
        if not self.unprocessed or self.execution_status != "running":
            return []
        return [f"waiting for a worker: {', '.join(self.unprocessed)}, not yet handled by the flow "
                f"(is a worker polling task queue '{self.task_queue}'? flowtide worker --task-queue "
                f"{self.task_queue})"]


async def _pending(desc: WorkflowExecutionDescription, converter: DataConverter) -> list[PendingStep]:
    out = []
    for pa in desc.raw_description.pending_activities:
        last: dict[str, Any] | None = None
        if pa.HasField("last_failure"):
            err = await converter.decode_failure(pa.last_failure)
            sent = AttemptFailure.decode(err.details) if isinstance(err, ApplicationError) else None
            if sent is not None:
                last = dict(sent.record)
            else:
                last = {"code": getattr(err, "type", None) or "UNKNOWN_ERROR", "message": str(err)}
        state = PendingActivityState.Name(pa.state).removeprefix("PENDING_ACTIVITY_STATE_").lower()
        nxt = pa.next_attempt_schedule_time.ToDatetime(tzinfo=UTC) if pa.HasField("next_attempt_schedule_time") \
            else None
        out.append(PendingStep(activity_id=pa.activity_id, kind=pa.activity_type.name,
                               state="paused" if pa.paused else state, attempt=pa.attempt,
                               max_attempts=pa.maximum_attempts or None, next_attempt_at=nxt, last_error=last))
    return out


def merge_pending(record: dict[str, Any], pending: list[PendingStep]) -> None:
    """Mark the steps Temporal is retrying: status ``retrying``, ``retry`` with the attempt and last error."""
    for p in pending:
        row = next((s for s in reversed(record.get("steps") or [])
                    if s["stepId"] + (s.get("path") or "") == p.activity_id and s["status"] in ("running",
                                                                                               "retrying")), None)
        if row is None:
            continue
        row["retry"] = p.to_dict()
        row["attempts"] = max(int(row.get("attempts") or 0), p.attempt - (0 if p.state == "started" else 1))
        if p.last_error is not None and p.state != "started":
            row["status"] = "retrying"


async def _closed_record(handle: WorkflowHandle[Any, Any], status: str) -> dict[str, Any] | None:
    if status == "completed":
        with contextlib.suppress(WorkflowFailureError):
            res = await handle.result(follow_runs=False)
            return dict(res) if isinstance(res, dict) and "steps" in res else None
    if status == "failed":
        try:
            await handle.result(follow_runs=False)
        except WorkflowFailureError as err:
            return record_from_failure(err)
    return None


async def _query(handle: WorkflowHandle[Any, Any], timeout_s: float) -> dict[str, Any] | None:
    if timeout_s <= 0:
        return None
    try:
        return dict(await asyncio.wait_for(handle.query("record"), timeout=timeout_s))
    except Exception:  # no worker, an old worker without the query, a timeout: fall through to the history
        return None


async def inspect_run(handle: WorkflowHandle[Any, Any], client: Client | None = None, *,
                      query_timeout_s: float = 2.0) -> RunView:
    """The run record of ``handle``'s run and its pending activities (see the module docstring).

    Args:
        handle: the run (``client.resolve.resolve_run``).
        client: when given, its data converter decodes payloads and a handle without a run id is pinned
            to the run ``describe()`` found, so every later call reads that same run.
        query_timeout_s: how long the ``record`` query may wait for a worker (only used when the current
            interpreter cannot replay the history).
    """
    conv = client.data_converter if client is not None else DataConverter.default
    desc = await handle.describe()
    if desc.status == WorkflowExecutionStatus.CONTINUED_AS_NEW and client is not None:
        # a closed part of a long run: the run record is the newest run's (it carries the earlier steps)
        handle = await follow_chain(client, handle.id, desc.run_id)
        desc = await handle.describe()
    status = EXECUTION_STATUS.get(desc.status or WorkflowExecutionStatus.RUNNING, "running")
    pinned = client.get_workflow_handle(handle.id, run_id=desc.run_id) if client and not handle.run_id else handle
    record, source = await _closed_record(pinned, status), "result" if status == "completed" else "failure"
    unprocessed: list[str] = []
    if record is None:
        async def rebuild() -> Rebuilt:
            history = await pinned.fetch_history()
            done, waiting = processed(history)
            replayed = await record_by_replay(done)
            if replayed is not None:
                return Rebuilt(replayed, "replay", waiting)
            if status == "running":
                asked = await _query(pinned, query_timeout_s)
                if asked is not None:
                    return Rebuilt(asked, "query", waiting, keep=False)
            return Rebuilt(await record_from_events(history, conv, status=status), "history", waiting)

        made = await RECORDS.rebuilt((desc.run_id or "", desc.history_length, status), rebuild)
        record, source, unprocessed = made.record, made.source, made.unprocessed
    if status not in ("running", "completed", "failed") and record.get("status") in OPEN_STATUSES:
        record["status"] = status  # terminated / timed out: the workflow code never saw it
    pending = await _pending(desc, conv) if status == "running" else []
    merge_pending(record, pending)
    # json_safe: a run recorded before values were judged may hold NaN/Infinity; readers answer valid JSON
    return RunView(record=json_safe(record), source=source, execution_status=status, task_queue=desc.task_queue,
                   pending=pending, unprocessed=unprocessed)


async def fetch_record(handle: WorkflowHandle[Any, Any], query_timeout_s: float = 2.0) -> dict[str, Any]:
    """The best run record Temporal can give for ``handle`` (kept for ``client.runs.wait_record``)."""
    return (await inspect_run(handle, query_timeout_s=query_timeout_s)).record
