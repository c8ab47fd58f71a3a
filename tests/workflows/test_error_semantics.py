"""Error-handling semantics on a real Temporal dev server against a real local HTTP service.

Every test counts the calls the service received, so a retry that should not happen (or should) is seen.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.support.flows import run_flow, step
from tests.support.steps import http

pytestmark = pytest.mark.usefixtures("worker")


def fast(max_retries: int, **kw: Any) -> dict[str, Any]:
    return {"maxRetries": max_retries, "delayMs": 100, **kw}


async def test_success_templates_and_output(client, task_queue, service):
    rec = await run_flow(client, task_queue, {"id": "ok-flow", "steps": [
        http("fetch-customer", service.url + "/customers/{{ initial.id }}"),
        {"stepId": "remember", "stepType": "core.set-variable",
         "input": {"name": "{{ fetch-customer.body.name }}", "status": "{{ fetch-customer.status }}"}},
        {"stepId": "done", "stepType": "core.return",
         "input": {"output": {"name": "{{ vars.name }}", "ok": "{{ fetch-customer.$meta.success }}"}}},
    ]}, {"id": "42"})
    assert rec["status"] == "completed"
    assert rec["output"] == {"name": "Customer 42", "ok": True}
    assert step(rec, "remember")["output"] == {"name": "Customer 42", "status": 200}
    assert step(rec, "fetch-customer")["attempts"] == 1
    assert rec["progress"] == {"done": 3, "total": 3}
    assert rec["errors"] == [] and rec["firstFailedStep"] is None


async def test_smart_retries_transient_then_succeeds(client, task_queue, service, key):
    rec = await run_flow(client, task_queue, {"id": "flaky", "steps": [
        http("reserve", f"{service.url}/flaky?fail=2&key={key}", retryPolicy=fast(3))]})
    assert rec["status"] == "completed"
    assert step(rec, "reserve")["attempts"] == 3
    assert step(rec, "reserve")["output"]["body"]["call"] == 3


async def test_client_error_is_not_retried_and_output_stays_readable(client, task_queue, service):
    before = service.calls["/customers/404"]
    rec = await run_flow(client, task_queue, {"id": "nf", "steps": [
        http("fetch", service.url + "/customers/404", retryPolicy=fast(3)),
        http("never", service.url + "/ok")]})
    assert rec["status"] == "failed"
    assert service.calls["/customers/404"] - before == 1
    s = step(rec, "fetch")
    assert s["error"]["code"] == "HTTP_CLIENT_ERROR"
    assert s["error"]["providerStatus"] == 404
    assert s["error"]["retryable"] is False
    assert s["error"]["type"] == "operational"
    assert s["output"]["body"]["message"] == "Customer not found"
    assert rec["firstFailedStep"] == "fetch"
    assert [x["stepId"] for x in rec["steps"]] == ["fetch"]  # the halted run's later step never ran


async def test_failed_run_fails_the_temporal_execution_with_code_and_search_attributes(
        client, task_queue, service):
    from flowtide.client.runs import start_run, wait_record
    from flowtide.workflows.language.dsl import parse_flow
    flow = parse_flow({"id": "sa", "steps": [http("boom", service.url + "/status/404")]})
    handle = await start_run(client, flow, {}, task_queue=task_queue)
    await wait_record(handle)
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.FAILED
    attrs = {k: v for k, v in desc.search_attributes.items()}
    assert attrs["FlowStatus"] == ["failed"]
    assert attrs["ErrorCode"] == ["HTTP_CLIENT_ERROR"]
    assert attrs["FailedStepId"] == ["boom"]
    assert attrs["FlowId"] == ["sa"]


@pytest.mark.parametrize(("mode", "path", "calls"), [
    ("smart", "/status/500", 3),
    ("smart", "/status/404", 1),
    ("smart", "/ratelimit", 3),
    ("aggressive", "/status/404", 3),
    ("aggressive", "/status/401", 1),
    ("rate-limits-only", "/status/500", 1),
    ("rate-limits-only", "/ratelimit", 3),
])
async def test_presets(client, task_queue, service, mode, path, calls):
    before = service.calls[path]
    rec = await run_flow(client, task_queue, {"id": "preset", "steps": [
        http("call", service.url + path, retryPolicy=fast(2, mode=mode))]})
    assert rec["status"] == "failed"
    assert service.calls[path] - before == calls
    assert step(rec, "call")["attempts"] == calls


async def test_custom_mode_denylist(client, task_queue, service):
    b500, b404 = service.calls["/status/500"], service.calls["/status/404"]
    policy = fast(2, mode="custom", nonRetryableErrorCodes=["HTTP_SERVER_ERROR"])
    await run_flow(client, task_queue, {"id": "c1", "steps": [http("a", service.url + "/status/500",
                                                                   retryPolicy=policy)]})
    await run_flow(client, task_queue, {"id": "c2", "steps": [http("a", service.url + "/status/404",
                                                                   retryPolicy=policy)]})
    assert service.calls["/status/500"] - b500 == 1
    assert service.calls["/status/404"] - b404 == 3


async def test_post_retried_only_on_429(client, task_queue, service):
    b500, b429 = service.calls["/status/500"], service.calls["/ratelimit"]
    post = {"method": "POST", "json": {"a": 1}}
    await run_flow(client, task_queue, {"id": "p1", "steps": [{
        "stepId": "a", "stepType": "core.http", "retryPolicy": fast(2),
        "input": {"url": service.url + "/status/500", **post}}]})
    await run_flow(client, task_queue, {"id": "p2", "steps": [{
        "stepId": "a", "stepType": "core.http", "retryPolicy": fast(2),
        "input": {"url": service.url + "/ratelimit", **post}}]})
    assert service.calls["/status/500"] - b500 == 1
    assert service.calls["/ratelimit"] - b429 == 3


async def test_retry_after_is_honoured(client, task_queue, service):
    t0 = time.monotonic()
    rec = await run_flow(client, task_queue, {"id": "ra", "steps": [
        http("a", service.url + "/ratelimit?retry_after=3", retryPolicy=fast(1))]})
    elapsed = time.monotonic() - t0
    assert step(rec, "a")["attempts"] == 2
    assert elapsed >= 2.9, f"the retry did not wait for Retry-After (took {elapsed:.2f}s)"


async def test_continue_on_error_absorbs_and_counts(client, task_queue, service):
    rec = await run_flow(client, task_queue, {"id": "coe", "steps": [
        http("optional", service.url + "/customers/404", continueOnError=True),
        {"stepId": "after", "stepType": "core.set-variable",
         "input": {"errors": "{{ $errors | size }}", "code": "{{ $errors[0].code }}",
                   "ok": "{{ optional.$meta.success }}"}}]})
    assert rec["status"] == "completed_with_errors"
    assert step(rec, "after")["output"] == {"errors": 1, "code": "HTTP_CLIENT_ERROR", "ok": False}
    assert rec["counts"]["failed"] == 1 and rec["counts"]["completed"] == 1


async def test_seed_fallback_recipe_skip_condition(client, task_queue, service):
    doc = [http("primary-lookup", service.url + "/customers/{{ initial.customerId }}", continueOnError=True),
           http("fallback-lookup", service.url + "/customers/backup-{{ initial.customerId }}",
                skipCondition={"==": ["{{ primary-lookup.$meta.success }}", True]})]
    failing = await run_flow(client, task_queue, {"id": "fb", "steps": doc}, {"customerId": "404"})
    assert step(failing, "fallback-lookup")["status"] == "completed"
    assert failing["status"] == "completed_with_errors"
    fine = await run_flow(client, task_queue, {"id": "fb", "steps": doc}, {"customerId": "5"})
    assert step(fine, "fallback-lookup")["status"] == "skipped"
    assert fine["status"] == "completed"


async def test_on_error_retry_step(client, task_queue, service, key):
    before = service.calls["/flaky"]
    rec = await run_flow(client, task_queue, {"id": "rs", "steps": [
        http("a", f"{service.url}/flaky?fail=2&key={key}", retryPolicy={"maxRetries": 0},
             onError={"action": "retry-step", "maxRetries": 2})]})
    assert rec["status"] == "completed"
    assert service.calls["/flaky"] - before == 3


async def test_on_error_retry_workflow_restarts_from_entry(client, task_queue, service, key):
    b_ok = service.calls["/customers/first"]
    rec = await run_flow(client, task_queue, {"id": "rw", "steps": [
        http("first", service.url + "/customers/first"),
        http("second", f"{service.url}/flaky?fail=1&key={key}", retryPolicy={"maxRetries": 0},
             onError={"action": "retry-workflow", "maxRetries": 1})]})
    assert rec["status"] == "completed"
    assert rec["attempt"] == 2
    assert service.calls["/customers/first"] - b_ok == 2
    assert [s["stepId"] for s in rec["steps"]] == ["first", "second"]  # state cleared on restart


async def test_on_error_next_routes_to_fallback(client, task_queue, service):
    rec = await run_flow(client, task_queue, {"id": "fallback-graph", "steps": [
        {"id": "main", "action": "core.http", "parameters": {"url": service.url + "/status/503"},
         "retryPolicy": {"maxRetries": 0}, "onError": {"action": "stop-workflow", "next": "fallback"},
         "next": "after-main"},
        {"id": "after-main", "action": "core.set-variable", "parameters": {"x": 1}},
        {"id": "fallback", "action": "core.set-variable", "parameters": {"recovered": True}}]})
    assert rec["status"] == "completed_with_errors"
    ids = [s["stepId"] for s in rec["steps"]]
    assert ids == ["main", "fallback"]


async def test_seed_run_limit_conflict(client, task_queue, service):
    before = service.calls["/slow"]
    rec = await run_flow(client, task_queue, {"id": "rl", "steps": [{
        "id": "problematic-step", "action": "core.http", "timeout": 1, "runLimit": 1,
        "parameters": {"url": service.url + "/slow?ms=2500"},
        "onError": {"action": "retry-step", "maxRetries": 3}}]})
    assert rec["status"] == "failed"
    err = rec["errors"][-1]
    assert err["code"] == "RUN_LIMIT_REACHED"
    assert err["message"] == "step 'problematic-step' has reached its run limit"
    assert service.calls["/slow"] - before == 1


async def test_timeout_code(client, task_queue, service):
    rec = await run_flow(client, task_queue, {"id": "to", "steps": [
        http("slow", service.url + "/slow?ms=3000", timeout=0.5, retryPolicy={"maxRetries": 0})]})
    assert step(rec, "slow")["error"]["code"] == "TIMEOUT"


async def test_for_each_partial_failure_with_concurrency(client, task_queue, service):
    rec = await run_flow(client, task_queue, {"id": "fe", "steps": [
        {"stepId": "process-items", "stepType": "core.for-each", "input": {
            "items": "{{ initial.items }}", "concurrency": 3, "continueOnError": True,
            "steps": [http("fetch-item", service.url + "/customers/{{ $item.id }}", continueOnError=True,
                           retryPolicy={"maxRetries": 0})]}},
        {"stepId": "report-results", "stepType": "core.set-variable", "input": {
            "totalProcessed": "{{ process-items.count }}", "succeeded": "{{ process-items.succeeded }}",
            "failed": "{{ process-items.failed }}", "errorCount": "{{ $errors | size }}"}}]},
        {"items": [{"id": "1"}, {"id": "404"}, {"id": "3"}, {"id": "4"}, {"id": "404"}]})
    assert step(rec, "report-results")["output"] == {"totalProcessed": 5, "succeeded": 3, "failed": 2,
                                                      "errorCount": 2}
    assert rec["status"] == "completed_with_errors"
    loop = step(rec, "process-items")["output"]
    assert loop["results"][0]["body"]["id"] == "1"
    assert loop["results"][1]["status"] == 404  # an operational failure's output stays readable
    assert [f["index"] for f in loop["failures"]] == [1, 4]
    assert {e["iteration"] for e in rec["errors"]} == {1, 4}


async def test_for_each_failure_halts_without_continue_on_error(client, task_queue, service):
    rec = await run_flow(client, task_queue, {"id": "fe2", "steps": [
        {"stepId": "loop", "stepType": "core.for-each", "input": {
            "items": ["1", "404", "3"], "steps": [http("get", service.url + "/customers/{{ $item }}")]}},
        http("never", service.url + "/ok")]})
    assert rec["status"] == "failed"
    assert rec["firstFailedStep"] == "get"
    assert all(s["stepId"] != "never" for s in rec["steps"])


async def test_nested_if_inside_for_each(client, task_queue, service):
    rec = await run_flow(client, task_queue, {"id": "nested", "steps": [
        {"stepId": "loop", "stepType": "core.for-each", "input": {"items": [1, 5, 10], "steps": [
            {"stepId": "big", "stepType": "core.if", "input": {
                "condition": "{{ $item }} > 3",
                "then": [{"stepId": "mark", "stepType": "core.set-variable", "input": {"big": "{{ $item }}"}}],
                "else": [{"stepId": "small", "stepType": "core.set-variable", "input": {"s": "{{ $item }}"}}]}}]}}]})
    assert rec["status"] == "completed"
    assert step(rec, "mark", 1)["output"] == {"big": 5}
    assert step(rec, "small", 0)["output"] == {"s": 1}


async def test_seed_graph_loop_each_iteration_own_retries(client, task_queue, service):
    before = service.calls["/status/502"]
    items = [{"name": "file1", "url": service.url + "/ok"}, {"name": "file2", "url": service.url + "/status/502"},
             {"name": "file3", "url": service.url + "/ok"}]
    rec = await run_flow(client, task_queue, {"id": "loop-files", "steps": [
        {"id": "loop-files", "action": "logic::loop", "parameters": {"items": items}, "next": ["download-file"]},
        {"id": "download-file", "action": "core.http", "retryPolicy": {"maxRetries": 0},
         "parameters": {"url": "{{ $item.url }}"},
         "onError": {"action": "retry-step", "maxRetries": 3}, "next": ["process-file"]},
        {"id": "process-file", "action": "core.set-variable", "parameters": {"file": "{{ $item.name }}"}}]})
    processed = [s for s in rec["steps"] if s["stepId"] == "process-file"]
    assert sorted(s["output"]["file"] for s in processed) == ["file1", "file3"]
    assert service.calls["/status/502"] - before == 4  # 1 try + 3 onError retries, for file2 only
    assert step(rec, "loop-files")["output"]["failed"] == 1


async def test_condition_routes_and_stop_workflow(client, task_queue):
    doc = {"id": "route", "steps": [
        {"id": "validate-critical-data", "action": "template::validate",
         "parameters": {"data": "{{ initial }}", "schema": {"type": "object", "required": ["user"]}},
         "condition": {"if": "{{validate-critical-data.output.valid}} == false", "then": "stop-workflow",
                       "else": "process-data"}},
        {"id": "process-data", "action": "core.set-variable", "parameters": {"user": "{{ initial.user }}"}}]}
    bad = await run_flow(client, task_queue, doc, {"nobody": 1})
    assert [s["stepId"] for s in bad["steps"]] == ["validate-critical-data"]
    good = await run_flow(client, task_queue, doc, {"user": "ann"})
    assert step(good, "process-data")["output"] == {"user": "ann"}


async def test_step_budget_ends_a_runaway_cycle(client, task_queue):
    rec = await run_flow(client, task_queue, {"id": "cycle", "settings": {"limits": {"maxStepExecutions": 30}},
                                              "steps": [
        {"id": "a", "action": "core.set-variable", "parameters": {"x": 1}, "next": "b"},
        {"id": "b", "action": "core.set-variable", "parameters": {"y": 1}, "next": "a"}]})
    assert rec["status"] == "failed"
    assert rec["errors"][-1]["code"] == "STEP_BUDGET_EXCEEDED"


def _budget_loop(items: int, budget: int, batch: int = 500) -> dict[str, Any]:
    return {"id": "budget-loop", "settings": {"limits": {"maxStepExecutions": budget, "loopBatchSize": batch}},
            "steps": [{"stepId": "each", "stepType": "core.for-each", "input": {
                "items": items, "continueOnError": True,
                "steps": [{"stepId": "x", "stepType": "core.set-variable", "input": {"i": "{{ $item }}"}}]}}]}


@pytest.mark.parametrize("batch", [500, 3], ids=["inline", "batched"])
async def test_a_spent_step_budget_fails_the_run_even_inside_a_tolerant_loop(client, task_queue, batch):
    """continueOnError absorbs an item's failure, never the run's spent budget: the loop stops taking items
    and the run fails with STEP_BUDGET_EXCEEDED (before, every later item failed on its own and the run
    completed). Batched, the batch child that runs out ends the coordinator and the parent the same way."""
    rec = await run_flow(client, task_queue, _budget_loop(items=40, budget=8, batch=batch))
    assert rec["status"] == "failed"
    assert [e["code"] for e in rec["errors"]] == ["STEP_BUDGET_EXCEEDED"]
    loop = step(rec, "each")
    assert loop["status"] == "failed" and loop["completedAt"] is not None
    assert rec["loops"][0]["failed"] == 1 and rec["loops"][0]["succeeded"] < 8
    assert rec["loops"][0]["batched"] == (batch == 3)


async def test_a_spent_budget_inside_a_nested_loop_ends_the_outer_loop_too(client, task_queue):
    inner = _budget_loop(items=5, budget=8)["steps"]
    flow = {"id": "nested-budget", "settings": {"limits": {"maxStepExecutions": 8}}, "steps": [
        {"stepId": "outer", "stepType": "core.for-each", "input": {"items": 10, "continueOnError": True,
                                                                   "steps": inner}}]}
    rec = await run_flow(client, task_queue, flow)
    assert rec["status"] == "failed"
    assert [e["code"] for e in rec["errors"]] == ["STEP_BUDGET_EXCEEDED"]
    outer = next(loop for loop in rec["loops"] if loop["stepId"] == "outer")
    assert outer["failed"] == 1 and outer["succeeded"] < 2


async def test_block_steps_end_with_the_run(client, task_queue, service):
    """An if whose branch failed the run is failed, not left running; a for-each whose item returned is
    completed."""
    failed = await run_flow(client, task_queue, {"id": "if-fails", "steps": [
        {"stepId": "br", "stepType": "core.if", "input": {"condition": True, "then": [
            http("bad", service.url + "/status/404")]}}]})
    assert failed["status"] == "failed" and step(failed, "br")["status"] == "failed"
    returned = await run_flow(client, task_queue, {"id": "loop-returns", "steps": [
        {"stepId": "each", "stepType": "core.for-each", "input": {"items": 3, "steps": [
            {"stepId": "r", "stepType": "core.return", "input": {"output": "{{ $item }}"}}]}}]})
    assert returned["status"] == "completed" and step(returned, "each")["status"] == "completed"
    assert not [s for s in failed["steps"] + returned["steps"] if s["status"] == "running"]


async def test_signal_wait_and_timeout(client, task_queue):
    from flowtide.client.runs import start_run, wait_record
    from flowtide.workflows.language.dsl import parse_flow
    flow = parse_flow({"id": "approve", "steps": [
        {"stepId": "wait", "stepType": "core.wait-for-signal", "input": {"signal": "approval", "timeout": 30}},
        {"stepId": "done", "stepType": "core.return", "input": {"output": "{{ wait.data }}"}}]})
    handle = await start_run(client, flow, {}, task_queue=task_queue)
    await handle.signal("approval", {"by": "ann"})
    rec = await wait_record(handle)
    assert rec["output"] == {"by": "ann"}
    timed = await run_flow(client, task_queue, {"id": "approve2", "steps": [
        {"stepId": "wait", "stepType": "core.wait-for-signal", "input": {"signal": "approval", "timeout": 1}}]})
    assert timed["errors"][0]["code"] == "SIGNAL_TIMEOUT"


async def test_sub_flow_failure_is_the_step_failure(client, task_queue, service):
    child = {"id": "child", "steps": [http("inner", service.url + "/status/404")]}
    from flowtide.workflows.language.dsl import parse_flow
    rec = await run_flow(client, task_queue, {"id": "parent", "steps": [
        {"stepId": "call-child", "stepType": "core.sub-flow",
         "input": {"flow": parse_flow(child).to_wire(), "input": {}}}]})
    assert rec["status"] == "failed"
    err = step(rec, "call-child")["error"]
    assert err["code"] == "HTTP_CLIENT_ERROR" and "inner" in err["message"]


async def test_delay_is_a_durable_timer(client, task_queue):
    t0 = time.monotonic()
    rec = await run_flow(client, task_queue, {"id": "delay", "steps": [
        {"stepId": "wait", "stepType": "core.delay", "input": {"seconds": 1}}]})
    assert rec["status"] == "completed"
    assert time.monotonic() - t0 >= 0.9


async def test_stop_word_in_a_list_runs_the_steps_before_it_only(client, task_queue):
    rec = await run_flow(client, task_queue, {"id": "stop-list", "steps": [
        {"id": "a", "action": "core.set-variable", "parameters": {"x": 1}, "next": ["other", "decide"]},
        {"id": "other", "action": "core.set-variable", "parameters": {"o": 1}, "next": "queued"},
        {"id": "decide", "action": "core.set-variable", "parameters": {"d": 1},
         "condition": {"if": "{{ decide.d }} == 1", "then": ["before-1", "before-2", "stop-workflow", "after"]}},
        {"id": "queued", "action": "core.set-variable", "parameters": {"q": 1}},
        {"id": "before-1", "action": "core.set-variable", "parameters": {"b1": 1}, "next": "never"},
        {"id": "before-2", "action": "core.set-variable", "parameters": {"b2": 1}},
        {"id": "after", "action": "core.set-variable", "parameters": {"z": 1}},
        {"id": "never", "action": "core.set-variable", "parameters": {"n": 1}}]})
    # the word clears the queue ("queued" never runs), runs before-1 and before-2, and not what follows them
    assert [s["stepId"] for s in rec["steps"]] == ["a", "other", "decide", "before-1", "before-2"]
    assert rec["status"] == "completed"


async def test_huge_response_is_refused_and_never_retried(client, task_queue, service):
    before = service.calls["/large"]
    t0 = time.monotonic()
    rec = await run_flow(client, task_queue, {"id": "huge", "steps": [
        http("body", service.url + "/large?kb=4096", retryPolicy=fast(3, mode="aggressive"), continueOnError=True),
        {"stepId": "output", "stepType": "core.http", "retryPolicy": fast(3, mode="aggressive"),
         "input": {"url": service.url + "/large?kb=400"}}],
        "settings": {"limits": {"httpResponseBytes": 1024 * 1024}}})
    assert time.monotonic() - t0 < 10
    first = step(rec, "body")["error"]
    assert first["code"] == "HTTP_RESPONSE_TOO_LARGE" and first["retryable"] is False
    # the body fits the 1 MiB HTTP limit but not the 256 KiB step output limit
    second = step(rec, "output")["error"]
    assert second["code"] == "OUTPUT_TOO_LARGE" and second["retryable"] is False
    assert rec["status"] == "failed" and rec["firstFailedStep"] == "output"
    assert service.calls["/large"] - before == 2  # one call each, even in aggressive mode


@pytest.mark.parametrize("execution", ["local", "remote"])
async def test_failures_are_the_same_for_local_and_remote_execution(client, task_queue, service, key, execution):
    """``execution: local`` keeps the error semantics: retries, codes, continueOnError and the first failed step.

    (The SDK core hands some local-activity failures to the workflow without the ActivityError wrapper; the
    run used to fail with the raw activity error instead of recording the step.)"""
    before = service.calls["/customers/404"]
    rec = await run_flow(client, task_queue, {"id": f"exec-{execution}", "settings": {"execution": execution},
                                              "steps": [
        http("flaky", f"{service.url}/flaky?fail=2&key={key}", retryPolicy=fast(3)),
        http("optional", service.url + "/customers/404", retryPolicy=fast(3), continueOnError=True),
        http("fetch", service.url + "/status/500", retryPolicy=fast(1)),
        http("never", service.url + "/ok")]})
    assert rec["status"] == "failed" and rec["firstFailedStep"] == "fetch"
    assert step(rec, "flaky")["attempts"] == 3 and step(rec, "flaky")["status"] == "completed"
    assert service.calls["/customers/404"] - before == 1
    assert step(rec, "optional")["error"]["code"] == "HTTP_CLIENT_ERROR"
    failed = step(rec, "fetch")
    assert (failed["error"]["code"], failed["error"]["providerStatus"], failed["attempts"]) == (
        "HTTP_SERVER_ERROR", 500, 2)
    assert [s["stepId"] for s in rec["steps"]] == ["flaky", "optional", "fetch"]


async def test_sub_flow_templates_read_the_child_input_not_the_parent_scope(client, task_queue, service):
    from flowtide.workflows.language.dsl import parse_flow
    child = {"id": "child", "steps": [
        http("inner", service.url + "/customers/{{ initial.id }}"),
        {"stepId": "out", "stepType": "core.return", "input": {"output": {"name": "{{ inner.body.name }}"}}}]}
    rec = await run_flow(client, task_queue, {"id": "parent", "settings": {"strictTemplates": True}, "steps": [
        {"stepId": "call-child", "stepType": "core.sub-flow",
         "input": {"flow": parse_flow(child).to_wire(), "input": {"id": "{{ initial.customer }}"}}},
        {"stepId": "done", "stepType": "core.return", "input": {"output": "{{ call-child.name }}"}}]},
        {"customer": "7"})
    assert rec["status"] == "completed", rec["errors"]
    assert rec["output"] == "Customer 7"
