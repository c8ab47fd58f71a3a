"""The benchmark itself works: every scenario at a tiny size, one JSON object with every figure and target.

No figure is checked against a target here (targets are for ``python bench/run.py [--quick]`` on a quiet
machine, see docs/performance.md); this only keeps the instrument from breaking.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_run_reports_every_figure() -> None:
    proc = subprocess.run([sys.executable, "bench/run.py", "--smoke", "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    for key in ("overhead_spread", "throughput_spread", "cpu_ms_per_step", "cpu_ratio", "loop_ratio",
                "waiting_start_ratio", "waiting_resume_ratio", "waiting_rss_mb", "cli_help_s", "cli_validate_s"):
        assert key in summary, key
    assert set(summary["overhead_spread"]) == {"median", "q1", "q3", "min", "max", "n"}
    assert summary["remote"]["cpu_ms_per_step"] > 0 and summary["pure_activity_events"] == 0
    assert summary["loop_counts_exact"]
    assert summary["waiting"]["runs"] == 21 and summary["waiting"]["rounds"] == 3  # 20 asked: 3 rounds of 7
    assert set(summary["waiting"]["waiting_start_spread"]) == {"median", "q1", "q3", "min", "max", "n"}
    assert set(summary["targets"]) >= {"cpu_ratio", "loop_ratio", "waiting_start_ratio", "cli_help_s"}
    # Flowtide in its default settings against the usual and the tuned hand-written workflow (issue 28)
    for key in ("latency_vs_usual", "latency_vs_tuned", "throughput_vs_usual", "cpu_vs_usual"):
        assert isinstance(summary[key], float), key
        assert set(summary[f"{key}_spread"]) == {"median", "q1", "q3", "min", "max", "n"}, key
    assert set(summary["levers"]) >= {"eager_only_vs_usual", "local_only_vs_usual", "tuned_vs_usual"}
    assert set(summary["verdicts"]) == {"latency_vs_usual", "latency_vs_tuned", "throughput_vs_usual",
                                        "cpu_vs_usual", "waiting_rss_mb", "waiting_resume_ratio"}
    assert summary["verdicts"]["waiting_rss_mb"] is None  # 20 waiting runs say nothing about 100,000


def test_bench_only_waiting_runs_that_scenario_alone() -> None:
    proc = subprocess.run([sys.executable, "bench/run.py", "--smoke", "--only", "waiting", "--waiting-runs", "6"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "waiting.runs: 6" in lines
    assert any(line.startswith("waiting_rss_mb: ") for line in lines)
    assert any(line.startswith("waiting_resume_ratio: ") for line in lines)
    assert "latency" not in proc.stdout.split("verdict:")[0]  # no other scenario ran
    assert [line for line in lines if line.startswith("verdict:")][-1].endswith(("met", "MISSED"))
