"""Flowtide in its default settings against two hand-written Temporal workflows, in the same run.

- **usual**: what most hand-written code does: a plain ``start_workflow`` and every call a regular activity.
- **tuned**: a hand-written workflow with every latency lever on: ``request_eager_start=True`` (the worker in
  this process gets the first workflow task in the start response) and every call a local activity.
- **flowtide**: a flow with no performance settings (no ``execution:``), started with ``client.runs.start_run``
  as it is, so the figures follow whatever Flowtide does by default when the benchmark runs.

The flow is ``steps`` idempotent HTTP GETs against the loopback demo service; times are end to end from the
client (start, then the result). Sides run in paired rounds, their order rotating every round
(``bench/rounds.py``), and every ratio is summarised over the per-round ratios.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from bench import baseline, flows, rounds
from bench.scenarios import RUN_TIMEOUT_S, Env, _wid, baseline_params, flowtide_run
from flowtide.client.runs import start_run, wait_record
from flowtide.workflows.language import parse_flow

# The hand-written variants: (local activities, eager start). "usual" and "tuned" are the two baselines;
# the other two separate the levers (docs/performance.md).
VARIANTS = {"usual": (False, False), "eager_only": (False, True), "local_only": (True, False),
            "tuned": (True, True)}


async def _hand(env: Env, steps: int, variant: str) -> Any:
    local, eager = VARIANTS[variant]
    params = baseline_params(env, steps, local, baseline.ACTIVITY_NAME)
    return await env.client.start_workflow(baseline.WORKFLOW_NAME, params, id=_wid(f"bench-{variant}"),
                                           task_queue=env.task_queue, request_eager_start=eager)


def _per_step(got: rounds.Rounds, side: str, steps: int) -> float:
    return round(statistics.median(got.wall(side)) * 1000 / steps, 2)


async def latency(env: Env, steps: int, reps: int) -> dict[str, Any]:
    """One run at a time, ``steps`` GETs each: Flowtide (defaults), usual and tuned hand-written workflows."""
    doc = flows.sequential(env.url, steps, None)

    async def flowtide() -> None:
        await flowtide_run(env, doc)

    def hand(variant: str) -> rounds.Runner:
        async def run() -> None:
            await asyncio.wait_for((await _hand(env, steps, variant)).result(), RUN_TIMEOUT_S)
        return run

    got = await rounds.paired({"flowtide": flowtide, "usual": hand("usual"), "tuned": hand("tuned")}, reps)
    return {"steps": steps, "reps": reps, **{f"{k}_step_ms": _per_step(got, k, steps) for k in got.samples},
            "latency_vs_usual": rounds.ratio(got.wall("flowtide"), got.wall("usual")),
            "latency_vs_tuned": rounds.ratio(got.wall("flowtide"), got.wall("tuned"))}


async def throughput(env: Env, runs: int, steps: int, reps: int) -> dict[str, Any]:
    """``runs`` concurrent runs of ``steps`` GETs: Flowtide (defaults) against the usual hand-written workflow.

    Steps per second and this process's CPU per step (the worker and the starting client run here)."""
    flow = parse_flow(flows.sequential(env.url, steps, None), source="bench")

    async def flowtide() -> None:
        handles = await asyncio.gather(*(start_run(env.client, flow, {}, task_queue=env.task_queue)
                                         for _ in range(runs)))
        await asyncio.wait_for(asyncio.gather(*(wait_record(h) for h in handles)), RUN_TIMEOUT_S)

    async def usual() -> None:
        handles = await asyncio.gather(*(_hand(env, steps, "usual") for _ in range(runs)))
        await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), RUN_TIMEOUT_S)

    got = await rounds.paired({"flowtide": flowtide, "usual": usual}, reps)
    total = runs * steps
    return {"runs": runs, "steps": steps, "reps": reps,
            **{f"{k}_steps_per_s": round(total / statistics.median(got.wall(k)), 1) for k in got.samples},
            **{f"{k}_cpu_ms_per_step": round(statistics.median(got.cpu(k)) * 1000 / total, 3) for k in got.samples},
            # steps per second is the inverse of time: usual time / Flowtide time, per round
            "throughput_vs_usual": rounds.ratio(got.wall("usual"), got.wall("flowtide")),
            "cpu_vs_usual": rounds.ratio(got.cpu("flowtide"), got.cpu("usual"))}


async def levers(env: Env, steps: int, reps: int) -> dict[str, Any]:
    """The four hand-written variants in paired rounds: what eager start and local activities each give."""
    def hand(variant: str) -> rounds.Runner:
        async def run() -> None:
            await asyncio.wait_for((await _hand(env, steps, variant)).result(), RUN_TIMEOUT_S)
        return run

    got = await rounds.paired({v: hand(v) for v in VARIANTS}, reps)
    return {"steps": steps, "reps": reps, **{f"{v}_step_ms": _per_step(got, v, steps) for v in VARIANTS},
            **{f"{v}_vs_usual": rounds.ratio(got.wall(v), got.wall("usual")) for v in VARIANTS if v != "usual"}}
