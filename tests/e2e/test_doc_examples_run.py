"""Every fenced example of README.md, examples/README.md and docs/ runs as written against the local stack a
reader starts with ``flowtide dev``, with no network: shell and python blocks run, flow blocks pass ``flowtide
validate``. Only blocks marked ``<!-- illustration -->`` (and ``text`` output) are skipped (CONTRIBUTING.md,
"Examples in the docs"). How they run: ``tests/support/doc_runner.py``, inside a network namespace of its own,
so the stack listens on the documented ports and nothing reaches past loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_doc_examples import CHECKED, MARK, Block

ROOT = Path(__file__).resolve().parents[2]
RAN = [b for b in CHECKED if b.lang in ("bash", "sh", "console", "python", "yaml", "json")]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every block once (one shared stack) and keep what each did."""
    unshare = shutil.which("unshare")
    assert unshare, "running the docs' examples needs util-linux's `unshare` (a private network namespace)"
    out = tmp_path_factory.mktemp("docs") / "results.json"
    # a network namespace (nothing leaves the machine) and a PID namespace: when the runner ends, the kernel
    # ends every process a block started, even one that made a session or process group of its own
    private = [unshare, "--net", "--pid", "--fork", "--kill-child"] + (
        [] if os.geteuid() == 0 else ["--map-root-user"])
    done = subprocess.run([*private, sys.executable, "-m", "tests.support.doc_runner", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=280)
    assert done.returncode == 0 and out.exists(), done.stdout + done.stderr
    return dict(json.loads(out.read_text()))


@pytest.mark.parametrize("block", RAN, ids=str)
def test_every_fenced_example_runs_as_written(ran: dict[str, Any], block: Block) -> None:
    result = ran.get(str(block))
    assert result is not None, f"{block} was not run"
    assert result["ok"], f"{block} does not run as written (fix the doc, or mark it with {MARK}):\n{result['why']}"


def test_a_failing_command_fails_its_block_unless_its_line_announces_it(tmp_path: Path) -> None:
    from tests.support.doc_runner import environment, run_page
    pages = [Block("x.md", 1, "bash", "true\nfalse\n", False),
             Block("x.md", 5, "console", "$ false   # a failed run; exit 1\nsome output\n", False),
             Block("x.md", 9, "python", "import sys\nsys.exit(3)\n", False)]
    results = run_page(pages, tmp_path, environment(tmp_path))
    assert [results[str(b)]["ok"] for b in pages] == [False, True, False], results
    assert "`false` exited 1" in results["x.md:1 (bash)"]["why"]
