"""Big for-each loops in child runs: exact counts, kept failures, bounded histories (issue 6).

The loops here are small, with ``settings.limits.loopBatchSize`` (and, where a test says so, the history
budgets) turned down, so the batching paths of a 100,000-item loop run in a couple of seconds.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from flowtide.client.runs import start_run, wait_record
from flowtide.workflows.engine.loops import batches as _batches
from flowtide.workflows.language.dsl import parse_flow
from tests.support.flows import histories, step

ITEMS = 55
FAILING = [i for i in range(ITEMS) if i % 7 == 0]  # 0, 7, ..., 49: their GET answers 404


def loop_flow(url: str, *, batch: int, items: Any = "{{ initial.ids }}", concurrency: int = 4) -> dict[str, Any]:
    return {"id": "batched", "settings": {"limits": {"loopBatchSize": batch}}, "steps": [
        {"stepId": "each", "stepType": "core.for-each", "input": {
            "items": items, "concurrency": concurrency, "continueOnError": True,
            "steps": [{"stepId": "fetch", "stepType": "core.http", "retryPolicy": {"maxRetries": 0},
                       "input": {"url": url + "/customers/{{ $item }}"}}]}},
        {"stepId": "after", "stepType": "core.set-variable",
         "input": {"failed": "{{ each.failed }}", "errors": "{{ $errors | size }}"}}]}


def payload() -> dict[str, Any]:
    return {"ids": ["missing" if i in FAILING else str(i) for i in range(ITEMS)]}


async def run(client: Client, task_queue: str, doc: dict[str, Any], data: Any
              ) -> tuple[dict[str, Any], WorkflowHandle[Any, Any]]:
    handle = await start_run(client, parse_flow(doc, source="test"), data, task_queue=task_queue)
    return await wait_record(handle), handle


def check_loop(rec: dict[str, Any]) -> dict[str, Any]:
    out = step(rec, "each")["output"]
    assert (out["count"], out["succeeded"], out["failed"]) == (ITEMS, ITEMS - len(FAILING), len(FAILING))
    assert sorted(f["index"] for f in out["failures"]) == FAILING
    assert {f["code"] for f in out["failures"]} == {"HTTP_CLIENT_ERROR"}
    assert step(rec, "after")["output"] == {"failed": len(FAILING), "errors": len(FAILING)}
    assert sorted(e["iteration"] for e in rec["errors"]) == FAILING
    assert rec["status"] == "completed_with_errors"
    return dict(out)


async def test_batched_loop_counts_exactly_and_keeps_histories_small(client, task_queue, worker, service):
    rec, handle = await run(client, task_queue, loop_flow(service.url, batch=10), payload())
    out = check_loop(rec)
    assert out["results"][1]["body"]["id"] == "1"  # 55 items: results are still kept, in item order
    assert out["results"][7]["status"] == 404  # a failed item's output stays readable
    # The run record shows the loop as one row with its summary, not one row per item.
    assert [s["stepId"] for s in rec["steps"]] == ["each", "after"]
    assert rec["loops"] == [{"stepId": "each", "count": ITEMS, "succeeded": ITEMS - len(FAILING),
                             "failed": len(FAILING), "batched": True}]
    lengths = {k: max(runs) for k, runs in (await histories(client, handle)).items()}
    batches = {k: v for k, v in lengths.items() if k.startswith(f"{handle.id}-each-b")}
    assert len(batches) == 6  # ceil(55 / 10), run one after another by the coordinator
    assert f"{handle.id}-each-loop" in lengths
    assert lengths[handle.id] < 40  # the parent: its own steps and one child, whatever the item count
    assert max(batches.values()) < 10 * 6 + 20  # at most 6 events per remote step of 10 items, + overhead


async def test_history_budgets_split_batches_and_continue_the_coordinator(
        client, task_queue, worker, service, monkeypatch: pytest.MonkeyPatch):
    # Budgets this small make every batch child stop early and the coordinator continue as new several
    # times: the counts must come out exactly the same.
    monkeypatch.setattr(_batches, "HISTORY_BUDGET", 25)
    monkeypatch.setattr(_batches, "COORDINATOR_EVENTS", 20)
    doc = loop_flow(service.url, batch=10, concurrency=2)
    doc["settings"]["execution"] = "remote"  # three events per item (a local call has one): the budgets bite
    rec, handle = await run(client, task_queue, doc, payload())
    check_loop(rec)
    lengths = await histories(client, handle)
    assert len(lengths[f"{handle.id}-each-loop"]) > 1  # the coordinator continued as new
    batches = [k for k in lengths if k.startswith(f"{handle.id}-each-b")]
    assert len(batches) > 6  # batch children stopped early; later ones took the rest


async def test_integer_items_and_an_inline_loop(client, task_queue, worker, service):
    doc = loop_flow(service.url, batch=500, items=12)
    rec, _ = await run(client, task_queue, doc, {})
    out = step(rec, "each")["output"]
    assert (out["count"], out["succeeded"], out["failed"]) == (12, 12, 0)
    assert [r["body"]["id"] for r in out["results"]] == [str(i) for i in range(12)]
    assert rec["loops"][0]["batched"] is False
    assert len([s for s in rec["steps"] if s["stepId"] == "fetch"]) == 12  # inline: one row per iteration


async def test_a_halting_item_stops_the_batched_loop(client, task_queue, worker, service):
    doc = loop_flow(service.url, batch=5, concurrency=1)
    doc["steps"][0]["input"]["continueOnError"] = False
    data = {"ids": [str(i) for i in range(12)] + ["missing"] + [str(i) for i in range(30)]}
    rec, _ = await run(client, task_queue, doc, data)
    assert rec["status"] == "failed"
    assert rec["firstFailedStep"] == "fetch"
    out = step(rec, "each")["output"]
    assert (out["succeeded"], out["failed"], out["notRun"]) == (12, 1, 30)
    assert all(s["stepId"] != "after" for s in rec["steps"])


@pytest.mark.usefixtures("worker")
async def test_local_execution_loop_with_a_retried_item_completes(client, task_queue, service):
    """Local activities in a batch child, one of them waiting on a retry when the batch ends: the child must
    not send its completion with local-activity markers after it (Temporal refuses that command sequence
    and the run would hang, retrying the workflow task forever)."""
    doc = {"id": "local-loop", "settings": {"execution": "local"}, "steps": [
        {"stepId": "each", "stepType": "core.for-each", "input": {
            "items": 520, "concurrency": 50, "continueOnError": True,
            "steps": [{"stepId": "fetch", "stepType": "core.http", "retryPolicy": {"maxRetries": 2},
                       "input": {"url": service.url + "/customers/{{ $item }}"}}]}}]}
    rec, _ = await run(client, task_queue, doc, {})
    loop = next(s for s in rec["steps"] if s["stepId"] == "each")["output"]
    assert rec["status"] == "completed_with_errors"
    assert (loop["count"], loop["succeeded"], loop["failed"]) == (520, 518, 2)
