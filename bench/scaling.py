"""Throughput with 1, 2 and 3 workers: ``python -m bench.cluster --scaling [--runs N] [--json]``.

For each worker count a fresh cluster of ``bench/cluster.py`` (Temporal, in memory, and the workers only: runs
are started with the Python API; the soak's file-backed Temporal syncs every write to disk and binds first)
serves two workloads, each started all at once after a warm-up:

- I/O-bound: runs of ``IO_STEPS`` HTTP steps that each wait ``IO_MS`` ms at the target (``/slow``), with every
  worker limited to ``IO_SLOTS`` steps at once (``FLOWTIDE_MAX_ACTIVITIES``), as a worker with a bounded pool of
  connections would be: throughput should grow with the workers (target: >= 1.8x at 2, >= 2.5x at 3);
- CPU-bound: runs of ``IO_STEPS`` HTTP steps answered at once (``/ok``) with the default slots: the workers'
  own CPU per step is the bound, so this grows only while there are idle cores.

The report gives steps/s, the ratio to one worker, and the workers' CPU per step (their processes' user +
system time over the steps). On a machine with few cores shared with other jobs, the CPU-bound figure
and the ratios say more about the machine than about Flowtide: read them beside ``nproc`` and the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from bench.cluster import TASK_QUEUE, Cluster

IO_STEPS = 5
IO_MS = 200
IO_SLOTS = 4


def flow(url: str) -> dict[str, Any]:
    # remote steps: the activity slots (FLOWTIDE_MAX_ACTIVITIES) are the bounded pool this measures; as local
    # activities (the default for GETs) the workflow's own worker would run them outside that pool
    return {"id": "scaling", "settings": {"execution": "remote"}, "steps": [
        *({"stepId": f"s{i}", "stepType": "core.http", "input": {"url": url}} for i in range(IO_STEPS)),
        {"stepId": "done", "stepType": "core.return", "input": {"output": {"n": "{{ initial.n }}"}}}]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def measure(cluster: Cluster, url: str, runs: int) -> dict[str, float]:
    from flowtide.client.connect import connect
    from flowtide.client.runs import start_run, wait_record
    from flowtide.workflows.language.dsl import parse_flow
    client = await connect(cluster.temporal_address)
    doc = parse_flow(flow(url), source="bench")

    async def batch(n: int) -> float:
        t0 = time.perf_counter()
        handles = await asyncio.gather(*(start_run(client, doc, {"n": i}, task_queue=TASK_QUEUE) for i in range(n)))
        records = await asyncio.gather(*(wait_record(h) for h in handles))
        assert all(r["status"] == "completed" for r in records), [r["status"] for r in records]
        return time.perf_counter() - t0

    await batch(max(6 * len(cluster.workers), runs // 5))  # warm-up: every worker's first tasks, connections
    pids = [w.popen.pid for w in cluster.workers if w.popen]
    cpu0 = sum(cpu_seconds(p) for p in pids)
    elapsed = await batch(runs)
    steps = runs * IO_STEPS
    return {"stepsPerS": round(steps / elapsed, 1),
            "workerCpuMsPerStep": round((sum(cpu_seconds(p) for p in pids) - cpu0) * 1000 / steps, 2)}


def scaling(runs: int = 60, counts: tuple[int, ...] = (1, 2, 3), slots: int = IO_SLOTS) -> dict[str, Any]:
    report: dict[str, Any] = {"cores": os.cpu_count(), "loadAverage": round(os.getloadavg()[0], 1), "io": {},
                              "cpu": {}, "slots": slots}
    for kind, path, env in (("io", f"/slow?ms={IO_MS}", {"FLOWTIDE_MAX_ACTIVITIES": str(slots)}),
                            ("cpu", "/ok", {})):
        for n in counts:
            with Cluster(workers=n, database=False, durable_temporal=False, worker_env=env) as cluster:
                report[kind][n] = asyncio.run(measure(cluster, cluster.target.url + path, runs))
        one = report[kind][counts[0]]["stepsPerS"]
        for n in counts:
            report[kind][n]["ratio"] = round(report[kind][n]["stepsPerS"] / one, 2)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=60, help="runs per measurement (each of 5 steps)")
    parser.add_argument("--slots", type=int, default=IO_SLOTS, help="steps at once per worker, I/O-bound")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = scaling(args.runs, slots=args.slots)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['cores']} cores, load average {report['loadAverage']} at the start")
    for kind, title in (("io", f"I/O-bound ({IO_MS} ms per step, {report['slots']} slots per worker)"),
                        ("cpu", "CPU-bound (answered at once, default slots)")):
        print(title)
        for n, row in report[kind].items():
            print(f"  {n} worker(s): {row['stepsPerS']:7.1f} steps/s  x{row['ratio']:.2f}  "
                  f"worker CPU {row['workerCpuMsPerStep']:.2f} ms/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
