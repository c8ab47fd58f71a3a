"""``flowtide rerun --failed-items``: only the failed loop items run again, inline and batched (issue 18 C)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowtide.client.rerun import rerun_failed_items
from flowtide.client.runs import start_run, wait_record
from flowtide.workflows.language.dsl import parse_flow
from tests.support.cli import flowtide
from tests.support.flows import step

ITEMS = 20
BAD = [3, 7, 11, 15, 19]  # their first call answers 404 (not retried); a second call answers 200


def loop_flow(batch: int) -> dict[str, Any]:
    url = "{{ initial.base }}/flaky?status=404&fail={{ $item }}&key={{ initial.key }}-{{ $index }}"
    return {"id": "failed-items", "settings": {"limits": {"loopBatchSize": batch}}, "steps": [
        {"stepId": "start", "stepType": "core.http", "input": {"url": "{{ initial.base }}/ok"}},
        {"stepId": "each", "stepType": "core.for-each", "input": {
            "items": "{{ initial.fails }}", "concurrency": 3, "continueOnError": True, "steps": [
                {"stepId": "fetch", "stepType": "core.http", "retryPolicy": {"maxRetries": 0}, "input": {"url": url}},
                {"stepId": "note", "stepType": "core.set-variable",
                 "input": {"i": "{{ $index }}", "status": "{{ fetch.status }}"}}]}},
        {"stepId": "after", "stepType": "core.set-variable", "input": {"n": "{{ each.results | size }}"}}]}


async def first_run(client: Any, task_queue: str, service: Any, key: str, batch: int) -> dict[str, Any]:
    payload = {"base": service.url, "key": key, "fails": [1 if i in BAD else 0 for i in range(ITEMS)]}
    rec = await wait_record(await start_run(client, parse_flow(loop_flow(batch)), payload, task_queue=task_queue))
    assert rec["status"] == "completed_with_errors" and step(rec, "each")["output"]["failed"] == len(BAD)
    return rec


def check_rerun(rec: dict[str, Any]) -> None:
    assert rec["status"] == "completed", rec.get("errors")
    out = step(rec, "each")["output"]
    assert (out["count"], out["succeeded"], out["failed"]) == (ITEMS, ITEMS, 0)
    assert out["results"] == [{"i": i, "status": 200} for i in range(ITEMS)]  # all 20, in the original order
    assert step(rec, "after")["output"] == {"n": ITEMS}
    if not rec["loops"][0]["batched"]:  # (a batched loop's iteration rows are in its child runs)
        assert sorted(s["iteration"] for s in rec["steps"] if s["stepId"] == "fetch") == BAD
    assert [s["stepId"] for s in rec["steps"] if s.get("reused")] == ["start"]


@pytest.mark.usefixtures("worker", "cli_env")
async def test_rerun_failed_items_calls_the_provider_for_those_only(client, task_queue, service, key, capsys):
    old = await first_run(client, task_queue, service, key, batch=500)
    code, out, _ = await flowtide(capsys, "rerun", old["runId"], "--failed-items", "--dry-run")
    assert code == 0 and "loop 'each': 5 of 20 item(s) run again, 15 reused" in out
    before = service.calls["/flaky"], service.calls["/ok"]
    code, out, err = await flowtide(capsys, "rerun", old["runId"], "--failed-items", "--no-worker", "--json")
    assert code == 0, err
    check_rerun(json.loads(out))
    assert (service.calls["/flaky"], service.calls["/ok"]) == (before[0] + len(BAD), before[1])


@pytest.mark.usefixtures("worker")
async def test_rerun_failed_items_of_a_batched_loop(client, task_queue, service, key):
    old = await first_run(client, task_queue, service, key, batch=3)  # batches of 3: both runs batched
    assert old["loops"][0]["batched"]
    before = service.calls["/flaky"]
    rec = await wait_record(await rerun_failed_items(client, old["runId"]))
    check_rerun(rec)
    assert rec["loops"][0]["batched"] and service.calls["/flaky"] == before + len(BAD)
