"""Test flows before they run: mocked steps, the real engine, virtual time (``flowtide test``, docs/testing.md).

    files = find_test_files(["flows/"])
    async with test_environment() as env:
        outcome = await run_paths(["flows/"], env=env)

``flowtide.testing`` is the public face, with the pytest fixtures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from temporalio.testing import WorkflowEnvironment

from flowtide.client.testing.expect import Mismatch, check
from flowtide.client.testing.report import Coverage, junit_xml
from flowtide.client.testing.runner import (
    INSTALL_HINT,
    CaseResult,
    TestServerMissing,
    run_case,
    test_environment,
    test_server_binary,
)
from flowtide.client.testing.spec import (
    Case,
    Signal,
    TestFile,
    TestFileError,
    find_test_files,
    load_test_file,
    make_case,
)

__all__ = [
    "INSTALL_HINT",
    "Case",
    "CaseResult",
    "Coverage",
    "Mismatch",
    "Signal",
    "SuiteOutcome",
    "TestFile",
    "TestFileError",
    "TestServerMissing",
    "check",
    "find_test_files",
    "junit_xml",
    "load_test_file",
    "make_case",
    "run_case",
    "run_paths",
    "test_environment",
    "test_server_binary",
]


@dataclass
class SuiteOutcome:
    """Everything a ``flowtide test`` session did: case results, bad files, coverage per flow file."""

    results: list[CaseResult] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # test file -> why it could not run
    coverage: dict[str, Coverage] = field(default_factory=dict)  # test file -> its flow's coverage

    @property
    def exit_code(self) -> int:
        """2 a test file is bad, else 1 a case failed, else 0."""
        return 2 if self.errors else 1 if any(not r.passed for r in self.results) else 0


async def run_paths(paths: list[str], *, env: WorkflowEnvironment, allow_network: bool = False,
                    on_result: Callable[[CaseResult], None] | None = None) -> SuiteOutcome:
    """Load every test file under ``paths`` and run its cases on ``env`` (a bad file is reported, not run)."""
    outcome = SuiteOutcome()
    try:
        files = find_test_files(paths)
    except TestFileError as err:
        outcome.errors[err.path] = "\n".join(err.problems)
        return outcome
    for path in files:
        try:
            test_file = load_test_file(path)
        except TestFileError as err:
            outcome.errors[err.path] = "\n".join(err.problems)
            continue
        cover = outcome.coverage[test_file.path] = Coverage.of(test_file.cases[0].wire)
        for case in test_file.cases:
            result = await run_case(env, case, file=test_file.path, allow_network=allow_network)
            cover.add(result.record)
            outcome.results.append(result)
            if on_result is not None:
                on_result(result)
    return outcome
