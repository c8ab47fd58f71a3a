"""``flowtide rerun --failed-items``: each top-level for-each runs only its failed (or never run) items.

The steps that completed before the restart point (the first failed step or the first loop with failed
items) are reused as with ``--from-failed``; each loop from there on with failed items gets
``reuse["<loopId>#items"]`` (see ``workflows.engine.loops.reuse``): its item count, the indexes to run again and
the recorded results, which the new run keeps for the items that succeeded.
"""

from __future__ import annotations

from typing import Any

from flowtide.client.reuse import DONE, RerunRefused, reusable
from flowtide.workflows.engine import ITEMS_KEY
from flowtide.workflows.kinds import FOR_EACH

MAX_RERUN_INDEXES = 10_000  # the indexes ride in the run's input and the loop's child specs (2 MiB payloads)


def _top_level(row: dict[str, Any]) -> bool:
    return row.get("iteration") is None and not row.get("path") and not row.get("retried")


def _loop_plan(row: dict[str, Any], notes: list[str]) -> dict[str, Any] | None:
    """What ``row`` (a loop's step row) runs again, or None when it cannot be told (the loop runs whole)."""
    out = row.get("output")
    sid = row["stepId"]
    if not isinstance(out, dict) or not isinstance(out.get("count"), int) or out.get("$truncated"):
        notes.append(f"loop '{sid}': its recorded output is missing or was cut, so all its items run again")
        return None
    if out.get("failuresOmitted"):
        notes.append(f"loop '{sid}': only the first {len(out.get('failures') or [])} failed items were recorded, "
                     "so all its items run again")
        return None
    count = out["count"]
    done = count - int(out.get("notRun") or 0)
    if count - done > MAX_RERUN_INDEXES:
        notes.append(f"loop '{sid}': {count - done} items never ran, too many to list: all its items run again")
        return None
    rerun = sorted({int(f["index"]) for f in out.get("failures") or []} | set(range(done, count)))
    results = out.get("results")
    if isinstance(results, list):
        results = results + [None] * (count - len(results))
    else:
        results = None
        notes.append(f"loop '{sid}': its results were not kept ({count} items), so its output has no results")
    notes.append(f"loop '{sid}': {len(rerun)} of {count} item(s) run again, {count - len(rerun)} reused")
    return {"count": count, "rerun": rerun, "results": results}


def _has_failed_items(row: dict[str, Any]) -> bool:
    out = row.get("output")
    return (row["stepType"] == FOR_EACH and isinstance(out, dict)
            and bool(out.get("failed") or out.get("notRun")))


def restart_point(record: dict[str, Any]) -> int | None:
    """Index in ``record["steps"]`` of the first failed step or loop with failed or unrun items."""
    for i, row in enumerate(record.get("steps") or []):
        if not _top_level(row):
            continue
        if _has_failed_items(row) or (row["status"] not in DONE | {"skipped"} and row["stepType"] != "core.if"):
            return i
    return None


def failed_items_reuse(record: dict[str, Any], notes: list[str]) -> tuple[dict[str, Any], int]:
    """``options.reuse`` for a failed-items re-run, and the index of its restart point.

    Raises:
        RerunRefused: the run has no failed step and no loop with failed items.
    """
    stop = restart_point(record)
    if stop is None:
        raise RerunRefused(f"run {record.get('runId')} has no failed items or steps to run again; "
                           "re-run it from the start without --failed-items")
    reuse = reusable(record, notes, stop)
    rows = record.get("steps") or []
    for row in rows[stop:]:
        if _top_level(row) and _has_failed_items(row) and row["stepId"] + ITEMS_KEY not in reuse:
            plan = _loop_plan(row, notes)
            if plan is not None:
                reuse[row["stepId"] + ITEMS_KEY] = plan
    return reuse, stop


def items_to_run(reuse: dict[str, Any]) -> int:
    """How many loop items the re-run runs again (over all loops with a plan)."""
    return sum(len(v["rerun"]) for k, v in reuse.items() if k.endswith(ITEMS_KEY))
