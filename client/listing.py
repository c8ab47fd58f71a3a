"""``flowtide runs list``: flow runs from Temporal's visibility store (no worker, no history reads).

Filters become one visibility query on the custom search attributes the interpreter keeps current
(``FlowStatus``, ``FlowId``, ...) plus Temporal's own (``ExecutionStatus``, ``RunId``), so listing stays
cheap for thousands of runs. Only top-level runs are listed: a sub-flow's child run is not. A run that was
terminated or timed out never got to publish its final ``FlowStatus``; its Temporal execution status wins.
A run that continued as new is listed once, by its newest part, under its first run id.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from flowtide.client.inspect import EXECUTION_STATUS, OPEN_STATUSES
from flowtide.client.resolve import first_run_of, follow_chain
from flowtide.workflows.search_attributes import QUERY_VALUE, WORKFLOW_TYPE

STATUSES = ("running", "waiting", "paused", "completed", "completed_with_errors", "failed", "cancelled",
            "timed_out", "terminated")
_BY_EXECUTION = {"cancelled": "Canceled", "timed_out": "TimedOut", "terminated": "Terminated"}


class BadFilterError(ValueError):
    """A filter value that cannot be used (shown to the user as one line)."""


@dataclass
class RunRow:
    """One line of ``runs list``."""

    run_id: str
    workflow_id: str
    flow_id: str | None
    flow_version: int | None
    status: str
    started_at: datetime | None
    completed_at: datetime | None
    failed_step: str | None
    error_code: str | None
    rerun_of: str | None

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.completed_at is None:
            return None
        return int((self.completed_at - self.started_at).total_seconds() * 1000)

    def to_dict(self) -> dict[str, Any]:
        return {"runId": self.run_id, "workflowId": self.workflow_id, "flowId": self.flow_id,
                "flowVersion": self.flow_version, "status": self.status,
                "startedAt": self.started_at.isoformat() if self.started_at else None,
                "completedAt": self.completed_at.isoformat() if self.completed_at else None,
                "durationMs": self.duration_ms, "failedStepId": self.failed_step, "errorCode": self.error_code,
                "rerunOf": self.rerun_of}


def _quoted(value: str, what: str) -> str:
    if not QUERY_VALUE.match(value):
        raise BadFilterError(f"{what} '{value[:40]}' may only hold letters, digits and - _ . : # $ "
                             "(at most 300)")
    return f'"{value}"'


@dataclass(frozen=True)
class Filters:
    """The runs page's filters beyond ``runs list``'s: the error code and a start time range (aware datetimes)."""

    error_code: str | None = None
    started_from: datetime | None = None
    started_to: datetime | None = None

    def parts(self) -> list[str]:
        out = []
        if self.error_code:
            out.append(f"ErrorCode = {_quoted(self.error_code, 'error code')}")
        if self.started_from:
            out.append(f'StartTime >= "{self.started_from.astimezone(UTC).isoformat()}"')
        if self.started_to:
            out.append(f'StartTime < "{self.started_to.astimezone(UTC).isoformat()}"')
        return out


def build_query(status: str | None = None, flow: str | None = None, run_prefix: str | None = None,
                project: str | None = None, more: Filters | None = None) -> str:
    """The visibility query for the filters of ``runs list`` (``project``: the service's ``ProjectId``).

    Raises:
        BadFilterError: an unknown status or a value with characters a query cannot hold.
    """
    # a sub-flow's child run is a FlowWorkflow too, without FlowId: its failure is shown on the parent's step
    parts = [f'WorkflowType = "{WORKFLOW_TYPE}"', "ParentWorkflowId IS NULL"]
    if not run_prefix:
        # the closed parts of a run that continued as new are not runs of their own: its newest part stands
        # for it (a run id prefix may name a closed part: list_runs shows its chain's newest part instead)
        parts.append('ExecutionStatus != "ContinuedAsNew"')
    if status:
        if status not in STATUSES:
            raise BadFilterError(f"unknown status '{status}' (one of: {', '.join(STATUSES)})")
        if status in _BY_EXECUTION:
            parts.append(f'ExecutionStatus = "{_BY_EXECUTION[status]}"')
        elif status in OPEN_STATUSES:
            parts.append(f'ExecutionStatus = "Running" AND FlowStatus = "{status}"')
        else:
            parts.append(f'FlowStatus = "{status}"')
    if flow:
        parts.append(f"FlowId = {_quoted(flow, '--flow')}")
    if run_prefix:
        parts.append(f"RunId STARTS_WITH {_quoted(run_prefix, '--run-id')}")
    if project:
        parts.append(f"ProjectId = {_quoted(project, 'project')}")
    return " AND ".join(parts + (more.parts() if more else []))


def _attr(wf: WorkflowExecution, name: str) -> Any:
    value = wf.search_attributes.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def row_of(wf: WorkflowExecution, first_run_id: str | None = None) -> RunRow:
    """A listing row; the execution status wins over a ``FlowStatus`` the workflow could not update."""
    execution = EXECUTION_STATUS.get(wf.status, "running") if wf.status else "running"
    flow_status = _attr(wf, "FlowStatus")
    if execution == "running":
        status = flow_status if flow_status in OPEN_STATUSES else "running"
    elif execution in ("completed", "failed") and flow_status:
        status = str(flow_status)
    else:
        status = execution
    version = _attr(wf, "FlowVersion")
    # a long run's record names its first run id (the chain's): so does its row
    return RunRow(run_id=first_run_id or wf.run_id, workflow_id=wf.id, flow_id=_attr(wf, "FlowId"),
                  flow_version=int(version) if version is not None else None, status=status,
                  started_at=wf.start_time, completed_at=wf.close_time, failed_step=_attr(wf, "FailedStepId"),
                  error_code=_attr(wf, "ErrorCode"), rerun_of=_attr(wf, "RerunOf"))


async def list_runs(client: Client, *, status: str | None = None, flow: str | None = None,
                    run_prefix: str | None = None, limit: int = 20) -> list[RunRow]:
    """The newest ``limit`` runs matching the filters, newest first."""
    query = build_query(status, flow, run_prefix)
    rows: dict[tuple[str, str], RunRow] = {}
    async for wf in client.list_workflows(query, limit=limit):
        first = await first_run_of(wf)
        if wf.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            first = first or wf.run_id
            wf = await (await follow_chain(client, wf.id, wf.run_id)).describe()
        row = row_of(wf, first)
        rows.setdefault((row.workflow_id, row.run_id), row)
    return list(rows.values())


async def list_page(client: Client, *, project: str, status: str | None = None, flow: str | None = None,
                    limit: int = 20, page_token: bytes | None = None,
                    run_prefix: str | None = None,
                    more: Filters | None = None) -> tuple[list[tuple[RunRow, Any]], bytes | None]:
    """One page of a project's runs, newest first: ``[(row, memo revision)]`` and the next page's token.

    Raises:
        BadFilterError: an unknown status or a value a query cannot hold.
    """
    it = client.list_workflows(build_query(status, flow, run_prefix, project=project, more=more), page_size=limit,
                               next_page_token=page_token)
    await it.fetch_next_page()
    rows = [(row_of(wf, await first_run_of(wf)), await wf.memo_value("revision", None))
            for wf in it.current_page or []]
    return rows, it.next_page_token or None


async def recent_rows(client: Client, *, project: str, since: datetime, flow: str | None = None,
                      status: str | None = None, limit: int = 1000) -> list[tuple[RunRow, Any]]:
    """A project's runs started at or after ``since`` (at most ``limit``, newest first): ``[(row, memo
    revision)]``, for the flows' health (counts by status, the last failure) without reading histories.

    Raises:
        BadFilterError: an unknown status or a value a query cannot hold.
    """
    query = build_query(status, flow, project=project) + f' AND StartTime >= "{since.isoformat()}"'
    rows: list[tuple[RunRow, Any]] = []
    async for wf in client.list_workflows(query, limit=limit):
        rows.append((row_of(wf), await wf.memo_value("revision", None)))
    return rows


async def count_by_status(client: Client, *, project: str, flow: str | None = None, run_prefix: str | None = None,
                          more: Filters | None = None) -> dict[str, int]:
    """How many of the project's runs match the filters, per status (one visibility count query each)."""
    async def one(status: str) -> int:
        query = build_query(status, flow, run_prefix, project=project, more=more)
        return int((await client.count_workflows(query)).count)
    counts = await asyncio.gather(*(one(s) for s in STATUSES))
    return dict(zip(STATUSES, counts, strict=True))
