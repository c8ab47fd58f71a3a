"""Turns the raw scenario results into the benchmark's JSON object and its text table."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

# Ratios are the medians of per-round ratios (see bench/rounds.py); a target counts as met when the median
# meets it. Keys with a dot are read from the "remote" object.
TARGETS = {"overhead_ratio": ("<=", 1.05), "throughput_ratio": (">=", 0.95), "cpu_ratio": ("<=", 1.10),
           "remote.overhead_ratio": ("<=", 1.05), "remote.throughput_ratio": (">=", 0.95),
           "remote.cpu_ratio": ("<=", 1.10), "seq_step_ms": ("<=", 5.0),
           "loop_max_history_events": ("<=", 10_240), "worker_rss_mb": ("<", 500.0),
           "pure_activity_events": ("<=", 0), "loop_ratio": (">=", 0.90), "waiting_start_ratio": ("<=", 1.10),
           "waiting_resume_ratio": ("<=", 1.10), "waiting_rss_mb": ("<", 600.0), "cli_help_s": ("<", 0.3),
           "cli_validate_s": ("<", 0.6), "cli_run_first_step_s": ("<", 3.0)}


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
    return {"overhead_ratio": seq["overhead_ratio"]["median"], "overhead_spread": seq["overhead_ratio"],
            "interpreter_ratio": seq["interpreter_ratio"]["median"],
            "seq_step_ms": round(seq["flowtide_step_ms"], 2), "baseline_seq_step_ms": round(seq["baseline_step_ms"], 2),
            "baseline_core_http_seq_step_ms": round(seq["baseline_core_http_step_ms"], 2),
            "throughput_ratio": thr["throughput_ratio"]["median"], "throughput_spread": thr["throughput_ratio"],
            "steps_per_s": round(thr["flowtide_steps_per_s"], 1),
            "baseline_steps_per_s": round(thr["baseline_steps_per_s"], 1),
            # CPU per step from the throughput scenario: the figure that sizes a fleet of workers
            "cpu_ms_per_step": thr["cpu_ms_per_step"], "baseline_cpu_ms_per_step": thr["baseline_cpu_ms_per_step"],
            "cpu_ratio": thr["cpu_ratio"]["median"], "cpu_spread": thr["cpu_ratio"]}


def summarise(res: dict[str, Any], *, mode: str) -> dict[str, Any]:
    """The JSON object: headline figures for ``execution: local``, ``remote`` for the default mode."""
    out: dict[str, Any] = {"mode": mode, "execution": "local"}
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
        "loop_ratio": res["loop_vs_hand"]["loop_ratio"]["median"], "loop_ratio_spread": res["loop_vs_hand"],
        **{k: v for k, v in res["waiting"].items() if k.startswith("waiting_")}, "waiting": res["waiting"],
        **(res.get("cli") or {}),
    })
    out.update(headline(res))
    out["targets"] = {k: _holds(_get(out, k), op, limit) for k, (op, limit) in TARGETS.items()}
    out["verdicts"] = verdicts(out)
    return out


def _get(summary: dict[str, Any], key: str) -> Any:
    obj = summary
    for part in key.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _holds(value: float | None, op: str, limit: float) -> bool | None:
    if value is None:
        return None  # not measured in this run (say, port 7233 was taken)
    return {"<=": value <= limit, ">=": value >= limit, "<": value < limit}[op]


def _cpu(m: dict[str, Any]) -> str:
    return f"{m['cpu_ms_per_step']:.2f} / {m['baseline_cpu_ms_per_step']:.2f}"


def _spread(r: dict[str, Any]) -> str:
    return f"{r['median']:.3f} [{r['q1']:.3f}-{r['q3']:.3f}]"


def table(s: dict[str, Any]) -> str:
    """A plain-text table of the summary, targets marked."""
    ok = s["targets"]

    def mark(key: str) -> str:
        return {True: "ok", False: "MISSED"}.get(ok.get(key), "n/a")  # type: ignore[arg-type]

    loc, rem = s, s["remote"]
    rows = [
        ("", "execution: local", "execution: remote", ""),
        ("seq step, Flowtide (ms)", f"{loc['seq_step_ms']:.2f}", f"{rem['seq_step_ms']:.2f}", mark("seq_step_ms")),
        ("seq step, hand-written (ms)", f"{loc['baseline_seq_step_ms']:.2f}", f"{rem['baseline_seq_step_ms']:.2f}",
         ""),
        ("seq step, hand-written + core.http (ms)", f"{loc['baseline_core_http_seq_step_ms']:.2f}",
         f"{rem['baseline_core_http_seq_step_ms']:.2f}", ""),
        ("overhead ratio (<= 1.05), median [q1-q3]", _spread(loc["overhead_spread"]),
         _spread(rem["overhead_spread"]), mark("overhead_ratio") + "/" + mark("remote.overhead_ratio")),
        ("interpreter-only ratio", f"{loc['interpreter_ratio']:.3f}", f"{rem['interpreter_ratio']:.3f}", ""),
        ("throughput, Flowtide (steps/s)", f"{loc['steps_per_s']:.1f}", f"{rem['steps_per_s']:.1f}", ""),
        ("throughput, hand-written (steps/s)", f"{loc['baseline_steps_per_s']:.1f}",
         f"{rem['baseline_steps_per_s']:.1f}", ""),
        ("throughput ratio (>= 0.95), median [q1-q3]", _spread(loc["throughput_spread"]),
         _spread(rem["throughput_spread"]), mark("throughput_ratio") + "/" + mark("remote.throughput_ratio")),
        ("CPU per step, Flowtide / hand-written (ms)", _cpu(loc), _cpu(rem), ""),
        ("CPU ratio (<= 1.10), median [q1-q3]", _spread(loc["cpu_spread"]), _spread(rem["cpu_spread"]),
         mark("cpu_ratio") + "/" + mark("remote.cpu_ratio")),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [*headline_lines(s), ""]
    lines += [f"{r[0]:<{width}}  {r[1]:>18}  {r[2]:>18}  {r[3]}" for r in rows]
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
              f"loop vs hand-written batched loop (>= 0.90): {_spread(s['loop_ratio_spread']['loop_ratio'])} "
              f"[{mark('loop_ratio')}]",
              f"waiting runs: {s['waiting']['runs']} per side, start ratio "
              f"{_spread(s['waiting']['waiting_start_spread'])} [{mark('waiting_start_ratio')}], resume ratio "
              f"{_spread(s['waiting']['waiting_resume_spread'])} "
              f"[{mark('waiting_resume_ratio')}], RSS while 2 x {s['waiting']['runs']} wait "
              f"{s['waiting_rss_mb']:.0f} MB [{mark('waiting_rss_mb')}], "
              f"{s['waiting']['history_events_per_run']} events per run",
              f"CLI: --help {s.get('cli_help_s')} s [{mark('cli_help_s')}], validate {s.get('cli_validate_s')} s "
              f"[{mark('cli_validate_s')}], run to first step (no server) {s.get('cli_run_first_step_s')} s "
              f"[{mark('cli_run_first_step_s')}]",
              f"wall time: {s['wall_seconds']:.0f} s ({s['mode']} run; a shared 2-core machine: read the spreads)",
              "", *verdict_lines(s)]
    return "\n".join(lines)


# The issue-28 targets, one verdict line each at the end of the text output. (key, op, limit, label); the
# waiting RSS verdict counts only when the run measured at least WAITING_AT runs per side.
VERDICTS = (("latency_vs_usual", "<=", 0.80, "latency, Flowtide defaults / usual hand-written"),
            ("latency_vs_tuned", "<=", 1.05, "latency, Flowtide defaults / tuned hand-written"),
            ("throughput_vs_usual", ">=", 1.10, "throughput, Flowtide defaults / usual hand-written"),
            ("cpu_vs_usual", "<=", 1.0, "CPU per step, Flowtide defaults / usual hand-written"),
            ("waiting_rss_mb", "<", 1024.0, "worker RSS while 100,000 runs per side wait (MB)"),
            ("waiting_resume_ratio", "<=", 1.10, "waiting runs: resume time, Flowtide / hand-written"))
WAITING_AT = 100_000


def headline(res: dict[str, Any]) -> dict[str, Any]:
    """Flowtide in its default settings against the usual and the tuned hand-written workflow."""
    out: dict[str, Any] = {}
    if "latency" in res:
        lat = res["latency"]
        out.update({"latency_vs_usual": lat["latency_vs_usual"]["median"],
                    "latency_vs_usual_spread": lat["latency_vs_usual"],
                    "latency_vs_tuned": lat["latency_vs_tuned"]["median"],
                    "latency_vs_tuned_spread": lat["latency_vs_tuned"], "latency": lat})
    if "throughput" in res:
        thr = res["throughput"]
        out.update({"throughput_vs_usual": thr["throughput_vs_usual"]["median"],
                    "throughput_vs_usual_spread": thr["throughput_vs_usual"],
                    "cpu_vs_usual": thr["cpu_vs_usual"]["median"], "cpu_vs_usual_spread": thr["cpu_vs_usual"],
                    "throughput": thr})
    if "levers" in res:
        out["levers"] = res["levers"]
    if "waiting" in res:
        out.update({k: v for k, v in res["waiting"].items() if k.startswith("waiting_")})
        out["waiting"] = res["waiting"]
    return out


def verdicts(s: dict[str, Any]) -> dict[str, bool | None]:
    """Each issue-28 target: met, missed, or ``None`` (not measured in this run)."""
    out: dict[str, bool | None] = {}
    for key, op, limit, _ in VERDICTS:
        value = s.get(key)
        if key == "waiting_rss_mb" and (s.get("waiting") or {}).get("runs", 0) < WAITING_AT:
            value = None
        out[key] = _holds(value, op, limit)
    return out


def verdict_lines(s: dict[str, Any]) -> list[str]:
    """One line per target: the figure (median [q1-q3] where there are rounds) and met / MISSED / not measured."""
    lines = []
    for key, op, limit, label in VERDICTS:
        held = s["verdicts"][key]
        spread = s.get(f"{key}_spread") or (s.get("waiting") or {}).get(key.replace("_ratio", "_spread"))
        value = _spread(spread) if isinstance(spread, dict) and "q1" in spread else s.get(key)
        note = ""
        if key == "waiting_rss_mb" and "waiting" in s:
            note = f" (measured with {s['waiting']['runs']:,} per side)"
        lines.append(f"verdict: {label} {op} {limit}: {value}{note}: "
                     + {True: "met", False: "MISSED", None: "not measured"}[held])
    return lines


def summarise_only(res: dict[str, Any], *, mode: str) -> dict[str, Any]:
    """The JSON object of ``--only``: the group's figures, the worker's peak RSS and the verdicts."""
    out = {"mode": mode, "only": True, **headline(res), "worker_rss_mb": round(res["worker_rss_mb"], 1),
           "wall_seconds": round(res["wall_seconds"], 1), "server_args": res.get("server_command")}
    out["verdicts"] = verdicts(out)
    return out


def headline_lines(s: dict[str, Any]) -> list[str]:
    """The text lines of the headline, lever and waiting figures that ``s`` holds."""
    lines = []
    if "latency" in s:
        lat = s["latency"]
        lines.append(f"latency, {lat['steps']} GETs, ms per step: Flowtide defaults {lat['flowtide_step_ms']}, "
                     f"usual {lat['usual_step_ms']}, tuned {lat['tuned_step_ms']} ({lat['reps']} rounds)")
    if "throughput" in s:
        thr = s["throughput"]
        lines.append(f"throughput, {thr['runs']} x {thr['steps']} GETs: Flowtide defaults "
                     f"{thr['flowtide_steps_per_s']} steps/s, usual {thr['usual_steps_per_s']}; CPU ms per step "
                     f"{thr['flowtide_cpu_ms_per_step']} / {thr['usual_cpu_ms_per_step']}")
    if "levers" in s:
        lv = s["levers"]
        lines.append("levers, hand-written, time / usual: " + ", ".join(
            f"{v} {_spread(lv[f'{v}_vs_usual'])}" for v in ("eager_only", "local_only", "tuned")))
    if "waiting" in s:
        w = s["waiting"]
        lines += [f"waiting.runs: {w['runs']}", f"waiting_rss_mb: {w['waiting_rss_mb']} (before the starts: "
                  f"{w['rss_before_mb']})", f"waiting_resume_ratio: {_spread(w['waiting_resume_spread'])} "
                  f"({w.get('resumed', w['runs'])} oldest runs per side resumed)",
                  f"waiting_start_ratio: {_spread(w['waiting_start_spread'])}; seconds to start "
                  f"{w['start_seconds']}, to resume {w['resume_seconds']}"]
    return lines


def only_table(s: dict[str, Any]) -> str:
    """The text output of ``--only``: the group's lines, then every verdict."""
    return "\n".join([*headline_lines(s), f"worker RSS (peak): {s['worker_rss_mb']:.0f} MB, wall time "
                      f"{s['wall_seconds']:.0f} s ({s['mode']} run; a shared 2-core machine: read the spreads)",
                      *verdict_lines(s)])
