"""``flowtide rerun`` and ``flowtide replay`` / ``runs export`` on a real dev server and a real local service.

The service counts every call per path, so a side effect that a re-run must not repeat (a POST that
succeeded before the failure) is checked by its call count.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowtide.client.runs import start_run, wait_record
from flowtide.worker.app import build_worker
from flowtide.workflows.language.dsl import parse_flow
from tests.support.cli import flowtide, until


def order_flow(fid: str, key: str, *, charge: str = "/flaky?fail=1&key={{ initial.key }}") -> dict[str, Any]:
    """A POST that succeeds (the side effect), a pure step, then a call that fails once on purpose."""
    return {"id": fid, "version": 3, "input": {"type": "object", "required": ["base", "key"]}, "steps": [
        {"stepId": "create-order", "title": "Create the order", "stepType": "core.http",
         "input": {"url": "{{ initial.base }}/echo", "method": "POST", "json": {"key": "{{ initial.key }}"}}},
        {"stepId": "remember", "stepType": "core.set-variable", "input": {"created": "{{ create-order.status }}"}},
        {"stepId": "charge", "title": "Charge the card", "stepType": "core.http",
         "retryPolicy": {"maxRetries": 0}, "input": {"url": "{{ initial.base }}" + charge}},
        {"stepId": "done", "stepType": "core.return",
         "input": {"output": {"created": "{{ vars.created }}", "charged": "{{ charge.status }}"}}}]}


async def failed_run(client: Any, task_queue: str, service: Any, key: str, **kw: Any) -> tuple[Any, str]:
    fid = f"order-{uuid.uuid4().hex[:6]}"
    handle = await start_run(client, parse_flow(order_flow(fid, key, **kw)), {"base": service.url, "key": key},
                             task_queue=task_queue)
    rec = await wait_record(handle)
    assert rec["status"] == "failed" and rec["firstFailedStep"] == "charge"
    return handle, rec["runId"]


@pytest.mark.usefixtures("worker", "cli_env")
async def test_rerun_from_failed_does_not_repeat_the_earlier_side_effect(client, task_queue, service, key, capsys):
    _handle, run_id = await failed_run(client, task_queue, service, key)
    posts = service.calls["/echo"]
    code, out, err = await flowtide(capsys, "rerun", run_id, "--from-failed", "--no-worker", "--json")
    assert code == 0, err
    rec = json.loads(out)
    assert rec["status"] == "completed" and rec["rerunOf"] == run_id
    assert rec["output"] == {"created": 200, "charged": 200}
    assert service.calls["/echo"] == posts  # the POST was not sent again
    reused = [s["stepId"] for s in rec["steps"] if s.get("reused")]
    assert reused == ["create-order"]
    desc = await client.get_workflow_handle(rec["workflowId"]).describe()
    assert desc.search_attributes["RerunOf"] == [run_id]
    assert (await desc.memo())["rerunOf"] == run_id
    assert "re-run of" in err and "1 step output(s) reused" in err


@pytest.mark.usefixtures("worker", "cli_env")
async def test_dry_run_plans_reuse_reruns_and_side_effects(client, task_queue, service, key, capsys):
    handle, run_id = await failed_run(client, task_queue, service, key)
    before = dict(service.calls)
    code, out, _ = await flowtide(capsys, "rerun", handle.id, "--from-failed", "--dry-run")
    assert code == 0
    assert "starting at step 'charge'" in out and "1 step(s) reused, 3 run (again), 0 of those with side effects" in out
    lines = {line.split()[0]: line for line in out.splitlines()[3:] if line.strip()}
    assert "reuse recorded output" in lines["create-order"]
    assert "run again" in lines["charge"] and "run again" in lines["remember"]
    assert "run (not reached before)" in lines["done"]
    code, out, _ = await flowtide(capsys, "rerun", handle.id, "--dry-run")
    assert "from the start" in out and "SIDE EFFECT: HTTP POST" in out
    assert dict(service.calls) == before  # a dry run starts nothing
    listed = [w async for w in client.list_workflows(f'RerunOf = "{run_id}"')]
    assert listed == []


@pytest.mark.usefixtures("worker", "cli_env")
async def test_rerun_on_a_fixed_flow_says_which_reused_outputs_no_longer_fit(
        client, task_queue, service, key, tmp_path: Path, capsys):
    handle, run_id = await failed_run(client, task_queue, service, key, charge="/status/404")
    old = order_flow("x", key)
    doc = order_flow((await handle.describe()).search_attributes["FlowId"][0], key, charge="/ok")
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(yaml.safe_dump(doc))
    posts = service.calls["/echo"]
    code, out, err = await flowtide(capsys, "rerun", run_id, "--from-failed", "--flow", str(fixed), "--no-worker")
    assert code == 0, err
    assert "Status: COMPLETED" in out and service.calls["/echo"] == posts
    doc["steps"][0]["input"]["json"] = {"key": "changed"}
    fixed.write_text(yaml.safe_dump(doc))
    code, out, _ = await flowtide(capsys, "rerun", run_id, "--from-failed", "--flow", str(fixed), "--dry-run")
    assert "step 'create-order' has a changed input" in out
    assert "SIDE EFFECT: HTTP POST" in out
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(dict(old, id="another-flow")))
    code, _, err = await flowtide(capsys, "rerun", run_id, "--flow", str(other))
    assert code == 2 and "another-flow" in err


@pytest.mark.usefixtures("worker", "cli_env")
async def test_rerun_with_edited_input_is_validated(client, task_queue, service, key, capsys):
    _handle, run_id = await failed_run(client, task_queue, service, key)
    code, _, err = await flowtide(capsys, "rerun", run_id, "--input", '{"base": "x"}')
    assert code == 2 and "key" in err and "Traceback" not in err
    code, _, err = await flowtide(capsys, "rerun", run_id, "--input", "{not json")
    assert code == 2 and "--input" in err
    new_key = uuid.uuid4().hex[:8]
    code, out, err = await flowtide(capsys, "rerun", run_id, "--no-worker", "--json",
                                    "--input", json.dumps({"base": service.url, "key": new_key}))
    rec = json.loads(out)
    assert code == 1 and rec["status"] == "failed"  # a fresh key fails once again, as the flow says
    assert json.loads(service.bodies[-2]["body"]) == {"key": new_key}


@pytest.mark.usefixtures("worker", "cli_env")
async def test_rerun_from_failed_of_a_completed_run_is_refused(client, task_queue, service, capsys):
    flow = parse_flow({"id": "fine", "steps": [{"stepId": "a", "stepType": "core.http",
                                                "input": {"url": service.url + "/ok"}}]})
    rec = await wait_record(await start_run(client, flow, {}, task_queue=task_queue))
    code, _, err = await flowtide(capsys, "rerun", rec["runId"], "--from-failed")
    assert code == 2 and "no failed or unfinished step" in err


@pytest.mark.usefixtures("worker", "cli_env")
async def test_replay_and_export_of_a_live_run(client, task_queue, service, key, tmp_path: Path, capsys):
    handle, run_id = await failed_run(client, task_queue, service, key)
    code, out, _ = await flowtide(capsys, "replay", run_id)
    assert code == 0 and "OK, the current interpreter makes the same decisions" in out
    target = tmp_path / "run.json"
    code, _, err = await flowtide(capsys, "runs", "export", handle.id, "-o", str(target))
    assert code == 0 and "events" in err
    assert json.loads(target.read_text())["events"][0]["eventType"] in ("EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
                                                                      "WorkflowExecutionStarted")
    code, out, _ = await flowtide(capsys, "replay", "--history", str(target), "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    (tmp_path / "bad.json").write_text('{"events": [{"eventType": 42}]}')
    code, _, err = await flowtide(capsys, "replay", "--history", str(tmp_path / "bad.json"))
    assert code == 2 and "not a Temporal history" in err
    code, _, err = await flowtide(capsys, "replay")
    assert code == 2 and "--history" in err


@pytest.mark.usefixtures("cli_env")
async def test_show_plan_replay_export_and_rerun_work_with_the_worker_stopped(
        client, task_queue, service, key, tmp_path: Path, capsys):
    async with build_worker(client, task_queue, graceful_shutdown_s=1):
        handle, run_id = await failed_run(client, task_queue, service, key)
    with pytest.raises(asyncio.TimeoutError):  # proof that no worker serves the task queue any more
        await asyncio.wait_for(handle.query("record"), 3)
    posts = service.calls["/echo"]
    code, out, err = await flowtide(capsys, "runs", "show", run_id)
    assert code == 0, err
    first_screen = "\n".join(out.splitlines()[:6])
    assert "Charge the card" in first_screen and "HTTP_SERVER_ERROR" in first_screen and "Retry helps?" in first_screen
    code, out, _ = await flowtide(capsys, "rerun", run_id, "--from-failed", "--dry-run")
    assert code == 0 and "starting at step 'charge'" in out
    code, out, _ = await flowtide(capsys, "replay", run_id)
    assert code == 0 and "OK, the current interpreter makes the same decisions" in out
    target = tmp_path / "run.json"
    code, _, _ = await flowtide(capsys, "runs", "export", run_id, "-o", str(target))
    assert code == 0
    code, out, _ = await flowtide(capsys, "replay", "--history", str(target))
    assert code == 0 and "OK" in out
    # the rerun brings its own worker (no --no-worker) and does not repeat the POST
    code, out, err = await flowtide(capsys, "rerun", run_id, "--from-failed", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "completed" and service.calls["/echo"] == posts


async def test_replay_and_show_of_an_encrypted_run_with_the_key_and_no_worker(
        dev_server, task_queue, cli_env, monkeypatch: pytest.MonkeyPatch, capsys):
    from flowtide.client.codec import KEY_ENV
    from flowtide.client.connect import connect
    monkeypatch.setenv(KEY_ENV, base64.b64encode(os.urandom(32)).decode())
    sealed = await connect(dev_server.address)
    flow = parse_flow({"id": "sealed", "steps": [
        {"stepId": "note", "stepType": "core.set-variable", "input": {"a": 1}},
        {"stepId": "wait", "stepType": "core.delay", "input": {"seconds": 600}}]})

    async def waiting() -> bool:
        return (await handle.describe()).search_attributes.get("FlowStatus") == ["waiting"]

    async with build_worker(sealed, task_queue, graceful_shutdown_s=1):
        handle = await start_run(sealed, flow, {}, task_queue=task_queue)
        assert await until(waiting)
    try:
        code, out, _ = await flowtide(capsys, "replay", handle.id)
        assert code == 0 and "OK" in out, out  # the Replayer decodes with the same key as the worker
        code, out, _ = await flowtide(capsys, "runs", "show", handle.id)
        assert code == 0 and "Status: WAITING" in out and "Steps: 1 completed" in out
        assert "rebuilt from the history" not in out  # the interpreter's own record, by replay
    finally:
        await handle.terminate("test over")
