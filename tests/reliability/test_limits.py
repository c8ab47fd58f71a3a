"""Spec section 9 limits on a dev server whose own limits are turned down, so that they are reached in seconds.

The server (its own process and port) suggests continue-as-new from 40 events, fails a history at 400 and
refuses any payload over 512 KiB (Temporal's defaults: 4,096, 51,200 and 2 MiB). On it:

- a for-each of 60 HTTP items completes with exact counts: it runs in batch child runs and the coordinator
  continues as new whenever the server suggests it, so no history comes near the limit;
- step outputs and HTTP bodies over Flowtide's limits fail the step at once with ``OUTPUT_TOO_LARGE`` /
  ``HTTP_RESPONSE_TOO_LARGE`` (the run goes on under ``continueOnError``) instead of sending Temporal a
  payload it refuses, which would leave the run waiting on retries;
- with ``outputBytes`` raised above what the server accepts, the step still fails cleanly with
  ``OUTPUT_TOO_LARGE`` (the SDK refuses the payload before the server does).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from flowtide.client.connect import connect
from flowtide.client.runs import start_run, wait_record
from flowtide.dev.server import DevServer, free_port
from flowtide.workflows.language.dsl import parse_flow
from tests.support.flows import histories, step

SUGGEST_AT, HISTORY_LIMIT, BLOB_LIMIT = 40, 400, 512 * 1024
DYNAMIC = {
    "limit.historyCount.suggestContinueAsNew": SUGGEST_AT,
    "limit.historyCount.warn": SUGGEST_AT * 2,
    "limit.historyCount.error": HISTORY_LIMIT,
    "limit.blobSize.warn": BLOB_LIMIT // 2,
    "limit.blobSize.error": BLOB_LIMIT,
}


@pytest.fixture(scope="module")
def low_server() -> Any:
    extra = ["--dynamic-config-value", "frontend.workerHeartbeatsEnabled=false"]
    for key, value in DYNAMIC.items():
        extra += ["--dynamic-config-value", f"{key}={value}"]
    for attempt in range(3):  # the server binds ports beside its own; one may be taken between pick and bind
        server = DevServer(port=free_port(), ui_port=None, db_file=None, extra_args=extra)
        try:
            server.start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def low(low_server: DevServer) -> AsyncIterator[tuple[Any, str]]:
    from flowtide.worker.app import build_worker
    client = await connect(low_server.address)
    async with build_worker(client, "limits", graceful_shutdown_s=1):
        yield client, "limits"


async def test_big_loop_continues_as_new_under_a_low_history_limit(low: tuple[Any, str], service: Any) -> None:
    client, tq = low
    items = 60
    flow = parse_flow({"id": "big-loop", "settings": {"limits": {"loopBatchSize": 10}}, "steps": [
        {"stepId": "each", "stepType": "core.for-each", "input": {
            "items": items, "concurrency": 4,
            "steps": [{"stepId": "get", "stepType": "core.http",
                       "input": {"url": service.url + "/customers/{{ $item }}"}}]}}]}, source="test")
    handle = await start_run(client, flow, {}, task_queue=tq)
    rec = await wait_record(handle)
    assert rec["status"] == "completed", rec.get("errors")
    out = step(rec, "each")["output"]
    assert (out["count"], out["succeeded"], out["failed"]) == (items, items, 0)
    lengths = await histories(client, handle)
    coordinator = lengths[f"{handle.id}-each-loop"]
    print(f"\nhistories: coordinator runs {coordinator}, batches "
          f"{[v for k, v in lengths.items() if '-each-b' in k]}, parent {lengths[handle.id]}")
    assert len(coordinator) > 1  # the coordinator continued as new when the server suggested it
    assert max(n for runs in lengths.values() for n in runs) < HISTORY_LIMIT


async def test_oversized_outputs_fail_cleanly_under_a_low_blob_limit(low: tuple[Any, str], service: Any) -> None:
    client, tq = low
    soft = {"continueOnError": True, "retryPolicy": {"maxRetries": 2, "delayMs": 100}}
    big = "return 'x' * (600 * 1024)"
    flow = parse_flow({"id": "too-large", "steps": [
        {"stepId": "big-output", "stepType": "core.code", **soft, "input": {"script": big}},
        {"stepId": "big-body", "stepType": "core.http", **soft, "input": {"url": service.url + "/large?kb=700"}},
        {"stepId": "fine", "stepType": "core.code", "input": {"script": "return 'y' * (100 * 1024)"}},
        {"stepId": "done", "stepType": "core.return", "input": {"output": {
            "codes": "{{ $errors | map: 'code' }}", "fine": "{{ fine.output | size }}"}}}]}, source="test")
    t0 = time.monotonic()
    rec = await wait_record(await start_run(client, flow, {}, task_queue=tq))
    took = time.monotonic() - t0
    assert rec["status"] == "completed_with_errors", rec.get("errors")
    assert step(rec, "big-output")["error"]["code"] == "OUTPUT_TOO_LARGE"
    assert step(rec, "big-body")["error"]["code"] == "HTTP_RESPONSE_TOO_LARGE"
    assert step(rec, "big-output")["attempts"] == 1 and step(rec, "big-body")["attempts"] == 1  # not retried
    assert rec["output"] == {"codes": ["OUTPUT_TOO_LARGE", "HTTP_RESPONSE_TOO_LARGE"], "fine": 100 * 1024}
    print(f"\noversized output and body failed cleanly; run took {took:.1f}s")
    assert took < 15


async def test_output_limit_above_the_server_limit_still_fails_cleanly(low: tuple[Any, str]) -> None:
    client, tq = low
    flow = parse_flow({"id": "misconfigured", "settings": {"limits": {"outputBytes": 4 * 1024 * 1024}}, "steps": [
        {"stepId": "big-output", "stepType": "core.code", "retryPolicy": {"maxRetries": 2, "delayMs": 100},
         "input": {"script": "return 'x' * (700 * 1024)"}}]}, source="test")
    t0 = time.monotonic()
    rec = await wait_record(await start_run(client, flow, {}, task_queue=tq))
    took = time.monotonic() - t0
    assert rec["status"] == "failed"
    assert step(rec, "big-output")["error"]["code"] == "OUTPUT_TOO_LARGE", step(rec, "big-output")["error"]
    print(f"\n700 KiB output over a 512 KiB server limit: {step(rec, 'big-output')['error']['message']} "
          f"({took:.1f}s)")
    assert took < 15


@pytest.mark.parametrize("execution", ["remote", None])
async def test_runaway_cycle_of_steps_fails_before_the_history_limit(
        low: tuple[Any, str], service: Any, monkeypatch: pytest.MonkeyPatch, execution: str | None) -> None:
    # A cycle that cannot continue as new (it is inside a branch, not the flow's top-level block) fails at
    # HISTORY_GUARD events, before Temporal terminates it (51,200 by default; turned down here to match this
    # server's limit of 400). With no `execution` the GETs run as local activities, whose markers one workflow
    # task writes only when it completes: the engine counts them (engine/_events.py), or the history would
    # jump past the limit in one task and Temporal would terminate the run.
    from flowtide.workflows.engine import _steps
    monkeypatch.setattr(_steps, "HISTORY_GUARD", HISTORY_LIMIT - 100)
    flow = parse_flow({"id": "remote-cycle", "settings": {"execution": execution}, "steps": [
        {"stepId": "branch", "stepType": "core.if", "input": {
        "condition": "true", "then": [
            {"id": "a", "action": "core.http", "parameters": {"url": service.url + "/ok"}, "next": "b"},
            {"id": "b", "action": "core.http", "parameters": {"url": service.url + "/ok"}, "next": "a"}]}}]},
        source="test")
    handle = await start_run(client := low[0], flow, {}, task_queue=low[1])
    rec = await wait_record(handle)
    assert rec["status"] == "failed", rec["status"]
    assert rec["errors"][-1]["code"] == "STEP_BUDGET_EXCEEDED"
    assert "history" in rec["errors"][-1]["message"]
    events = [e async for e in client.get_workflow_handle(handle.id).fetch_history_events()]
    assert len(events) < HISTORY_LIMIT
    # the counting and the yields replay as they ran (a worker that lost its cache replays this history)
    from flowtide.client.replay import build_replayer
    result = await build_replayer().replay_workflow(await client.get_workflow_handle(handle.id).fetch_history(),
                                                    raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_top_level_runaway_cycle_continues_as_new_until_its_step_budget(low: tuple[Any, str],
                                                                             service: Any) -> None:
    # At the top level the same cycle continues as new whenever the server suggests it (40 events here):
    # no history nears the limit, and maxStepExecutions, counted across the runs, stops the runaway.
    # (remote steps: local ones write so few events that this cycle never needs to continue as new)
    flow = parse_flow({"id": "remote-cycle", "settings": {"execution": "remote", "limits": {"maxStepExecutions": 60}},
                       "steps": [
        {"id": "a", "action": "core.http", "parameters": {"url": service.url + "/ok"}, "next": "b"},
        {"id": "b", "action": "core.http", "parameters": {"url": service.url + "/ok"}, "next": "a"}]},
        source="test")
    handle = await start_run(client := low[0], flow, {}, task_queue=low[1])
    rec = await wait_record(handle)
    assert rec["status"] == "failed", rec["status"]
    assert rec["errors"][-1]["code"] == "STEP_BUDGET_EXCEEDED"
    assert "more than 60 steps" in rec["errors"][-1]["message"]
    lengths = (await histories(client, client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id))
               )[handle.id]
    assert len(lengths) == rec["chain"]["runs"] > 3 and max(lengths) < HISTORY_LIMIT
    assert rec["counts"]["completed"] == 60
