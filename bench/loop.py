"""The big-loop scenario: a for-each over N items, every history involved measured, counts checked."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from bench import baseline, flows, rounds
from bench.scenarios import Env, activity_events, flowtide_run


async def _children(client: Client, handle: WorkflowHandle[Any, Any]) -> list[WorkflowHandle[Any, Any]]:
    """Handles of every child execution a run started (loop batches), found in its history."""
    found = []
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            ex = e.child_workflow_execution_started_event_attributes.workflow_execution
            found.append(client.get_workflow_handle(ex.workflow_id, run_id=ex.run_id))
    return found


async def _history_length(handle: WorkflowHandle[Any, Any]) -> int:
    desc = await handle.describe()
    return int(desc.raw_description.workflow_execution_info.history_length)


async def histories(client: Client, handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
    """History lengths of a run and of every execution under it (children, grandchildren)."""
    lengths = {handle.id: await _history_length(handle)}
    todo = [handle]
    activity_total = 0
    while todo:
        h = todo.pop()
        activity_total += activity_events([e async for e in h.fetch_history_events()])
        kids = await _children(client, h)
        sizes = await asyncio.gather(*(_history_length(k) for k in kids))
        lengths.update({k.id: n for k, n in zip(kids, sizes, strict=True)})
        todo += kids
    return {"executions": len(lengths), "max_history_events": max(lengths.values()),
            "parent_history_events": lengths[handle.id], "total_history_events": sum(lengths.values()),
            "activity_events": activity_total}


def check_counts(output: dict[str, Any], items: int) -> dict[str, Any]:
    """Whether the loop output has the exact expected counts and keeps the failing items."""
    failing = [i for i in flows.FAILING_ITEMS if i < items]
    kept = sorted(f.get("index") for f in output.get("failures") or [])
    exact = (output.get("count") == items and output.get("failed") == len(failing)
             and output.get("succeeded") == items - len(failing) and kept == failing)
    return {"count": output.get("count"), "succeeded": output.get("succeeded"), "failed": output.get("failed"),
            "failures_kept": kept, "counts_exact": exact}


async def big_loop(env: Env, items: int, concurrency: int, execution: str) -> dict[str, Any]:
    """Run the loop flow once; time it, check its counts and measure every history involved."""
    took, record, handle = await flowtide_run(env, flows.loop(env.url, items, concurrency, execution),
                                              timeout_s=300 + items / 10)
    loop_row = next((s for s in record.get("steps") or [] if s.get("stepId") == "each-customer"), {})
    output = loop_row.get("output") or {}
    result = {"items": items, "concurrency": concurrency, "execution": execution, "status": record.get("status"),
              "seconds": took, "items_per_s": items / took, "record_rows": len(record.get("steps") or []),
              "loops": record.get("loops")}
    result.update(check_counts(output, items))
    result.update(await histories(env.client, handle))
    return result


async def loop_ratio(env: Env, items: int, concurrency: int, batch: int, reps: int) -> dict[str, Any]:
    """Flowtide's for-each against a hand-written loop of the same batched shape, paired rounds."""
    doc = flows.loop(env.url, items, concurrency, "remote")
    doc["settings"]["limits"] = {"loopBatchSize": batch}

    async def flowtide() -> None:
        await flowtide_run(env, doc, timeout_s=300 + items / 10)

    async def hand() -> None:
        params = {"items": items, "batch": batch, "concurrency": concurrency, "url": env.url}
        await asyncio.wait_for(env.client.execute_workflow(
            baseline.LOOP_NAME, params, id=f"baseline-loop-{uuid.uuid4().hex[:8]}", task_queue=env.task_queue),
            300 + items / 10)

    got = await rounds.paired({"flowtide": flowtide, "baseline": hand}, reps)
    return {"items": items, "batch": batch, "concurrency": concurrency, "reps": reps,
            "flowtide_seconds": rounds.spread(got.wall("flowtide")),
            "baseline_seconds": rounds.spread(got.wall("baseline")),
            # items per second, Flowtide over hand-written: the inverse ratio of times, per round
            "loop_ratio": rounds.ratio(got.wall("baseline"), got.wall("flowtide"))}
