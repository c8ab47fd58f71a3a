"""What a rerun may take over from a recorded run: the steps that completed before its restart point.

``reusable`` is shared by ``--from-failed`` (``client.rerun``) and ``--failed-items`` (``client.rerun_items``).
"""

from __future__ import annotations

from typing import Any

from flowtide.workflows.kinds import NOT_REUSABLE

DONE = frozenset({"completed", "warning"})

class RerunRefused(Exception):  # noqa: N818 - shown to the user as one line (exit 2)
    """The rerun cannot be planned as asked."""


def restart_index(record: dict[str, Any]) -> int | None:
    """Index in ``record["steps"]`` of the first failed step, else of the first unfinished one."""
    rows = record.get("steps") or []
    first = record.get("firstFailedStep")
    for i, s in enumerate(rows):
        if first and s["stepId"] == first and s["status"] == "failed" and not s.get("retried"):
            return i
    for i, s in enumerate(rows):
        if s["status"] not in DONE | {"skipped"} and not s.get("retried") and s["stepType"] not in ("core.if",):
            return i
    return None


def _meta(row: dict[str, Any]) -> dict[str, Any]:
    return {"success": True, "skipped": False, "operationalStatus": "warning" if row["status"] == "warning" else "ok",
            "error": None, "operationalErrors": row.get("warnings") or [], "attempts": row.get("attempts") or 1,
            "durationMs": row.get("durationMs") or 0, "reusedFrom": row.get("startedAt")}


def reusable(record: dict[str, Any], notes: list[str], stop: int | None = None) -> dict[str, Any]:
    """``options.reuse`` for the steps that completed before the restart point (outside loop iterations):
    ``stop``, else the first failed or unfinished step."""
    stop = restart_index(record) if stop is None else stop
    if stop is None:
        raise RerunRefused(f"run {record.get('runId')} has no failed or unfinished step to start from; "
                           "re-run it from the start without --from-failed")
    if record.get("stepsTruncated"):
        notes.append(f"the run record kept only its newest steps ({record['stepsTruncated']} older rows were cut): "
                     "those steps run again")
    if record.get("stepsSummarised"):
        notes.append(f"the long run's record summarised its {record['stepsSummarised']['rows']} oldest step rows "
                     "as counts: those steps run again")
    reuse: dict[str, Any] = {}
    for row in (record.get("steps") or [])[:stop]:
        sid = row["stepId"]
        if row["status"] not in DONE or row.get("iteration") is not None or row.get("path") or row.get("retried") \
                or row["stepType"] in NOT_REUSABLE or sid in reuse:
            continue
        out = row.get("output")
        if isinstance(out, dict) and out.get("$truncated"):
            notes.append(f"step '{sid}': its recorded output was cut to a preview (too large), so it runs again")
            continue
        reuse[sid] = {"output": out, "meta": _meta(row)}
    return reuse
