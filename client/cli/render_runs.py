"""Plain-text views for ``runs list``, ``runs watch``, ``rerun --dry-run`` and ``replay``."""

from __future__ import annotations

from typing import Any

from flowtide.client.listing import RunRow
from flowtide.client.render import ICONS, clip, duration, first_failed, when
from flowtide.client.replay import ReplayReport
from flowtide.client.rerun import RerunPlan
from flowtide.client.resolve import short_ids

BAR_WIDTH = 30


def runs_table(rows: list[RunRow]) -> str:
    """The runs list: Run ID (first 8 characters, more when needed to tell runs apart), flow, status,
    started, completed, duration, and where a failed run stopped."""
    if not rows:
        return "No runs match."
    n = short_ids([r.run_id for r in rows])
    flows = [f"{r.flow_id or '?'} v{r.flow_version if r.flow_version is not None else '?'}" for r in rows]
    fw = max(len("FLOW"), *(len(f) for f in flows))
    out = [f"{'RUN ID':{n}}  {'FLOW':{fw}}  {'STATUS':21}  {'STARTED':19}  {'COMPLETED':19}  {'DURATION':>10}  "
           "FAILED AT"]
    for r, flow in zip(rows, flows, strict=True):
        failed = f"{r.failed_step} ({r.error_code})" if r.failed_step else (r.error_code or "")
        out.append(f"{r.run_id[:n]:{n}}  {flow:{fw}}  {r.status:21}  {when(r.started_at):19}  "
                   f"{when(r.completed_at):19}  {duration(r.duration_ms):>10}  {failed}")
    return "\n".join(out)


def progress_bar(rec: dict[str, Any], width: int = BAR_WIDTH) -> str:
    """``[██████░░░░] 3 / 7 steps  running  Charge the card (retrying in 12s)``."""
    prog = rec.get("progress") or {}
    done, total = int(prog.get("done", 0)), max(1, int(prog.get("total", 0) or 1))
    filled = min(width, round(width * done / total))
    line = f"[{'█' * filled}{'░' * (width - filled)}] {done} / {prog.get('total', 0)} steps  {rec.get('status')}"
    current = next((s for s in reversed(rec.get("steps") or []) if s["status"] in ("running", "retrying")), None)
    if current is not None:
        line += f"  {ICONS.get(current['status'], '')} {clip(current.get('title') or current['stepId'], 40)}"
        retry = current.get("retry") or {}
        if current["status"] == "retrying" and retry.get("retryInS") is not None:
            line += f" (retrying in {round(retry['retryInS'])}s, attempt {retry['attempt']})"
    found = first_failed(rec)
    if found and found[1]["status"] == "failed":
        line += f"  failed at {found[1]['stepId']}: {(found[1].get('error') or {}).get('code')}"
    return line


def plan_text(plan: RerunPlan, source: str) -> str:
    """``rerun --dry-run``: which steps are reused, which run again, which of those have side effects."""
    reused = [s for s in plan.steps if s.action == "reuse"]
    again = [s for s in plan.steps if s.action in ("run again", "run")]
    risky = [s for s in again if s.side_effect]
    out = [f"Re-run of {source}: flow {plan.flow.get('id')} v{plan.flow.get('version', 1)}"
           + (f", starting at step '{plan.restart_at}'" if plan.restart_at else ", from the start"),
           f"{len(reused)} step(s) reused, {len(again)} run (again), {len(risky)} of those with side effects", ""]
    for s in plan.steps:
        label = {"reuse": "reuse recorded output", "run again": "run again", "run": "run (not reached before)",
                 "inside reused step": "skipped (inside a reused step)"}[s.action]
        effect = f"  SIDE EFFECT: {s.side_effect}" if s.side_effect else ""
        out.append(f"  {'  ' * s.depth}{s.step_id:30} {s.kind:18} {label}{effect}")
    if plan.notes:
        out += ["", "Notes:", *(f"  - {n}" for n in plan.notes)]
    return "\n".join(out)


def replay_text(report: ReplayReport, source: str) -> str:
    """The outcome of ``flowtide replay``."""
    head = f"Replayed {source} ({report.events} events, {report.activities} step activities)"
    if report.ok:
        return f"{head}: OK, the current interpreter makes the same decisions as the recorded run."
    return "\n".join([f"{head}: NOT DETERMINISTIC", f"  {report.explanation}", f"  Temporal: {report.raw}",
                      "  Running workers with this code would get stuck on runs like this one. Guard the change "
                      "with workflow.patched(), or let old runs finish on the old code first."])
