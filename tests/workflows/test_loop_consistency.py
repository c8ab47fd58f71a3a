"""A loop gives the same result inline and in child runs (``settings.limits.loopBatchSize``): the same vars,
counts, errors and output, and ``maxStepExecutions`` counts every step of the run either way."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.flows import run_flow

pytestmark = pytest.mark.usefixtures("worker")


def _flow(batch: int, max_steps: int | None = None) -> dict[str, Any]:
    limits: dict[str, Any] = {"loopBatchSize": batch}
    if max_steps:
        limits["maxStepExecutions"] = max_steps
    return {"id": f"loop-{batch}", "settings": {"limits": limits}, "steps": [
        {"stepId": "loop", "stepType": "core.for-each", "input": {
            "items": [0, 1, 2, 3, 4, 5], "concurrency": 1, "continueOnError": True, "steps": [
                {"stepId": "remember", "stepType": "core.set-variable", "input": {"seen": "{{ $item }}"}},
                {"stepId": "check", "stepType": "core.validate", "input": {
                    "data": "{{ $item }}", "schema": {"maximum": 3}, "failOnInvalid": True}}]}},
        {"stepId": "out", "stepType": "core.return", "input": {"output": {
            "vars": "{{ vars }}", "loop": "{{ loop.output }}"}}}]}


def _essence(record: dict[str, Any]) -> dict[str, Any]:
    return {"status": record["status"], "output": record["output"], "counts": record["counts"],
            "errors": sorted((e["stepId"], e.get("iteration"), e["code"], e["severity"]) for e in record["errors"])}


async def test_inline_and_batched_loops_give_the_same_record(client: Any, task_queue: str) -> None:
    inline = await run_flow(client, task_queue, _flow(batch=500))
    batched = await run_flow(client, task_queue, _flow(batch=2))
    assert inline["loops"][0]["batched"] is False and batched["loops"][0]["batched"] is True
    assert _essence(inline) == _essence(batched)
    assert inline["output"]["vars"] == {"seen": 5}
    assert inline["counts"]["completed"] == 1 + 4 + 1 and inline["counts"]["failed"] == 2  # loop, items, return


async def test_the_step_budget_counts_steps_in_batches_too(client: Any, task_queue: str) -> None:
    inline = await run_flow(client, task_queue, _flow(batch=500, max_steps=6))
    batched = await run_flow(client, task_queue, _flow(batch=2, max_steps=6))
    for record in (inline, batched):
        assert record["status"] == "failed"
        assert "STEP_BUDGET_EXCEEDED" in {e["code"] for e in record["errors"]}, record["errors"]
