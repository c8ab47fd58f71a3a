"""The Python API against a real dev server: run_flow / start_flow / RunFailed / create_worker."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

import flowtide

ROOT = Path(__file__).resolve().parents[2]
GRAPH = {"id": "graph-api", "steps": [
    {"id": "start", "action": "core.set-variable", "parameters": {"who": "{{ initial.name }}"}, "next": ["done"]},
    {"id": "done", "action": "core.return", "parameters": {"output": {"hello": "{{ vars.who }}"}}}]}
YAML_TEXT = """
id: yaml-api
steps:
  - stepId: greet
    stepType: core.return
    input:
      output: "{{ initial.n | plus: 1 }}"
"""


async def test_run_flow_from_a_dict_text_and_path(client: Any, task_queue: str, service: Any) -> None:
    async with flowtide.create_worker(client, task_queue=task_queue, graceful_shutdown_s=1):
        record = await flowtide.run_flow(client, GRAPH, {"name": "Ada"}, task_queue=task_queue)
        assert record["status"] == "completed" and record["output"] == {"hello": "Ada"}
        record = await flowtide.run_flow(client, YAML_TEXT, {"n": 41}, task_queue=task_queue)
        assert record["output"] == 42
        wid = f"api-{uuid.uuid4().hex[:6]}"
        handle = await flowtide.start_flow(client, ROOT / "examples" / "demo.yaml",
                                           {"baseUrl": service.url, "customerId": "7"}, task_queue=task_queue,
                                           id=wid)
        assert handle.id == wid
        with pytest.raises(flowtide.RunFailed) as failed:
            await handle.result()
    assert failed.value.status == "failed" and failed.value.code == "HTTP_SERVER_ERROR"
    assert failed.value.error["stepId"] == "charge" and failed.value.record["firstFailedStep"] == "charge"
    assert "charge" in str(failed.value)


async def test_start_flow_refuses_a_bad_flow_or_input_before_starting(client: Any, task_queue: str) -> None:
    with pytest.raises(flowtide.FlowValidationError) as err:
        await flowtide.start_flow(client, {"id": "x", "steps": [{"id": "a"}]}, task_queue=task_queue)
    assert err.value.problems[0].path.startswith("steps[0]")
    with pytest.raises(flowtide.FlowValidationError) as err:
        await flowtide.start_flow(client, ROOT / "examples" / "hello.yaml", {"customerId": 7}, task_queue=task_queue)
    assert err.value.problems[0].path == "$.customerId"


async def test_handle_signal_and_cancel(client: Any, task_queue: str) -> None:
    flow = {"id": "waits", "steps": [
        {"stepId": "wait", "stepType": "core.wait-for-signal", "input": {"signal": "go", "timeout": 60}},
        {"stepId": "out", "stepType": "core.return", "input": {"output": "{{ wait.data }}"}}]}
    async with flowtide.create_worker(client, task_queue=task_queue, graceful_shutdown_s=1):
        handle = await flowtide.start_flow(client, flow, task_queue=task_queue)
        await handle.signal("go", {"ok": True})
        assert (await handle.result())["output"] == {"ok": True}
        handle = await flowtide.start_flow(client, flow, task_queue=task_queue)
        assert (await handle.record())["status"] in ("running", "paused")
        await handle.cancel()
        with pytest.raises(flowtide.RunFailed) as err:
            await handle.result()
    assert err.value.status == "cancelled"


async def test_the_documented_program_runs_as_written(dev_server: Any) -> None:
    """docs/python-api.md's program, against this session's server instead of 127.0.0.1:7233."""
    import asyncio
    import contextlib
    import io
    import re

    text = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    program = re.search(r"## Python\n.*?```python\n(.*?)```", text, re.S)
    assert program is not None
    source = program.group(1).replace('"127.0.0.1:7233"', f'"{dev_server.address}"')
    assert dev_server.address in source
    out = io.StringIO()

    def run() -> None:
        with contextlib.redirect_stdout(out):
            exec(compile(source, "docs/python-api.md", "exec"), {"__name__": "__main__"})
    await asyncio.to_thread(run)
    lines = out.getvalue().splitlines()
    assert lines[0] == "completed {'message': 'Hello Ada'}", lines
    assert lines[1].startswith("VALIDATION_ERROR check data does not match the schema"), lines
