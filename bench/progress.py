"""Progress counting on a 10,000-step run: workflow-task CPU with the incremental count and with a full scan.

``python bench/progress.py [--steps N] [--rounds R]``. Runs one flow of N pure steps (one set-variable step
that routes back to itself) on an embedded server and an in-process worker, fetches the histories of its runs
(if it continued as new), then replays them R times with each way of counting, interleaved. A replay runs
exactly the run's workflow tasks (no activity, no server), so its CPU time is the run's workflow-task CPU.
``scan`` is the count as it was before it was kept incrementally: every step row, on every step.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/progress.py` puts bench/ first on the path, not the project

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import WorkflowHistory  # noqa: E402
from temporalio.worker import Replayer  # noqa: E402

from flowtide.client.codec import data_converter  # noqa: E402
from flowtide.client.connect import connect  # noqa: E402
from flowtide.client.runs import start_run, wait_record  # noqa: E402
from flowtide.dev.server import DevServer, free_port  # noqa: E402
from flowtide.worker.app import build_worker  # noqa: E402
from flowtide.workflows.engine import FlowLoopWorkflow, FlowWorkflow  # noqa: E402
from flowtide.workflows.engine._state import TERMINAL_STEP_STATUSES, RunState  # noqa: E402
from flowtide.workflows.language.dsl import parse_flow  # noqa: E402

INCREMENTAL = RunState.progress


def scan(self: RunState) -> dict[str, int]:
    """The count before: a set of every finished row's step id, built again on every step."""
    done = {s["stepId"] for s in self.steps if s["status"] in TERMINAL_STEP_STATUSES}
    done.update(self.earlier.get("done") or ())
    return {"done": len(done), "total": max(self.total_steps, len(done))}


def cycle(steps: int) -> dict[str, Any]:
    """A run of ``steps`` pure steps: one set-variable step that routes back to itself until it ran that often
    (a document of 10,000 listed steps would pass the 1 MiB document limit; its rows are the same)."""
    count = {"stepId": "count", "stepType": "core.set-variable", "runLimit": -1,
             "input": {"n": "{{ vars.n | plus: 1 }}"},
             "condition": {"if": {"<": ["{{ vars.n }}", steps - 1]}, "then": ["count"], "else": []}}
    return {"id": "bench-progress", "settings": {"limits": {"maxStepExecutions": steps + 10}},
            "steps": [{"stepId": "init", "stepType": "core.set-variable", "input": {"n": 0}, "next": ["count"]},
                      count]}


async def record(steps: int) -> tuple[list[WorkflowHistory], dict[str, Any]]:
    """Run the flow once; return the histories of its runs (it continues as new) and its run record."""
    doc = cycle(steps)
    server = DevServer(port=free_port(), ui_port=None, db_file=None)
    server.start()
    try:
        client = await connect(server.address)
        queue = f"bench-progress-{uuid.uuid4().hex[:8]}"
        async with build_worker(client, queue, graceful_shutdown_s=5):
            handle = await start_run(client, parse_flow(doc, source="bench"), {}, task_queue=queue)
            rec = await asyncio.wait_for(wait_record(handle), 600)
        chain = [await handle.fetch_history()]
        while (after := _continued(chain[-1])) is not None:  # the run continues as new now and then
            chain.append(await client.get_workflow_handle(handle.id, run_id=after).fetch_history())
        return chain, rec
    finally:
        server.stop()


def _continued(history: WorkflowHistory) -> str | None:
    last = history.events[-1]
    if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        return None
    return str(last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id)


async def replay_cpu(chain: list[WorkflowHistory]) -> float:
    """CPU seconds to replay every run of the chain (debug mode: the old count may pass the 2 s deadlock
    detector in one workflow task, which would stop the replay)."""
    replayer = Replayer(workflows=[FlowWorkflow, FlowLoopWorkflow], data_converter=data_converter(),
                        debug_mode=True)
    t0 = time.process_time()
    for history in chain:
        await replayer.replay_workflow(history)
    return time.process_time() - t0


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    chain, rec = await record(args.steps)
    rows = len(rec["steps"]) + int(rec.get("stepsTruncated") or 0) + int(
        (rec.get("stepsSummarised") or {}).get("rows") or 0)
    print(f"run: {rec['status']}, {rows} step rows, {rec['progress']['done']} / {rec['progress']['total']} "
          f"steps done, {len(chain)} runs of {sum(len(h.events) for h in chain)} history events in all")
    cpu: dict[str, list[float]] = {"incremental": [], "scan": []}
    for i in range(args.rounds):
        for side in (("incremental", "scan") if i % 2 == 0 else ("scan", "incremental")):
            RunState.progress = INCREMENTAL if side == "incremental" else scan  # type: ignore[method-assign]
            cpu[side].append(await replay_cpu(chain))
    RunState.progress = INCREMENTAL  # type: ignore[method-assign]
    for side, values in cpu.items():
        print(f"{side:>11}: workflow-task CPU median {statistics.median(values):.2f} s "
              f"(min {min(values):.2f}, max {max(values):.2f}, {args.rounds} replays)")
    ratio = statistics.median(cpu["scan"]) / statistics.median(cpu["incremental"])
    print(f"scan / incremental: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
