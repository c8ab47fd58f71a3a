"""Values that are not plain JSON (NaN, Infinity, enormous integers, deep nesting) never enter a run, and every
reader of a run answers valid JSON, also for runs recorded before the judge (issue 23)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowtide.client.api import FlowHandle, start_flow
from flowtide.client.runs import start_run, wait_record
from flowtide.dev.server import free_port
from flowtide.workflows.engine import _steps, _weigh
from flowtide.workflows.errors import FlowValidationError
from flowtide.workflows.language import json_problem, json_safe
from flowtide.workflows.language.dsl import parse_flow
from tests.support.cli import flowtide_process
from tests.support.service import running_api


def strict_json(text: str) -> Any:
    """Parse as a strict JSON reader would: NaN and Infinity are errors."""
    def refuse(word: str) -> Any:
        raise ValueError(f"not JSON: {word}")
    return json.loads(text, parse_constant=refuse)


def test_one_judge_names_what_and_where():
    assert json_problem({"a": [1, float("nan")]}, "$") == "$.a[1]: NaN is not a JSON number"
    assert "Infinity" in (json_problem({"x": float("inf")}) or "")
    assert "digits" in (json_problem(10 ** 2000) or "")
    deep: Any = 1
    for _ in range(200):
        deep = [deep]
    assert "deeper" in (json_problem(deep) or "")
    assert json_problem({"id": 2 ** 63, "s": "NaN", "f": 1.5}) is None  # big ints are carried exactly
    assert json_safe({"x": float("-inf"), "y": [math.nan]}) == {"x": "-Infinity", "y": ["NaN"]}


@contextlib.asynccontextmanager
async def raw_json_server(body: bytes) -> AsyncIterator[str]:
    """A loopback HTTP server whose every answer is ``body`` as application/json."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                     b"connection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()
    port = free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        yield f"http://127.0.0.1:{port}/"


async def test_an_http_answer_with_infinity_is_a_step_failure_the_flow_handles(client, task_queue, worker):
    flow = {"id": "inf-answer", "steps": [
        {"stepId": "get", "stepType": "core.http", "continueOnError": True, "retryPolicy": {"maxRetries": 0},
         "input": {"url": "{{ initial.url }}"}},
        {"stepId": "after", "stepType": "core.set-variable", "input": {"code": "{{ get.$meta.error.code }}"}}]}
    async with raw_json_server(b'{"x": Infinity, "id": 12345678901234567890}') as url:
        handle = await start_run(client, parse_flow(flow, source="test"), {"url": url}, task_queue=task_queue)
        rec = await wait_record(handle)
    assert rec["status"] == "completed_with_errors"
    err = rec["errors"][0]
    assert err["code"] == "VALIDATION_ERROR" and "Infinity" in err["message"], err
    assert rec["steps"][-1]["output"] == {"code": "VALIDATION_ERROR"}
    strict_json(json.dumps(json_safe(rec)))


async def test_run_input_with_nan_is_refused_before_a_run_starts(client, task_queue):
    flow = {"id": "nan-input", "steps": [{"stepId": "s", "stepType": "core.set-variable", "input": {"x": 1}}]}
    with pytest.raises(FlowValidationError, match=r"\$\.x: NaN"):
        await start_flow(client, flow, {"x": float("nan")}, task_queue=task_queue)
    with pytest.raises(FlowValidationError, match="Infinity"):
        await start_run(client, parse_flow(flow, source="test"), [float("inf")], task_queue=task_queue)
    with pytest.raises(FlowValidationError, match="NaN"):
        await FlowHandle(client.get_workflow_handle("any")).signal("go", {"v": float("nan")})


async def test_a_run_that_starts_with_nan_from_another_client_fails_validation(client, task_queue, worker):
    flow = parse_flow({"id": "nan-raw", "steps": [
        {"stepId": "s", "stepType": "core.set-variable", "input": {"x": "{{ initial.x }}"}}]}, source="test")
    handle = await client.start_workflow("FlowWorkflow", {"flow": flow.to_wire(), "input": {"x": float("nan")}},
                                         id=f"nan-raw-{task_queue}", task_queue=task_queue)
    rec = await wait_record(handle)
    assert rec["status"] == "failed" and rec["errors"][0]["code"] == "VALIDATION_ERROR"
    assert "input.x: NaN" in json.dumps(rec["errors"][0])


INFINITE = {"id": "old-infinity", "steps": [
    {"stepId": "s", "stepType": "core.set-variable", "input": {"x": "{{ '1e400' | float }}"}},
    {"stepId": "done", "stepType": "core.return", "input": {"output": {"x": "{{ vars.x }}"}}}]}


async def test_a_template_that_makes_infinity_fails_its_step(client, task_queue, worker):
    handle = await start_run(client, parse_flow(INFINITE, source="test"), {}, task_queue=task_queue)
    rec = await wait_record(handle)
    assert rec["status"] == "failed"
    assert rec["errors"][0]["code"] == "VALIDATION_ERROR" and rec["errors"][0]["stepId"] == "s"


async def test_every_reader_answers_valid_json_for_a_run_recorded_with_infinity(
        client, tmp_path: Path, dev_server, monkeypatch, capsys):
    # a run as recorded before the judge: patched("bounded-values") is False when such a history replays
    monkeypatch.setattr(_weigh, "bounded", lambda: False)  # read by the interpreter and the weighing
    monkeypatch.setattr(_steps, "bounded", lambda: False)  # _steps holds its own name for it
    tq = f"tq-old-{tmp_path.name[-8:]}"
    async with running_api(client, f"sqlite:///{tmp_path / 'f.db'}", tq) as api, httpx.AsyncClient(timeout=30) as http:
        await api.deploy(http, INFINITE)
        # the start answers the run (no 500 after a successful start, which a client would retry)
        r = await http.post(api.url("/v1/flows/old-infinity/runs?wait=20"), json={"input": {}},
                            headers=api.headers("run"))
        assert r.status_code == 200, r.text
        rec = strict_json(r.text)
        assert rec["output"] == {"x": "Infinity"}
        r = await http.get(api.url(f"/v1/runs/{rec['runId']}"), headers=api.headers("read"))
        assert r.status_code == 200, r.text
        assert strict_json(r.text)["output"] == {"x": "Infinity"}
        r = await http.post(api.url("/graphql"), headers=api.headers("read"), json={
            "query": f'query {{ run(id: "{rec["runId"]}") {{ status record }} }}'})
        assert r.status_code == 200, r.text
        assert "errors" not in strict_json(r.text), r.text
        handle = client.get_workflow_handle(rec["workflowId"])
        strict_json(json.dumps(await FlowHandle(handle).record(), allow_nan=False))
        code, out, err = await flowtide_process("runs", "show", rec["workflowId"], "--json",
                                                env={"TEMPORAL_ADDRESS": dev_server.address})
        assert code == 0, err
        assert "Infinity" in out
        strict_json(out)
