"""Where the worker's time goes: ``python bench/profile.py [--sandbox] [--runs N --steps M] [--out FILE]``.

Starts the same embedded dev server, demo HTTP service and worker as ``bench/run.py`` (its ``harness``),
hosting only Flowtide's workflows and activities, runs one warm-up round of the throughput scenario
(N concurrent runs of M ``core.http`` steps), then runs ``--reps`` more rounds while ``py-spy record``
samples this process: the worker (its workflow and activity threads) and the benchmark's client, which
share it the way they do in ``bench/run.py``. Only stacks holding the GIL are kept (``--gil``): Python code
running, not threads waiting in ``select``, ``waitpid`` or a queue. The Rust core's own threads are not
seen at all.

Prints the top functions by own ("self") samples, as a percentage of all GIL-holding samples, and the inclusive
share of a few groups (payload conversion, protobuf, the sandbox, Flowtide's own code), plus CPU ms per step
of this process while profiling. ``--sandbox`` runs Flowtide's workflows in Temporal's workflow sandbox
(the configuration before round two); the default runs them unsandboxed. ``--out`` keeps py-spy's raw
collapsed stacks (one ``frame;frame;... count`` line per stack) for a flame graph or a second look.

Needs ``py-spy`` (``pip install py-spy``) and the right to ptrace this process (root, or
``kernel.yama.ptrace_scope`` 0). Percentages are steadier than absolute times on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if sys.path[0] == str(ROOT / "bench"):  # `python bench/profile.py`: the project, not bench/, first on the path
    sys.path[0] = str(ROOT)  # (bench/ first would let this file shadow the standard library's `profile`)

from bench import flows, rounds  # noqa: E402
from bench.run import harness  # noqa: E402
from bench.scenarios import RUN_TIMEOUT_S  # noqa: E402
from flowtide.client.cli.logs import configure  # noqa: E402
from flowtide.client.runs import start_run, wait_record  # noqa: E402
from flowtide.workflows.language import parse_flow  # noqa: E402

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")  # py-spy's "function (file)" with --nolineno
# Shares worth reading. A stack belongs to a group if one of its frames' files starts with one of the
# group's prefixes and none starts with an excluded one (py-spy names files relative to sys.path:
# "temporalio/converter/_payload_converter.py"); "own" counts only the innermost frame's file.
CLIENT = ("temporalio/client.py", "flowtide/client/")  # the benchmark's own starts and result waits
GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "the benchmark's client (temporalio/client.py, flowtide/client/)": (CLIENT, ()),
    "Temporal SDK (temporalio/)": (("temporalio/",), ()),
    "payload conversion (temporalio/converter/)": (("temporalio/converter/",), ()),
    "payload conversion, worker side (not under the client)": (("temporalio/converter/",), CLIENT),
    "json module (json/)": (("json/",), ()),
    "workflow sandbox (temporalio/worker/workflow_sandbox/)": (("temporalio/worker/workflow_sandbox/",), ()),
    "httpx + httpcore": (("httpx/", "httpcore/"), ()),
    "Flowtide (flowtide/)": (("flowtide/",), ()),
}


def short(path: str) -> str:
    """A file path without the venv or project prefix: ``temporalio/worker/_workflow.py``."""
    for marker in ("site-packages/", f"{ROOT}/", "lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            return path.split("/", 1)[1] if marker == "lib/python3." else path
    return path


def parse_raw(text: str) -> list[tuple[list[tuple[str, str]], int]]:
    """py-spy's raw (collapsed) output: one (frames outermost first as (function, file), count) per stack."""
    stacks = []
    for line in text.splitlines():
        head, _, count = line.rpartition(" ")
        if not head or not count.isdigit():
            continue
        frames = []
        for part in head.split(";"):
            m = FRAME.match(part)
            if m:
                frames.append((m["func"], m["file"]))
        if frames:
            stacks.append((frames, int(count)))
    return stacks


def summarise(stacks: list[tuple[list[tuple[str, str]], int]], top: int) -> dict[str, Any]:
    """Top functions by own samples, and the inclusive and own share of each of ``GROUPS``."""
    total = sum(n for _, n in stacks)
    own: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[str] = Counter()
    own_group: Counter[str] = Counter()
    for frames, n in stacks:
        own[frames[-1]] += n
        files = [short(file) for _, file in frames]
        for name, (prefixes, excluded) in GROUPS.items():
            if any(f.startswith(prefixes) for f in files) and not any(f.startswith(excluded) for f in files):
                inclusive[name] += n
                own_group[name] += n if files[-1].startswith(prefixes) else 0
    pct = (lambda n: round(100 * n / total, 1)) if total else (lambda n: 0.0)
    return {"samples": total,
            "top": [{"function": f, "file": short(file), "own_pct": pct(n)} for (f, file), n in own.most_common(top)],
            "groups": {name: {"inclusive_pct": pct(inclusive[name]), "own_pct": pct(own_group[name])}
                       for name in GROUPS}}


def table(summary: dict[str, Any]) -> str:
    """The summary as Markdown (pasteable into docs/performance.md)."""
    lines = ["| # | function | file | own % |", "|---|---|---|---|"]
    lines += [f"| {i} | `{row['function']}` | `{row['file']}` | {row['own_pct']} |"
              for i, row in enumerate(summary["top"], 1)]
    lines += ["", "| share of GIL-holding samples | inclusive % | own % |", "|---|---|---|"]
    lines += [f"| {name} | {v['inclusive_pct']} | {v['own_pct']} |" for name, v in summary["groups"].items()]
    return "\n".join(lines)


async def profile(args: argparse.Namespace, raw: Path, log: Path) -> dict[str, Any]:
    """Warm up, then profile ``args.reps`` rounds of the throughput scenario; the CPU it took per step."""
    from flowtide.activities import all_activities
    from flowtide.workflows.engine import FlowWorkflow

    async with harness([FlowWorkflow], all_activities(), sandbox=args.sandbox) as (env, _server):
        flow = parse_flow(flows.sequential(env.url, args.steps, args.execution), source="bench")

        async def one_round() -> None:
            handles = await asyncio.gather(*(start_run(env.client, flow, {}, task_queue=env.task_queue)
                                             for _ in range(args.runs)))
            await asyncio.wait_for(asyncio.gather(*(wait_record(h) for h in handles)), RUN_TIMEOUT_S)

        await one_round()  # warm-up: imports, the sandbox's first module loads, connection pools
        with log.open("wb") as err:
            spy = await asyncio.create_subprocess_exec(
                args.py_spy, "record", "--pid", str(os.getpid()), "--format", "raw", "--nolineno", "--gil",
                "--rate", str(args.rate), "--output", str(raw), stdout=subprocess.DEVNULL, stderr=err)
        await asyncio.sleep(1.0)  # py-spy attaches
        if spy.returncode is not None:
            raise SystemExit(f"py-spy did not start: {await asyncio.to_thread(log.read_text)}")
        c0 = rounds.cpu_seconds()
        for _ in range(args.reps):
            await one_round()
        cpu = rounds.cpu_seconds() - c0
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        await asyncio.wait_for(spy.wait(), 60)
    return {"cpu_ms_per_step": round(cpu * 1000 / (args.reps * args.runs * args.steps), 3)}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, profile, print the Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sandbox", action="store_true", help="run Flowtide's workflows in the workflow sandbox")
    parser.add_argument("--runs", type=int, default=40, help="concurrent runs per round (default 40)")
    parser.add_argument("--steps", type=int, default=10, help="core.http steps per run (default 10)")
    parser.add_argument("--reps", type=int, default=5, help="profiled rounds after the warm-up (default 5)")
    parser.add_argument("--execution", choices=("local", "remote"), default="local", help="step execution")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second (default 200)")
    parser.add_argument("--top", type=int, default=20, help="how many functions to list (default 20)")
    parser.add_argument("--out", type=Path, help="keep py-spy's raw collapsed stacks in this file")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")))
    args = parser.parse_args(argv)
    configure("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        raw = args.out or Path(tmp) / "profile.txt"
        figures = asyncio.run(profile(args, raw, Path(tmp) / "py-spy.log"))
        summary = summarise(parse_raw(raw.read_text()), args.top)
    print(f"{'sandboxed' if args.sandbox else 'unsandboxed'} workflows, {args.runs} runs x {args.steps} "
          f"{args.execution} core.http steps x {args.reps} rounds: {summary['samples']} GIL-holding samples, "
          f"{figures['cpu_ms_per_step']} CPU ms per step (this process, py-spy attached)\n")
    print(table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
