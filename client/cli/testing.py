"""``flowtide test [PATH...]``: run ``*.test.yaml`` cases on the time-skipping test server (docs/testing.md).

Exit codes: 0 every case passed, 1 a case failed, 2 a bad test file or no test server installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from flowtide.client.cli.common import EXIT_INVALID
from flowtide.client.cli.parsers import EXIT_CODES, add_command

TEST_EXIT_CODES = "0 every case passed, 1 a case failed, 2 a bad test file or no test server"


def register(sub: Any) -> None:
    """Add ``test`` to the ``flowtide`` parser's subcommands."""
    sp = add_command(sub, "test", f"{__name__}:cmd_test", "run flow tests (*.test.yaml) with mocked steps in "
                     "virtual time", "flowtide test flows/ --junit report.xml", temporal=False)
    sp.epilog = sp.epilog.replace(EXIT_CODES, TEST_EXIT_CODES)
    sp.add_argument("paths", nargs="*", default=["."], help="test files or folders (default: .)")
    sp.add_argument("--junit", metavar="FILE", help="write JUnit XML for CI")
    sp.add_argument("--allow-network", action="store_true",
                    help="let steps without a mock reach the outside world (default: they fail with MOCK_MISSING)")


def _print_result(result: Any) -> None:
    mark = "PASS" if result.passed else "FAIL"
    print(f"{mark} {result.file} :: {result.name} ({result.seconds:.2f}s)")
    if not result.passed:
        for line in result.explain().splitlines():
            print(f"    {line}")


async def cmd_test(args: argparse.Namespace) -> int:
    """Run the test files under ``args.paths``; print each case, the diffs, coverage and a summary."""
    from flowtide.client.testing import TestServerMissing, junit_xml, run_paths, test_environment
    try:
        async with test_environment() as env:
            outcome = await run_paths(args.paths, env=env, allow_network=args.allow_network,
                                      on_result=None if args.json else _print_result)
    except TestServerMissing as exc:
        if args.json:  # the shape of every command's error under --json (client/cli/errors.report)
            print(json.dumps({"error": {"code": "TEST_SERVER_MISSING", "message": str(exc)}}))
        else:
            print(f"flowtide: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.junit:
        import asyncio
        await asyncio.to_thread(Path(args.junit).write_text, junit_xml(outcome.results, outcome.errors), "utf-8")
    if args.json:
        print(json.dumps({
            "passed": sum(r.passed for r in outcome.results), "failed": sum(not r.passed for r in outcome.results),
            "errors": outcome.errors, "coverage": {f: c.lines() for f, c in outcome.coverage.items()},
            "cases": [{"file": r.file, "name": r.name, "passed": r.passed, "seconds": round(r.seconds, 3),
                       "failures": r.explain().splitlines()} for r in outcome.results]}, indent=2))
        return outcome.exit_code
    for path, problems in outcome.errors.items():
        for line in problems.splitlines():
            print(f"ERROR {path}: {line}", file=sys.stderr)
    for path, cover in outcome.coverage.items():
        print(f"coverage {path}: " + "; ".join(cover.lines()))
    failed = sum(not r.passed for r in outcome.results)
    print(f"{len(outcome.results) - failed} passed, {failed} failed, {len(outcome.errors)} bad file(s)")
    return outcome.exit_code
