"""Flowtide against hand-written Temporal, in one command: ``python bench/run.py [--quick] [--json]``.

Starts its own embedded Temporal dev server (in memory, headless, on a free port, with the same command
line ``flowtide server`` uses) and the demo HTTP service in a child process, builds one worker with
``worker.app.build_worker`` that hosts both Flowtide's interpreter and the hand-written baseline, runs every
scenario with the two sides interleaved, and prints medians and ratios (``--json``: one JSON object).

The headline (``bench/headline.py``): a flow with no settings, Flowtide in its defaults, against the usual
hand-written workflow (plain start, regular activities) and the tuned one (eager start, local activities):
``latency_vs_usual``, ``latency_vs_tuned``, ``throughput_vs_usual``, ``cpu_vs_usual``; the text output ends
with one verdict line per target. The older top-level figures are for ``execution: local``; the ``remote``
object holds the same figures for ``execution: remote``. ``--only headline|levers|waiting`` runs one group
alone (``--waiting-runs N`` sizes the waiting one).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/run.py` puts bench/ first on the path, not the project

from bench import baseline, cli_timing, headline, loop, report, scenarios, waiting  # noqa: E402
from flowtide.client.cli.logs import configure  # noqa: E402
from flowtide.client.connect import connect  # noqa: E402
from flowtide.dev.server import DevServer, free_port  # noqa: E402

QUICK = {"head_steps": 20, "head_reps": 15, "head_thr_runs": 50, "head_thr_steps": 10, "head_thr_reps": 5,
         "levers": False, "seq_steps": 20, "seq_reps": 5, "thr_runs": 50, "thr_steps": 10, "thr_reps": 4,
         "pure_steps": 1000, "pure_reps": 2, "loop_items": 2000, "loop_concurrency": 50, "waiting_runs": 600,
         "ratio_loop_items": 600, "ratio_loop_batch": 200, "ratio_loop_reps": 3}
# every scenario at a tiny size: checks that the benchmark itself works (tests/e2e/test_bench_smoke.py)
SMOKE = dict(QUICK, head_steps=3, head_reps=2, head_thr_runs=4, head_thr_steps=2, head_thr_reps=2, levers=True,
             seq_steps=3, seq_reps=2, thr_runs=4, thr_steps=2, thr_reps=2, pure_steps=50, pure_reps=1,
             loop_items=60, loop_concurrency=10, waiting_runs=20, ratio_loop_items=40, ratio_loop_batch=20,
             ratio_loop_reps=2)
FULL = dict(QUICK, head_reps=21, head_thr_reps=11, levers=True, seq_reps=15, thr_reps=9, pure_reps=3,
            loop_items=100_000, waiting_runs=10_000,
            ratio_loop_items=3000, ratio_loop_batch=500, ratio_loop_reps=5)


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM): the worker plus the benchmark's own client."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@asynccontextmanager
async def http_service() -> Any:
    """The demo HTTP service in a child process; yields its base URL."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.service", cwd=str(ROOT),
                                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    try:
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.stdin.close()  # the service stops at end of input
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _scenarios(env: scenarios.Env, cfg: dict[str, Any], progress: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    progress(f"latency: {cfg['head_steps']} GETs, Flowtide defaults / usual / tuned hand-written")
    out["latency"] = await headline.latency(env, cfg["head_steps"], cfg["head_reps"])
    progress(f"throughput: {cfg['head_thr_runs']} x {cfg['head_thr_steps']} GETs, Flowtide defaults / usual")
    out["throughput"] = await headline.throughput(env, cfg["head_thr_runs"], cfg["head_thr_steps"],
                                                  cfg["head_thr_reps"])
    if cfg["levers"]:
        progress("levers: hand-written with eager start, local activities, both, neither")
        out["levers"] = await headline.levers(env, cfg["head_steps"], cfg["head_reps"])
    for mode in ("local", "remote"):
        progress(f"sequential {cfg['seq_steps']} steps, {mode}")
        out[f"seq_{mode}"] = await scenarios.sequential(env, cfg["seq_steps"], cfg["seq_reps"], mode)
        progress(f"throughput {cfg['thr_runs']} x {cfg['thr_steps']} steps, {mode}")
        out[f"thr_{mode}"] = await scenarios.throughput(env, cfg["thr_runs"], cfg["thr_steps"], cfg["thr_reps"],
                                                        mode)
    progress(f"pure {cfg['pure_steps']} steps")
    out["pure"] = await scenarios.pure(env, cfg["pure_steps"], cfg["pure_reps"])
    progress(f"for-each over {cfg['loop_items']} items")
    out["loop"] = await loop.big_loop(env, cfg["loop_items"], cfg["loop_concurrency"], "local")
    progress(f"for-each against a hand-written batched loop, {cfg['ratio_loop_items']} items")
    out["loop_vs_hand"] = await loop.loop_ratio(env, cfg["ratio_loop_items"], 20, cfg["ratio_loop_batch"],
                                                cfg["ratio_loop_reps"])
    progress(f"{cfg['waiting_runs']} waiting runs per side")
    out["waiting"] = await waiting.waiting_runs(env, cfg["waiting_runs"])
    return out


@asynccontextmanager
async def harness(workflows: list[Any], activities: list[Any], server_db: str | None = None,
                  **worker_kwargs: Any) -> Any:
    """The embedded server, the demo HTTP service and a running worker; yields (Env, server).

    ``worker_kwargs`` go to ``build_worker`` (``sandbox=True``, ...). Leaving the block shuts the worker down
    before the runtime goes away, then stops the service and the server.
    """
    from flowtide.worker.app import build_worker
    from flowtide.worker.telemetry import install_runtime

    install_runtime()  # the SDK core's own warnings go to stderr through logging, never into stdout's JSON
    os.environ.setdefault("FLOWTIDE_HTTP_ALLOW", "127.0.0.1")  # the SSRF guard refuses loopback otherwise
    server = DevServer(port=free_port(), ui_port=None, db_file=server_db)
    server.start()
    try:
        async with http_service() as url:
            client = await connect(server.address)
            task_queue = f"bench-{uuid.uuid4().hex[:8]}"
            worker = build_worker(client, task_queue, graceful_shutdown_s=5, workflows=workflows,
                                  activities=activities, **worker_kwargs)
            async with worker:
                yield scenarios.Env(client, task_queue, url), server
    finally:
        server.stop()


ONLY = ("headline", "levers", "waiting")  # --only: one group of scenarios alone


async def _only(env: scenarios.Env, cfg: dict[str, Any], only: str, progress: Any) -> dict[str, Any]:
    if only == "waiting":
        progress(f"{cfg['waiting_runs']} waiting runs per side")
        return {"waiting": await waiting.waiting_runs(env, cfg["waiting_runs"], resume=cfg.get("waiting_resume"))}
    if only == "levers":
        progress("levers: hand-written with eager start, local activities, both, neither")
        return {"levers": await headline.levers(env, cfg["head_steps"], cfg["head_reps"])}
    progress(f"latency: {cfg['head_steps']} GETs; throughput: {cfg['head_thr_runs']} x {cfg['head_thr_steps']}")
    return {"latency": await headline.latency(env, cfg["head_steps"], cfg["head_reps"]),
            "throughput": await headline.throughput(env, cfg["head_thr_runs"], cfg["head_thr_steps"],
                                                    cfg["head_thr_reps"])}


async def run(cfg: dict[str, Any], progress: Any, only: str | None = None,
              server_db: str | None = None) -> dict[str, Any]:
    """Start the server, the service and the worker; run every scenario (or the ``only`` group); shut down."""
    from flowtide.activities import all_activities
    from flowtide.workflows.engine import FlowLoopWorkflow, FlowWorkflow

    workflows = [FlowWorkflow, FlowLoopWorkflow, baseline.BaselineSequence, baseline.BaselineWaiting,
                 baseline.BaselineLoop, baseline.BaselineLoopBatch]
    async with harness(workflows, [*all_activities(), baseline.http_get], server_db) as (env, server):
        t0 = time.perf_counter()
        results = await (_only(env, cfg, only, progress) if only else _scenarios(env, cfg, progress))
        results["wall_seconds"] = time.perf_counter() - t0
    await baseline.close_clients()
    results["worker_rss_mb"] = _peak_rss_mb()
    results["server_command"] = server.command()[3:]
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print the table or the JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, a 2,000-item loop")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--smoke", action="store_true", help="every scenario at a tiny size (no meaningful numbers)")
    parser.add_argument("--loop-items", type=int, help="override the for-each size")
    parser.add_argument("--only", choices=ONLY, help="run one group of scenarios alone")
    parser.add_argument("--waiting-runs", type=int, help="waiting runs per side (600 quick, 10,000 full)")
    parser.add_argument("--waiting-resume", type=int, metavar="K",
                        help="resume only the K oldest waiting runs per side (default: all of them)")
    parser.add_argument("--server-db", metavar="FILE", help="the embedded server keeps its data in this SQLite file "
                        "instead of in memory (100,000 waiting runs per side: the in-memory server grew past 14 GB)")
    args = parser.parse_args(argv)
    configure("WARNING")  # logs go to stderr: stdout holds only the table or the JSON object
    cfg = dict(SMOKE if args.smoke else QUICK if args.quick else FULL)
    if args.loop_items:
        cfg["loop_items"] = args.loop_items
    if args.waiting_runs:
        cfg["waiting_runs"] = args.waiting_runs
    if args.waiting_resume:
        cfg["waiting_resume"] = args.waiting_resume
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"

    def progress(what: str) -> None:
        print(f"[bench] {what} ...", file=sys.stderr, flush=True)

    for flag, value in (("--waiting-runs", args.waiting_runs), ("--waiting-resume", args.waiting_resume)):
        if value is not None and value < 1:
            parser.error(f"{flag} must be a whole number of at least 1, not {value}")
    if args.server_db and Path(args.server_db).exists():
        parser.error(f"--server-db {args.server_db}: the file exists; give a new one (the server would reuse its runs)")
    results = asyncio.run(run(cfg, progress, args.only, args.server_db))
    if args.only:
        summary = report.summarise_only(results, mode=mode)
        print(json.dumps(summary, indent=2) if args.json else report.only_table(summary))
        return 0
    results["templates"] = report.template_figures(ROOT)
    progress("CLI timings")
    results["cli"] = cli_timing.cli_figures()
    gc.collect()
    summary = report.summarise(results, mode=mode)
    print(json.dumps(summary, indent=2) if args.json else report.table(summary))
    return 0 if summary["pure_activity_events"] == 0 and summary["loop_counts_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
