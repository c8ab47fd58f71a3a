"""Random canary secrets must never reach the Temporal history, the run record or the logs.

The worker is a real process with ``FLOWTIDE_SECRET_CANARY`` in its environment (only there: this test
process never holds it in ``os.environ``). The flow puts the secret in HTTP headers, a query string, a code
step's env and params, a server's 500 answer that echoes the header back, a code step's exception message and
a connection error's URL. The destinations receive the secret (so the test is not vacuous); the history read
back with ``temporal workflow show -o json`` (plain text and every base64 payload decoded), the run record and
the worker's and this process's logs hold it 0 times.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Any

import pytest

from flowtide.client.runs import start_run, wait_record
from flowtide.dev.demo_service import DemoService
from flowtide.dev.server import DevServer, free_port
from flowtide.workflows.language.dsl import parse_flow
from tests.reliability.canary import history_json, hits, payload_texts
from tests.reliability.procs import WorkerProcess
from tests.support.flows import step
from tests.support.http_server import EdgeServer

SECRET = "{{ secrets.CANARY }}"


def canary_flow(demo: str, edge: str, dead: str) -> dict[str, Any]:
    fail_soft = {"continueOnError": True, "retryPolicy": {"maxRetries": 1, "delayMs": 100}}
    return {"id": "canaries", "steps": [
        {"stepId": "headers", "stepType": "core.http", "input": {
            "url": demo + "/echo", "query": {"token": SECRET},
            "headers": {"Authorization": "Bearer " + SECRET, "X-Api-Key": SECRET}}},
        {"stepId": "post", "stepType": "core.http", "input": {
            "url": demo + "/echo", "method": "POST", "json": {"key": SECRET, "note": "sent " + SECRET},
            "auth": {"type": "basic", "username": "u", "password": SECRET}}},
        {"stepId": "script", "stepType": "core.code", "input": {
            "env": ["CANARY"], "p": SECRET,
            "script": "print('env', env['CANARY'])\nprint('param', params['p'])\n"
                      "return {'env': env['CANARY'], 'param': params['p'], 'both': env['CANARY'] + params['p']}"}},
        {"stepId": "script-fails", "stepType": "core.code", **fail_soft, "input": {
            "env": ["CANARY"], "script": "raise ValueError('bad key ' + env['CANARY'])"}},
        {"stepId": "echoed-500", "stepType": "core.http", **fail_soft, "input": {
            "url": edge + "/echo?status=500", "headers": {"X-Secret": SECRET}}},
        {"stepId": "unreachable", "stepType": "core.http", **fail_soft, "input": {
            "url": dead + "/x?k=" + SECRET}},
        {"stepId": "done", "stepType": "core.return", "input": {"output": {
            "echo": "{{ headers.body }}", "script": "{{ script.output }}", "errors": "{{ $errors }}"}}}]}


@pytest.fixture
def canary() -> str:
    return "cnry" + secrets.token_hex(12)


async def test_canaries_never_reach_history_record_or_logs(
        dev_server: DevServer, client: Any, service: DemoService, task_queue: str, tmp_path: Path,
        canary: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    log_file = tmp_path / "worker.log"
    env = {"FLOWTIDE_SECRET_CANARY": canary, "FLOWTIDE_LOG_LEVEL": "DEBUG"}
    with EdgeServer() as edge, WorkerProcess(dev_server.address, task_queue, log_file, env=env) as worker:
        flow = parse_flow(canary_flow(service.url, edge.url, f"http://127.0.0.1:{free_port()}"), source="test")
        handle = await start_run(client, flow, {}, task_queue=task_queue)
        rec = await wait_record(handle)
        live = await handle.query("record")
        worker.terminate()

    # The run did what it should, so the canary really travelled through every path.
    assert rec["status"] == "completed_with_errors", rec.get("errors")
    codes = {e["stepId"]: e["code"] for e in rec["errors"]}
    assert set(codes) == {"script-fails", "echoed-500", "unreachable"}, codes
    assert codes["echoed-500"] == "HTTP_SERVER_ERROR"
    assert step(rec, "headers")["output"]["body"]["headers"]["x-api-key"] == "***"
    assert step(rec, "script")["output"] == {"env": "***", "param": "***", "both": "******"}
    assert step(rec, "script")["console"] == ["env ***", "param ***"]
    received = json.dumps(list(service.bodies))
    assert received.count(canary) >= 4  # header, query, API key and POST body reached the demo service

    history = history_json(dev_server.address, handle.id)
    assert any("HTTP_SERVER_ERROR" in t for t in payload_texts(history))  # the payloads were decoded
    places = {
        "temporal workflow show -o json": history,
        "run record": json.dumps(rec),
        "live record query": json.dumps(live),
        "worker log": worker.log_text(),
        "test log": caplog.text + "\n".join(capsys.readouterr()),
    }
    assert "step attempt failed" in places["worker log"]  # the worker did log the failures
    found = {where: hits(text, canary) for where, text in places.items()}
    assert found == {where: [] for where in places}, found
