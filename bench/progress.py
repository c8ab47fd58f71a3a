"""Progress counting on a 10,000-step run: workflow-task CPU with the incremental count and with a full scan.

``python bench/progress.py [--steps N] [--rounds R]``. Runs one flow of N pure steps (set-variable and if,
``bench.flows.pure``) on an embedded server and an in-process worker, fetches its history, then replays that
history R times with each way of counting (interleaved): replaying runs exactly the workflow tasks of the run
(no activity, no server), so the CPU time of a replay is the run's workflow-task CPU. ``scan`` is the count as
it was before it was kept incrementally: every step row, on every step.
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

from temporalio.worker import Replayer  # noqa: E402

from bench import flows  # noqa: E402
from flowtide.client.codec import data_converter  # noqa: E402
from flowtide.client.connect import connect  # noqa: E402
from flowtide.client.runs import start_run, wait_record  # noqa: E402
from flowtide.dev.server import DevServer, free_port  # noqa: E402
from flowtide.workflows.engine import FlowLoopWorkflow, FlowWorkflow  # noqa: E402
from flowtide.workflows.engine._state import TERMINAL_STEP_STATUSES, RunState  # noqa: E402
from flowtide.workflows.language.dsl import parse_flow  # noqa: E402
from flowtide.worker.app import build_worker  # noqa: E402

INCREMENTAL = RunState.progress


def scan(self: RunState) -> dict[str, int]:
    """The count before: a set of every finished row's step id, built again on every step."""
    done = {s["stepId"] for s in self.steps if s["status"] in TERMINAL_STEP_STATUSES}
    done.update(self.earlier.get("done") or ())
    return {"done": len(done), "total": max(self.total_steps, len(done))}


async def record(steps: int) -> tuple[Any, dict[str, Any]]:
    """Run the flow once; return its history and its run record."""
    doc = flows.pure(steps)
    doc["settings"] = {"limits": {"maxStepExecutions": steps + 10}}
    server = DevServer(port=free_port(), ui_port=None, db_file=None)
    server.start()
    try:
        client = await connect(server.address)
        queue = f"bench-progress-{uuid.uuid4().hex[:8]}"
        async with build_worker(client, queue, graceful_shutdown_s=5):
            handle = await start_run(client, parse_flow(doc, source="bench"), {}, task_queue=queue)
            rec = await asyncio.wait_for(wait_record(handle), 600)
        return await handle.fetch_history(), rec
    finally:
        server.stop()


async def replay_cpu(history: Any) -> float:
    replayer = Replayer(workflows=[FlowWorkflow, FlowLoopWorkflow], data_converter=data_converter())
    t0 = time.process_time()
    await replayer.replay_workflow(history)
    return time.process_time() - t0


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    history, rec = await record(args.steps)
    print(f"run: {rec['status']}, {rec['progress']['done']} / {rec['progress']['total']} steps done, "
          f"{len(history.events)} history events")
    cpu: dict[str, list[float]] = {"incremental": [], "scan": []}
    for i in range(args.rounds):
        for side in (("incremental", "scan") if i % 2 == 0 else ("scan", "incremental")):
            RunState.progress = INCREMENTAL if side == "incremental" else scan  # type: ignore[method-assign]
            cpu[side].append(await replay_cpu(history))
    RunState.progress = INCREMENTAL  # type: ignore[method-assign]
    for side, values in cpu.items():
        print(f"{side:>11}: workflow-task CPU median {statistics.median(values):.2f} s "
              f"(min {min(values):.2f}, max {max(values):.2f}, {args.rounds} replays)")
    ratio = statistics.median(cpu["scan"]) / statistics.median(cpu["incremental"])
    print(f"scan / incremental: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
