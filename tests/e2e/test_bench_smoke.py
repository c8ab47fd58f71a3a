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
