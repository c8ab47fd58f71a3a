"""Run flows on a cron schedule with Temporal Schedules: create, list, pause, unpause, trigger, describe, delete.

A schedule's action is the same start a ``flowtide run`` sends (``client.runs.run_action``), so scheduled runs
carry the FlowId/FlowVersion/FlowStatus search attributes and show in ``flowtide runs list``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)

from flowtide.client.api import FlowSource, prepare
from flowtide.client.runs import run_action
from flowtide.workflows.search_attributes import DEFAULT_TASK_QUEUE, WORKFLOW_TYPE

OVERLAP = {"skip": ScheduleOverlapPolicy.SKIP, "buffer-one": ScheduleOverlapPolicy.BUFFER_ONE,
           "buffer-all": ScheduleOverlapPolicy.BUFFER_ALL, "allow-all": ScheduleOverlapPolicy.ALLOW_ALL,
           "cancel-other": ScheduleOverlapPolicy.CANCEL_OTHER,
           "terminate-other": ScheduleOverlapPolicy.TERMINATE_OTHER}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


class ScheduleError(ValueError):
    """A schedule setting is invalid (overlap policy, catch-up window)."""


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"1m"``, ``"2h"``, ``"1d"`` as a ``timedelta``."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ScheduleError(f"'{text}' is not a duration like 30s, 1m, 2h or 1d")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def _policy(overlap: str, catchup_window: timedelta | str) -> SchedulePolicy:
    if overlap not in OVERLAP:
        raise ScheduleError(f"overlap '{overlap}' is not one of {', '.join(OVERLAP)}")
    window = parse_duration(catchup_window) if isinstance(catchup_window, str) else catchup_window
    if window < timedelta(seconds=10):
        raise ScheduleError("the catch-up window must be at least 10s (Temporal's minimum)")
    return SchedulePolicy(overlap=OVERLAP[overlap], catchup_window=window)


@dataclass(frozen=True)
class ScheduleRequest:
    """A schedule checked and built without a server (``schedule_request``); ``create`` sends it."""

    id: str
    schedule: Schedule
    memo: dict[str, Any]

    async def create(self, client: Client) -> ScheduleHandle:
        """Create the schedule on ``client``'s namespace."""
        return await client.create_schedule(self.id, self.schedule, memo=self.memo)


def schedule_request(flow: FlowSource, cron: str, input: Any = None, *, id: str | None = None,
                     task_queue: str = DEFAULT_TASK_QUEUE, overlap: str = "skip",
                     catchup_window: timedelta | str = timedelta(minutes=1), paused: bool = False) -> ScheduleRequest:
    """What ``create_schedule`` sends, checked (the same arguments); the CLI checks before it connects.

    Raises:
        FlowValidationError: the flow or the input is invalid.
        ScheduleError: a setting is invalid.
    """
    _, wire = prepare(flow, input)
    sid = id or f"{wire['id']}-schedule"
    action = run_action(wire, input)
    start = ScheduleActionStartWorkflow(WORKFLOW_TYPE, action.arg, id=sid, task_queue=task_queue,
                                        typed_search_attributes=action.search_attributes, **action.options())
    schedule = Schedule(action=start, spec=ScheduleSpec(cron_expressions=[cron]),
                        policy=_policy(overlap, catchup_window),
                        state=ScheduleState(paused=paused, note=f"flowtide: flow {wire['id']}"))
    return ScheduleRequest(sid, schedule, {"flowId": wire["id"], "cron": cron})


async def create_schedule(client: Client, flow: FlowSource, cron: str, input: Any = None, *, id: str | None = None,
                          task_queue: str = DEFAULT_TASK_QUEUE, overlap: str = "skip",
                          catchup_window: timedelta | str = timedelta(minutes=1),
                          paused: bool = False) -> ScheduleHandle:
    """Validate ``flow`` and ``input`` and create a schedule that starts a run at every ``cron`` time (UTC).

    Args:
        client: a connected Temporal client.
        flow: the flow (a path, YAML/JSON text, a dict or a ``Flow``); sub-flow files are inlined now.
        cron: a cron expression, e.g. ``"*/5 * * * *"``.
        input: the trigger payload of every run, checked against the flow's ``input`` schema.
        id: the schedule id; default ``<flowId>-schedule``. Runs get ``<id>-<time>`` as workflow id.
        task_queue: where Flowtide's workers poll.
        overlap: what to do when the previous run is still going: skip (default), buffer-one, buffer-all,
            allow-all, cancel-other, terminate-other.
        catchup_window: how late a missed time (server down) may still start a run; default 1 minute.
        paused: create it paused.

    Raises:
        FlowValidationError: the flow or the input is invalid.
        ScheduleError: a setting is invalid.
    """
    return await schedule_request(flow, cron, input, id=id, task_queue=task_queue, overlap=overlap,
                                  catchup_window=catchup_window, paused=paused).create(client)


async def list_schedules(client: Client) -> list[dict[str, Any]]:
    """Every schedule of the namespace (visibility: new ones show after a moment): id, flow, cron, paused, runs."""
    rows = []
    async for entry in await client.list_schedules():
        info, sched, memo = entry.info, entry.schedule, await entry.memo()
        rows.append({
            "id": entry.id,
            "flowId": memo.get("flowId"),
            "cron": memo.get("cron"),  # the server keeps cron only as calendar specs: the memo has it as typed
            "paused": bool(sched and sched.state.paused),
            "nextRuns": [t.isoformat() for t in (info.next_action_times if info else [])][:3],
            "recentRuns": [a.action.workflow_id for a in (info.recent_actions if info else [])
                           if hasattr(a.action, "workflow_id")][-3:],
        })
    return rows


async def describe_schedule(client: Client, id: str) -> dict[str, Any]:
    """One schedule: cron, overlap, catch-up window, paused, next and recent runs."""
    desc = await client.get_schedule_handle(id).describe()
    s, info = desc.schedule, desc.info
    memo = await desc.memo()
    return {"id": desc.id, "flowId": memo.get("flowId"), "cron": memo.get("cron"),
            "paused": s.state.paused, "note": s.state.note,
            "overlap": s.policy.overlap.name.lower().replace("_", "-"),
            "catchupWindowS": s.policy.catchup_window.total_seconds() if s.policy.catchup_window else None,
            "nextRuns": [t.isoformat() for t in info.next_action_times][:5],
            "recentRuns": [getattr(a.action, "workflow_id", None) for a in info.recent_actions][-5:],
            "runsStarted": info.num_actions}


async def pause_schedule(client: Client, id: str, note: str = "paused with flowtide") -> None:
    """Stop starting runs (runs already going continue)."""
    await client.get_schedule_handle(id).pause(note=note)


async def unpause_schedule(client: Client, id: str, note: str = "unpaused with flowtide") -> None:
    """Start runs again at the next cron time."""
    await client.get_schedule_handle(id).unpause(note=note)


async def trigger_schedule(client: Client, id: str) -> None:
    """Start one run now (the overlap policy applies; paused schedules trigger too)."""
    await client.get_schedule_handle(id).trigger()


async def delete_schedule(client: Client, id: str) -> None:
    """Delete the schedule; its runs stay."""
    await client.get_schedule_handle(id).delete()
