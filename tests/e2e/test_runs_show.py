"""``flowtide runs list / show / watch`` on a real dev server, with the worker stopped before inspecting.

Every run here is started by a worker that is shut down before the CLI looks at it: the CLI must answer
from Temporal's data alone (visibility, describe, results, history).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from flowtide.client.runs import start_run, wait_record
from flowtide.worker.app import build_worker
from flowtide.workflows.language.dsl import parse_flow
from tests.support.cli import flowtide, flowtide_process, listed, until
from tests.support.steps import http


def flow_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


async def run_and_stop(client: Any, tq: str, doc: dict[str, Any], wait: Any = None) -> Any:
    """Start ``doc`` with a worker, wait for the run (or ``wait(handle)``), then stop the worker."""
    async with build_worker(client, tq, graceful_shutdown_s=1):
        handle = await start_run(client, parse_flow(doc), {}, task_queue=tq)
        if wait is None:
            await wait_record(handle)
        else:
            assert await until(lambda: wait(handle), timeout=30), "the run never reached the awaited state"
    return handle


def failing_flow(fid: str, base: str, path: str) -> dict[str, Any]:
    return {"id": fid, "steps": [
        http("fetch-customer", base + "/customers/7", title="Fetch customer"),
        {"stepId": "remember", "stepType": "core.set-variable", "input": {"name": "{{ fetch-customer.body.name }}"}},
        http("notify", base + path, title="Notify the shop", retryPolicy={"maxRetries": 1, "delayMs": 100}),
        http("never", base + "/ok")]}


async def test_show_failed_run_answers_which_step_what_code_and_retry_in_the_first_lines(
        client, task_queue, service, cli_env, capsys):
    fid = flow_id("show-429")
    handle = await run_and_stop(client, task_queue, failing_flow(fid, service.url, "/ratelimit"))
    started = time.monotonic()
    code, out, err = await flowtide(capsys, "runs", "show", handle.id)
    elapsed = time.monotonic() - started
    assert code == 0, err
    first_screen = "\n".join(out.splitlines()[:6])
    assert "Status: FAILED" in first_screen and "Progress: 3 / 4 steps" in first_screen
    assert "notify" in first_screen and "HTTP_RATE_LIMITED" in first_screen and "Retry helps? likely" in first_screen
    assert "Steps: 2 completed, 1 failed" in out
    assert "First failed step: Notify the shop (notify, core.http, step 3)" in out
    assert "Provider status: 429 (retryable)" in out and "2 attempts" in out
    assert "Message: GET " in out and "returned 429" in out
    assert "Technical details:" in out and "Code: HTTP_RATE_LIMITED" in out
    assert "Input:" in out and "Output:" in out
    assert elapsed < 5, f"runs show took {elapsed:.2f}s with no worker"


async def test_show_client_error_says_a_retry_will_not_help_and_json_is_the_run_record(
        client, task_queue, service, cli_env, capsys):
    fid = flow_id("show-404")
    handle = await run_and_stop(client, task_queue, failing_flow(fid, service.url, "/customers/404"))
    code, out, _ = await flowtide(capsys, "runs", "show", handle.id)
    assert "HTTP_CLIENT_ERROR" in out and "Provider status: 404\n" in out and "Retry helps? no" in out
    code, out, _ = await flowtide(capsys, "runs", "show", handle.id, "--json")
    rec = json.loads(out)
    assert code == 0 and rec["status"] == "failed" and rec["firstFailedStep"] == "notify"
    assert rec["flowId"] == fid and rec["progress"] == {"done": 3, "total": 4}
    assert [s["stepId"] for s in rec["steps"]] == ["fetch-customer", "remember", "notify"]
    code, out, _ = await flowtide(capsys, "runs", "show", handle.id, "--step", "remember")
    assert code == 0 and "Step: remember" in out and "Customer 7" in out
    code, _, err = await flowtide(capsys, "runs", "show", handle.id, "--step", "nope")
    assert code == 2 and "no step 'nope'" in err


async def test_retrying_in_is_shown_while_temporal_waits_for_the_next_attempt(
        client, task_queue, service, key, cli_env, capsys):
    fid = flow_id("retrying")
    doc = {"id": fid, "steps": [
        {"stepId": "note", "stepType": "core.set-variable", "input": {"a": 1}},
        http("reserve", f"{service.url}/flaky?fail=100&key={key}", title="Reserve stock",
             retryPolicy={"maxRetries": 3, "delayMs": 120_000})]}

    async def retry_pending(h: Any) -> bool:
        d = await h.describe()
        return any(pa.attempt >= 2 for pa in d.raw_description.pending_activities)

    handle = await run_and_stop(client, task_queue, doc, wait=retry_pending)
    try:
        code, out, err = await flowtide(capsys, "runs", "show", handle.id)
        assert code == 0, err
        assert "Status: RUNNING" in out and "Retrying step 2" in out
        assert "Retrying in 1" in out and "(attempt 2 of 4)" in out
        assert "HTTP_SERVER_ERROR" in out and "Provider status: 500 (retryable)" in out
        assert "Steps: 1 completed, 1 retrying" in out
        await listed(client, f'FlowId = "{fid}"')
        code, out, _ = await flowtide(capsys, "runs", "list", "--flow", fid, "--status", "running", "--json")
        assert [r["workflowId"] for r in json.loads(out)] == [handle.id]
    finally:
        await handle.terminate("test over")


async def test_list_filters_by_status_flow_run_id_and_limit(client, task_queue, service, cli_env, capsys):
    fid = flow_id("listing")
    ok = await run_and_stop(client, task_queue, {"id": fid, "steps": [http("a", service.url + "/ok")]})
    bad = await run_and_stop(client, task_queue, {"id": fid, "steps": [http("a", service.url + "/status/404")]})
    await listed(client, f'FlowId = "{fid}" AND FlowStatus = "failed"')
    code, out, _ = await flowtide(capsys, "runs", "list", "--flow", fid, "--json")
    rows = json.loads(out)
    assert code == 0 and [r["workflowId"] for r in rows] == [bad.id, ok.id]  # newest first
    assert rows[0]["status"] == "failed" and rows[0]["failedStepId"] == "a"
    assert rows[0]["errorCode"] == "HTTP_CLIENT_ERROR" and rows[1]["status"] == "completed"
    assert rows[1]["durationMs"] is not None
    _, out, _ = await flowtide(capsys, "runs", "list", "--flow", fid, "--status", "failed", "--json")
    assert [r["workflowId"] for r in json.loads(out)] == [bad.id]
    _, out, _ = await flowtide(capsys, "runs", "list", "--flow", fid, "--limit", "1", "--json")
    assert len(json.loads(out)) == 1
    run_id = rows[1]["runId"]
    _, out, _ = await flowtide(capsys, "runs", "list", "--run-id", run_id[:20], "--json")
    assert [r["runId"] for r in json.loads(out)] == [run_id]
    code, out, _ = await flowtide(capsys, "runs", "list", "--flow", fid)
    assert code == 0 and out.startswith("RUN ID") and run_id[:8] in out and "a (HTTP_CLIENT_ERROR)" in out
    code, _, err = await flowtide(capsys, "runs", "list", "--status", "exploded")
    assert code == 2 and "unknown status 'exploded'" in err
    code, _, err = await flowtide(capsys, "runs", "list", "--flow", 'x" OR 1=1')
    assert code == 2 and "--flow" in err


async def test_list_leaves_out_the_child_runs_of_sub_flows(client, task_queue, service, cli_env, capsys):
    fid = flow_id("parent")
    child = parse_flow({"id": "child", "steps": [http("inner", service.url + "/status/404")]}).to_wire()
    parent = await run_and_stop(client, task_queue, {"id": fid, "steps": [
        {"stepId": "call-child", "stepType": "core.sub-flow", "input": {"flow": child, "input": {}}}]})
    child_run = (await client.get_workflow_handle(f"{parent.id}-call-child").describe()).run_id
    await listed(client, f'WorkflowId = "{parent.id}-call-child" AND FlowStatus = "failed"')
    _, out, _ = await flowtide(capsys, "runs", "list", "--flow", fid, "--json")
    assert [(r["workflowId"], r["failedStepId"]) for r in json.loads(out)] == [(parent.id, "call-child")]
    _, out, _ = await flowtide(capsys, "runs", "list", "--run-id", child_run, "--json")
    assert json.loads(out) == []  # a failed child run without a FlowId would read "? v?" in the list


async def test_terminated_run_shows_terminated_and_a_prefix_resolves(client, task_queue, cli_env, capsys):
    fid = flow_id("terminated")
    doc = {"id": fid, "steps": [{"stepId": "a", "stepType": "core.set-variable", "input": {"x": 1}},
                                {"stepId": "wait", "stepType": "core.delay", "input": {"seconds": 600}}]}

    async def waiting(h: Any) -> bool:
        return bool((await h.describe()).search_attributes.get("FlowStatus") == ["waiting"])

    handle = await run_and_stop(client, task_queue, doc, wait=waiting)
    await handle.terminate("operator stopped it")
    run_id = (await handle.describe()).run_id
    code, out, err = await flowtide(capsys, "runs", "show", run_id[:24])
    assert code == 0, err
    assert "Status: TERMINATED" in out and "Steps: 1 completed" in out
    await listed(client, f'FlowId = "{fid}" AND ExecutionStatus = "Terminated"')
    _, out, _ = await flowtide(capsys, "runs", "list", "--flow", fid, "--status", "terminated", "--json")
    assert [r["status"] for r in json.loads(out)] == ["terminated"]


async def test_watch_refreshes_until_the_run_ends(client, task_queue, service, worker, cli_env, capsys):
    fid = flow_id("watch")
    doc = {"id": fid, "steps": [http("slow", service.url + "/slow?ms=1500", title="Slow call"),
                                http("fail", service.url + "/status/404")]}
    handle = await start_run(client, parse_flow(doc), {}, task_queue=task_queue)
    code, out, _ = await flowtide(capsys, "runs", "watch", handle.id, "--interval", "0.2")
    assert code == 1  # the run failed
    lines = out.splitlines()
    assert lines[0].startswith("[") and "steps" in lines[0] and "Slow call" in lines[0]
    assert any("failed at fail: HTTP_CLIENT_ERROR" in line for line in lines)
    assert "Status: FAILED" in out


async def test_bad_references_and_unreachable_temporal(dev_server, cli_env, capsys):
    code, _, err = await flowtide(capsys, "runs", "show", "no-such-run-anywhere")
    assert code == 4 and "no run matches 'no-such-run-anywhere'" in err and "Traceback" not in err
    code, _, err = await flowtide(capsys, "runs", "show", "bad ref!")
    assert code == 2 and len(err.strip().splitlines()) == 1
    code, _, err = await flowtide_process("runs", "list", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert code == 3 and "127.0.0.1:1" in err and "Traceback" not in err
    code, _, err = await flowtide_process("runs", "show", "x", env={"TEMPORAL_ADDRESS": dev_server.address})
    assert code == 4 and "Traceback" not in err
