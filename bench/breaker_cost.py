"""What a circuit breaker costs per step, by where its state lives: ``python bench/breaker_cost.py [--quick] [--json]``.

Two figures, each the median of interleaved rounds:

- ``pair_us``: CPU (this process) of one ``enter`` + ``leave`` of a closed breaker with a success, for the
  machine's SQLite file and the service database (SQLite, and PostgreSQL when its binaries are here), beside
  ``baseline``: the file store as it was before breakers could live in the database (``--baseline REV``,
  loaded from git).
- ``step_ms``: CPU of the worker and client process per ``core.http`` step of real runs on the embedded
  Temporal server (the demo service answers in another process), with no breaker, with the file and with the
  database; ``vs_baseline`` is each one's ratio to today's file store, the figure the 5 % budget is about.
  ``-uncached`` kinds read the breaker's row on every call (``breakers_shared.CLOSED_READ_S = 0``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/breaker_cost.py` puts bench/ first on the path, not the project

from bench import scenarios  # noqa: E402
from bench.run import harness  # noqa: E402

CFG = {"failureThreshold": 5, "windowSeconds": 60.0, "openSeconds": 30.0}


def _baseline_module(rev: str) -> Any:
    """``store/breakers.py`` as it was at ``rev`` (today's file store), loaded as a module of its own."""
    source = subprocess.run(["git", "show", f"{rev}:store/breakers.py"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="breakers-base-")) / "breakers_base.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("breakers_base", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["breakers_base"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _default_baseline() -> str:
    first = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--", "store/breaker_logic.py"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return f"{first[-1]}^" if first else "HEAD"


@contextlib.contextmanager
def store_env(kind: str, urls: dict[str, str], folder: Path, base: Any = None) -> Any:
    """The environment a worker would have for breakers kept in ``kind`` (baseline | file | sqlite | postgresql,
    ``-uncached``: reading the row on every call); ``baseline`` puts the old file store (``base``) in place."""
    saved = {k: os.environ.get(k) for k in ("FLOWTIDE_BREAKERS_DB", "FLOWTIDE_DATABASE_URL")}
    os.environ.pop("FLOWTIDE_DATABASE_URL", None)
    os.environ.pop("FLOWTIDE_BREAKERS_DB", None)
    from flowtide.store import breakers, breakers_shared
    patched = {name: getattr(breakers, name) for name in ("enter", "leave", "needs_writing")}
    read_s = breakers_shared.CLOSED_READ_S
    if kind in ("file", "none", "baseline"):
        os.environ["FLOWTIDE_BREAKERS_DB"] = str(folder / "breakers.db")
    else:
        os.environ["FLOWTIDE_DATABASE_URL"] = urls[kind.removesuffix("-uncached")]
    if kind.endswith("-uncached"):
        breakers_shared.CLOSED_READ_S = 0.0  # every call reads its row
    if kind == "baseline" and base is not None:  # the worker calls the old file store's enter and leave
        old = {"enter": base.enter, "leave": base.leave, "needs_writing": lambda ticket, code: True}
        for name, fn in old.items():
            setattr(breakers, name, fn)
    try:
        yield
    finally:
        breakers_shared.CLOSED_READ_S = read_s
        for name, fn in patched.items():
            setattr(breakers, name, fn)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def pair_cost(kinds: list[str], urls: dict[str, str], folder: Path, base: Any, pairs: int, rounds: int
              ) -> dict[str, float]:
    """Median CPU microseconds of one enter + leave (closed breaker, success), per store."""
    from flowtide.store import breakers
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(rounds):
        for kind in kinds:
            with store_env(kind, urls, folder, base):
                module = base if kind == "baseline" else breakers
                module.leave(module.enter("bench:1", CFG, 30), None)  # warm: connection, table
                t0 = time.process_time()
                for _ in range(pairs):
                    module.leave(module.enter("bench:1", CFG, 30), None)
                samples[kind].append((time.process_time() - t0) / pairs * 1e6)
    return {k: round(statistics.median(v), 1) for k, v in samples.items()}


def flow(url: str, steps: int, breaker: bool) -> dict[str, Any]:
    extra = {"circuitBreaker": CFG} if breaker else {}
    return {"id": "breaker-cost", "steps": [{"stepId": f"s{i}", "stepType": "core.http", "input": {"url": url},
                                             **extra} for i in range(steps)]}


async def step_cost(kinds: list[str], urls: dict[str, str], folder: Path, base: Any, steps: int, runs: int,
                    rounds: int) -> dict[str, float]:
    """Median CPU milliseconds of this process (worker and client) per core.http step, per store."""
    from flowtide.activities import all_activities
    from flowtide.workflows.engine import FlowLoopWorkflow, FlowWorkflow
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    async with harness([FlowWorkflow, FlowLoopWorkflow], all_activities()) as (env, _server):
        target = env.url + "/status/200"
        await scenarios.flowtide_run(env, flow(target, steps, False))  # warm up
        for _ in range(rounds):
            for kind in kinds:
                with store_env(kind, urls, folder, base):
                    doc = flow(target, steps, kind != "none")
                    t0 = time.process_time()
                    await asyncio.gather(*(scenarios.flowtide_run(env, doc) for _ in range(runs)))
                    samples[kind].append((time.process_time() - t0) / (steps * runs) * 1e3)
    return {k: round(statistics.median(v), 3) for k, v in samples.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a minute or two)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--baseline", default=None, help="git revision of today's file store (default: before "
                                                     "breakers could live in the database)")
    ap.add_argument("--pg-url", default=None, help="a PostgreSQL database to use (default: a private cluster "
                                                   "when Debian's binaries are here, else PostgreSQL is skipped)")
    args = ap.parse_args(argv)
    from flowtide.store.database import Store
    folder = Path(tempfile.mkdtemp(prefix="breaker-cost-"))
    urls = {"sqlite": f"sqlite:///{folder / 'flowtide.db'}"}
    with contextlib.ExitStack() as stack:
        pg = args.pg_url
        if pg is None:
            try:
                from tests.support.postgres import postgres_cluster
                pg = stack.enter_context(postgres_cluster())
            except BaseException:  # no binaries or psycopg (pytest's skip is a BaseException): no PostgreSQL
                pg = None
        if pg:
            urls["postgresql"] = pg
        for url in urls.values():
            Store(url).migrate()
        base = _baseline_module(args.baseline or _default_baseline())
        kinds = ["baseline", "file", *urls, *(f"{k}-uncached" for k in urls)]
        pairs = pair_cost(kinds, urls, folder, base, 200 if args.quick else 1000, 3 if args.quick else 7)
        steps = asyncio.run(step_cost(["none", *kinds], urls, folder, base, 10, 10 if args.quick else 20,
                                      3 if args.quick else 7))
    out = {"pair_us": pairs, "step_ms": steps,
           "vs_baseline": {k: round(v / steps["baseline"], 3) for k, v in steps.items()}}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print("CPU per enter+leave (us):", "  ".join(f"{k} {v}" for k, v in pairs.items()))
        print("CPU per core.http step (ms):", "  ".join(f"{k} {v}" for k, v in steps.items()))
        print("step CPU vs today's file store:", "  ".join(f"{k} {v}" for k, v in out["vs_baseline"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
