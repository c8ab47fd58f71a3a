"""Failed-items re-runs of a loop: run only the items that failed or never ran, reuse the other results.

``flowtide rerun --failed-items`` passes, next to the reused step outputs, ``options.reuse["<loopId>#items"]
= {"count": N, "rerun": [indexes], "results": [recorded results] | None}`` for each top-level loop with
failed items (the key is no step id, so no step is mistaken for it). The loop then runs the listed items
only, under their own indexes (``$index``, activity ids), and puts their results among the recorded ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flowtide.workflows.contracts import WireStep
from flowtide.workflows.engine._state import Frame
from flowtide.workflows.engine.loops.iterate import Tally

if TYPE_CHECKING:
    from flowtide.workflows.engine._protocols import LoopHost

ITEMS_KEY = "#items"


def planned(wf: LoopHost, step: WireStep, frame: Frame, count: int) -> dict[str, Any] | None:
    """The re-run plan of this loop (taken: a loop run again later in the run runs all its items), or None
    when there is none or it does not fit the items (another item count)."""
    if frame.iteration is not None:
        return None  # only loops outside iterations: nested loops run again with their iteration
    plan = wf.reuse.pop(step["id"] + ITEMS_KEY, None)
    if not isinstance(plan, dict) or plan.get("count") != count or not isinstance(plan.get("rerun"), list):
        return None
    rerun = sorted({int(i) for i in plan["rerun"] if isinstance(i, int) and 0 <= i < count})
    results = plan.get("results")
    if not isinstance(results, list) or len(results) != count:
        results = None
    return {"rerun": rerun, "results": results}


def subset(items: Sequence[Any], plan: dict[str, Any]) -> list[Any]:
    """The items that run again, in loop order."""
    return [items[i] for i in plan["rerun"]]


def combine(part: Tally, plan: dict[str, Any], count: int) -> Tally:
    """The whole loop's tally: ``part`` (the items run again) plus the reused ones, results in item order."""
    rerun: list[int] = plan["rerun"]
    reused = count - len(rerun)
    tally = Tally(count=count, done=count - (len(rerun) - part.done), succeeded=part.succeeded + reused,
                  failed=part.failed, failures=part.failures, first_halt=part.first_halt, ended=part.ended,
                  errors=part.errors, errors_omitted=part.errors_omitted, by_code=part.by_code,
                  threshold=part.threshold, throttle=part.throttle)
    if plan["results"] is not None and part.results is not None:
        results = list(plan["results"])
        for k, value in enumerate(part.results):
            results[rerun[k]] = value
        tally.results = results
    return tally
