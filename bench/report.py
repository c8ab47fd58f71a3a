"""Turns the raw scenario results into the benchmark's JSON object and its text table."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

TARGETS = {"overhead_ratio": ("<=", 1.05), "throughput_ratio": (">=", 0.95), "seq_step_ms": ("<=", 5.0),
           "loop_max_history_events": ("<=", 10_240), "worker_rss_mb": ("<", 500.0),
           "pure_activity_events": ("<=", 0)}


def template_figures(root: Path) -> dict[str, Any] | None:
    """Template renders per second from ``bench/bench_templates.py``, when that script exists."""
    script = root / "bench" / "bench_templates.py"
    if not script.exists():
        return None
    try:
        done = subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, text=True,
                              timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    found = re.search(r"([\d,]+) renders/s best, ([\d,]+) median", done.stdout)
    if not found:
        return {"error": (done.stdout + done.stderr).strip()[-300:]}
    return {"renders_per_s_best": int(found[1].replace(",", "")),
            "renders_per_s_median": int(found[2].replace(",", "")), "note": done.stdout.strip()}


def _mode(res: dict[str, Any], mode: str) -> dict[str, Any]:
    seq, thr = res[f"seq_{mode}"], res[f"thr_{mode}"]
    return {"overhead_ratio": round(seq["overhead_ratio"], 3), "interpreter_ratio": round(seq["interpreter_ratio"], 3),
            "seq_step_ms": round(seq["flowtide_step_ms"], 2), "baseline_seq_step_ms": round(seq["baseline_step_ms"], 2),
            "baseline_core_http_seq_step_ms": round(seq["baseline_core_http_step_ms"], 2),
            "throughput_ratio": round(thr["throughput_ratio"], 3),
            "steps_per_s": round(thr["flowtide_steps_per_s"], 1),
            "baseline_steps_per_s": round(thr["baseline_steps_per_s"], 1)}


def summarise(res: dict[str, Any], *, quick: bool) -> dict[str, Any]:
    """The JSON object: headline figures for ``execution: local``, ``remote`` for the default mode."""
    out: dict[str, Any] = {"mode": "quick" if quick else "full", "execution": "local"}
    out.update(_mode(res, "local"))
    out["remote"] = _mode(res, "remote")
    pure, lp = res["pure"], res["loop"]
    out.update({
        "pure_steps_per_s": round(pure["steps_per_s"], 1), "pure_activity_events": pure["activity_events"],
        "pure_history_events": pure["history_events"], "pure_workflow_tasks": pure["workflow_tasks"],
        "loop_items": lp["items"], "loop_seconds": round(lp["seconds"], 1),
        "loop_items_per_s": round(lp["items_per_s"], 1), "loop_max_history_events": lp["max_history_events"],
        "loop_parent_history_events": lp["parent_history_events"], "loop_executions": lp["executions"],
        "loop_counts": {k: lp[k] for k in ("count", "succeeded", "failed", "failures_kept")},
        "loop_counts_exact": lp["counts_exact"], "loop_record_rows": lp["record_rows"],
        "worker_rss_mb": round(res["worker_rss_mb"], 1), "wall_seconds": round(res["wall_seconds"], 1),
        "templates": res.get("templates"), "server_args": res.get("server_command"),
    })
    out["targets"] = {k: _holds(out[k], op, limit) for k, (op, limit) in TARGETS.items()}
    return out


def _holds(value: float, op: str, limit: float) -> bool:
    return {"<=": value <= limit, ">=": value >= limit, "<": value < limit}[op]


def table(s: dict[str, Any]) -> str:
    """A plain-text table of the summary, targets marked."""
    ok = s["targets"]

    def mark(key: str) -> str:
        return "ok" if ok.get(key) else "MISSED"

    loc, rem = s, s["remote"]
    rows = [
        ("", "execution: local", "execution: remote", ""),
        ("seq step, Flowtide (ms)", f"{loc['seq_step_ms']:.2f}", f"{rem['seq_step_ms']:.2f}", mark("seq_step_ms")),
        ("seq step, hand-written (ms)", f"{loc['baseline_seq_step_ms']:.2f}", f"{rem['baseline_seq_step_ms']:.2f}",
         ""),
        ("seq step, hand-written + core.http (ms)", f"{loc['baseline_core_http_seq_step_ms']:.2f}",
         f"{rem['baseline_core_http_seq_step_ms']:.2f}", ""),
        ("overhead ratio (<= 1.05)", f"{loc['overhead_ratio']:.3f}", f"{rem['overhead_ratio']:.3f}",
         mark("overhead_ratio")),
        ("interpreter-only ratio", f"{loc['interpreter_ratio']:.3f}", f"{rem['interpreter_ratio']:.3f}", ""),
        ("throughput, Flowtide (steps/s)", f"{loc['steps_per_s']:.1f}", f"{rem['steps_per_s']:.1f}", ""),
        ("throughput, hand-written (steps/s)", f"{loc['baseline_steps_per_s']:.1f}",
         f"{rem['baseline_steps_per_s']:.1f}", ""),
        ("throughput ratio (>= 0.95)", f"{loc['throughput_ratio']:.3f}", f"{rem['throughput_ratio']:.3f}",
         mark("throughput_ratio")),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{r[0]:<{width}}  {r[1]:>18}  {r[2]:>18}  {r[3]}" for r in rows]
    c = s["loop_counts"]
    lines += ["",
              f"pure steps: {s['pure_steps_per_s']:.0f} steps/s, {s['pure_activity_events']} activity events, "
              f"{s['pure_history_events']} history events, {s['pure_workflow_tasks']} workflow tasks  "
              f"[{mark('pure_activity_events')}]",
              f"for-each: {s['loop_items']} items in {s['loop_seconds']:.1f} s ({s['loop_items_per_s']:.0f} items/s), "
              f"{s['loop_executions']} executions, largest history {s['loop_max_history_events']} events "
              f"[{mark('loop_max_history_events')}], parent {s['loop_parent_history_events']} events",
              f"for-each counts: {c['count']} = {c['succeeded']} succeeded + {c['failed']} failed, failures kept at "
              f"{c['failures_kept']}, exact: {s['loop_counts_exact']}; run record rows: {s['loop_record_rows']}",
              f"worker RSS (peak, bench process): {s['worker_rss_mb']:.0f} MB [{mark('worker_rss_mb')}]",
              f"templates: {json.dumps(s['templates']) if s['templates'] else 'bench/bench_templates.py not present'}",
              f"wall time: {s['wall_seconds']:.0f} s ({s['mode']} run)"]
    return "\n".join(lines)
