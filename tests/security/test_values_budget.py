"""Bounded work and bounded values (issue 23): a run that builds too much fails promptly with a clear code."""

from __future__ import annotations

import asyncio
import resource
import time
from typing import Any

from flowtide.client.runs import start_run, wait_record
from flowtide.workflows import limits
from flowtide.workflows.language.dsl import parse_flow
from flowtide.workflows.language.templates import render


def doubling(items: int = 40, *, on_error: bool = False) -> dict[str, Any]:
    """The reported case: a for-each that doubles a string variable."""
    grow: dict[str, Any] = {"stepId": "grow", "stepType": "core.set-variable",
                            "input": {"x": "{{ vars.x }}{{ vars.x }}"}}
    return {"id": "doubling", "steps": [
        {"stepId": "init", "stepType": "core.set-variable", "input": {"x": "ab"}},
        {"stepId": "each", "stepType": "core.for-each",
         "input": {"items": list(range(items)), "steps": [grow]}}]}


async def test_a_doubling_variable_fails_promptly_with_a_clear_code(client, task_queue, worker):
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    handle = await start_run(client, parse_flow(doubling(), source="test"), {}, task_queue=task_queue)
    rec = await asyncio.wait_for(wait_record(handle), 60)
    assert rec["status"] == "failed"
    codes = {e["code"] for e in rec["errors"]}
    assert "VALUE_TOO_LARGE" in codes, rec["errors"]
    failed = next(e for e in rec["errors"] if e["code"] == "VALUE_TOO_LARGE")
    assert failed["stepId"] == "grow" and "outputBytes" in failed["message"]
    assert time.monotonic() - started < 30
    # the worker (this process) stays bounded: far below the 2.3 GB of the report
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 300, grown_mb


async def test_one_template_that_builds_too_much_fails_with_work_budget_exceeded(client, task_queue, worker):
    big = "y" * 200_000
    placeholders = "".join("{{ initial.big }}" for _ in range(100))  # 20 MB from one string
    flow = {"id": "builder", "steps": [
        {"stepId": "build", "stepType": "core.set-variable", "input": {"x": placeholders}}]}
    handle = await start_run(client, parse_flow(flow, source="test"), {"big": big}, task_queue=task_queue)
    rec = await asyncio.wait_for(wait_record(handle), 60)
    assert rec["status"] == "failed"
    assert [e["code"] for e in rec["errors"]] == ["WORK_BUDGET_EXCEEDED"]
    assert rec["errors"][0]["stepId"] == "build"


def test_a_replace_that_would_explode_is_refused_before_it_is_built():
    scope = {"s": "a" * 100_000, "b": "b" * 60_000}
    started = time.monotonic()
    try:
        render("{{ s | replace: 'a', b }}", scope)
    except Exception as exc:
        assert type(exc).__name__ == "LimitError" and "too much work" in str(exc)
    else:
        raise AssertionError("the replace was built")
    assert time.monotonic() - started < 1
    assert limits.MAX_STEP_CHARS < 6_000_000_000
